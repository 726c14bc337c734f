package cache

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-gw/portico/policies"
)

func TestMissThenHit(t *testing.T) {
	storeKinds(t, func(t *testing.T, deps policies.Deps) {
		be := newBackend(t, jsonHandler(nil))
		p := newPolicy(t, Config{}, deps)
		g := newGateway(t, p, be)

		first := g.do(t, "GET", "/users/42", "X-Test-Route", "users")
		second := g.do(t, "GET", "/users/42", "X-Test-Route", "users")
		if first.cache() != "Miss" || second.cache() != "Hit" {
			t.Fatalf("X-Cache-Status = %q then %q, want Miss then Hit", first.cache(), second.cache())
		}
		if first.body != second.body || be.calls.Load() != 1 {
			t.Fatalf("hit body %q vs %q, backend calls %d", second.body, first.body, be.calls.Load())
		}
		key := second.header.Get(headerKey)
		if !regexp.MustCompile(`^` + p.name + `:users:[0-9a-f]{64}$`).MatchString(key) {
			t.Fatalf("X-Cache-Key = %q, want <policy>:users:<sha256 hex>", key)
		}
		if first.header.Get(headerKey) != key {
			t.Fatalf("miss and hit keys differ: %q %q", first.header.Get(headerKey), key)
		}
		if second.header.Get("Age") == "" || second.header.Get("Content-Type") != "application/json; charset=utf-8" {
			t.Fatalf("hit headers = %v", second.header)
		}
		reg := deps.Metrics.(*prometheus.Registry)
		if v := counterValue(t, reg, "portico_cache_requests_total", map[string]string{"policy": p.name, "status": "hit"}); v != 1 {
			t.Fatalf("hit counter = %v, want 1", v)
		}
	})
}

func TestAgeGrowsWithTheEntry(t *testing.T) {
	storeKinds(t, func(t *testing.T, deps policies.Deps) {
		be := newBackend(t, jsonHandler(nil))
		p := newPolicy(t, Config{}, deps)
		var mu sync.Mutex
		now := time.Now()
		p.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		g := newGateway(t, p, be)
		g.do(t, "GET", "/a")
		if a := g.do(t, "GET", "/a"); a.header.Get("Age") != "0" {
			t.Fatalf("Age = %q right after storing, want 0", a.header.Get("Age"))
		}
		mu.Lock()
		now = now.Add(7 * time.Second)
		mu.Unlock()
		if a := g.do(t, "GET", "/a"); a.header.Get("Age") != "7" || a.cache() != "Hit" {
			t.Fatalf("Age = %q (%s) 7s later, want 7", a.header.Get("Age"), a.cache())
		}
	})
}

func TestConditionalRequests(t *testing.T) {
	storeKinds(t, func(t *testing.T, deps policies.Deps) {
		lm := "Mon, 02 Jan 2006 15:04:05 GMT"
		be := newBackend(t, jsonHandler(func(h http.Header) {
			h.Set("ETag", `W/"v1"`)
			h.Set("Last-Modified", lm)
		}))
		p := newPolicy(t, Config{}, deps)
		g := newGateway(t, p, be)

		// The leader's own conditional is answered by the cache; the upstream must send the full
		// response so that it can be stored.
		first := g.do(t, "GET", "/doc", "If-None-Match", `"v1"`)
		if first.status != 304 || first.body != "" || first.cache() != "Miss" {
			t.Fatalf("first conditional = %d %q %s, want 304 Miss with no body", first.status, first.body, first.cache())
		}
		if got := be.last.Load().Header.Get("If-None-Match"); got != "" {
			t.Fatalf("upstream received If-None-Match %q", got)
		}
		tests := []struct {
			name   string
			hdr    []string
			status int
		}{
			{"weak etag matches strong", []string{"If-None-Match", `"v1"`}, 304},
			{"list with match", []string{"If-None-Match", `"x", W/"v1"`}, 304},
			{"star", []string{"If-None-Match", `*`}, 304},
			{"other etag", []string{"If-None-Match", `"v2"`}, 200},
			{"if-modified-since equal", []string{"If-Modified-Since", lm}, 304},
			{"if-modified-since earlier", []string{"If-Modified-Since", "Sun, 01 Jan 2006 15:04:05 GMT"}, 200},
			{"etag wins over date", []string{"If-None-Match", `"v2"`, "If-Modified-Since", lm}, 200},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				a := g.do(t, "GET", "/doc", tc.hdr...)
				if a.status != tc.status || a.cache() != "Hit" {
					t.Fatalf("got %d %s, want %d Hit", a.status, a.cache(), tc.status)
				}
				if tc.status == 304 && (a.body != "" || a.header.Get("Etag") != `W/"v1"`) {
					t.Fatalf("304 body %q etag %q", a.body, a.header.Get("Etag"))
				}
			})
		}
		if be.calls.Load() != 1 {
			t.Fatalf("backend calls = %d, want 1", be.calls.Load())
		}
	})
}

