// Package cors implements the cors policy: a strict list of origins allowed to read answers from
// browsers, with preflight requests answered at the edge.
package cors

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portico-gw/portico/internal/apierror"
	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/internal/httpfield"
	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/policies"
)

// Config is the cors policy's settings:
//
//	policies:
//	  browser:
//	    cors:
//	      origins: [https://app.example.com, "https://*.example.com"]
//	      credentials: true
//	      exposed_headers: [X-Request-ID]
//	      max_age: 10m
type Config struct {
	// Origins are the origins allowed, each scheme://host[:port] exactly as a browser sends it
	// ("https://app.example.com"), or a subdomain pattern: "https://*.example.com" matches any
	// subdomain (not example.com itself) over https, "*.example.com" over http or https. "*"
	// alone allows every origin and cannot be combined with credentials. Required.
	Origins []string `yaml:"origins"`
	// Methods are the methods a preflight allows (default GET, HEAD, PUT, PATCH, POST, DELETE).
	Methods []string `yaml:"methods"`
	// Headers are the request headers a preflight allows; empty reflects the headers the browser
	// asks for (Kong's default).
	Headers []string `yaml:"headers"`
	// ExposedHeaders are response headers scripts may read beyond the CORS-safelisted ones.
	ExposedHeaders []string `yaml:"exposed_headers"`
	// Credentials allows cookies and Authorization (Access-Control-Allow-Credentials: true).
	Credentials bool `yaml:"credentials"`
	// MaxAge is how long a browser may cache a preflight answer, in whole seconds (default: not
	// sent, the browser's own default of 5 s applies).
	MaxAge confval.Duration `yaml:"max_age"`
	// PreflightContinue sends preflight requests to the handler instead of answering them here.
	PreflightContinue bool `yaml:"preflight_continue"`
}

var defaultMethods = []string{"GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"}

// Validate reports every problem under path ("policies.browser.cors").
func (c *Config) Validate(path string, p *confval.Problems) {
	c.compile(path, p)
}

type pattern struct {
	scheme string // "" for http or https
	suffix string // ".example.com"
	port   string // ":8443" or ""
}

func (c *Config) compile(path string, p *confval.Problems) *CORS {
	out := &CORS{exact: map[string]struct{}{}, credentials: c.Credentials, preflightContinue: c.PreflightContinue}
	opath := confval.Join(path, "origins")
	if len(c.Origins) == 0 {
		p.Addf(opath, "list at least one origin (or \"*\" for any)")
	}
	for i, o := range c.Origins {
		at := confval.Index(opath, i)
		if o == "*" {
			if len(c.Origins) > 1 {
				p.Addf(at, "\"*\" must be the only origin")
			}
			if c.Credentials {
				p.Addf(at, "\"*\" cannot be used with credentials: true (browsers refuse it); list the origins")
			}
			out.any = true
			continue
		}
		pat, exact, err := parseOrigin(o)
		if err != nil {
			p.Addf(at, "%v", err)
			continue
		}
		if exact != "" {
			out.exact[exact] = struct{}{}
		} else {
			out.patterns = append(out.patterns, pat)
		}
	}
	methods := make([]string, 0, len(defaultMethods))
	for _, m := range c.Methods {
		methods = append(methods, strings.ToUpper(m))
	}
	if len(methods) == 0 {
		methods = append(methods, defaultMethods...)
	}
	out.methods = list(confval.Join(path, "methods"), methods, !c.Credentials, p)
	out.headers = list(confval.Join(path, "headers"), c.Headers, !c.Credentials, p)
	out.exposed = list(confval.Join(path, "exposed_headers"), c.ExposedHeaders, !c.Credentials, p)
	if c.MaxAge < 0 {
		p.Addf(confval.Join(path, "max_age"), "must not be negative")
	} else if c.MaxAge > 0 {
		out.maxAge = strconv.FormatInt(int64(c.MaxAge.Std()/time.Second), 10)
	}
	return out
}

// list checks tokens and joins them into one header value.
func list(path string, names []string, wildcardOK bool, p *confval.Problems) string {
	for i, n := range names {
		if n == "*" {
			if !wildcardOK {
				p.Addf(confval.Index(path, i), "\"*\" is not allowed here with credentials: true (browsers take it literally); list the names")
			}
			continue
		}
		if !confval.IsToken(n) {
			p.Addf(confval.Index(path, i), "%q is not a valid name", n)
		}
	}
	return strings.Join(names, ", ")
}

