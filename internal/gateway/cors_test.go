package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The README's shape of config (a global cors policy, routes with a methods list) must let a
// browser's cross-origin POST through: its preflight is answered by the cors policy, not 405.
func TestCORSPreflightOnRouteWithMethods(t *testing.T) {
	g, _ := newGateway(t, `admin: "off"
access_log: {enabled: false}
upstreams:
  app: {targets: [{url: "`+echo(t).URL+`"}]}
policies:
  browser: {cors: {origins: ["https://app.example.com"]}}
global_policies: [browser]
routes:
  - {name: orders, match: {path_prefix: /orders, methods: [GET, POST]}, upstream: app}
`)
	r := httptest.NewRequest("OPTIONS", "/orders/1", nil)
	r.Header.Set("Origin", "https://app.example.com")
	r.Header.Set("Access-Control-Request-Method", "POST")
	w, _ := do(t, g, r)
	if w.Code/100 != 2 || w.Header().Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Fatalf("preflight: %d, ACAO %q, Vary %q: %s", w.Code, w.Header().Get("Access-Control-Allow-Origin"), w.Header().Values("Vary"), w.Body)
	}
}

// Vary: Origin, set by cors before the chain runs, must survive a cache policy inside it, on the
// miss and on the hit: without it a CDN in front serves one origin's answer to another.
func TestCORSVaryOriginSurvivesCache(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Vary", "Accept-Encoding")
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(be.Close)
	g, _ := newGateway(t, `admin: "off"
access_log: {enabled: false}
upstreams:
  app: {targets: [{url: "`+be.URL+`"}]}
policies:
  browser: {cors: {origins: ["https://app.example.com"]}}
  c: {cache: {ttl: 1m, vary_headers: [Accept-Encoding]}}
routes:
  - {name: orders, match: {path_prefix: /orders}, upstream: app, policies: [browser, c]}
`)
	for i, want := range []string{"Miss", "Hit"} {
		r := httptest.NewRequest("GET", "/orders/1", nil)
		r.Header.Set("Origin", "https://app.example.com")
		w, _ := do(t, g, r)
		vary := strings.Join(w.Header().Values("Vary"), ",")
		if w.Code != 200 || w.Header().Get("X-Cache-Status") != want {
			t.Fatalf("call %d: %d %q", i, w.Code, w.Header().Get("X-Cache-Status"))
		}
		if !strings.Contains(vary, "Origin") || !strings.Contains(vary, "Accept-Encoding") {
			t.Errorf("%s: Vary = %q, want Origin and Accept-Encoding", want, vary)
		}
	}
}