func TestKeyParts(t *testing.T) {
	storeKinds(t, func(t *testing.T, deps policies.Deps) {
		be := newBackend(t, jsonHandler(nil))
		p := newPolicy(t, Config{VaryHeaders: []string{"accept-language"}, VaryQueryParams: []string{"a", "b"}}, deps)
		g := newGateway(t, p, be)
		steps := []struct {
			desc string
			path string
			hdr  []string
			want string
		}{
			{"first en", "/q?a=1&b=2", []string{"Accept-Language", "en"}, "Miss"},
			{"fr is another entry", "/q?a=1&b=2", []string{"Accept-Language", "fr"}, "Miss"},
			{"en again", "/q?a=1&b=2", []string{"Accept-Language", "en"}, "Hit"},
			{"query order does not matter", "/q?b=2&a=1", []string{"Accept-Language", "en"}, "Hit"},
			{"params outside the allow-list are ignored", "/q?utm=x&a=1&b=2", []string{"Accept-Language", "en"}, "Hit"},
			{"an allowed param's value matters", "/q?a=1&b=3", []string{"Accept-Language", "en"}, "Miss"},
			{"another route", "/q?a=1&b=2", []string{"Accept-Language", "en", "X-Test-Route", "other"}, "Miss"},
			{"another host", "/q?a=1&b=2", []string{"Accept-Language", "en", "Host", "example.test"}, "Miss"},
		}
		for _, s := range steps {
			a := g.doHost(t, s.path, s.hdr...)
			if a.cache() != s.want {
				t.Fatalf("%s: X-Cache-Status = %s, want %s", s.desc, a.cache(), s.want)
			}
		}
	})
}

