package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portico-gw/portico/internal/config"
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

// BenchmarkFullChain measures the edge plus a full policy chain (key-auth, JWT, rate limit, a
// cache hit) in process, without sockets: the per-request overhead Portico adds before the
// network. BenchmarkHarness is what building the request and recorder costs in these numbers.
func BenchmarkFullChain(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	defer backend.Close()
	const secret = "bench-secret-bench-secret-bench-secret!"
	g := benchGateway(b, `admin: "off"
access_log: {enabled: false}
upstreams:
  app: {targets: [{url: "`+backend.URL+`"}]}
consumers:
  - {name: bench, keys: [bench-key], jwt: {key: bench}}
policies:
  key: {key-auth: {key_names: [x-api-key]}}
  token: {jwt: {issuers: [{issuer: bench, algorithms: [HS256], keys: [{kid: k1, secret: "`+secret+`"}]}]}}
  limit: {rate-limit: {strategy: sliding_window, limits: {second: 1000000000}}}
  cache: {cache: {ttl: 1h}}
routes:
  - {name: app, match: {path_prefix: /}, upstream: app, policies: [token, key, limit, cache]}
`)
	// token before key: the first valid credential names the identity, and the cache shares an
	// answer only among requests of one subject, which a key-auth identity does not have.
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": "bench", "sub": "u1", "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(secret))
	if err != nil {
		b.Fatal(err)
	}
	req := func() *http.Request {
		r := httptest.NewRequest("GET", "/items", nil)
		r.Header.Set("X-Api-Key", "bench-key")
		r.Header.Set("Authorization", "Bearer "+tok)
		return r
	}
	w := httptest.NewRecorder()
	g.ServeHTTP(w, req())
	w = httptest.NewRecorder()
	g.ServeHTTP(w, req())
	if w.Code != 200 || w.Header().Get("X-Cache-Status") != "Hit" {
		b.Fatalf("warm-up: %d, X-Cache-Status %q", w.Code, w.Header().Get("X-Cache-Status"))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := httptest.NewRecorder()
		g.ServeHTTP(w, req())
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// BenchmarkCacheHitNoAuth is the cache-hit path alone: the fastest answer Portico gives.
func BenchmarkCacheHitNoAuth(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	defer backend.Close()
	g := benchGateway(b, `admin: "off"
access_log: {enabled: false}
upstreams:
  app: {targets: [{url: "`+backend.URL+`"}]}
policies:
  cache: {cache: {ttl: 1h}}
routes:
  - {name: app, match: {path_prefix: /}, upstream: app, policies: [cache]}
`)
	g.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/items", nil))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := httptest.NewRecorder()
		g.ServeHTTP(w, httptest.NewRequest("GET", "/items", nil))
		if w.Header().Get("X-Cache-Status") != "Hit" {
			b.Fatalf("X-Cache-Status %q", w.Header().Get("X-Cache-Status"))
		}
	}
}

