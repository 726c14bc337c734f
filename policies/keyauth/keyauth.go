// Package keyauth is the key-auth policy: a consumer is identified by an API key sent in a header
// or query parameter, as Kong's key-auth plugin does.
package keyauth

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/policies"
)

// Config is the key-auth policy's settings, written under its type key:
//
//	policies:
//	  apikey: {key-auth: {key_names: [apikey, x-api-key], hide_credentials: true}}
type Config struct {
	// KeyNames are the names of the headers and query parameters that carry the key, tried in
	// order (for each name: header, then query). Default [apikey].
	KeyNames []string `yaml:"key_names"`
	// In lists where keys are looked for: "header", "query" or both. Default [header, query].
	In []string `yaml:"in"`
	// HideCredentials removes every configured key name from the headers and the query string
	// before the request goes upstream, so backends never see the keys.
	HideCredentials bool `yaml:"hide_credentials"`
	// Anonymous names a consumer that requests without any credential proceed as, instead of
	// being refused with 401. A wrong key is still refused.
	Anonymous string `yaml:"anonymous"`
	// Realm is the realm of the WWW-Authenticate challenge. Default "portico".
	Realm string `yaml:"realm"`
}

const (
	inHeader = "header"
	inQuery  = "query"
)

// Validate reports every problem in c under path (e.g. "policies.apikey.key-auth").
func (c *Config) Validate(path string, p *confval.Problems) {
	seen := map[string]bool{}
	for i, n := range c.KeyNames {
		at := confval.Index(confval.Join(path, "key_names"), i)
		switch {
		case n == "":
			p.Addf(at, "empty key name")
		case !confval.IsToken(n):
			p.Addf(at, "key name %q must be a header token (letters, digits and !#$%%&'*+-.^_`|~)", n)
		case seen[http.CanonicalHeaderKey(n)]:
			p.Addf(at, "key name %q is listed twice", n)
		}
		seen[http.CanonicalHeaderKey(n)] = true
	}
	seenIn := map[string]bool{}
	for i, in := range c.In {
		at := confval.Index(confval.Join(path, "in"), i)
		switch {
		case in != inHeader && in != inQuery:
			p.Addf(at, "unknown location %q (allowed: header, query)", in)
		case seenIn[in]:
			p.Addf(at, "location %q is listed twice", in)
		}
		seenIn[in] = true
	}
	if c.In != nil && len(c.In) == 0 {
		p.Addf(confval.Join(path, "in"), "empty list: keys would never be found (allowed: header, query)")
	}
	if !confval.IsQuotable(c.Realm) {
		p.Addf(confval.Join(path, "realm"), "realm cannot contain quotes, backslashes or control characters")
	}
}

// KeyAuth is a built key-auth policy. It holds no per-request state, so one instance serves any
// number of routes concurrently.
type KeyAuth struct {
	names     []string
	headers   []string // canonical forms of names, so lookups skip canonicalisation
	inHeader  bool
	inQuery   bool
	hide      bool
	anonymous string
	challenge string
	consumers *policies.Consumers
	// spellings are the names as backends that read '_' as '-' see them (reqctx.BackendSpelling),
	// when keys are read from headers; underscoreNames is set when a name has an underscore, so
	// that a field without one can be another spelling of it too.
	spellings       []string
	underscoreNames bool
}

var (
	_ policies.Authenticator = (*KeyAuth)(nil)
	_ policies.Anonymous     = (*KeyAuth)(nil)
)

// New builds the policy named name from c. It fails on an invalid config or an anonymous consumer
// that is not declared.
func New(name string, c Config, deps policies.Deps) (policies.Policy, error) {
	var ps confval.Problems
	c.Validate("", &ps)
	what := fmt.Sprintf("key-auth policy %q", name)
	if err := ps.Err(what); err != nil {
		return nil, err
	}
	if err := deps.CheckAnonymous(what, c.Anonymous); err != nil {
		return nil, err
	}
	k := &KeyAuth{hide: c.HideCredentials, anonymous: c.Anonymous, consumers: deps.Consumers}
	k.names = c.KeyNames
	if len(k.names) == 0 {
		k.names = []string{"apikey"}
	}
	for _, n := range k.names {
		k.headers = append(k.headers, http.CanonicalHeaderKey(n))
	}
	in := c.In
	if len(in) == 0 {
		in = []string{inHeader, inQuery}
	}
	for _, l := range in {
		k.inHeader = k.inHeader || l == inHeader
		k.inQuery = k.inQuery || l == inQuery
	}
	if k.inHeader {
		for _, n := range k.names {
			k.spellings = append(k.spellings, reqctx.BackendSpelling(n))
			k.underscoreNames = k.underscoreNames || strings.IndexByte(n, '_') >= 0
		}
	}
	realm := c.Realm
	if realm == "" {
		realm = "portico"
	}
	k.challenge = `Key realm="` + realm + `"`
	return k, nil
}

// Phase is authentication.
func (k *KeyAuth) Phase() policies.Phase { return policies.PhaseAuthentication }