// doHost is do for GET with an optional Host header, which net/http takes from req.Host.
func (g *gateway) doHost(t testing.TB, path string, hdr ...string) answer {
	t.Helper()
	req, _ := http.NewRequest("GET", g.URL+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := g.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func TestConsumers(t *testing.T) {
	storeKinds(t, func(t *testing.T, deps policies.Deps) {
		t.Run("private by default", func(t *testing.T) {
			be := newBackend(t, jsonHandler(nil))
			g := newGateway(t, newPolicy(t, Config{}, deps), be)
			alice := g.do(t, "GET", "/me", "X-Test-Consumer", "alice")
			bob := g.do(t, "GET", "/me", "X-Test-Consumer", "bob")
			aliceUser2 := g.do(t, "GET", "/me", "X-Test-Consumer", "alice", "X-Test-Subject", "u2")
			again := g.do(t, "GET", "/me", "X-Test-Consumer", "alice")
			if alice.cache() != "Miss" || bob.cache() != "Miss" || aliceUser2.cache() != "Miss" || again.cache() != "Hit" {
				t.Fatalf("statuses %s %s %s %s, want Miss Miss Miss Hit", alice.cache(), bob.cache(), aliceUser2.cache(), again.cache())
			}
			if alice.body == bob.body || again.body != alice.body {
				t.Fatalf("bodies alice %q bob %q again %q", alice.body, bob.body, again.body)
			}
			// Credentials Portico did not turn into an identity are not in the key: never cached.
			for i := 0; i < 2; i++ {
				if a := g.do(t, "GET", "/me", "Authorization", "Bearer x"); a.cache() != "Bypass" {
					t.Fatalf("Authorization without identity: %s, want Bypass", a.cache())
				}
			}
		})
		t.Run("public shares", func(t *testing.T) {
			be := newBackend(t, jsonHandler(nil))
			g := newGateway(t, newPolicy(t, Config{Public: true}, deps), be)
			alice := g.do(t, "GET", "/catalog", "X-Test-Consumer", "alice")
			bob := g.do(t, "GET", "/catalog", "X-Test-Consumer", "bob")
			anon := g.do(t, "GET", "/catalog", "Authorization", "Bearer x")
			if alice.cache() != "Miss" || bob.cache() != "Hit" || anon.cache() != "Hit" || bob.body != alice.body {
				t.Fatalf("public: %s %s %s", alice.cache(), bob.cache(), anon.cache())
			}
		})
	})
}

func TestUpstreamCacheControl(t *testing.T) {
	storeKinds(t, func(t *testing.T, deps policies.Deps) {
		tests := []struct {
			name    string
			cfg     Config
			header  map[string]string
			status  int
			want    []string // X-Cache-Status of two requests
			backend int64
		}{
			{"no-store", Config{}, map[string]string{"Cache-Control": "no-store"}, 200, []string{"Bypass", "Bypass"}, 2},
			{"private", Config{}, map[string]string{"Cache-Control": "private, max-age=60"}, 200, []string{"Bypass", "Bypass"}, 2},
			{"no-cache", Config{}, map[string]string{"Cache-Control": "no-cache"}, 200, []string{"Bypass", "Bypass"}, 2},
			{"max-age=0", Config{}, map[string]string{"Cache-Control": "max-age=0"}, 200, []string{"Bypass", "Bypass"}, 2},
			{"s-maxage wins over max-age=0", Config{}, map[string]string{"Cache-Control": "max-age=0, s-maxage=60"}, 200, []string{"Miss", "Hit"}, 1},
			{"upstream Age uses up the lifetime", Config{}, map[string]string{"Cache-Control": "max-age=60", "Age": "60"}, 200, []string{"Bypass", "Bypass"}, 2},
			// RFC 9111 §4.2.1: invalid freshness information is stale, not the policy's ttl.
			{"negative max-age is stale", Config{}, map[string]string{"Cache-Control": "max-age=-1"}, 200, []string{"Bypass", "Bypass"}, 2},
			{"non-numeric s-maxage is stale", Config{}, map[string]string{"Cache-Control": "s-maxage=soon, max-age=60"}, 200, []string{"Bypass", "Bypass"}, 2},
			// RFC 9111 §1.2.2: an Age that overflows counts as 2^31 seconds.
			{"overflowing Age is stale", Config{}, map[string]string{"Age": "99999999999999999999"}, 200, []string{"Bypass", "Bypass"}, 2},
			{"overflowing Age beats a long max-age", Config{}, map[string]string{"Cache-Control": "max-age=2000000000", "Age": "99999999999999999999"}, 200, []string{"Bypass", "Bypass"}, 2},
			{"malformed Age is ignored", Config{}, map[string]string{"Age": "-5"}, 200, []string{"Miss", "Hit"}, 1},
			{"expired Expires", Config{}, map[string]string{"Expires": "Thu, 01 Jan 1970 00:00:00 GMT"}, 200, []string{"Bypass", "Bypass"}, 2},
			{"ignored when respect_cache_control is false", Config{RespectCacheControl: new(bool)}, map[string]string{"Cache-Control": "no-store"}, 200, []string{"Miss", "Hit"}, 1},
			{"Set-Cookie", Config{}, map[string]string{"Set-Cookie": "s=1"}, 200, []string{"Bypass", "Bypass"}, 2},
			{"Set-Cookie even without respect", Config{RespectCacheControl: new(bool)}, map[string]string{"Set-Cookie": "s=1"}, 200, []string{"Bypass", "Bypass"}, 2},
			{"Vary on a header not in the key", Config{}, map[string]string{"Vary": "Accept-Encoding"}, 200, []string{"Bypass", "Bypass"}, 2},
			{"Vary covered by vary_headers", Config{VaryHeaders: []string{"Accept-Encoding"}}, map[string]string{"Vary": "accept-encoding"}, 200, []string{"Miss", "Hit"}, 1},
			{"Vary star", Config{VaryHeaders: []string{"Accept-Encoding"}}, map[string]string{"Vary": "*"}, 200, []string{"Bypass", "Bypass"}, 2},
			{"uncacheable status", Config{}, nil, 500, []string{"Bypass", "Bypass"}, 2},
			{"404 is cacheable", Config{}, nil, 404, []string{"Miss", "Hit"}, 1},
			{"uncacheable content type", Config{}, map[string]string{"Content-Type": "text/html"}, 200, []string{"Bypass", "Bypass"}, 2},
			{"content type wildcard", Config{ContentTypes: []string{"text/*"}}, map[string]string{"Content-Type": "text/html; charset=utf-8"}, 200, []string{"Miss", "Hit"}, 1},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					for k, v := range tc.header {
						w.Header().Set(k, v)
					}
					w.WriteHeader(tc.status)
					io.WriteString(w, `{}`)
				})
				g := newGateway(t, newPolicy(t, tc.cfg, deps), be)
				for i, want := range tc.want {
					a := g.do(t, "GET", "/x")
					if a.cache() != want || a.status != tc.status {
						t.Fatalf("request %d: %d %s, want %d %s", i, a.status, a.cache(), tc.status, want)
					}
					if tc.header["Set-Cookie"] != "" && a.header.Get("Set-Cookie") == "" {
						t.Fatalf("the client lost its Set-Cookie")
					}
				}
				if be.calls.Load() != tc.backend {
					t.Fatalf("backend calls = %d, want %d", be.calls.Load(), tc.backend)
				}
			})
		}
	})
}