func benchGateway(b *testing.B, yaml string) *Gateway {
	b.Helper()
	f, err := config.Parse([]byte(yaml), "bench.yaml")
	if err != nil {
		b.Fatal(err)
	}
	g, err := New(f, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(g.Close)
	return g
}

// BenchmarkHarness is the fixed cost of the in-process benchmarks above: building a request and
// a recorder, subtracted when quoting the chain's overhead.
func BenchmarkHarness(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r := httptest.NewRequest("GET", "/items", nil)
		r.Header.Set("X-Api-Key", "bench-key")
		r.Header.Set("Authorization", "Bearer x")
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
}

// Review findings: a consumer's config must never loosen a route's authorization, a policy
// listed twice must not run twice, and a route must not silently shadow a BFF.
func TestConsumerPolicyRulesAndShadowing(t *testing.T) {
	err := parseErr(`admin: "off"
upstreams:
  app: {targets: [{url: "http://127.0.0.1:1"}]}
consumers:
  - {name: partner, keys: [k], groups: [partners], policies: [partner-acl]}
policies:
  partner-acl: {acl: {allow: [partners]}}
  lim: {rate-limit: {limits: {minute: 4}}}
routes:
  - {name: admin, match: {path_prefix: /admin}, upstream: app, policies: [lim, lim]}
  - {name: web-legacy, match: {path_prefix: /web}, upstream: app}
bffs:
  web: {path: /web}
`)
	for _, want := range []string{
		`consumers[0].policies[0]: policy "partner-acl" has type acl; a consumer's own policies may only be rate-limit, cache, request-transform or response-transform`,
		`routes[0].policies[1]: policy "lim" is listed twice`,
		`routes[1].match: route "web-legacy" would take requests for BFF "web"'s path "/web"`,
	} {
		if !strings.Contains(err, want) {
			t.Errorf("errors lack %q:\n%s", want, err)
		}
	}
}

func TestAnonymousHeaderOnlyFromPortico(t *testing.T) {
	g, _ := newGateway(t, `admin: "off"
access_log: {enabled: false}
upstreams:
  app: {targets: [{url: "`+echo(t).URL+`"}]}
consumers: [{name: guest}, {name: app, keys: [k]}]
policies:
  key: {key-auth: {anonymous: guest}}
routes:
  - {name: open, match: {path_prefix: /open}, upstream: app}
  - {name: keyed, match: {path_prefix: /keyed}, upstream: app, policies: [key]}
`)
	r := httptest.NewRequest("GET", "/open/x", nil)
	r.Header.Set("X-Anonymous-Consumer", "true")
	if _, s := do(t, g, r); s.Headers.Get("X-Anonymous-Consumer") != "" {
		t.Error("a client-sent X-Anonymous-Consumer reached the upstream")
	}
	if _, s := do(t, g, httptest.NewRequest("GET", "/keyed/x", nil)); s.Headers.Get("X-Anonymous-Consumer") != "true" || s.Headers.Get("X-Consumer-Name") != "guest" {
		t.Errorf("anonymous fallback: upstream saw %v", s.Headers)
	}
	r = httptest.NewRequest("GET", "/keyed/x", nil)
	r.Header.Set("apikey", "k")
	r.Header.Set("X-Anonymous-Consumer", "true")
	if _, s := do(t, g, r); s.Headers.Get("X-Anonymous-Consumer") != "" || s.Headers.Get("X-Consumer-Name") != "app" {
		t.Errorf("authenticated: upstream saw %v", s.Headers)
	}
}

// Security review: a cache must never replay one client's per-request values or per-user answers
// to another client.
func TestCacheNeverReplaysPerClientData(t *testing.T) {
	var calls atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"user":"` + r.Header.Get("Authorization") + r.Header.Get("Cookie") + `"}`))
	}))
	defer backend.Close()
	g, _ := newGateway(t, `admin: "off"
access_log: {enabled: false}
upstreams:
  app: {targets: [{url: "`+backend.URL+`"}]}
consumers: [{name: guest}, {name: app, keys: [k]}]
policies:
  cache: {cache: {ttl: 1h}}
  stamp: {response-transform: {headers: {add: {X-Echo: "$(header.X-Foo)", X-Req: "$(request_id)"}}}}
  key: {key-auth: {anonymous: guest}}
routes:
  - {name: r, match: {path_prefix: /}, upstream: app, policies: [cache, stamp, key]}
`)
	get := func(h map[string]string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/items", nil)
		for k, v := range h {
			r.Header.Set(k, v)
		}
		w, _ := do(t, g, r)
		return w
	}
	first := get(map[string]string{"X-Foo": "<script>attacker</script>"})
	second := get(nil)
	if second.Header().Get("X-Cache-Status") != "Hit" {
		t.Fatalf("second plain request: X-Cache-Status %q, want Hit", second.Header().Get("X-Cache-Status"))
	}
	if got := second.Header().Get("X-Echo"); got != "" {
		t.Errorf("a hit replayed the first client's header value %q", got)
	}
	if second.Header().Get("X-Req") != second.Header().Get("X-Request-ID") || second.Header().Get("X-Req") == first.Header().Get("X-Req") {
		t.Errorf("a hit carried X-Req %q, want its own request ID %q", second.Header().Get("X-Req"), second.Header().Get("X-Request-ID"))
	}

	for _, h := range []map[string]string{{"Authorization": "Bearer alice"}, {"Cookie": "session=alice"}} {
		before := calls.Load()
		a := get(h)
		b := get(map[string]string{"Authorization": "Bearer bob", "Cookie": "session=bob"})
		if strings.Contains(b.Body.String(), "alice") || a.Header().Get("X-Cache-Status") != "Bypass" {
			t.Errorf("%v: status %q, then another user got %s", h, a.Header().Get("X-Cache-Status"), b.Body)
		}
		if calls.Load() != before+2 {
			t.Errorf("%v: %d upstream calls for two per-user requests, want 2", h, calls.Load()-before)
		}
	}
}

// A request-transform runs inside the cache, so the cache key sees the request as the client sent
// it; values the transform renders from the request are keyed too, or the answer fetched with one
// client's X-Lang (moved into the query) was served to a client sending another. A transform
// rendering only $(request_id) still lets requests share an entry.
func TestCacheKeysOnWhatARequestTransformRenders(t *testing.T) {
	var calls atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"lang":"` + r.URL.Query().Get("lang") + `","ip":"` + r.Header.Get("X-Client") + `"}`))
	}))
	defer backend.Close()
	g, _ := newGateway(t, `admin: "off"
access_log: {enabled: false}
upstreams:
  app: {targets: [{url: "`+backend.URL+`"}]}
policies:
  cache: {cache: {ttl: 1h}}
  lang: {request-transform: {query: {add: {lang: "$(header.X-Lang)"}}, headers: {add: {X-Client: "$(client_ip)"}}}}
  trace: {request-transform: {headers: {add: {X-Trace: "$(request_id)", X-Tag: "$(uuid)"}}}}
routes:
  - {name: r, match: {path_prefix: /r}, upstream: app, policies: [cache, lang]}
  - {name: t, match: {path_prefix: /t}, upstream: app, policies: [cache, trace]}
`)
	get := func(path, lang, ip string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("X-Lang", lang)
		r.RemoteAddr = ip + ":1234"
		w, _ := do(t, g, r)
		return w
	}
	for _, tc := range []struct {
		lang, ip, want, status string
	}{
		{"de", "192.0.2.1", `{"lang":"de","ip":"192.0.2.1"}`, "Miss"},
		{"fr", "192.0.2.1", `{"lang":"fr","ip":"192.0.2.1"}`, "Miss"},
		{"de", "192.0.2.2", `{"lang":"de","ip":"192.0.2.2"}`, "Miss"},
		{"de", "192.0.2.1", `{"lang":"de","ip":"192.0.2.1"}`, "Hit"},
	} {
		w := get("/r/x", tc.lang, tc.ip)
		if w.Body.String() != tc.want || w.Header().Get("X-Cache-Status") != tc.status {
			t.Errorf("X-Lang %s from %s: %s %q, want %s %q", tc.lang, tc.ip, w.Header().Get("X-Cache-Status"), w.Body, tc.status, tc.want)
		}
	}
	if calls.Load() != 3 {
		t.Errorf("%d upstream calls, want 3", calls.Load())
	}
	get("/t/x", "de", "192.0.2.1")
	if w := get("/t/x", "fr", "192.0.2.2"); w.Header().Get("X-Cache-Status") != "Hit" {
		t.Errorf("a transform adding only $(request_id) and $(uuid): second request %q, want Hit", w.Header().Get("X-Cache-Status"))
	}
}