// Wrap authenticates alone, for use outside policies.Chain (which runs all of a scope's
// authenticators as one step and never calls Wrap).
func (k *KeyAuth) Wrap(next http.Handler) http.Handler {
	return policies.Chain(next, []policies.Policy{k}, nil, k.consumers)
}

// Challenge is `Key realm="portico"`.
func (k *KeyAuth) Challenge() string { return k.challenge }

// AnonymousConsumer is the configured fallback consumer, or "".
func (k *KeyAuth) AnonymousConsumer() string { return k.anonymous }

// errDuplicateKey: two keys under one name are ambiguous: twice in the header or in the query
// (Kong refuses those too), or different ones in the header and the query.
var errDuplicateKey = errors.New("duplicate API key")

// Authenticate looks for a key under each name (header, then query) and returns its consumer.
func (k *KeyAuth) Authenticate(r *http.Request) (*reqctx.Identity, error) {
	k.dropSpellings(r.Header)
	key, found, err := k.find(r)
	if k.hide && (found || err != nil) {
		k.strip(r)
	}
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, nil
	}
	cons, ok := k.consumers.ByKey(key)
	if !ok {
		return nil, policies.ErrInvalidCredentials
	}
	return &reqctx.Identity{Consumer: cons.Name, Groups: cons.Groups}, nil
}

// find returns the key the request carries, under the first name that has one. A request that
// carries two different keys under one name (twice in one source, or in the header and the
// query) is refused: Portico would check one, and the backend may read the other. So is one with
// different keys under two of the policy's names, unless hide_credentials strips every name
// before the backend could read the other.
func (k *KeyAuth) find(r *http.Request) (key string, found bool, err error) {
	from := -1 // the name the key was found under
	take := func(i int, v string) error {
		switch {
		case !found:
			key, found, from = v, true, i
		case v != key && (i == from || !k.hide):
			return errDuplicateKey
		}
		return nil
	}
	for i, name := range k.names {
		if found && k.hide && i != from {
			break // later names are stripped unread
		}
		if k.inHeader {
			if vs := r.Header[k.headers[i]]; len(vs) > 0 {
				if len(vs) > 1 {
					return "", true, errDuplicateKey
				}
				if err := take(i, vs[0]); err != nil {
					return "", true, err
				}
			}
		}
		if k.inQuery && r.URL != nil && r.URL.RawQuery != "" {
			v, n, err := queryValue(r.URL.RawQuery, name)
			if err != nil {
				return "", true, err
			}
			if n > 1 {
				return "", true, errDuplicateKey
			}
			if n == 1 {
				if err := take(i, v); err != nil {
					return "", true, err
				}
			}
		}
	}
	return key, found, nil
}

// dropSpellings removes every header field that a backend would read as a key name but that is
// not the name itself, hidden credentials or not: find reads the exact field only, so
// X_Api_Key: other-tenant would reach a PHP, WSGI or Rack backend as the X-Api-Key nobody
// checked, beside (or instead of) the key that was. The forwarder drops such spellings of the
// fields Portico itself sets (routes.protectedSpelling); key names are this policy's to know.
func (k *KeyAuth) dropSpellings(h http.Header) {
	if len(k.spellings) == 0 {
		return
	}
	for name := range h {
		if !k.underscoreNames && strings.IndexByte(name, '_') < 0 {
			continue // the common case: a dash-only field is exactly one name
		}
		if slices.Contains(k.headers, name) {
			continue
		}
		if slices.Contains(k.spellings, reqctx.BackendSpelling(name)) {
			delete(h, name)
		}
	}
}

// strip removes every configured key name from the headers and the query string.
func (k *KeyAuth) strip(r *http.Request) {
	if k.inHeader {
		for _, h := range k.headers {
			delete(r.Header, h)
		}
	}
	if !k.inQuery || r.URL == nil || r.URL.RawQuery == "" {
		return
	}
	var b strings.Builder
	q := r.URL.RawQuery
	for q != "" {
		var pair string
		pair, q, _ = strings.Cut(q, "&")
		name, _, _ := strings.Cut(pair, "=")
		if k.isKeyName(unescape(name)) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(pair)
	}
	r.URL.RawQuery = b.String()
	// ForceQuery would leave a bare "?"; a request whose only parameter was the key has none.
	r.URL.ForceQuery = false
	r.Form = nil
}

func (k *KeyAuth) isKeyName(s string) bool {
	for _, n := range k.names {
		if n == s {
			return true
		}
	}
	return false
}

// queryValue finds name in a raw query without building url.Values (this runs on every request).
// It returns the first value and how many times the name occurs.
func queryValue(raw, name string) (string, int, error) {
	var first string
	n := 0
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		kraw, vraw, _ := strings.Cut(pair, "=")
		if unescape(kraw) != name {
			continue
		}
		n++
		if n > 1 {
			continue
		}
		v, err := url.QueryUnescape(vraw)
		if err != nil {
			return "", 1, fmt.Errorf("malformed key: %w", err)
		}
		first = v
	}
	return first, n, nil
}

// unescape decodes a query name, leaving a malformed one as is (it then matches no key name).
func unescape(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}
