package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// policiesConfig puts key-auth and a per-consumer rate limit on /api, security headers globally
// except on the open route, and gives the partner consumer a higher limit of its own.
func policiesConfig(backend string) string {
	return `admin: "off"
access_log: {enabled: false}
upstreams:
  app: {targets: [{url: "` + backend + `"}]}
consumers:
  - {name: web-app, keys: [web-secret], groups: [first-party]}
  - {name: partner, keys: [partner-secret], groups: [partners], policies: [partner-limit]}
policies:
  apikey: {key-auth: {key_names: [x-api-key], hide_credentials: true}}
  per-consumer: {rate-limit: {strategy: fixed_window, limits: {minute: 2}, by: consumer}}
  partner-limit: {rate-limit: {strategy: fixed_window, limits: {minute: 4}, by: consumer}}
  first-party-only: {acl: {allow: [first-party, partners]}}
  headers: {security-headers: {}}
global_policies:
  - {policy: headers, except: [open]}
routes:
  - {name: api, match: {path_prefix: /api}, upstream: app, policies: [per-consumer, apikey, first-party-only]}
  - {name: open, match: {path_prefix: /open}, upstream: app}
`
}

func TestPoliciesApplyPerRouteConsumerAndGlobally(t *testing.T) {
	g, _ := newGateway(t, policiesConfig(echo(t).URL))
	call := func(path, key string) (*httptest.ResponseRecorder, seen) {
		r := httptest.NewRequest("GET", path, nil)
		if key != "" {
			r.Header.Set("X-Api-Key", key)
		}
		return do(t, g, r)
	}

	if w, _ := call("/api/x", ""); w.Code != http.StatusUnauthorized || !strings.Contains(w.Header().Get("WWW-Authenticate"), "Key") {
		t.Fatalf("no key: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if w, _ := call("/api/x", "wrong"); w.Code != http.StatusUnauthorized {
		t.Fatalf("wrong key: %d", w.Code)
	}
	w, s := call("/api/x", "web-secret")
	if w.Code != 200 {
		t.Fatalf("valid key: %d %s", w.Code, w.Body)
	}
	if s.Headers.Get("X-Consumer-Name") != "web-app" || s.Headers.Get("X-Api-Key") != "" {
		t.Errorf("upstream saw consumer %q and key %q; want web-app and the key hidden", s.Headers.Get("X-Consumer-Name"), s.Headers.Get("X-Api-Key"))
	}
	if w.Header().Get("X-Frame-Options") == "" {
		t.Error("the global security-headers policy did not apply to /api")
	}
	if w.Header().Get("RateLimit-Limit") != "2" {
		t.Errorf("RateLimit-Limit = %q, want the route's 2", w.Header().Get("RateLimit-Limit"))
	}
	call("/api/x", "web-secret")
	if w, _ := call("/api/x", "web-secret"); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Fatalf("third call in a minute: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}

	// The partner's own limit (4) replaces the route's (2).
	for i := 1; i <= 4; i++ {
		if w, _ := call("/api/x", "partner-secret"); w.Code != 200 || w.Header().Get("RateLimit-Limit") != "4" {
			t.Fatalf("partner call %d: %d, RateLimit-Limit %q", i, w.Code, w.Header().Get("RateLimit-Limit"))
		}
	}
	if w, _ := call("/api/x", "partner-secret"); w.Code != http.StatusTooManyRequests {
		t.Fatalf("partner's fifth call: %d", w.Code)
	}

	w, _ = call("/open/x", "")
	if w.Code != 200 || w.Header().Get("X-Frame-Options") != "" {
		t.Errorf("/open (excepted from the global policy): %d, X-Frame-Options %q", w.Code, w.Header().Get("X-Frame-Options"))
	}
}

func TestPolicyConfigErrorsNameTheField(t *testing.T) {
	err := parseErr(`admin: "off"
upstreams:
  app: {targets: [{url: "http://127.0.0.1:1"}]}
policies:
  limit: {rate-limit: {limits: {minute: 0}}, cache: {}}
  nokey: {}
routes:
  - {name: r, match: {path_prefix: /}, upstream: app, policies: [limit, missing]}
global_policies: [{policy: nokey, except: [nowhere]}]
`)
	for _, want := range []string{
		`policies.limit: a policy has exactly one type key; this one sets 2`,
		`policies.nokey: a policy needs exactly one type key`,
		`routes[0].policies[1]: unknown policy "missing"`,
		`global_policies[0].except[0]: no route or BFF is named "nowhere"`,
	} {
		if !strings.Contains(err, want) {
			t.Errorf("errors lack %q:\n%s", want, err)
		}
	}
}