// The key replays request transforms in order: one renaming X-Foo to X-Lang feeds another that
// puts $(header.X-Lang) in the query. And consumers whose own transforms differ (here behind a
// public cache, whose key holds no identity) never share an entry, static edits included.
func TestCacheKeysOnChainedAndPerConsumerTransforms(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"q":"` + r.URL.RawQuery + `","tier":"` + r.Header.Get("X-Tier") + `"}`))
	}))
	defer backend.Close()
	g, _ := newGateway(t, `admin: "off"
access_log: {enabled: false}
upstreams:
  app: {targets: [{url: "`+backend.URL+`"}]}
consumers:
  - {name: gold, keys: [gold-key], policies: [tg]}
  - {name: silver, keys: [silver-key], policies: [ts]}
policies:
  cache: {cache: {ttl: 1h}}
  pub: {cache: {ttl: 1h, public: true}}
  mv: {request-transform: {headers: {rename: {X-Foo: X-Lang}}}}
  lang: {request-transform: {query: {add: {lang: "$(header.X-Lang)"}}}}
  key: {key-auth: {}}
  tg: {request-transform: {headers: {add: {X-Tier: gold}}}}
  ts: {request-transform: {headers: {add: {X-Tier: silver}}}}
routes:
  - {name: chain, match: {path_prefix: /chain}, upstream: app, policies: [cache, mv, lang]}
  - {name: tiers, match: {path_prefix: /tiers}, upstream: app, policies: [key, pub]}