// TestSMaxAgeExpires waits out a 1s s-maxage (with max-age far longer): the entry must be gone.
// It asserts only "gone after at least the TTL", which a slow machine cannot break.
func TestSMaxAgeExpires(t *testing.T) {
	storeKinds(t, func(t *testing.T, deps policies.Deps) {
		be := newBackend(t, jsonHandler(func(h http.Header) { h.Set("Cache-Control", "max-age=600, s-maxage=1") }))
		g := newGateway(t, newPolicy(t, Config{}, deps), be)
		g.do(t, "GET", "/s")
		if a := g.do(t, "GET", "/s"); a.cache() != "Hit" {
			t.Fatalf("second request %s, want Hit", a.cache())
		}
		time.Sleep(1100 * time.Millisecond)
		if a := g.do(t, "GET", "/s"); a.cache() != "Miss" {
			t.Fatalf("after s-maxage: %s, want Miss", a.cache())
		}
	})
}

func TestLifetime(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		hdr  http.Header
		want time.Duration
	}{
		{"default", http.Header{}, time.Minute},
		{"max-age", http.Header{"Cache-Control": {"public, max-age=30"}}, 30 * time.Second},
		{"s-maxage wins", http.Header{"Cache-Control": {"s-maxage=5, max-age=30"}}, 5 * time.Second},
		{"quoted", http.Header{"Cache-Control": {`max-age="9"`}}, 9 * time.Second},
		{"expires minus date", http.Header{"Date": {"Wed, 01 Jan 2025 00:00:00 GMT"}, "Expires": {"Wed, 01 Jan 2025 00:00:20 GMT"}}, 20 * time.Second},
		{"invalid expires is expired", http.Header{"Expires": {"0"}}, 0},
		{"max-age beats expires", http.Header{"Cache-Control": {"max-age=3"}, "Expires": {"0"}}, 3 * time.Second},
		{"negative max-age is stale", http.Header{"Cache-Control": {"max-age=-1"}}, 0},
		{"signed max-age is stale", http.Header{"Cache-Control": {"max-age=+30"}}, 0},
		{"empty max-age is stale", http.Header{"Cache-Control": {"max-age="}}, 0},
		{"invalid max-age does not fall back to expires", http.Header{"Cache-Control": {"max-age=x"}, "Date": {"Wed, 01 Jan 2025 00:00:00 GMT"}, "Expires": {"Wed, 01 Jan 2025 00:00:20 GMT"}}, 0},
		{"invalid s-maxage is stale", http.Header{"Cache-Control": {"s-maxage=-1, max-age=30"}}, 0},
		{"valid s-maxage outranks an invalid max-age", http.Header{"Cache-Control": {"s-maxage=5, max-age=-1"}}, 5 * time.Second},
		{"overflowing max-age saturates", http.Header{"Cache-Control": {"max-age=99999999999999999999"}}, maxDeltaSeconds * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseResponseControl(tc.hdr).lifetime(tc.hdr, now, time.Minute); got != tc.want {
				t.Fatalf("lifetime = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestClientCacheControl(t *testing.T) {
	storeKinds(t, func(t *testing.T, deps policies.Deps) {
		be := newBackend(t, jsonHandler(nil))
		g := newGateway(t, newPolicy(t, Config{}, deps), be)

		if a := g.do(t, "GET", "/c", "Cache-Control", "only-if-cached"); a.status != 504 || a.cache() != "Miss" {
			t.Fatalf("only-if-cached on a miss: %d %s, want 504 Miss", a.status, a.cache())
		}
		if be.calls.Load() != 0 {
			t.Fatal("only-if-cached reached the backend")
		}
		first := g.do(t, "GET", "/c")
		if a := g.do(t, "GET", "/c", "Cache-Control", "only-if-cached"); a.status != 200 || a.cache() != "Hit" {
			t.Fatalf("only-if-cached on a hit: %d %s", a.status, a.cache())
		}
		if a := g.do(t, "GET", "/c", "Cache-Control", "no-store"); a.cache() != "Bypass" {
			t.Fatalf("client no-store: %s, want Bypass", a.cache())
		}
		refreshed := g.do(t, "GET", "/c", "Cache-Control", "no-cache")
		if refreshed.cache() != "Refresh" || refreshed.body == first.body {
			t.Fatalf("client no-cache: %s body %q, want Refresh with a new body", refreshed.cache(), refreshed.body)
		}
		if a := g.do(t, "GET", "/c"); a.cache() != "Hit" || a.body != refreshed.body {
			t.Fatalf("after refresh: %s %q, want Hit with the refreshed body %q", a.cache(), a.body, refreshed.body)
		}
		if a := g.do(t, "GET", "/c", "Pragma", "no-cache"); a.cache() != "Refresh" {
			t.Fatalf("Pragma no-cache: %s, want Refresh", a.cache())
		}
		if a := g.do(t, "GET", "/c", "Cache-Control", "max-age=0"); a.cache() != "Refresh" {
			t.Fatalf("client max-age=0 on an entry: %s, want Refresh", a.cache())
		}
		if be.calls.Load() != 5 {
			t.Fatalf("backend calls = %d, want 5", be.calls.Load())
		}
	})
}

func TestRequestsThatBypass(t *testing.T) {
	storeKinds(t, func(t *testing.T, deps policies.Deps) {
		be := newBackend(t, jsonHandler(nil))
		g := newGateway(t, newPolicy(t, Config{}, deps), be)
		for _, tc := range []struct {
			name   string
			method string
			hdr    []string
		}{
			{"POST", "POST", nil},
			{"DELETE", "DELETE", nil},
			{"Range", "GET", []string{"Range", "bytes=0-1"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for i := 0; i < 2; i++ {
					a := g.do(t, tc.method, "/b", tc.hdr...)
					if a.cache() != "Bypass" || a.header.Get(headerKey) == "" {
						t.Fatalf("%s: %s key %q, want Bypass with a key", tc.name, a.cache(), a.header.Get(headerKey))
					}
				}
			})
		}
	})
}

func TestOversizeIsDeliveredNotStored(t *testing.T) {
	storeKinds(t, func(t *testing.T, deps policies.Deps) {
		big := strings.Repeat("x", 10_000)
		for _, tc := range []struct {
			name          string
			contentLength bool
			want          string
		}{
			{"streamed", false, "Miss"},        // size learnt too late to change the header
			{"content-length", true, "Bypass"}, // known at once
		} {
			t.Run(tc.name, func(t *testing.T) {
				be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "text/plain")
					if tc.contentLength {
						w.Header().Set("Content-Length", itoa(int64(len(big))))
					} else {
						w.(http.Flusher).Flush() // forces chunked encoding
					}
					for i := 0; i < 10; i++ {
						io.WriteString(w, big[:1000])
					}
				})
				g := newGateway(t, newPolicy(t, Config{MaxBodyBytes: 1024}, deps), be)
				for i := 0; i < 2; i++ {
					a := g.do(t, "GET", "/big")
					if a.body != big || a.cache() != tc.want {
						t.Fatalf("request %d: %d bytes, %s; want %d bytes, %s", i, len(a.body), a.cache(), len(big), tc.want)
					}
				}
				if be.calls.Load() != 2 {
					t.Fatalf("backend calls = %d, want 2 (nothing stored)", be.calls.Load())
				}
			})
		}
	})
}

