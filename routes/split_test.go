package routes

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// countingUpstream answers 200 and counts calls.
func countingUpstream(n *atomic.Int64) http.RoundTripper {
	ok := staticUpstream(200, "{}")
	return upstreamFunc(func(r *http.Request) (*http.Response, error) {
		n.Add(1)
		return ok.RoundTrip(r)
	})
}

func splitRouter(t *testing.T, sticky *StickyConfig) (*Router, *atomic.Int64, *atomic.Int64) {
	t.Helper()
	var old, canary atomic.Int64
	r, err := Build([]Config{{
		Name:   "legacy",
		Split:  []SplitConfig{{Upstream: "monolith", Weight: 90}, {Upstream: "users-v2", Weight: 10}},
		Sticky: sticky,
	}}, Deps{Upstream: lookup(map[string]http.RoundTripper{
		"monolith": countingUpstream(&old), "users-v2": countingUpstream(&canary),
	})})
	if err != nil {
		t.Fatal(err)
	}
	return r, &old, &canary
}

func TestSplitByWeight(t *testing.T) {
	r, old, canary := splitRouter(t, nil)
	const n = 10000
	for i := 0; i < n; i++ {
		r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	}
	if got := old.Load() + canary.Load(); got != n {
		t.Fatalf("%d calls, want %d", got, n)
	}
	share := float64(old.Load()) / n
	if math.Abs(share-0.9) > 0.02 {
		t.Errorf("monolith share %.3f, want 0.90±0.02", share)
	}
}

func TestStickySplit(t *testing.T) {
	tests := []struct {
		name   string
		sticky StickyConfig
		set    func(r *http.Request, v string)
	}{
		{"header", StickyConfig{Header: "x-user-id"}, func(r *http.Request, v string) { r.Header.Set("X-User-Id", v) }},
		{"cookie", StickyConfig{Cookie: "uid"}, func(r *http.Request, v string) {
			r.Header.Set("Cookie", "theme=dark; uid="+v+"; lang=en")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, old, canary := splitRouter(t, &tc.sticky)
			const users = 500
			canaryUsers := 0
			for u := 0; u < users; u++ {
				v := fmt.Sprintf("user-%d", u)
				before := canary.Load()
				for i := 0; i < 5; i++ {
					req := httptest.NewRequest("GET", "/", nil)
					tc.set(req, v)
					r.ServeHTTP(httptest.NewRecorder(), req)
				}
				switch canary.Load() - before {
				case 0:
				case 5:
					canaryUsers++
				default:
					t.Fatalf("user %s split across sides", v)
				}
			}
			if old.Load()+canary.Load() != users*5 {
				t.Fatalf("calls %d, want %d", old.Load()+canary.Load(), users*5)
			}
			// The hash spreads users by weight too: about 10% on the canary (loose: 500 users).
			if canaryUsers < users*4/100 || canaryUsers > users*16/100 {
				t.Errorf("%d of %d users on the canary, want about 10%%", canaryUsers, users)
			}
		})
	}
}

func TestCookieValue(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  string
		ok    bool
	}{
		{"among others", []string{"a=1; uid=42; b=2"}, "42", true},
		{"second header line", []string{"a=1", "uid=7"}, "7", true},
		{"quoted", []string{`uid="q"`}, "q", true},
		{"name is exact", []string{"xuid=1; uidx=2"}, "", false},
		{"empty value", []string{"uid="}, "", false},
		{"absent", nil, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := cookieValue(tc.lines, "uid")
			if got != tc.want || ok != tc.ok {
				t.Errorf("got %q %v, want %q %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestStickyPickAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates; run without -race")
	}
	p, err := newPassThrough(Config{Name: "r", Split: []SplitConfig{{Upstream: "a", Weight: 1}, {Upstream: "b", Weight: 1}}, Sticky: &StickyConfig{Cookie: "uid"}},
		Deps{Upstream: lookup(map[string]http.RoundTripper{"a": staticUpstream(200, ""), "b": staticUpstream(200, "")}), Logger: quietLogger(nil), MaxBodyBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Cookie", "theme=dark; uid=abc")
	if n := testing.AllocsPerRun(100, func() { p.pick(req) }); n != 0 {
		t.Errorf("pick allocates %v times", n)
	}
}

func BenchmarkPick(b *testing.B) {
	p, err := newPassThrough(Config{Name: "r", Split: []SplitConfig{{Upstream: "a", Weight: 90}, {Upstream: "b", Weight: 10}}, Sticky: &StickyConfig{Header: "X-User"}},
		Deps{Upstream: lookup(map[string]http.RoundTripper{"a": staticUpstream(200, ""), "b": staticUpstream(200, "")}), Logger: quietLogger(nil), MaxBodyBytes: 1})
	if err != nil {
		b.Fatal(err)
	}
	for _, sticky := range []bool{false, true} {
		b.Run(fmt.Sprintf("sticky=%v", sticky), func(b *testing.B) {
			req := httptest.NewRequest("GET", "/", nil)
			if sticky {
				req.Header.Set("X-User", "user-12345")
			}
			b.ReportAllocs()
			for b.Loop() {
				p.pick(req)
			}
		})
	}
}

// A side of a split (or the mirror) with its own prefixes sees its own path layout: the monolith
// keeps /api/v1/orders/7 while the new service gets /orders/7.
func TestPerDestinationPrefixes(t *testing.T) {
	var monolithPath, servicePath, shadowPath atomic.Value
	record := func(v *atomic.Value) http.RoundTripper {
		return upstreamFunc(func(r *http.Request) (*http.Response, error) {
			v.Store(r.URL.Path)
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
		})
	}
	load := func(v *atomic.Value) string { s, _ := v.Load().(string); return s }
	ups := map[string]http.RoundTripper{"monolith": record(&monolithPath), "orders": record(&servicePath), "shadow": record(&shadowPath)}
	r, err := Build([]Config{{
		Name:   "orders",
		Match:  MatchConfig{PathPrefix: "/api/v1/orders"},
		Split:  []SplitConfig{{Upstream: "monolith", Weight: 1}, {Upstream: "orders", Weight: 1, StripPrefix: "/api/v1"}},
		Sticky: &StickyConfig{Header: "X-User"},
		Mirror: &MirrorConfig{Upstream: "shadow", StripPrefix: "/api", AddPrefix: "/legacy"},
	}}, Deps{Upstream: lookup(ups)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := 0; i < 40 && (load(&monolithPath) == "" || load(&servicePath) == ""); i++ {
		req := httptest.NewRequest("GET", "/api/v1/orders/7", nil)
		req.Header.Set("X-User", fmt.Sprint("user-", i))
		r.ServeHTTP(httptest.NewRecorder(), req)
	}
	if got := load(&monolithPath); got != "/api/v1/orders/7" {
		t.Errorf("monolith side got %q, want the path untouched", got)
	}
	if got := load(&servicePath); got != "/orders/7" {
		t.Errorf("service side got %q, want its own strip_prefix applied", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for load(&shadowPath) == "" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := load(&shadowPath); got != "/legacy/v1/orders/7" {
		t.Errorf("mirror got %q, want its own prefixes applied", got)
	}
}
