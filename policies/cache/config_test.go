package cache

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/policies"
)

func TestConfigValidate(t *testing.T) {
	yes := true
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"zero value is valid", Config{}, nil},
		{"full", Config{TTL: ttl(time.Minute), Methods: []string{"GET", "HEAD"}, Status: []int{200},
			ContentTypes: []string{"application/json; charset=utf-8", "text/*", "*/*"}, VaryHeaders: []string{"Accept-Language"},
			VaryQueryParams: []string{"page"}, Public: true, MaxBodyBytes: 10, Memory: MemoryConfig{MaxCost: 1 << 20, MaxKeys: 10},
			RespectCacheControl: &yes, RedisTimeout: confval.Duration(time.Second)}, nil},
		{"zero ttl", Config{TTL: ttl(0)}, []string{"p.ttl: must be positive; remove the policy to disable caching"}},
		{"everything wrong", Config{TTL: ttl(-1), Methods: []string{"POST", "HEAD"}, Status: []int{99, 600},
			ContentTypes: []string{"json", ""}, VaryHeaders: []string{"Bad Header", ""}, VaryQueryParams: []string{""},
			MaxBodyBytes: -1, Memory: MemoryConfig{MaxCost: -1, MaxKeys: -1}, RedisTimeout: -1},
			[]string{
				"p.ttl: must be positive; remove the policy to disable caching",
				`p.methods[0]: "POST" is not cacheable: only GET and HEAD (the request body is not part of the key)`,
				"p.methods: must include GET: a HEAD is answered from the GET entry",
				"p.status[0]: 99 is not an HTTP status (100-599)",
				"p.status[1]: 600 is not an HTTP status (100-599)",
				`p.content_types[0]: "json" is not a media type (e.g. application/json, text/*)`,
				`p.content_types[1]: "" is not a media type (e.g. application/json, text/*)`,
				`p.vary_headers[0]: "Bad Header" is not a valid header name`,
				`p.vary_headers[1]: "" is not a valid header name`,
				"p.vary_query_params[0]: must not be empty",
				"p.max_body_bytes: must not be negative",
				"p.memory.max_cost: must not be negative",
				"p.memory.max_keys: must not be negative",
				"p.redis_timeout: must not be negative",
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p confval.Problems
			tc.cfg.Validate("p", &p)
			var got []string
			for _, pr := range p {
				got = append(got, pr.Path+": "+pr.Message)
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func ttl(d time.Duration) *confval.Duration {
	v := confval.Duration(d)
	return &v
}

// TestTTLAsWritten: an omitted ttl is the default, while "ttl: 0s" (or negative) is refused, not
// read as the default: README lists a lifetime ≤ 0 as Bypass, and a policy that may not store
// anything is better removed.
func TestTTLAsWritten(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantTTL time.Duration
		wantErr string
	}{
		{"omitted", "{}", DefaultTTL, ""},
		{"null", "{ttl: null}", DefaultTTL, ""},
		{"written", "{ttl: 90s}", 90 * time.Second, ""},
		{"zero", "{ttl: 0s}", 0, "ttl: must be positive; remove the policy to disable caching"},
		{"bare zero", "{ttl: 0}", 0, "ttl: must be positive; remove the policy to disable caching"},
		{"negative", "{ttl: -1m}", 0, "ttl: must be positive; remove the policy to disable caching"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			if err := yaml.UnmarshalWithOptions([]byte(tc.yaml), &c, yaml.DisallowUnknownField()); err != nil {
				t.Fatal(err)
			}
			pol, err := New(uniqueName(t), c, policies.Deps{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New: %v, want an error saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := pol.(*Policy).ttl; got != tc.wantTTL {
				t.Fatalf("ttl = %v, want %v", got, tc.wantTTL)
			}
		})
	}
}

func TestEntryEncoding(t *testing.T) {
	e := newEntry(404, http.Header{"Content-Type": {"text/plain"}, "X-Multi": {"a", "b"}}, []byte("not here"),
		time.Unix(1700000000, 123))
	got, err := decodeEntry(e.encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.status != 404 || string(got.body) != "not here" || !got.stored.Equal(e.stored) ||
		strings.Join(got.header["X-Multi"], ",") != "a,b" || got.contentLength[0] != "8" {
		t.Fatalf("round trip: %+v", got)
	}
	good := e.encode()
	// Every truncation and a few corruptions must be rejected or decoded without panicking.
	for i := 0; i < len(good); i++ {
		_, _ = decodeEntry(good[:i])
	}
	for _, bad := range [][]byte{nil, {2}, {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {1, 200, 1, 0, 0xff}} {
		if _, err := decodeEntry(bad); err == nil {
			t.Fatalf("decoded garbage %v", bad)
		}
	}
}

func TestStorableHeader(t *testing.T) {
	h := storableHeader(http.Header{
		"Connection": {"close, X-Hop"}, "X-Hop": {"1"}, "Keep-Alive": {"x"}, "Transfer-Encoding": {"chunked"},
		"Age": {"3"}, "Content-Length": {"9"}, "X-Cache-Status": {"Miss"}, "Etag": {`"e"`}, "X-Keep": {"a", "b"},
	})
	if len(h) != 2 || h.Get("Etag") == "" || len(h["X-Keep"]) != cap(h["X-Keep"]) {
		t.Fatalf("stored headers %v", h)
	}
}

// TestMemoryKeyIndexIsBounded: beyond memory.max_keys the oldest entry goes, from the index and
// the store alike, so purge by prefix never misses a stored entry.
func TestMemoryKeyIndexIsBounded(t *testing.T) {
	s, err := acquireMemStore(uniqueName(t), 1<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer s.release()
	ctx := context.Background()
	for _, k := range []string{"p:r:1", "p:r:2", "p:r:3", "p:r:4", "p:r:5"} {
		if err := s.set(ctx, k, newEntry(200, nil, []byte(k), time.Now()), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	for k, want := range map[string]bool{"p:r:1": false, "p:r:2": false, "p:r:3": true, "p:r:5": true} {
		e, _ := s.get(ctx, k)
		if (e != nil) != want {
			t.Fatalf("%s present = %v, want %v", k, e != nil, want)
		}
	}
	if n, _ := s.delPrefix(ctx, "p:r:"); n != 3 {
		t.Fatalf("delPrefix = %d, want 3", n)
	}
}

// TestReloadKeepsMemoryEntries: a rebuilt policy of the same name and sizes (a config reload)
// finds the previous snapshot's entries; the store is released once no policy uses it.
func TestReloadKeepsMemoryEntries(t *testing.T) {
	be := newBackend(t, jsonHandler(nil))
	name := uniqueName(t)
	old, err := New(name, Config{}, policies.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	old.Wrap(proxyTo(t, be)).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/k", nil))
	rebuilt, err := New(name, Config{}, policies.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	rebuilt.Wrap(proxyTo(t, be)).ServeHTTP(rec, httptest.NewRequest("GET", "/k", nil))
	if got := rec.Header().Get(headerStatus); got != "Hit" {
		t.Fatalf("after rebuild: %s, want Hit", got)
	}
	old, rebuilt = nil, nil
	_, _ = old, rebuilt
	id := memStoreID(name, DefaultMaxCost, DefaultMaxKeys)
	waitFor(t, func() bool {
		runtime.GC()
		memStores.Lock()
		defer memStores.Unlock()
		_, ok := memStores.m[id]
		return !ok
	})
}
