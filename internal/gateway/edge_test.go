package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/config"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// echo is a backend that answers with what it received, so tests can assert what crossed the
// gateway.
func echo(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("boom")
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "headers": r.Header})
	}))
	t.Cleanup(s.Close)
	return s
}

func newGateway(t *testing.T, yaml string) (*Gateway, *bytes.Buffer) {
	t.Helper()
	f, err := config.Parse([]byte(yaml), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	g, err := New(f, Options{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g, &out
}

func cfg(backend string, extra string) string {
	return `admin: "off"
` + extra + `
upstreams:
  app: {targets: [{url: "` + backend + `"}]}
routes:
  - {name: app, match: {path_prefix: /}, upstream: app}
`
}

type seen struct {
	Path    string
	Headers http.Header
}

func do(t *testing.T, g http.Handler, r *http.Request) (*httptest.ResponseRecorder, seen) {
	t.Helper()
	w := httptest.NewRecorder()
	g.ServeHTTP(w, r)
	var s seen
	_ = json.Unmarshal(w.Body.Bytes(), &s)
	return w, s
}

func TestRequestID(t *testing.T) {
	g, _ := newGateway(t, cfg(echo(t).URL, "access_log: {enabled: false}"))
	tests := []struct {
		name, sent string
		kept       bool
	}{
		{"generated when absent", "", false},
		{"client ID kept", "abc-123", true},
		{"ID with spaces replaced", "abc 123", false},
		{"ID with quote replaced", `a"b`, false},
		{"overlong ID replaced", strings.Repeat("x", 129), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/x", nil)
			if tt.sent != "" {
				r.Header.Set("X-Request-ID", tt.sent)
			}
			w, s := do(t, g, r)
			got := w.Header().Get("X-Request-ID")
			if tt.kept && got != tt.sent {
				t.Errorf("response ID %q, want the client's %q", got, tt.sent)
			}
			if !tt.kept && (got == tt.sent || len(got) != 32) {
				t.Errorf("response ID %q, want a generated 32-hex-digit ID", got)
			}
			if up := s.Headers.Get("X-Request-ID"); up != got {
				t.Errorf("upstream saw ID %q, client got %q", up, got)
			}
		})
	}
}

func TestForwardedHeadersTrustedOnlyFromTrustedProxies(t *testing.T) {
	backend := echo(t).URL
	tests := []struct {
		name, trusted, peer, xff string
		wantXFF                  string
	}{
		{"untrusted peer: client XFF dropped", "", "203.0.113.9:5555", "1.2.3.4", "203.0.113.9"},
		{"trusted peer: chain kept and extended", "trusted_proxies: [10.0.0.0/8]", "10.1.2.3:5555", "198.51.100.7", "198.51.100.7, 10.1.2.3"},
		{"single trusted IP", "trusted_proxies: [\"10.1.2.3\"]", "10.1.2.3:5555", "198.51.100.7", "198.51.100.7, 10.1.2.3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, _ := newGateway(t, cfg(backend, "access_log: {enabled: false}\n"+tt.trusted))
			r := httptest.NewRequest("GET", "/x", nil)
			r.RemoteAddr = tt.peer
			r.Header.Set("X-Forwarded-For", tt.xff)
			r.Header.Set("Forwarded", "for=6.6.6.6")
			_, s := do(t, g, r)
			if got := s.Headers.Get("X-Forwarded-For"); got != tt.wantXFF {
				t.Errorf("upstream X-Forwarded-For = %q, want %q", got, tt.wantXFF)
			}
			if tt.trusted == "" && strings.Contains(s.Headers.Get("Forwarded"), "6.6.6.6") {
				t.Errorf("a forged Forwarded header reached the upstream: %q", s.Headers.Get("Forwarded"))
			}
		})
	}
}

// Backends read more of these than the four Portico sets: Rack believes X-Forwarded-Ssl and
// -Scheme over -Proto, Spring builds redirects from -Prefix, IIS and Symfony route on
// X-Original-Url. From an untrusted client every one is a forgery.
func TestUntrustedClientCannotSendProxyClaims(t *testing.T) {
	g, _ := newGateway(t, cfg(echo(t).URL, "access_log: {enabled: false}"))
	r := httptest.NewRequest("GET", "http://gw.example/x", nil)
	r.RemoteAddr = "203.0.113.9:5555"
	spoofed := map[string]string{
		"X-Forwarded-Ssl": "on", "X-Forwarded-Scheme": "https", "X-Forwarded-Prefix": "//evil.example",
		"X-Forwarded-Server": "evil.example", "X-Forwarded-Client-Cert": "Hash=1;Subject=\"CN=admin\"",
		"X-Original-Url": "/admin", "X-Rewrite-Url": "/admin", "True-Client-Ip": "10.0.0.1",
		"X-Client-Ip": "10.0.0.1", "Cf-Connecting-Ip": "10.0.0.1", "Front-End-Https": "on",
		"X_forwarded_ssl": "on", "X_original_url": "/admin",
		"Client-Ip": "10.0.0.1", "Client_ip": "10.0.0.1", "Fastly-Client-Ip": "10.0.0.1",
		"X-Originating-Ip": "10.0.0.1", "X-Remote-Ip": "10.0.0.1", "X-Remote-Addr": "10.0.0.1",
		"X-Proxyuser-Ip": "10.0.0.1", "X-Host": "evil.example",
	}
	for k, v := range spoofed {
		r.Header[k] = []string{v} // as sent: Go keeps an underscore spelling apart
	}
	_, s := do(t, g, r)
	if got := s.Headers.Get("X-Forwarded-Proto"); got != "http" {
		t.Fatalf("X-Forwarded-Proto = %q, want the http Portico saw", got)
	}
	for k, v := range spoofed {
		if got := s.Headers[k]; len(got) != 0 {
			t.Errorf("untrusted client's %s: %q reached the backend", k, v)
		}
	}
	// An ordinary header that only looks alike is left alone.
	r = httptest.NewRequest("GET", "http://gw.example/x", nil)
	r.RemoteAddr = "203.0.113.9:5555"
	r.Header.Set("X-Forwarding-Note", "kept")
	if _, s := do(t, g, r); s.Headers.Get("X-Forwarding-Note") != "kept" {
		t.Error("X-Forwarding-Note was dropped")
	}
}

func TestClientIPFromTrustedChain(t *testing.T) {
	g, _ := newGateway(t, cfg(echo(t).URL, "access_log: {enabled: false}\ntrusted_proxies: [10.0.0.0/8]"))
	snap := g.Current()
	tests := []struct {
		xff, want string
	}{
		{"198.51.100.7", "198.51.100.7"},
		{"6.6.6.6, 198.51.100.7, 10.0.0.2", "198.51.100.7"}, // leftmost entries are the client's word
		{"10.0.0.3, 10.0.0.2", "10.0.0.3"},
		{"garbage", "10.0.0.1"},
		{"198.51.100.7:4711, 10.0.0.2", "198.51.100.7"},
		{"[2001:db8::1]:4711", "2001:db8::1"},
	}
	for _, tt := range tests {
		h := http.Header{"X-Forwarded-For": {tt.xff}}
		if got := snap.clientFromForwarded(h, peerAddr("10.0.0.1:1")).String(); got != tt.want {
			t.Errorf("XFF %q: client %s, want %s", tt.xff, got, tt.want)
		}
	}
	// A trusted proxy that sends only RFC 7239's Forwarded is believed the same way.
	for _, tt := range []struct{ fwd, want string }{
		{"for=198.51.100.7", "198.51.100.7"},
		{`for=6.6.6.6, for=198.51.100.7;proto=https, for="10.0.0.2"`, "198.51.100.7"},
		{`for="[2001:db8::1]:4711";host=example.com`, "2001:db8::1"},
		{`For=198.51.100.7:4711`, "198.51.100.7"},
		{"for=unknown", "10.0.0.1"},
		{"proto=https", "10.0.0.1"},
	} {
		h := http.Header{"Forwarded": {tt.fwd}}
		if got := snap.clientFromForwarded(h, peerAddr("10.0.0.1:1")).String(); got != tt.want {
			t.Errorf("Forwarded %q: client %s, want %s", tt.fwd, got, tt.want)
		}
	}
	// X-Forwarded-For wins when both are sent: it is what most proxies write.
	h := http.Header{"X-Forwarded-For": {"198.51.100.7"}, "Forwarded": {"for=6.6.6.6"}}
	if got := snap.clientFromForwarded(h, peerAddr("10.0.0.1:1")).String(); got != "198.51.100.7" {
		t.Errorf("both headers: client %s, want X-Forwarded-For's", got)
	}
}

func TestAccessLogAndMetrics(t *testing.T) {
	g, out := newGateway(t, cfg(echo(t).URL, ""))
	r := httptest.NewRequest("GET", "/hello", nil)
	r.Header.Set("X-Request-ID", "log-me")
	do(t, g, r)
	do(t, g, httptest.NewRequest("GET", "/hello", nil))

	var line map[string]any
	if err := json.Unmarshal(bytes.SplitN(out.Bytes(), []byte("\n"), 2)[0], &line); err != nil {
		t.Fatalf("access log is not one JSON line per request: %v\n%s", err, out)
	}
	for k, want := range map[string]any{"request_id": "log-me", "path": "/hello", "status": float64(200), "route": "app", "upstream": "app", "method": "GET"} {
		if line[k] != want {
			t.Errorf("access log %s = %v, want %v", k, line[k], want)
		}
	}
	if n := bytes.Count(out.Bytes(), []byte("\n")); n != 2 {
		t.Errorf("%d access log lines for 2 requests", n)
	}
	if got := testutil.ToFloat64(g.metrics.requests.WithLabelValues("app", "app", "200")); got != 2 {
		t.Errorf("portico_requests_total = %v, want 2", got)
	}
}

func TestUnmatchedRequestIsJSON404WithRequestID(t *testing.T) {
	g, _ := newGateway(t, `admin: "off"
access_log: {enabled: false}
upstreams:
  app: {targets: [{url: "http://127.0.0.1:1"}]}
routes:
  - {name: app, match: {path_prefix: /api}, upstream: app}
`)
	w, _ := do(t, g, httptest.NewRequest("GET", "/nope", nil))
	var body struct {
		Error struct{ Code, Message, RequestID string } `json:"error"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	if w.Code != 404 || body.Error.Code != "ROUTE_NOT_FOUND" {
		t.Fatalf("got %d %s", w.Code, w.Body)
	}
	if !strings.Contains(w.Body.String(), w.Header().Get("X-Request-ID")) {
		t.Errorf("error body lacks the request ID: %s", w.Body)
	}
}

func TestApplyRejectsBrokenSnapshotAndKeepsServing(t *testing.T) {
	backend := echo(t).URL
	g, _ := newGateway(t, cfg(backend, "access_log: {enabled: false}"))
	before := g.Current()
	bad := &config.File{Routes: before.File.Routes} // routes naming an upstream that is gone
	if err := g.Apply(bad); err == nil {
		t.Fatal("Apply accepted a config whose route names a missing upstream")
	}
	if g.Current() != before {
		t.Fatal("a rejected config replaced the serving snapshot")
	}
	w, _ := do(t, g, httptest.NewRequest("GET", "/still", nil))
	if w.Code != 200 {
		t.Fatalf("after a rejected apply: %d %s", w.Code, w.Body)
	}
}

// A panic in a handler must cost one request a 500, not the process.
func TestPanicBecomes500(t *testing.T) {
	g, _ := newGateway(t, cfg(echo(t).URL, "access_log: {enabled: false}"))
	snap := g.Current()
	snap.handler = http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("bug") })
	w, _ := do(t, g, httptest.NewRequest("GET", "/", nil))
	if w.Code != 500 || !strings.Contains(w.Body.String(), `"code":"INTERNAL"`) || strings.Contains(w.Body.String(), "bug") {
		t.Fatalf("panic answered %d %s", w.Code, w.Body)
	}
	if id := w.Header().Get("X-Request-ID"); id == "" || !strings.Contains(w.Body.String(), `"request_id":"`+id+`"`) {
		t.Errorf("the 500 lacks the request ID: %s", w.Body)
	}
}

// A panic after part of the answer went out must cut the connection, so the client cannot take
// a truncated body for a complete one.
func TestPanicAfterHeadersAbortsTheConnection(t *testing.T) {
	g, _ := newGateway(t, cfg(echo(t).URL, "access_log: {enabled: false}"))
	g.Current().handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		_, _ = w.Write([]byte(`{"partial":`))
		http.NewResponseController(w).Flush()
		panic("bug")
	})
	srv := httptest.NewServer(g)
	defer srv.Close()
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("a truncated answer read as complete")
	}
}

// A flush before anything was written sends a 200 header: a panic after it must cut the
// connection too, not send a JSON 500 body after the 200.
func TestPanicAfterAFlushAbortsTheConnection(t *testing.T) {
	g, _ := newGateway(t, cfg(echo(t).URL, "access_log: {enabled: false}"))
	g.Current().handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		http.NewResponseController(w).Flush()
		panic("bug")
	})
	srv := httptest.NewServer(g)
	defer srv.Close()
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("answer read as complete: %d %q", resp.StatusCode, body)
	}
}

func TestAdminEndpoints(t *testing.T) {
	g, _ := newGateway(t, cfg(echo(t).URL, "access_log: {enabled: false}"))
	admin := g.AdminHandler()
	for path, want := range map[string]string{"/health": `"ok"`, "/ready": `"ready"`, "/upstreams": `"app"`, "/metrics": "portico_config_reloads_total", "/config": `"routes"`} {
		w := httptest.NewRecorder()
		admin.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != 200 || !strings.Contains(w.Body.String(), want) {
			t.Errorf("admin %s: %d %s", path, w.Code, w.Body.String())
		}
	}
	g.SetReady(false)
	w := httptest.NewRecorder()
	admin.ServeHTTP(w, httptest.NewRequest("GET", "/ready", nil))
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("/ready while draining = %d, want 503", w.Code)
	}
}

func TestUpstreamSeesIdentityHeadersOnlyFromPortico(t *testing.T) {
	g, _ := newGateway(t, cfg(echo(t).URL, "access_log: {enabled: false}"))
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("X-Consumer-Name", "admin")
	r.Header.Set("X-Authenticated-Subject", "root")
	_, s := do(t, g, r)
	if s.Headers.Get("X-Consumer-Name") != "" || s.Headers.Get("X-Authenticated-Subject") != "" {
		t.Errorf("client-sent identity headers reached the upstream: %v", s.Headers)
	}
}

func BenchmarkEdge(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	defer backend.Close()
	f, err := config.Parse([]byte(cfg(backend.URL, "access_log: {enabled: false}")), "bench.yaml")
	if err != nil {
		b.Fatal(err)
	}
	g, err := New(f, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	front := httptest.NewServer(g)
	defer front.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(front.URL + "/x")
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

// parseErr returns the loader's error text for yaml, "" when it loads.
func parseErr(yaml string) string {
	if _, err := config.Parse([]byte(yaml), "test.yaml"); err != nil {
		return err.Error()
	}
	return ""
}

// A reload that removes a target or an upstream removes its series from /metrics: a healthy
// gauge frozen at 1, or a breaker frozen open, for something that no longer exists would
// mislead every dashboard and alert built on them.
func TestReloadForgetsMetricsOfRemovedUpstreams(t *testing.T) {
	a, b := echo(t), echo(t)
	two := `admin: "off"
access_log: {enabled: false}
upstreams:
  app: {targets: [{url: "` + a.URL + `"}, {url: "` + b.URL + `"}]}
  old: {targets: [{url: "` + b.URL + `"}], circuit_breaker: {}}
routes:
  - {name: app, match: {path_prefix: /}, upstream: app}
  - {name: old, match: {path_prefix: /old}, upstream: old}
`
	g, _ := newGateway(t, two)
	do(t, g, httptest.NewRequest("GET", "/old/x", nil))
	metrics := func() string {
		w := httptest.NewRecorder()
		g.AdminHandler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
		return w.Body.String()
	}
	before := metrics()
	for _, want := range []string{`portico_upstream_breaker_state{upstream="old"}`, `target="` + b.URL + `",upstream="app"`} {
		if !strings.Contains(before, want) {
			t.Fatalf("before the reload /metrics lacks %s", want)
		}
	}
	f, err := config.Parse([]byte(cfg(a.URL, "access_log: {enabled: false}")), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Apply(f); err != nil {
		t.Fatal(err)
	}
	after := metrics()
	// The upstream layer's series, gauges above all. The edge's counters of requests already
	// served on a removed route stay: they are history, and rate() over them falls to zero.
	for _, line := range strings.Split(after, "\n") {
		if !strings.HasPrefix(line, "portico_upstream_") {
			continue
		}
		for _, gone := range []string{`upstream="old"`, `target="` + b.URL + `"`} {
			if strings.Contains(line, gone) {
				t.Errorf("after the reload /metrics still has %s", line)
			}
		}
	}
	if !strings.Contains(after, `portico_upstream_healthy{target="`+a.URL+`",upstream="app"} 1`) {
		t.Errorf("the kept target's healthy gauge is missing:\n%s", after)
	}
}

// Peers are compared unmapped, so a trusted range written IPv4-mapped must match IPv4 peers.
func TestTrustedProxiesWrittenIPv4Mapped(t *testing.T) {
	g, _ := newGateway(t, cfg(echo(t).URL, "access_log: {enabled: false}\ntrusted_proxies: [\"::ffff:10.0.0.0/104\", \"::ffff:192.0.2.1\"]"))
	snap := g.Current()
	for _, peer := range []string{"10.1.2.3:1", "[::ffff:10.1.2.3]:1", "192.0.2.1:1"} {
		if !snap.trusts(peerAddr(peer)) {
			t.Errorf("peer %s not trusted", peer)
		}
	}
	if snap.trusts(peerAddr("11.0.0.1:1")) {
		t.Error("a peer outside the range is trusted")
	}
}
