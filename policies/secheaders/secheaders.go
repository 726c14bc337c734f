// Package secheaders implements the security-headers policy: HSTS, Content-Security-Policy,
// X-Frame-Options, X-Content-Type-Options, Referrer-Policy, Permissions-Policy and
// Cross-Origin-Opener-Policy with secure defaults for an API, never overriding what the upstream
// chose unless told to.
package secheaders

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/policies"
)

// Off disables a header that has a default.
const Off = "off"

// Defaults, from the OWASP REST Security and HTTP Headers cheat sheets: an API answer is never a
// page to frame, run scripts from, or leak the URL of.
const (
	DefaultCSP                     = "default-src 'none'; frame-ancestors 'none'"
	DefaultFrameOptions            = "DENY"
	DefaultContentTypeOptions      = "nosniff"
	DefaultReferrerPolicy          = "no-referrer"
	DefaultCrossOriginOpenerPolicy = "same-origin"
	DefaultHSTSMaxAge              = 365 * 24 * time.Hour
)

// Config is the security-headers policy's settings. Every header has a default; a string set to
// "off" is not sent. The zero Config is the secure default:
//
//	policies:
//	  secure:
//	    security-headers: {}
type Config struct {
	// HSTS configures Strict-Transport-Security.
	HSTS HSTS `yaml:"hsts"`
	// ForceHSTS sends HSTS on plain-HTTP requests too (for a TLS-terminating proxy in front that
	// is not in trusted_proxies, so its X-Forwarded-Proto is not believed). Browsers ignore HSTS
	// over plain HTTP; this is for what lies between.
	ForceHSTS bool `yaml:"force_hsts"`
	// ContentSecurityPolicy (default "default-src 'none'; frame-ancestors 'none'"). Set a real
	// policy, or "off", for routes that serve pages such as a GraphQL playground.
	ContentSecurityPolicy string `yaml:"content_security_policy"`
	// FrameOptions is X-Frame-Options: DENY (default), SAMEORIGIN or off.
	FrameOptions string `yaml:"frame_options"`
	// ContentTypeOptions is X-Content-Type-Options: nosniff (default) or off.
	ContentTypeOptions string `yaml:"content_type_options"`
	// ReferrerPolicy (default no-referrer); a comma-separated fallback list is allowed.
	ReferrerPolicy string `yaml:"referrer_policy"`
	// PermissionsPolicy, e.g. "camera=(), geolocation=()" (default: not sent).
	PermissionsPolicy string `yaml:"permissions_policy"`
	// CrossOriginOpenerPolicy: same-origin (default), same-origin-allow-popups,
	// noopener-allow-popups, unsafe-none or off.
	CrossOriginOpenerPolicy string `yaml:"cross_origin_opener_policy"`
	// Override replaces headers the upstream or an inner policy set; by default theirs win, since
	// a service that sets its own CSP knows its pages better.
	Override bool `yaml:"override"`
}

// HSTS configures Strict-Transport-Security, sent only on requests that arrived over TLS (directly,
// or per X-Forwarded-Proto from a trusted proxy) unless force_hsts is set.
type HSTS struct {
	// Enabled sends the header (default true).
	Enabled *bool `yaml:"enabled"`
	// MaxAge, in whole seconds on the wire (default 8760h, one year).
	MaxAge confval.Duration `yaml:"max_age"`
	// IncludeSubdomains adds includeSubDomains (default false: it binds every subdomain of the
	// host, which the API's owner may not own).
	IncludeSubdomains bool `yaml:"include_subdomains"`
	// Preload adds preload; hstspreload.org then requires include_subdomains and a max_age of at
	// least a year, which Validate checks.
	Preload bool `yaml:"preload"`
}

var (
	frameOptions = []string{"DENY", "SAMEORIGIN"}
	referrers    = []string{"no-referrer", "no-referrer-when-downgrade", "origin", "origin-when-cross-origin",
		"same-origin", "strict-origin", "strict-origin-when-cross-origin", "unsafe-url"}
	coops = []string{"unsafe-none", "same-origin-allow-popups", "same-origin", "noopener-allow-popups"}
)

// Validate reports every problem under path ("policies.secure.security-headers").
func (c *Config) Validate(path string, p *confval.Problems) {
	c.compile(path, p)
}

type header struct {
	name  string
	value []string
}

