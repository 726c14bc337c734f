package gateway

import (
	"net/http/httptest"
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