// parseOrigin returns a pattern for "*." hosts, else the normalized exact origin.
func parseOrigin(o string) (pattern, string, error) {
	bad := func(why string) (pattern, string, error) {
		return pattern{}, "", fmt.Errorf("origin %q %s", o, why)
	}
	s := strings.ToLower(strings.TrimSpace(o))
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		if strings.HasPrefix(s, "*.") {
			scheme, rest = "", s
		} else {
			return bad("must be scheme://host[:port], e.g. https://app.example.com")
		}
	} else if !validScheme(scheme) {
		return bad("has an invalid scheme")
	}
	if strings.ContainsAny(rest, "/?#@") {
		return bad("must not have a path, query or user (browsers send scheme://host[:port] only)")
	}
	host, port := rest, ""
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.Contains(rest[i:], "]") {
		host, port = rest[:i], rest[i:]
		if n, err := strconv.Atoi(port[1:]); err != nil || n <= 0 || n > 65535 {
			return bad("has an invalid port")
		}
	}
	if h, ok := strings.CutPrefix(host, "*."); ok {
		if !validHost(h) || !strings.Contains(h, ".") {
			return bad("must be *.domain.tld with a real domain after \"*.\"")
		}
		return pattern{scheme: scheme, suffix: "." + h, port: port}, "", nil
	}
	if scheme == "" {
		return bad("must be scheme://host[:port]")
	}
	if !validHost(strings.Trim(host, "[]")) && !(strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]")) {
		return bad("has an invalid host (\"*\" is only allowed as the whole origin or as a leading \"*.\" label)")
	}
	return pattern{}, scheme + "://" + host + port, nil
}

func validScheme(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func validHost(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// CORS is a built cors policy.
type CORS struct {
	any               bool
	exact             map[string]struct{}
	patterns          []pattern
	credentials       bool
	preflightContinue bool
	methods           string
	headers           string
	exposed           string
	maxAge            string
}

var _ policies.Policy = (*CORS)(nil)

// New builds a cors policy named name.
func New(name string, c Config, _ policies.Deps) (policies.Policy, error) {
	var p confval.Problems
	out := c.compile("", &p)
	if len(p) > 0 {
		msgs := make([]string, len(p))
		for i, pr := range p {
			msgs[i] = strings.TrimPrefix(pr.Path+": ", ": ") + pr.Message
		}
		return nil, fmt.Errorf("cors %q: %w", name, errors.New(strings.Join(msgs, "; ")))
	}
	return out, nil
}

// Phase is PhaseCORS: before authentication, so a preflight (which never carries credentials) is
// answered without being rejected as unauthenticated, and error answers get CORS headers too.
func (c *CORS) Phase() policies.Phase { return policies.PhaseCORS }

// Shared header values: cap 1, so an Add by anyone reallocates instead of writing into them.
var (
	varyOrigin = []string{"Origin"}[:1:1]
	allowTrue  = []string{"true"}[:1:1]
	anyOrigin  = []string{"*"}[:1:1]
)

// ErrOriginNotAllowed answers a preflight from an origin not in the list.
var ErrOriginNotAllowed = apierror.New(http.StatusForbidden, "ORIGIN_NOT_ALLOWED", "Origin not allowed")

// Wrap returns next behind the policy.
func (c *CORS) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The answer depends on Origin whether or not this one was allowed, so shared caches
		// must key on it. Field names compare case-insensitively: a Vary that names origin
		// already needs no second one.
		h := w.Header()
		if v, ok := h["Vary"]; !ok {
			h["Vary"] = varyOrigin
		} else if !httpfield.ListContains(v, "Origin") {
			h["Vary"] = append(v[:len(v):len(v)], "Origin")
		}
		origin := r.Header.Get("Origin")
		if origin == "" {
			// Not a CORS request, but the upstream may still send its own Vary: origin.
			vw := &policies.HeaderHook[varyHeader]{ResponseWriter: w}
			next.ServeHTTP(vw, r)
			vw.Finish()
			return
		}
		allowed := c.allowed(origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			if !c.preflightContinue {
				c.preflight(w, r, origin, allowed)
				return
			}
			if info := reqctx.From(r.Context()); info != nil {
				// Passed on by choice: the upstream answers preflights, on any route.
				info.PreflightAllow = ""
			}
		}
		cw := &policies.HeaderHook[responseHeaders]{ResponseWriter: w, A: responseHeaders{c: c}}
		if allowed {
			cw.A.origin = origin
		}
		next.ServeHTTP(cw, r)
		cw.Finish()
	})
}