func (c *Config) compile(path string, p *confval.Problems) *Headers {
	out := &Headers{override: c.Override, force: c.ForceHSTS}
	add := func(field, name, value, def string, allowed []string) {
		at := confval.Join(path, field)
		if value == "" {
			value = def
		}
		if value == "" || strings.EqualFold(value, Off) {
			return
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			p.Addf(at, "must not contain line breaks")
			return
		}
		if allowed != nil {
			for _, part := range strings.Split(value, ",") {
				if !oneOf(strings.TrimSpace(part), allowed) {
					p.Addf(at, "%q is not one of %s", value, strings.Join(allowed, ", "))
					return
				}
			}
			if field != "referrer_policy" && strings.Contains(value, ",") {
				p.Addf(at, "takes one value, not a list")
				return
			}
		}
		// A cap-1 slice shared by every request: Header.Add on it reallocates instead of writing
		// into it, so one answer's edits cannot leak into another's.
		out.headers = append(out.headers, header{name: name, value: []string{value}[:1:1]})
	}
	add("content_security_policy", "Content-Security-Policy", c.ContentSecurityPolicy, DefaultCSP, nil)
	if strings.HasPrefix(strings.ToUpper(c.FrameOptions), "ALLOW-FROM") {
		p.Addf(confval.Join(path, "frame_options"), "ALLOW-FROM is obsolete and ignored by browsers; use content_security_policy frame-ancestors")
	} else {
		add("frame_options", "X-Frame-Options", strings.ToUpper(c.FrameOptions), DefaultFrameOptions, append(frameOptions, "OFF"))
	}
	add("content_type_options", "X-Content-Type-Options", c.ContentTypeOptions, DefaultContentTypeOptions, []string{"nosniff", Off})
	add("referrer_policy", "Referrer-Policy", c.ReferrerPolicy, DefaultReferrerPolicy, append(referrers, Off))
	add("permissions_policy", "Permissions-Policy", c.PermissionsPolicy, "", nil)
	add("cross_origin_opener_policy", "Cross-Origin-Opener-Policy", c.CrossOriginOpenerPolicy, DefaultCrossOriginOpenerPolicy, append(coops, Off))

	h := c.HSTS
	hpath := confval.Join(path, "hsts")
	if h.Enabled == nil || *h.Enabled {
		age := h.MaxAge.Or(DefaultHSTSMaxAge)
		if age < 0 {
			p.Addf(confval.Join(hpath, "max_age"), "must not be negative")
		}
		if h.Preload && (!h.IncludeSubdomains || age < DefaultHSTSMaxAge) {
			p.Addf(confval.Join(hpath, "preload"), "preload requires include_subdomains: true and max_age of at least 8760h (hstspreload.org)")
		}
		v := "max-age=" + strconv.FormatInt(int64(age/time.Second), 10)
		if h.IncludeSubdomains {
			v += "; includeSubDomains"
		}
		if h.Preload {
			v += "; preload"
		}
		out.hsts = []string{v}[:1:1]
	}
	return out
}

func oneOf(v string, list []string) bool {
	for _, s := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// Headers is a built security-headers policy.
type Headers struct {
	headers  []header
	hsts     []string
	override bool
	force    bool
}

var _ policies.Policy = (*Headers)(nil)

// New builds a security-headers policy named name.
func New(name string, c Config, _ policies.Deps) (policies.Policy, error) {
	var p confval.Problems
	out := c.compile("", &p)
	if len(p) > 0 {
		msgs := make([]string, len(p))
		for i, pr := range p {
			msgs[i] = pr.Path + ": " + pr.Message
		}
		return nil, fmt.Errorf("security-headers %q: %w", name, errors.New(strings.Join(msgs, "; ")))
	}
	return out, nil
}

// Phase is PhaseSecurityHeaders: outside authentication and everything after it, so 401, 403 and
// 429 answers carry the headers too.
func (s *Headers) Phase() policies.Phase { return policies.PhaseSecurityHeaders }

// Wrap returns next behind the policy.
func (s *Headers) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &policies.HeaderHook[responseHeaders]{ResponseWriter: w, A: responseHeaders{s: s, hsts: s.hsts != nil && (s.force || isTLS(r))}}
		next.ServeHTTP(sw, r)
		sw.Finish()
	})
}

// isTLS: the edge removed X-Forwarded-Proto unless a trusted proxy sent it, so it can be believed
// here. The first value is what the outermost proxy saw.
func isTLS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	v := r.Header.Get("X-Forwarded-Proto")
	if i := strings.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	return strings.EqualFold(strings.TrimSpace(v), "https")
}

// writer sets the headers when the status is written: only then is it known what the upstream
// set.
// responseHeaders adds the configured headers, leaving the upstream's own unless override.
type responseHeaders struct {
	s    *Headers
	hsts bool
}

func (a responseHeaders) ApplyHeaders(h http.Header) {
	set := func(name string, v []string) {
		if a.s.override {
			h[name] = v
		} else if _, ok := h[name]; !ok {
			h[name] = v
		}
	}
	for _, hd := range a.s.headers {
		set(hd.name, hd.value)
	}
	if a.hsts {
		set("Strict-Transport-Security", a.s.hsts)
	}
}