func TestHeadIsServedFromGet(t *testing.T) {
	storeKinds(t, func(t *testing.T, deps policies.Deps) {
		t.Run("GET first", func(t *testing.T) {
			be := newBackend(t, jsonHandler(nil))
			g := newGateway(t, newPolicy(t, Config{}, deps), be)
			get := g.do(t, "GET", "/h")
			head := g.do(t, "HEAD", "/h")
			if head.cache() != "Hit" || head.body != "" || head.header.Get("Content-Length") != itoa(int64(len(get.body))) {
				t.Fatalf("HEAD after GET: %s body %q length %q", head.cache(), head.body, head.header.Get("Content-Length"))
			}
		})
		t.Run("HEAD first fetches GET", func(t *testing.T) {
			be := newBackend(t, jsonHandler(nil))
			g := newGateway(t, newPolicy(t, Config{}, deps), be)
			head := g.do(t, "HEAD", "/h")
			if head.cache() != "Miss" || head.body != "" || be.last.Load().Method != "GET" {
				t.Fatalf("HEAD miss: %s body %q upstream method %s", head.cache(), head.body, be.last.Load().Method)
			}
			get := g.do(t, "GET", "/h")
			if get.cache() != "Hit" || !strings.Contains(get.body, `"path":"/h"`) {
				t.Fatalf("GET after HEAD: %s %q", get.cache(), get.body)
			}
		})
	})
}

