package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const bcSecret = "hs-secret-0123456789-0123456789-abcdef"

func bcSecretsConfig(backend string) string {
	return `admin: "off"
access_log: {enabled: false}
upstreams:
  app: {targets: [{url: "` + backend + `"}]}
consumers:
  - {name: web-app, keys: [keyauth-s3cret], basic_auth: {username: bob, password_hash: "$2a$10$abcdefghijklmnopqrstuuJ0pZ4Xq1k5Zb6kYVv7n6sYbq0w0l9mS"}, jwt: {key: iss-one}}
policies:
  apikey: {key-auth: {key_names: [x-api-key]}}
  tokens: {jwt: {issuers: [{issuer: iss-one, algorithms: [HS256], keys: [{kid: k1, secret: "` + bcSecret + `"}]}]}}
  basic: {basic-auth: {}}
  addh: {request-transform: {headers: {add: {X-Api-Key: hdr-s3cret, X-Upstream-Auth: "Bearer bearer-s3cret"}}}}
routes:
  - {name: app, match: {path_prefix: /}, upstream: app, policies: [apikey]}
`
}

// Bad admin requests get a 4xx, and /config hides the secrets a config holds.
func TestBadConfigAdminBadRequestsAndRedaction(t *testing.T) {
	g, _ := newGateway(t, bcSecretsConfig(echo(t).URL))
	admin := g.AdminHandler()
	for _, rq := range []struct{ m, p string }{
		{"POST", "/config"}, {"DELETE", "/health"}, {"PUT", "/ready"}, {"POST", "/metrics"},
		{"PATCH", "/upstreams"}, {"GET", "/cache"}, {"DELETE", "/cache"}, {"DELETE", "/cache?key="},
		{"DELETE", "/cache?key=a&prefix=b"}, {"DELETE", "/cache?key=%zz"}, {"DELETE", "/cache?prefix="},
	} {
		w := httptest.NewRecorder()
		admin.ServeHTTP(w, httptest.NewRequest(rq.m, rq.p, nil))
		if w.Code < 400 || w.Code > 499 {
			t.Errorf("%s %s = %d, want 4xx", rq.m, rq.p, w.Code)
		}
	}
	w := httptest.NewRecorder()
	admin.ServeHTTP(w, httptest.NewRequest("DELETE", "/cache?key="+strings.Repeat("a", 1<<20), nil))
	if w.Code >= 500 {
		t.Errorf("DELETE /cache with a 1 MiB key = %d, want < 500", w.Code)
	}
	w = httptest.NewRecorder()
	admin.ServeHTTP(w, httptest.NewRequest("GET", "/config", nil))
	for _, secret := range []string{bcSecret, "keyauth-s3cret", "$2a$10$", "hdr-s3cret"} {
		if strings.Contains(w.Body.String(), secret) {
			t.Errorf("/config shows %q", secret)
		}
	}
	_ = http.MethodGet
}