func (c *CORS) preflight(w http.ResponseWriter, r *http.Request, origin string, allowed bool) {
	if !allowed {
		apierror.Write(w, r, ErrOriginNotAllowed)
		return
	}
	h := w.Header()
	c.setOrigin(h, origin)
	h.Set("Access-Control-Allow-Methods", c.methods)
	if c.headers != "" {
		h.Set("Access-Control-Allow-Headers", c.headers)
	} else if req := r.Header.Values("Access-Control-Request-Headers"); len(req) > 0 {
		h.Add("Vary", "Access-Control-Request-Headers")
		h["Access-Control-Allow-Headers"] = req
	}
	if c.maxAge != "" {
		h.Set("Access-Control-Max-Age", c.maxAge)
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

func (c *CORS) setOrigin(h http.Header, origin string) {
	if c.any {
		h["Access-Control-Allow-Origin"] = anyOrigin
	} else {
		h["Access-Control-Allow-Origin"] = []string{origin}
	}
	if c.credentials {
		h["Access-Control-Allow-Credentials"] = allowTrue
	}
}

func (c *CORS) allowed(origin string) bool {
	if c.any {
		return true
	}
	o := origin
	for i := 0; i < len(o); i++ {
		if 'A' <= o[i] && o[i] <= 'Z' {
			o = strings.ToLower(o)
			break
		}
	}
	if _, ok := c.exact[o]; ok {
		return true
	}
	for _, p := range c.patterns {
		if p.match(o) {
			return true
		}
	}
	return false
}

func (p pattern) match(o string) bool {
	scheme, rest, ok := strings.Cut(o, "://")
	if !ok {
		return false
	}
	if p.scheme != "" && scheme != p.scheme || p.scheme == "" && scheme != "https" && scheme != "http" {
		return false
	}
	host := rest
	if p.port != "" {
		if !strings.HasSuffix(rest, p.port) {
			return false
		}
		host = rest[:len(rest)-len(p.port)]
	}
	return len(host) > len(p.suffix) && strings.HasSuffix(host, p.suffix) && validHost(host)
}

// writer sets this policy's CORS headers when the status is written, replacing any the handler or
// upstream set, so that the gateway alone decides who may read the answer.
// responseHeaders sets the CORS response headers of an actual (non-preflight) request, replacing
// any the upstream set; origin is "" when the origin is not allowed.
type responseHeaders struct {
	c      *CORS
	origin string
}

func (a responseHeaders) ApplyHeaders(h http.Header) {
	varyHeader{}.ApplyHeaders(h)
	delete(h, "Access-Control-Allow-Origin")
	delete(h, "Access-Control-Allow-Credentials")
	delete(h, "Access-Control-Expose-Headers")
	if a.origin == "" {
		return
	}
	a.c.setOrigin(h, a.origin)
	if a.c.exposed != "" {
		h["Access-Control-Expose-Headers"] = []string{a.c.exposed}
	}
}

// varyHeader folds the Vary lines of an answer once the handler is done with them. The policy set
// Vary: Origin before the upstream answered, and a proxy appends the upstream's Vary lines, so an
// upstream that varies on origin too (in any case, or in a list) would name it twice.
type varyHeader struct{}

func (varyHeader) ApplyHeaders(h http.Header) {
	if v, ok := h["Vary"]; ok {
		h["Vary"] = dedupeVary(v)
	}
}

// dedupeVary returns lines unchanged when no field name repeats (the common case, without
// allocating), else one line naming each field once, in first-seen order and spelling. "*" with
// other names is "*" alone: the answer varies on everything, which the other names add nothing to.
// lines is never written to: it may be a slice shared by every answer.
func dedupeVary(lines []string) []string {
	var buf [8]string // on the stack: answers vary on a handful of fields
	names := buf[:0]
	dup, star := false, false
	for _, line := range lines {
	next:
		for n := range strings.SplitSeq(line, ",") {
			n = strings.TrimSpace(n)
			switch n {
			case "":
				continue
			case "*":
				star = true
			}
			for _, seen := range names {
				if strings.EqualFold(seen, n) {
					dup = true
					continue next
				}
			}
			names = append(names, n)
		}
	}
	if star && len(names) > 1 {
		return anyOrigin // "*", shared and clipped like the other values
	}
	if !dup {
		return lines
	}
	return []string{strings.Join(names, ", ")}
}