`)
	get := func(path string, h ...string) string {
		r := httptest.NewRequest("GET", path, nil)
		for i := 0; i+1 < len(h); i += 2 {
			r.Header.Set(h[i], h[i+1])
		}
		w, _ := do(t, g, r)
		return w.Header().Get("X-Cache-Status") + " " + w.Body.String()
	}
	for _, tc := range []struct{ got, want string }{
		{get("/chain/x", "X-Foo", "de"), `Miss {"q":"lang=de","tier":""}`},
		{get("/chain/x", "X-Foo", "fr"), `Miss {"q":"lang=fr","tier":""}`},
		{get("/chain/x", "X-Foo", "de"), `Hit {"q":"lang=de","tier":""}`},
		{get("/tiers/x", "apikey", "gold-key"), `Miss {"q":"","tier":"gold"}`},
		{get("/tiers/x", "apikey", "silver-key"), `Miss {"q":"","tier":"silver"}`},
		{get("/tiers/x", "apikey", "gold-key"), `Hit {"q":"","tier":"gold"}`},
	} {
		if tc.got != tc.want {
			t.Errorf("got %s, want %s", tc.got, tc.want)
		}
	}
}

// A reload keeps in-memory rate-limit counters whose policy did not change, and restarts those
// of a policy that did: a ConfigMap update must not hand every client a fresh allowance.
func TestReloadKeepsUnchangedRateLimitCounters(t *testing.T) {
	backend := echo(t).URL
	g, _ := newGateway(t, policiesConfig(backend))
	call := func() int {
		r := httptest.NewRequest("GET", "/api/x", nil)
		r.Header.Set("X-Api-Key", "web-secret")
		w, _ := do(t, g, r)
		return w.Code
	}
	apply := func(yaml string) {
		t.Helper()
		f, err := config.Parse([]byte(yaml), "test.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Apply(f); err != nil {
			t.Fatal(err)
		}
	}
	if a, b := call(), call(); a != 200 || b != 200 {
		t.Fatalf("first two calls: %d %d", a, b)
	}
	// Another route appears; the limit is the same.
	apply(policiesConfig(backend) + "  - {name: extra, match: {path_prefix: /extra}, upstream: app}\n")
	if c := call(); c != http.StatusTooManyRequests {
		t.Fatalf("third call after a reload that kept the limit: %d, want 429", c)
	}
	// The limit itself changes: its counters start afresh.
	apply(strings.Replace(policiesConfig(backend), "limits: {minute: 2}, by: consumer", "limits: {minute: 3}, by: consumer", 1))
	if c := call(); c != 200 {
		t.Fatalf("first call under a changed limit: %d, want 200", c)
	}
}

// The GraphiQL page sets a CSP that lets it load, and a global security-headers policy keeps it:
// the policy's default (default-src 'none') left the demo's playground blank.
func TestPlaygroundKeepsItsCSPUnderSecurityHeaders(t *testing.T) {
	g, _ := newGateway(t, `admin: "off"
access_log: {enabled: false}
upstreams:
  users: {targets: [{url: "`+echo(t).URL+`"}]}
  orders: {targets: [{url: "`+echo(t).URL+`"}]}
  payments: {targets: [{url: "`+echo(t).URL+`"}]}
  notifications: {targets: [{url: "`+echo(t).URL+`"}]}
policies:
  secure: {security-headers: {}}
global_policies: [secure]
bffs:
  web: {path: /web, playground: true}
`)
	w := httptest.NewRecorder()
	g.ServeHTTP(w, httptest.NewRequest("GET", "/web/playground", nil))
	csp := w.Header().Get("Content-Security-Policy")
	if w.Code != 200 || !strings.Contains(csp, "script-src 'unsafe-inline' https://cdn.jsdelivr.net") || !strings.Contains(csp, "connect-src 'self'") {
		t.Fatalf("playground: %d, CSP %q", w.Code, csp)
	}
	if w.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Error("the other security headers are gone")
	}
	w = httptest.NewRecorder()
	g.ServeHTTP(w, httptest.NewRequest("GET", "/web/openapi.json", nil))
	if csp := w.Header().Get("Content-Security-Policy"); strings.Contains(csp, "jsdelivr") {
		t.Errorf("the playground's CSP reached another path: %q", csp)
	}
}

// A config with BFFs must define the upstreams their resolvers call: without users it validated
// and started, and every users field failed as BAD_GATEWAY.
func TestBFFsNeedTheResolversUpstreams(t *testing.T) {
	f, err := config.Parse([]byte(`admin: "off"
upstreams:
  orders: {targets: [{url: "http://127.0.0.1:1"}]}
bffs:
  web: {path: /web}
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	err = Check(f, Options{Stdout: io.Discard})
	for _, want := range []string{`the resolvers call upstream "users", which upstreams does not define`, `"payments"`, `"notifications"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check err = %v, want %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), `upstream "orders"`) {
		t.Errorf("orders is defined: %v", err)
	}
}
