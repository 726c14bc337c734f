package cache

import (
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/portico-gw/portico/internal/confval"
)

// Defaults, modelled on Kong's proxy-cache so that a user moving from Kong sees the same answers.
const (
	DefaultTTL          = 5 * time.Minute
	DefaultMaxBodyBytes = 1 << 20
	DefaultMaxCost      = 64 << 20
	DefaultMaxKeys      = 65536
	DefaultRedisTimeout = 250 * time.Millisecond
)

var (
	defaultMethods      = []string{http.MethodGet, http.MethodHead}
	defaultStatus       = []int{http.StatusOK, http.StatusMovedPermanently, http.StatusNotFound}
	defaultContentTypes = []string{"text/plain", "application/json"}
)

// Config is the response cache's settings, written under the type key `cache`:
//
//	policies:
//	  cache-5m: {cache: {ttl: 5m, vary_headers: [Accept-Language]}}
//
// Every field's zero value means its documented default.
type Config struct {
	// TTL is how long a response stays fresh when the upstream does not say (default 5m when
	// unset). Upstream Cache-Control max-age or s-maxage (s-maxage wins), or Expires, override it
	// unless respect_cache_control is false. A pointer, so that an explicit 0 is told from unset:
	// "ttl: 0s" reads as "do not cache" (a lifetime ≤ 0 is Bypass, as in Kong), which a cache
	// policy cannot mean, so it is refused rather than read as the default.
	TTL *confval.Duration `yaml:"ttl"`
	// Methods are the cacheable request methods (default [GET, HEAD]). Only GET and HEAD are
	// accepted: a request body is not part of the key, so caching POST would serve one body's
	// answer to another. GET is required: a HEAD is answered from the GET entry, and a HEAD miss
	// fetches GET upstream so the entry serves both ([GET] alone bypasses HEAD).
	Methods []string `yaml:"methods"`
	// Status are the cacheable response statuses (default [200, 301, 404]).
	Status []int `yaml:"status"`
	// ContentTypes are the cacheable response media types, compared without parameters
	// (default [text/plain, application/json]); "type/*" and "*/*" are wildcards.
	ContentTypes []string `yaml:"content_types"`
	// VaryHeaders are request headers whose values are part of the key (e.g. Accept-Language).
	// An upstream Vary naming a header not listed here makes the response uncacheable, since the
	// key could not tell the variants apart.
	VaryHeaders []string `yaml:"vary_headers"`
	// VaryQueryParams is an allow-list of query parameters in the key; empty means all of them.
	// Parameters are sorted by name (repeated values keep their order) so that ?a=1&b=2 and
	// ?b=2&a=1 share an entry.
	VaryQueryParams []string `yaml:"vary_query_params"`
	// Public shares entries across consumers. By default (false) the authenticated consumer (name,
	// subject and groups, exactly what Portico forwards upstream) is part of the key, and a
	// request that carries Authorization without a Portico identity is not cached at all.
	Public bool `yaml:"public"`
	// MaxBodyBytes is the largest body stored (default 1MiB); larger responses are streamed to
	// the client whole and not stored.
	MaxBodyBytes confval.ByteSize `yaml:"max_body_bytes"`
	// Memory sizes the in-memory store, used when store.redis is not configured.
	Memory MemoryConfig `yaml:"memory"`
	// RespectCacheControl honours Cache-Control from the client (no-cache, no-store, max-age,
	// only-if-cached) and from the upstream (no-store, private, no-cache, max-age, s-maxage)
	// and Expires (default true). False caches every matching response for TTL.
	RespectCacheControl *bool `yaml:"respect_cache_control"`
	// RedisTimeout bounds each Redis operation (default 250ms); a slower Redis counts as failed
	// and the request bypasses the cache.
	RedisTimeout confval.Duration `yaml:"redis_timeout"`
}

// MemoryConfig sizes the in-memory (ristretto) store.
type MemoryConfig struct {
	// MaxCost is the store's capacity in bytes of cached responses (default 64MiB).
	MaxCost confval.ByteSize `yaml:"max_cost"`
	// MaxKeys caps how many entries the store holds (default 65536). Ristretto cannot list its
	// keys, and purge by prefix needs the list, so Portico keeps an index of this many keys;
	// storing one more evicts the oldest.
	MaxKeys int `yaml:"max_keys"`
}

// Validate reports every problem in c under path (e.g. "policies.cache-5m.cache").
func (c *Config) Validate(path string, p *confval.Problems) {
	if c.TTL != nil && *c.TTL <= 0 {
		p.Addf(confval.Join(path, "ttl"), "must be positive; remove the policy to disable caching")
	}
	hasGet := false
	for i, m := range c.Methods {
		switch m {
		case http.MethodGet:
			hasGet = true
		case http.MethodHead:
		default:
			p.Addf(confval.Index(confval.Join(path, "methods"), i),
				"%q is not cacheable: only GET and HEAD (the request body is not part of the key)", m)
		}
	}
	if len(c.Methods) > 0 && !hasGet {
		p.Addf(confval.Join(path, "methods"), "must include GET: a HEAD is answered from the GET entry")
	}
	for i, s := range c.Status {
		if s < 100 || s > 599 {
			p.Addf(confval.Index(confval.Join(path, "status"), i), "%d is not an HTTP status (100-599)", s)
		}
	}
	for i, ct := range c.ContentTypes {
		if _, err := parseContentType(ct); err != nil {
			p.Addf(confval.Index(confval.Join(path, "content_types"), i), "%v", err)
		}
	}
	for i, h := range c.VaryHeaders {
		if !confval.IsToken(h) {
			p.Addf(confval.Index(confval.Join(path, "vary_headers"), i), "%q is not a valid header name", h)
		}
	}
	for i, q := range c.VaryQueryParams {
		if q == "" {
			p.Addf(confval.Index(confval.Join(path, "vary_query_params"), i), "must not be empty")
		}
	}
	if c.MaxBodyBytes < 0 {
		p.Addf(confval.Join(path, "max_body_bytes"), "must not be negative")
	}
	if c.Memory.MaxCost < 0 {
		p.Addf(confval.Join(path, "memory.max_cost"), "must not be negative")
	}
	if c.Memory.MaxKeys < 0 {
		p.Addf(confval.Join(path, "memory.max_keys"), "must not be negative")
	}
	if c.RedisTimeout < 0 {
		p.Addf(confval.Join(path, "redis_timeout"), "must not be negative")
	}
}

// parseContentType normalises a configured media type: lowercased, parameters dropped.
func parseContentType(s string) (string, error) {
	if s == "*/*" || s == "*" {
		return "*/*", nil
	}
	mt, _, err := mime.ParseMediaType(s)
	if err != nil || !strings.Contains(mt, "/") {
		return "", fmt.Errorf("%q is not a media type (e.g. application/json, text/*)", s)
	}
	return mt, nil
}
