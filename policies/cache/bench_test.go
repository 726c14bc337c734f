package cache

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/policies"
	"github.com/portico-gw/portico/policies/transform"
)

// discardWriter is a ResponseWriter that keeps nothing, so a benchmark measures the cache.
type discardWriter struct {
	h      http.Header
	status int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(code int)        { d.status = code }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

func benchHit(b *testing.B, deps policies.Deps) {
	body := []byte(`{"id":"u42","name":"Ada","orders":[1,2,3]}`)
	calls := 0
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", `"v1"`)
		w.Write(body)
	})
	p := newPolicy(b, Config{VaryHeaders: []string{"Accept-Language"}}, deps)
	h := p.Wrap(upstream)
	req := httptest.NewRequest("GET", "http://api.example.test/users/u42?b=2&a=1", nil)
	req.Header.Set("Accept-Language", "en")
	info := &reqctx.Info{ID: "r", Route: "users", Identity: &reqctx.Identity{Consumer: "web-app"}}
	req = req.WithContext(reqctx.With(req.Context(), info))
	w := &discardWriter{h: http.Header{}}
	h.ServeHTTP(w, req) // miss: stores
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
	b.StopTimer()
	if calls != 1 || w.h.Get(headerStatus) != "Hit" {
		b.Fatalf("upstream calls %d, last status %q", calls, w.h.Get(headerStatus))
	}
}

// BenchmarkCacheHitMemory is a hit served from the in-memory store through ServeHTTP.
func BenchmarkCacheHitMemory(b *testing.B) { benchHit(b, policies.Deps{}) }

// BenchmarkCacheHitRedis is a hit served from the real Redis at 127.0.0.1:6379.
func BenchmarkCacheHitRedis(b *testing.B) { benchHit(b, policies.Deps{Redis: realRedis(b)}) }

// BenchmarkKey is the key computation alone.
func BenchmarkKey(b *testing.B) {
	p := newPolicy(b, Config{VaryHeaders: []string{"Accept-Language"}}, policies.Deps{})
	req := httptest.NewRequest("GET", "http://api.example.test/users/u42?z=9&b=2&a=1", nil)
	req.Header.Set("Accept-Language", "en")
	info := &reqctx.Info{Route: "users", Identity: &reqctx.Identity{Consumer: "web-app"}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = p.key(req, info, "GET", nil)
	}
}

// BenchmarkKeyWithTransform is the key of a cache with a request transform inside it, whose
// edits the key replays: a static header, and a query value from a request header.
func BenchmarkKeyWithTransform(b *testing.B) {
	for _, tc := range []struct {
		name string
		cfg  transform.RequestConfig
	}{
		{"static header", transform.RequestConfig{Headers: transform.Operations{Add: map[string]string{"X-Tier": "gold"}}}},
		{"query from header", transform.RequestConfig{Query: transform.Operations{Add: map[string]string{"lang": "$(header.Accept-Language)"}}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			p := newPolicy(b, Config{}, policies.Deps{})
			t, err := transform.NewRequest("t", tc.cfg, policies.Deps{})
			if err != nil {
				b.Fatal(err)
			}
			h := p.WrapKeyed(http.NotFoundHandler(), []policies.KeyVariant{t.(policies.KeyVariant)}).(*handler)
			req := httptest.NewRequest("GET", "http://api.example.test/users/u42?z=9&b=2&a=1", nil)
			for i := range 10 {
				req.Header.Set("X-Header-"+string(rune('a'+i)), "v")
			}
			req.Header.Set("Accept-Language", "en")
			info := &reqctx.Info{Route: "users"}
			b.ReportAllocs()
			for b.Loop() {
				_ = p.key(req, info, "GET", h.edits)
			}
		})
	}
}