func TestCoalescing(t *testing.T) {
	storeKinds(t, func(t *testing.T, deps policies.Deps) {
		release := make(chan struct{})
		be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
			<-release
			jsonHandler(nil)(w, r)
		})
		g := newGateway(t, newPolicy(t, Config{}, deps), be)
		g.Client().Transport.(*http.Transport).MaxIdleConnsPerHost = 100

		const n = 100
		type result struct {
			status int
			body   string
			cache  string
			err    error
		}
		results := make(chan result, n)
		var started sync.WaitGroup
		started.Add(n)
		for i := 0; i < n; i++ {
			go func() {
				started.Done()
				resp, err := g.Client().Get(g.URL + "/slow")
				if err != nil {
					results <- result{err: err}
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				results <- result{resp.StatusCode, string(b), resp.Header.Get(headerStatus), err}
			}()
		}
		started.Wait()
		// Let the requests pile up behind the first; whether some arrive after it finished does
		// not matter, since they then hit the stored entry.
		time.Sleep(100 * time.Millisecond)
		close(release)
		var bodies = map[string]int{}
		for i := 0; i < n; i++ {
			r := <-results
			if r.err != nil || r.status != 200 {
				t.Fatalf("request failed: %v %d", r.err, r.status)
			}
			if r.cache != "Miss" && r.cache != "Hit" {
				t.Fatalf("X-Cache-Status %q", r.cache)
			}
			bodies[r.body]++
		}
		if got := be.calls.Load(); got != 1 {
			t.Fatalf("backend calls = %d for %d concurrent identical requests, want 1", got, n)
		}
		if len(bodies) != 1 {
			t.Fatalf("clients saw %d different bodies", len(bodies))
		}
	})
}

// TestCoalescedPersonalAnswers: when the shared call's answer may not be shared (Set-Cookie),
// each waiting client calls the upstream itself instead of receiving someone else's answer.
func TestCoalescedPersonalAnswers(t *testing.T) {
	release := make(chan struct{})
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Leader") != "" {
			<-release
		}
		w.Header().Set("Set-Cookie", "for="+r.Header.Get("X-Who"))
		jsonHandler(nil)(w, r)
	})
	p := newPolicy(t, Config{}, policies.Deps{Logger: quietLogger})
	h := p.Wrap(proxyTo(t, be))

	leaderDone := make(chan *httptest.ResponseRecorder)
	go func() {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/p", nil)
		req.Header.Set("X-Leader", "1")
		req.Header.Set("X-Who", "leader")
		h.ServeHTTP(rec, req)
		leaderDone <- rec
	}()
	waitFor(t, func() bool { return be.calls.Load() == 1 })
	followerDone := make(chan *httptest.ResponseRecorder)
	go func() {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/p", nil)
		req.Header.Set("X-Who", "follower")
		h.ServeHTTP(rec, req)
		followerDone <- rec
	}()
	// The follower is now waiting on the leader's call (it cannot have reached the backend:
	// its key is in flight). Release the leader.
	time.Sleep(20 * time.Millisecond)
	close(release)
	lead, follow := <-leaderDone, <-followerDone
	if lead.Header().Get("Set-Cookie") != "for=leader" || follow.Header().Get("Set-Cookie") != "for=follower" {
		t.Fatalf("cookies: leader %q follower %q", lead.Header().Get("Set-Cookie"), follow.Header().Get("Set-Cookie"))
	}
	if follow.Header().Get(headerStatus) != "Bypass" || be.calls.Load() != 2 {
		t.Fatalf("follower %s, backend calls %d", follow.Header().Get(headerStatus), be.calls.Load())
	}
}

