// Package basicauth is the basic-auth policy: a consumer is identified by an HTTP Basic username
// and password checked against the consumer's bcrypt hash.
package basicauth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/policies"
)

// Config is the basic-auth policy's settings, written under its type key:
//
//	policies:
//	  staff: {basic-auth: {hide_credentials: true}}
type Config struct {
	// HideCredentials removes the Authorization header before the request goes upstream.
	HideCredentials bool `yaml:"hide_credentials"`
	// Anonymous names a consumer that requests without credentials proceed as, instead of being
	// refused with 401. A wrong password is still refused.
	Anonymous string `yaml:"anonymous"`
	// Realm is the realm of the WWW-Authenticate challenge. Default "portico".
	Realm string `yaml:"realm"`
	// CacheTTL is how long a successful check is remembered, sparing the next requests bcrypt's
	// cost (tens of milliseconds of CPU each). Default 1m.
	CacheTTL confval.Duration `yaml:"cache_ttl"`
	// CacheSize bounds the remembered checks. Default 1024. Failed checks are never remembered.
	CacheSize int `yaml:"cache_size"`
	// DisableCache makes every request pay for a bcrypt comparison.
	DisableCache bool `yaml:"disable_cache"`
	// MaxConcurrentChecks bounds bcrypt comparisons running at once, so a flood of wrong
	// passwords cannot take every CPU from other traffic; waiting requests give up when the
	// client does. Default 2 x GOMAXPROCS.
	MaxConcurrentChecks int `yaml:"max_concurrent_checks"`
}

const (
	defaultCacheTTL  = time.Minute
	defaultCacheSize = 1024
	// maxHeader bounds the credentials decoded; longer values are refused without decoding.
	maxHeader = 4 << 10
)

// Validate reports every problem in c under path (e.g. "policies.staff.basic-auth").
func (c *Config) Validate(path string, p *confval.Problems) {
	if c.CacheTTL < 0 {
		p.Addf(confval.Join(path, "cache_ttl"), "cannot be negative")
	}
	if c.CacheSize < 0 {
		p.Addf(confval.Join(path, "cache_size"), "cannot be negative (use disable_cache: true)")
	}
	if c.MaxConcurrentChecks < 0 {
		p.Addf(confval.Join(path, "max_concurrent_checks"), "cannot be negative")
	}
	for i := 0; i < len(c.Realm); i++ {
		if ch := c.Realm[i]; ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\' {
			p.Addf(confval.Join(path, "realm"), "realm cannot contain quotes, backslashes or control characters")
			break
		}
	}
}

// BasicAuth is a built basic-auth policy. Its cache is its only state; a rebuilt instance (a
// reload) starts with an empty one, so a changed or removed password takes effect at once.
type BasicAuth struct {
	hide      bool
	anonymous string
	challenge string
	consumers *policies.Consumers
	cache     *cache // nil when disabled
	slots     chan struct{}
}

var (
	_ policies.Authenticator = (*BasicAuth)(nil)
	_ policies.Anonymous     = (*BasicAuth)(nil)
)

// New builds the policy named name from c.
func New(name string, c Config, deps policies.Deps) (policies.Policy, error) {
	var ps confval.Problems
	c.Validate("", &ps)
	what := fmt.Sprintf("basic-auth policy %q", name)
	if err := ps.Err(what); err != nil {
		return nil, err
	}
	if err := deps.CheckAnonymous(what, c.Anonymous); err != nil {
		return nil, err
	}
	realm := c.Realm
	if realm == "" {
		realm = "portico"
	}
	b := &BasicAuth{
		hide:      c.HideCredentials,
		anonymous: c.Anonymous,
		challenge: `Basic realm="` + realm + `", charset="UTF-8"`,
		consumers: deps.Consumers,
	}
	if !c.DisableCache {
		size := c.CacheSize
		if size == 0 {
			size = defaultCacheSize
		}
		b.cache = newCache(size, c.CacheTTL.Or(defaultCacheTTL), time.Now)
	}
	n := c.MaxConcurrentChecks
	if n == 0 {
		n = 2 * runtime.GOMAXPROCS(0)
	}
	b.slots = make(chan struct{}, n)
	return b, nil
}

// Phase is authentication.
func (b *BasicAuth) Phase() policies.Phase { return policies.PhaseAuthentication }

// Wrap authenticates alone, for use outside policies.Chain (which runs all of a scope's
// authenticators as one step and never calls Wrap).
func (b *BasicAuth) Wrap(next http.Handler) http.Handler {
	return policies.Chain(next, []policies.Policy{b}, nil, b.consumers)
}

// Challenge is `Basic realm="portico", charset="UTF-8"` (RFC 7617).
func (b *BasicAuth) Challenge() string { return b.challenge }

// AnonymousConsumer is the configured fallback consumer, or "".
func (b *BasicAuth) AnonymousConsumer() string { return b.anonymous }

var (
	errMalformed = errors.New("malformed basic credentials")
	errDuplicate = errors.New("more than one basic credential")
	errWrong     = policies.ErrInvalidCredentials
)

// Authenticate checks an Authorization: Basic header. Other schemes are not its credential.
func (b *BasicAuth) Authenticate(r *http.Request) (*reqctx.Identity, error) {
	raw, found, err := credential(r)
	if !found {
		return nil, nil
	}
	if b.hide {
		hideBasic(r.Header)
	}
	if err != nil {
		return nil, err
	}
	user, pass, err := decode(raw)
	if err != nil {
		return nil, err
	}
	if b.cache != nil {
		if cons, ok := b.cache.get(user, pass); ok {
			return identity(cons, user), nil
		}
	}
	select {
	case b.slots <- struct{}{}:
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
	cons, ok := b.consumers.ByBasic(user, pass)
	<-b.slots
	if !ok {
		return nil, errWrong
	}
	if b.cache != nil {
		b.cache.put(user, pass, cons)
	}
	return identity(cons, user), nil
}

func identity(c *policies.Consumer, user string) *reqctx.Identity {
	return &reqctx.Identity{Consumer: c.Name, Groups: c.Groups, Subject: user}
}

func credential(r *http.Request) (raw string, found bool, err error) {
	for _, v := range r.Header["Authorization"] {
		if !isBasic(v) {
			continue // Bearer and others belong to other authenticators
		}
		if found {
			return "", true, errDuplicate
		}
		// A bare "Basic" (the header parser trims "Basic "'s space) is an empty credential of
		// this scheme, refused by decode, never a request without credentials.
		raw, found = strings.TrimSpace(v[min(len(v), 6):]), true
	}
	return raw, found, nil
}

func isBasic(v string) bool {
	return (len(v) >= 6 && strings.EqualFold(v[:6], "basic ")) || strings.EqualFold(v, "basic")
}

// hideBasic removes the Basic credentials only: another Authorization value (a Bearer token) is
// another authenticator's to judge, and later in the step, so it must still be there.
func hideBasic(h http.Header) {
	vs := h["Authorization"]
	kept := vs[:0:0]
	for _, v := range vs {
		if !isBasic(v) {
			kept = append(kept, v)
		}
	}
	if len(kept) == 0 {
		h.Del("Authorization")
		return
	}
	h["Authorization"] = kept
}

func decode(raw string) (user, pass string, err error) {
	if raw == "" || len(raw) > maxHeader {
		return "", "", errMalformed
	}
	dec, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return "", "", errMalformed
	}
	user, pass, ok := strings.Cut(string(dec), ":")
	if !ok || user == "" {
		return "", "", errMalformed
	}
	return user, pass, nil
}
