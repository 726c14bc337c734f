package cors

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/policies"
)

// upstream is a fake backend that sets its own (wrong) CORS headers, which the policy must
// replace, and counts calls.
func upstream(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Vary", "Accept-Encoding")
		w.Header().Set("X-Upstream-Method", r.Method)
		_, _ = w.Write([]byte("hello"))
	}))
	t.Cleanup(s.Close)
	return s, &calls
}

func through(t *testing.T, c Config) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	be, calls := upstream(t)
	p, err := New("browser", c, policies.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(be.URL)
	gw := httptest.NewServer(p.Wrap(httputil.NewSingleHostReverseProxy(u)))
	t.Cleanup(gw.Close)
	return gw, calls
}

func do(t *testing.T, gw *httptest.Server, method string, h map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, gw.URL, nil)
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestCORS(t *testing.T) {
	strict := Config{
		Origins:        []string{"https://app.example.com", "https://*.example.org", "*.example.net:8443"},
		Methods:        []string{"get", "POST"},
		Headers:        []string{"Authorization", "Content-Type"},
		ExposedHeaders: []string{"X-Request-ID"},
		Credentials:    true,
		MaxAge:         confval.Duration(10 * time.Minute),
	}
	preflight := func(origin string) map[string]string {
		return map[string]string{"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, x-custom"}
	}
	tests := []struct {
		name         string
		cfg          Config
		method       string
		headers      map[string]string
		wantStatus   int
		wantUpstream bool
		want         map[string]string // "" means absent
	}{
		{name: "no Origin: not a CORS request, upstream headers untouched", cfg: strict, method: "GET", headers: nil, wantStatus: 200, wantUpstream: true,
			want: map[string]string{"Access-Control-Allow-Origin": "*", "Vary": "Origin, Accept-Encoding"}},
		{name: "actual request from an allowed origin", cfg: strict, method: "GET", headers: map[string]string{"Origin": "https://app.example.com"}, wantStatus: 200, wantUpstream: true,
			want: map[string]string{"Access-Control-Allow-Origin": "https://app.example.com", "Access-Control-Allow-Credentials": "true",
				"Access-Control-Expose-Headers": "X-Request-ID", "Vary": "Origin, Accept-Encoding", "Access-Control-Allow-Methods": ""}},
		{name: "actual request from a disallowed origin: served, no CORS headers (upstream's removed)", cfg: strict, method: "GET",
			headers: map[string]string{"Origin": "https://evil.example"}, wantStatus: 200, wantUpstream: true,
			want: map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Credentials": "", "Vary": "Origin, Accept-Encoding"}},
		{name: "preflight answered at the edge with 200", cfg: strict, method: "OPTIONS", headers: preflight("https://app.example.com"), wantStatus: 200,
			want: map[string]string{"Access-Control-Allow-Origin": "https://app.example.com", "Access-Control-Allow-Credentials": "true",
				"Access-Control-Allow-Methods": "GET, POST", "Access-Control-Allow-Headers": "Authorization, Content-Type",
				"Access-Control-Max-Age": "600", "Vary": "Origin", "Content-Length": "0"}},
		{name: "preflight from a disallowed origin: 403, no CORS headers", cfg: strict, method: "OPTIONS", headers: preflight("https://evil.example"), wantStatus: 403,
			want: map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Methods": "", "Vary": "Origin"}},
		{name: "wildcard subdomain matches", cfg: strict, method: "OPTIONS", headers: preflight("https://a.b.example.org"), wantStatus: 200,
			want: map[string]string{"Access-Control-Allow-Origin": "https://a.b.example.org"}},
		{name: "wildcard does not match the apex", cfg: strict, method: "OPTIONS", headers: preflight("https://example.org"), wantStatus: 403},
		{name: "wildcard with scheme does not match http", cfg: strict, method: "OPTIONS", headers: preflight("http://a.example.org"), wantStatus: 403},
		{name: "wildcard does not match a lookalike suffix", cfg: strict, method: "OPTIONS", headers: preflight("https://evilexample.org"), wantStatus: 403},
		{name: "schemeless wildcard with port matches http and https", cfg: strict, method: "OPTIONS", headers: preflight("http://api.example.net:8443"), wantStatus: 200},
		{name: "schemeless wildcard: port must match", cfg: strict, method: "OPTIONS", headers: preflight("https://api.example.net"), wantStatus: 403},
		{name: "origin matching is case-insensitive", cfg: strict, method: "GET", headers: map[string]string{"Origin": "HTTPS://APP.example.com"}, wantStatus: 200, wantUpstream: true,
			want: map[string]string{"Access-Control-Allow-Origin": "HTTPS://APP.example.com"}},
		{name: "exact origin: other port refused", cfg: strict, method: "OPTIONS", headers: preflight("https://app.example.com:444"), wantStatus: 403},
		{name: "any origin without credentials; requested headers reflected", cfg: Config{Origins: []string{"*"}}, method: "OPTIONS", headers: preflight("https://x.test"), wantStatus: 200,
			want: map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Credentials": "", "Access-Control-Allow-Headers": "authorization, x-custom",
				"Vary": "Origin, Access-Control-Request-Headers", "Access-Control-Allow-Methods": "GET, HEAD, PUT, PATCH, POST, DELETE", "Access-Control-Max-Age": ""}},
		{name: "preflight_continue sends the preflight upstream", cfg: Config{Origins: []string{"https://app.example.com"}, PreflightContinue: true}, method: "OPTIONS",
			headers: preflight("https://app.example.com"), wantStatus: 200, wantUpstream: true,
			want: map[string]string{"X-Upstream-Method": "OPTIONS", "Access-Control-Allow-Origin": "https://app.example.com"}},
		{name: "OPTIONS without Access-Control-Request-Method is not a preflight", cfg: strict, method: "OPTIONS", headers: map[string]string{"Origin": "https://app.example.com"},
			wantStatus: 200, wantUpstream: true, want: map[string]string{"X-Upstream-Method": "OPTIONS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw, calls := through(t, tt.cfg)
			resp := do(t, gw, tt.method, tt.headers)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if got := calls.Load() > 0; got != tt.wantUpstream {
				t.Errorf("upstream called = %v, want %v", got, tt.wantUpstream)
			}
			for k, v := range tt.want {
				if got := strings.Join(resp.Header.Values(k), ", "); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

// Error answers written inside the policy (401, 429…) carry CORS headers, so the browser lets
// the script read why it failed.
func TestErrorAnswersGetCORSHeaders(t *testing.T) {
	p, _ := New("b", Config{Origins: []string{"https://app.example.com"}}, policies.Deps{})
	h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusUnauthorized)
	}))
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Origin", "https://app.example.com")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 401 || w.Header().Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Fatalf("status %d headers %v", w.Code, w.Header())
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // problem paths
	}{
		{"no origins", Config{}, []string{"p.origins"}},
		{"* with credentials", Config{Origins: []string{"*"}, Credentials: true}, []string{"p.origins[0]"}},
		{"* with others", Config{Origins: []string{"https://a.com", "*"}}, []string{"p.origins[1]"}},
		{"origin with a path", Config{Origins: []string{"https://a.com/"}}, []string{"p.origins[0]"}},
		{"origin without scheme", Config{Origins: []string{"a.com"}}, []string{"p.origins[0]"}},
		{"star inside a host", Config{Origins: []string{"https://a*.com", "https://*.com", "null"}}, []string{"p.origins[0]", "p.origins[1]", "p.origins[2]"}},
		{"bad port", Config{Origins: []string{"https://a.com:99999"}}, []string{"p.origins[0]"}},
		{"bad names and * with credentials", Config{Origins: []string{"https://a.com"}, Credentials: true, Headers: []string{"*"}, ExposedHeaders: []string{"bad header"}, Methods: []string{"GE T"}},
			[]string{"p.methods[0]", "p.headers[0]", "p.exposed_headers[0]"}},
		{"negative max_age", Config{Origins: []string{"https://a.com"}, MaxAge: -1}, []string{"p.max_age"}},
		{"valid", Config{Origins: []string{"https://a.com", "http://localhost:3000", "capacitor://localhost", "https://*.a.com"}, Headers: []string{"*"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p confval.Problems
			tt.cfg.Validate("p", &p)
			var got []string
			for _, pr := range p {
				got = append(got, pr.Path)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Fatalf("paths %v, want %v (%+v)", got, tt.want, p)
			}
			if _, err := New("x", tt.cfg, policies.Deps{}); (err != nil) != (len(tt.want) > 0) {
				t.Fatalf("New error %v", err)
			}
		})
	}
}

func TestConfigNotMutated(t *testing.T) {
	c := Config{Origins: []string{"https://a.com"}, Methods: []string{"get"}}
	if _, err := New("x", c, policies.Deps{}); err != nil {
		t.Fatal(err)
	}
	if c.Methods[0] != "get" {
		t.Fatal("New modified the caller's config")
	}
}

func BenchmarkCORS(b *testing.B) {
	p, _ := New("b", Config{Origins: []string{"https://app.example.com", "https://*.example.org"}, Credentials: true}, policies.Deps{})
	h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))
	for _, bc := range []struct{ name, method, origin string }{
		{"no-origin", "GET", ""}, {"actual-exact", "GET", "https://app.example.com"},
		{"actual-wildcard", "GET", "https://x.example.org"}, {"preflight", "OPTIONS", "https://app.example.com"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest(bc.method, "/", nil)
			if bc.origin != "" {
				req.Header.Set("Origin", bc.origin)
			}
			if bc.method == "OPTIONS" {
				req.Header.Set("Access-Control-Request-Method", "POST")
			}
			d := discard{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(d.h)
				h.ServeHTTP(d, req)
			}
		})
	}
}