// TestFollowerLeavesEarly: a waiting client whose context ends returns at once, while the
// leader's call goes on.
func TestFollowerLeavesEarly(t *testing.T) {
	release := make(chan struct{})
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		jsonHandler(nil)(w, r)
	})
	p := newPolicy(t, Config{}, policies.Deps{Logger: quietLogger})
	h := p.Wrap(proxyTo(t, be))
	leaderDone := make(chan *httptest.ResponseRecorder)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/f", nil))
		leaderDone <- rec
	}()
	waitFor(t, func() bool { return be.calls.Load() == 1 })

	ctx, cancel := context.WithCancel(context.Background())
	followerDone := make(chan *httptest.ResponseRecorder)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/f", nil).WithContext(ctx))
		followerDone <- rec
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	rec := <-followerDone // must return while the leader is still blocked
	if rec.Code != 499 {
		t.Fatalf("follower status %d, want 499 (client closed request)", rec.Code)
	}
	close(release)
	if lead := <-leaderDone; lead.Code != 200 || lead.Header().Get(headerStatus) != "Miss" {
		t.Fatalf("leader %d %s", lead.Code, lead.Header().Get(headerStatus))
	}
}

// TestPanicReachesTheLeader: a panicking handler must not crash the process from
// singleflight's goroutine; the panic is re-raised where net/http recovers it.
func TestPanicReachesTheLeader(t *testing.T) {
	p := newPolicy(t, Config{}, policies.Deps{Logger: quietLogger})
	h := p.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Fatalf("recovered %v, want http.ErrAbortHandler", v)
		}
	}()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/panic", nil))
	t.Fatal("ServeHTTP returned without panicking")
}

func TestPurge(t *testing.T) {
	storeKinds(t, func(t *testing.T, deps policies.Deps) {
		be := newBackend(t, jsonHandler(nil))
		p := newPolicy(t, Config{}, deps)
		g := newGateway(t, p, be)
		ctx := context.Background()
		if caches := deps.Purger.Caches(); len(caches) != 1 || caches[0] != policies.Purgeable(p) {
			t.Fatalf("policy not registered with the purger: %v", caches)
		}
		k1 := g.do(t, "GET", "/1", "X-Test-Route", "r1").header.Get(headerKey)
		g.do(t, "GET", "/2", "X-Test-Route", "r1")
		g.do(t, "GET", "/3", "X-Test-Route", "r2")

		if ok, err := p.Purge(ctx, k1); !ok || err != nil {
			t.Fatalf("Purge(%s) = %v, %v", k1, ok, err)
		}
		if ok, _ := p.Purge(ctx, k1); ok {
			t.Fatal("second Purge reported an entry")
		}
		if ok, _ := p.Purge(ctx, "other-policy:r1:abc"); ok {
			t.Fatal("purged another policy's key")
		}
		if a := g.do(t, "GET", "/1", "X-Test-Route", "r1"); a.cache() != "Miss" {
			t.Fatalf("after Purge: %s", a.cache())
		}
		if n, err := p.PurgePrefix(ctx, keyPrefix(p.name, "r1")); n != 2 || err != nil {
			t.Fatalf("PurgePrefix(r1) = %d, %v; want 2", n, err)
		}
		if a := g.do(t, "GET", "/2", "X-Test-Route", "r1"); a.cache() != "Miss" {
			t.Fatalf("r1 after PurgePrefix: %s", a.cache())
		}
		if a := g.do(t, "GET", "/3", "X-Test-Route", "r2"); a.cache() != "Hit" {
			t.Fatalf("r2 after purging r1: %s", a.cache())
		}
		if n, _ := p.PurgePrefix(ctx, "zzz-not-this-policy:"); n != 0 {
			t.Fatalf("foreign prefix purged %d", n)
		}
	})
}

