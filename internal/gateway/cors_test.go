package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
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

// A preflight-shaped OPTIONS on a route that does not take OPTIONS, with no cors policy to answer
// it, is refused as a plain OPTIONS is: routing it by the method it asks about must not send the
// upstream an OPTIONS the route never allows. With preflight_continue the upstream answers.
func TestPreflightWithoutCORSIsRefused(t *testing.T) {
	var options atomic.Int32
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			options.Add(1)
		}
		w.WriteHeader(200)
	}))
	t.Cleanup(be.Close)
	g, _ := newGateway(t, `admin: "off"
access_log: {enabled: false}
upstreams:
  app: {targets: [{url: "`+be.URL+`"}]}
policies:
  cors-passes: {cors: {origins: ["https://app.example.com"], preflight_continue: true}}
routes:
  - {name: reports, match: {path_prefix: /reports, methods: [GET]}, upstream: app}
  - {name: own, match: {path_prefix: /own, methods: [GET]}, upstream: app, policies: [cors-passes]}
`)
	preflight := func(path string) *http.Request {
		r := httptest.NewRequest("OPTIONS", path, nil)
		r.Header.Set("Origin", "https://app.example.com")
		r.Header.Set("Access-Control-Request-Method", "GET")
		return r
	}
	if w, _ := do(t, g, httptest.NewRequest("OPTIONS", "/reports/1", nil)); w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("plain OPTIONS: %d, want 405", w.Code)
	}
	w, _ := do(t, g, preflight("/reports/1"))
	if n := options.Load(); n != 0 || w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
		t.Fatalf("preflight on a GET-only route without cors: %d (Allow %q), upstream saw %d OPTIONS", w.Code, w.Header().Get("Allow"), n)
	}
	if w, _ := do(t, g, preflight("/own/1")); w.Code != 200 || options.Load() != 1 {
		t.Fatalf("preflight_continue: %d, upstream saw %d OPTIONS, want 200 from the upstream", w.Code, options.Load())
	}
}