// discard is a ResponseWriter whose header map the benchmark clears per request.
type discard struct{ h http.Header }

func (d discard) Header() http.Header       { return d.h }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

// TestVaryNamesOriginOnce: the policy's Vary: Origin and the upstream's own Vary lines are one
// list on the answer, each field name once whatever its case, and "*" keeps its meaning.
func TestVaryNamesOriginOnce(t *testing.T) {
	tests := []struct {
		name     string
		outer    []string // Vary set before the policy ran
		upstream []string // the upstream's Vary lines
		origin   string
		want     []string
	}{
		{name: "upstream says origin", upstream: []string{"origin"}, origin: "https://app.example.com", want: []string{"Origin"}},
		{name: "upstream says ORIGIN, no Origin sent", upstream: []string{"ORIGIN"}, want: []string{"Origin"}},
		{name: "inside a list", upstream: []string{"Accept, origin"}, origin: "https://app.example.com", want: []string{"Origin, Accept"}},
		{name: "across lines", upstream: []string{"Accept", "Origin", "accept"}, origin: "https://evil.example", want: []string{"Origin, Accept"}},
		{name: "no overlap is left alone", upstream: []string{"Accept-Encoding"}, origin: "https://app.example.com", want: []string{"Origin", "Accept-Encoding"}},
		{name: "star stays star", upstream: []string{"*"}, origin: "https://app.example.com", want: []string{"*"}},
		{name: "star in a list", upstream: []string{"Accept, *"}, want: []string{"*"}},
		{name: "outer Vary naming origin", outer: []string{"Accept, origin"}, origin: "https://app.example.com", want: []string{"Accept, origin"}},
		{name: "outer Vary without origin", outer: []string{"Accept"}, upstream: []string{"origin"}, origin: "https://app.example.com", want: []string{"Accept, Origin"}},
	}
	p, err := New("b", Config{Origins: []string{"https://app.example.com"}}, policies.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Vary"] = tc.upstream
			}))
			defer be.Close()
			u, _ := url.Parse(be.URL)
			h := p.Wrap(httputil.NewSingleHostReverseProxy(u))
			req := httptest.NewRequest("GET", "/", nil)
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			w := httptest.NewRecorder()
			if tc.outer != nil {
				w.Header()["Vary"] = tc.outer
			}
			h.ServeHTTP(w, req)
			if got := w.Result().Header["Vary"]; strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("Vary lines %q, want %q", got, tc.want)
			}
		})
	}
}

// TestPreflightVaryNamesOriginOnce: a preflight answered at the edge does not add Origin to a
// Vary that already names it.
func TestPreflightVaryNamesOriginOnce(t *testing.T) {
	p, _ := New("b", Config{Origins: []string{"https://app.example.com"}}, policies.Deps{})
	for _, origin := range []string{"https://app.example.com", "https://evil.example"} {
		req := httptest.NewRequest("OPTIONS", "/", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		w := httptest.NewRecorder()
		w.Header().Set("Vary", "origin")
		p.Wrap(http.NotFoundHandler()).ServeHTTP(w, req)
		if got := w.Result().Header["Vary"]; strings.Join(got, "|") != "origin" {
			t.Fatalf("preflight from %s: Vary lines %q, want [origin]", origin, got)
		}
	}
}