func TestRedisDownBypasses(t *testing.T) {
	deps := policies.Deps{Logger: quietLogger, Metrics: prometheus.NewRegistry(),
		Redis: deadRedis(t)}
	be := newBackend(t, jsonHandler(nil))
	pol, err := New(uniqueName(t), Config{RedisTimeout: 200 * 1e6}, deps)
	if err != nil {
		t.Fatal(err)
	}
	p := pol.(*Policy)
	g := newGateway(t, p, be)
	for i := 0; i < 3; i++ {
		if a := g.do(t, "GET", "/r"); a.status != 200 || a.cache() != "Bypass" {
			t.Fatalf("with Redis down: %d %s, want 200 Bypass", a.status, a.cache())
		}
	}
	got := counterValue(t, deps.Metrics.(*prometheus.Registry), "portico_cache_store_errors_total", map[string]string{"policy": p.name})
	if got != 3 || be.calls.Load() != 3 {
		t.Fatalf("store errors %v, backend calls %d; want 3 and 3", got, be.calls.Load())
	}
}

func TestNilInfoAndBadConfig(t *testing.T) {
	p := newPolicy(t, Config{}, policies.Deps{})
	be := newBackend(t, jsonHandler(nil))
	h := p.Wrap(proxyTo(t, be))
	for i, want := range []string{"Miss", "Hit"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/n?x=%zz&&y", nil))
		if rec.Header().Get(headerStatus) != want {
			t.Fatalf("request %d without reqctx.Info: %s, want %s", i, rec.Header().Get(headerStatus), want)
		}
	}
	if _, err := New("", Config{}, policies.Deps{}); err == nil {
		t.Fatal("empty name accepted")
	}
	if _, err := New("x", Config{Methods: []string{"POST"}}, policies.Deps{}); err == nil || !strings.Contains(err.Error(), "POST") {
		t.Fatalf("bad config: %v", err)
	}
}

func TestPolicyPhase(t *testing.T) {
	p := newPolicy(t, Config{}, policies.Deps{})
	if p.Phase() != policies.PhaseCache {
		t.Fatalf("phase %v", p.Phase())
	}
}

// TestOuterHeadersAreNotStored: headers an outer policy set on the client's writer (a rate-limit
// counter) must not be replayed from the entry to other clients.
func TestOuterHeadersAreNotStored(t *testing.T) {
	be := newBackend(t, jsonHandler(nil))
	p := newPolicy(t, Config{}, policies.Deps{})
	inner := p.Wrap(proxyTo(t, be))
	rec := httptest.NewRecorder()
	rec.Header().Set("Ratelimit-Remaining", "41")
	inner.ServeHTTP(rec, httptest.NewRequest("GET", "/o", nil))
	rec2 := httptest.NewRecorder()
	inner.ServeHTTP(rec2, httptest.NewRequest("GET", "/o", nil))
	if rec2.Header().Get(headerStatus) != "Hit" || rec2.Header().Get("Ratelimit-Remaining") != "" {
		t.Fatalf("hit %s carries %q", rec2.Header().Get(headerStatus), rec2.Header().Get("Ratelimit-Remaining"))
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestDeltaSeconds(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"0", 0, true},
		{"60", 60, true},
		{"2147483648", maxDeltaSeconds, true},
		{"2147483649", maxDeltaSeconds, true},
		{"99999999999999999999", maxDeltaSeconds, true},
		{"", 0, false},
		{"-1", 0, false},
		{"+5", 0, false},
		{"1.5", 0, false},
		{" 5", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := seconds(tc.in)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("seconds(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestQueryDiff(t *testing.T) {
	for _, tc := range []struct {
		before, after  string
		added, removed []string
	}{
		{"", "lang=de", []string{"lang=de"}, nil},
		{"a=1&b=2", "b=2&a=1", nil, nil},
		{"a=1&token=x", "a=1", nil, []string{"token=x"}},
		{"a=1&a=1", "a=1", nil, []string{"a=1"}},
		{"q=x", "q=y&z=1", []string{"q=y", "z=1"}, []string{"q=x"}},
	} {
		added, removed := queryDiff(tc.before, tc.after)
		if !slices.Equal(added, tc.added) || !slices.Equal(removed, tc.removed) {
			t.Errorf("%q → %q: added %q removed %q, want %q %q", tc.before, tc.after, added, removed, tc.added, tc.removed)
		}
	}
}
