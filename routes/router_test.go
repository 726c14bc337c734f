package routes

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/reqctx"
)

// named answers with its route name, so a test can see which route took the request.
func named(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Route", name)
	})
}

func mustRouter(t testing.TB, routes []struct {
	name string
	m    MatchConfig
}) *Router {
	t.Helper()
	r := NewRouter()
	for _, rt := range routes {
		if err := r.Handle(rt.name, rt.m, named(rt.name)); err != nil {
			t.Fatalf("Handle(%s): %v", rt.name, err)
		}
	}
	return r
}

type routeDecl = struct {
	name string
	m    MatchConfig
}

func TestMatchPrecedence(t *testing.T) {
	r := mustRouter(t, []routeDecl{
		{"prefix-users", MatchConfig{PathPrefix: "/users"}},
		{"exact-users", MatchConfig{Path: "/users"}},
		{"prefix-admin", MatchConfig{PathPrefix: "/users/admin"}},
		{"regex-id", MatchConfig{PathRegex: `/items/[0-9]+`}},
		{"regex-any", MatchConfig{PathRegex: `/items/.*`}},
		{"api-any", MatchConfig{PathPrefix: "/api"}},
		{"api-mobile", MatchConfig{PathPrefix: "/api", Headers: map[string]string{"X-Client-Type": "mobile"}}},
		{"api-mobile-beta", MatchConfig{PathPrefix: "/api", Headers: map[string]string{"X-Client-Type": "mobile", "x-beta": "*"}}},
		{"api-host", MatchConfig{PathPrefix: "/api", Hosts: []string{"API.example.com:443"}}},
		{"orders-rw", MatchConfig{PathPrefix: "/orders", Methods: []string{"get", "POST"}}},
		{"orders-admin", MatchConfig{PathPrefix: "/orders", Methods: []string{"DELETE"}, Headers: map[string]string{"X-Admin": "*"}}},
		{"wild", MatchConfig{PathPrefix: "/w", Hosts: []string{"*.example.com"}}},
		{"docs", MatchConfig{PathPrefix: "/docs/"}},
		{"first", MatchConfig{Path: "/dup"}},
		{"second", MatchConfig{Path: "/dup"}},
	})
	tests := []struct {
		name, method, host, path string
		headers                  map[string]string
		want                     string // route name, or "404"/"405"
		allow                    string
	}{
		{name: "exact beats prefix declared earlier", path: "/users", want: "exact-users"},
		{name: "prefix takes a sub-path", path: "/users/7", want: "prefix-users"},
		{name: "prefix takes trailing slash", path: "/users/", want: "prefix-users"},
		{name: "longest prefix wins", path: "/users/admin/x", want: "prefix-admin"},
		{name: "prefix stops at segment boundary", path: "/usersx", want: "404"},
		{name: "regex in declared order", path: "/items/42", want: "regex-id"},
		{name: "later regex when the first fails", path: "/items/abc", want: "regex-any"},
		{name: "regex is anchored", path: "/x/items/42", want: "404"},
		{name: "no host falls back to hostless", path: "/api/v1", want: "api-any"},
		{name: "host beats headers", host: "api.example.com", path: "/api/v1", headers: map[string]string{"X-Client-Type": "mobile"}, want: "api-host"},
		{name: "host is case-insensitive, port ignored", host: "Api.Example.COM:8443", path: "/api", want: "api-host"},
		{name: "header exact value", path: "/api/v1", headers: map[string]string{"X-Client-Type": "mobile"}, want: "api-mobile"},
		{name: "header wrong value", path: "/api/v1", headers: map[string]string{"X-Client-Type": "web"}, want: "api-any"},
		{name: "more headers beat fewer", path: "/api/v1", headers: map[string]string{"X-Client-Type": "mobile", "X-Beta": "yes"}, want: "api-mobile-beta"},
		{name: "method allowed", method: "POST", path: "/orders/1", want: "orders-rw"},
		{name: "method not allowed", method: "DELETE", path: "/orders/1", want: "405", allow: "GET, HEAD, POST"},
		{name: "GET implies HEAD", method: "HEAD", path: "/orders/1", want: "orders-rw"},
		{name: "method allowed by header route", method: "DELETE", path: "/orders/1", headers: map[string]string{"X-Admin": "1"}, want: "orders-admin"},
		{name: "allow lists every path match", method: "PUT", path: "/orders", headers: map[string]string{"X-Admin": "1"}, want: "405", allow: "DELETE, GET, HEAD, POST"},
		{name: "wildcard host", host: "shop.example.com", path: "/w", want: "wild"},
		{name: "wildcard host deeper", host: "a.b.example.com", path: "/w/x", want: "wild"},
		{name: "wildcard needs a label", host: "example.com", path: "/w", want: "404"},
		{name: "wildcard is a suffix on a dot", host: "badexample.com", path: "/w", want: "404"},
		{name: "slash prefix requires sub-path", path: "/docs", want: "404"},
		{name: "slash prefix takes itself", path: "/docs/", want: "docs"},
		{name: "slash prefix takes below", path: "/docs/a/b", want: "docs"},
		{name: "declaration order breaks ties", path: "/dup", want: "first"},
		{name: "nothing matches", path: "/nope", want: "404"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			req := httptest.NewRequest(method, "http://gateway.test"+tc.path, nil)
			if tc.host != "" {
				req.Host = tc.host
			}
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, req)
			switch tc.want {
			case "404":
				assertError(t, rec, http.StatusNotFound, "ROUTE_NOT_FOUND")
			case "405":
				assertError(t, rec, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
				if got := rec.Header().Get("Allow"); got != tc.allow {
					t.Errorf("Allow = %q, want %q", got, tc.allow)
				}
			default:
				if got := rec.Header().Get("X-Route"); got != tc.want {
					t.Errorf("route = %q (status %d), want %q", got, rec.Code, tc.want)
				}
			}
		})
	}
}

// A route whose method does not match is skipped, not a 405, when a less specific route takes the
// method: "/" catch-alls keep working for a monolith behind narrower routes.
func TestMethodMismatchFallsThrough(t *testing.T) {
	r := mustRouter(t, []routeDecl{
		{"health-get", MatchConfig{Path: "/health", Methods: []string{"GET"}}},
		{"monolith", MatchConfig{PathPrefix: "/"}},
	})
	tests := []struct{ name, method, want string }{
		{"exact route takes its method", "GET", "health-get"},
		{"other methods fall to the catch-all", "POST", "monolith"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, httptest.NewRequest(tc.method, "/health", nil))
			if got := rec.Header().Get("X-Route"); got != tc.want {
				t.Errorf("route = %q, want %q", got, tc.want)
			}
		})
	}
}

// A CORS preflight is routed by the method it asks about, so the route that will take the POST
// (and its cors policy) answers it: matched as OPTIONS it was a 405 on every route with a
// methods list, or went to a shorter catch-all with another cors policy.
func TestPreflightRoutedByRequestedMethod(t *testing.T) {
	r := mustRouter(t, []routeDecl{
		{"orders", MatchConfig{PathPrefix: "/orders", Methods: []string{"GET", "POST"}}},
		{"own-options", MatchConfig{PathPrefix: "/legacy", Methods: []string{"POST", "OPTIONS"}}},
		{"legacy-get", MatchConfig{PathPrefix: "/legacy/items", Methods: []string{"GET"}}},
		{"api-orders", MatchConfig{PathPrefix: "/api/orders", Methods: []string{"POST"}}},
		{"api", MatchConfig{PathPrefix: "/api"}},
	})
	tests := []struct {
		name, path, acrm string
		origin           bool
		want             string // route, or "405"
	}{
		{"preflight for POST", "/orders/1", "POST", true, "orders"},
		{"preflight for a method the route lacks", "/orders/1", "DELETE", true, "405"},
		{"OPTIONS without Origin is no preflight", "/orders/1", "POST", false, "405"},
		{"OPTIONS without a requested method is no preflight", "/orders/1", "", true, "405"},
		{"a route listing OPTIONS keeps its preflights", "/legacy/items/1", "GET", true, "own-options"},
		{"the longer route that takes the method, not the catch-all", "/api/orders/1", "POST", true, "api-orders"},
		{"requested method no route takes: the OPTIONS match stands", "/api/orders/1", "PATCH", true, "api"},
		{"a requested method that is no token", "/orders/1", "PO ST", true, "405"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodOptions, tc.path, nil)
			if tc.origin {
				req.Header.Set("Origin", "https://app.example.com")
			}
			if tc.acrm != "" {
				req.Header.Set("Access-Control-Request-Method", tc.acrm)
			}
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, req)
			got := rec.Header().Get("X-Route")
			if rec.Code == http.StatusMethodNotAllowed {
				got = "405"
			}
			if got != tc.want {
				t.Errorf("got %q (status %d), want %q", got, rec.Code, tc.want)
			}
		})
	}
}

func assertError(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d (body %s)", rec.Code, status, rec.Body)
	}
	var body struct {
		Error struct {
			Code      string `json:"code"`
			Message   string `json:"message"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, rec.Body)
	}
	if body.Error.Code != code {
		t.Errorf("code = %q, want %q", body.Error.Code, code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
}

func TestRouterSetsRouteName(t *testing.T) {
	r := mustRouter(t, []routeDecl{{"orders", MatchConfig{PathPrefix: "/orders"}}})
	seen := make(chan reqctx.Info, 1)
	rec := httptest.NewRecorder()
	withInfo(r, seen).ServeHTTP(rec, httptest.NewRequest("GET", "/orders/1", nil))
	if info := <-seen; info.Route != "orders" {
		t.Errorf("Info.Route = %q, want orders", info.Route)
	}
	// Without an Info (unit tests, background calls) the router must not panic.
	r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/orders/1", nil))
}

func TestNotFoundCarriesRequestID(t *testing.T) {
	rec := httptest.NewRecorder()
	withInfo(NewRouter(), nil).ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	if !strings.Contains(rec.Body.String(), `"request_id":"req-123"`) {
		t.Errorf("404 body %s lacks the request id", rec.Body)
	}
}

func TestHandleRejectsBadMatch(t *testing.T) {
	tests := []struct {
		name string
		m    MatchConfig
		want string
	}{
		{"two path kinds", MatchConfig{Path: "/a", PathPrefix: "/a"}, "only one of"},
		{"relative path", MatchConfig{Path: "a"}, `must start with "/"`},
		{"relative prefix", MatchConfig{PathPrefix: "api"}, `must start with "/"`},
		{"bad regex", MatchConfig{PathRegex: "/(unclosed"}, "path_regex"},
		{"inner wildcard", MatchConfig{Hosts: []string{"api.*.com"}}, "wildcard"},
		{"empty host", MatchConfig{Hosts: []string{" "}}, "empty host"},
		{"empty header name", MatchConfig{Headers: map[string]string{"": "x"}}, "header name"},
		{"empty method", MatchConfig{Methods: []string{""}}, "empty method"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := NewRouter().Handle("r", tc.m, named("r"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Handle error = %v, want containing %q", err, tc.want)
			}
		})
	}
	if err := NewRouter().Handle("r", MatchConfig{}, nil); err == nil {
		t.Error("Handle with a nil handler succeeded")
	}
}

func TestMatchAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates; run without -race")
	}
	r := benchRouter(t, 100)
	for _, path := range []string{"/exact/7", "/svc/14/orders/42/items", "/nothing/here"} {
		req := httptest.NewRequest("GET", "http://svc.example.com"+path, nil)
		req.Header.Set("X-Tenant", "acme")
		if n := testing.AllocsPerRun(100, func() { r.match(req) }); n != 0 {
			t.Errorf("match(%s) allocates %v times, want 0", path, n)
		}
	}
}

// benchRouter builds n routes: 40% exact, 50% prefix (some with hosts or headers), 10% regex.
func benchRouter(t testing.TB, n int) *Router {
	r := NewRouter()
	for i := 0; i < n; i++ {
		var m MatchConfig
		switch {
		case i%10 == 9:
			m.PathRegex = fmt.Sprintf(`/re%d/[0-9]+`, i)
		case i%10 < 4:
			m.Path = fmt.Sprintf("/exact/%d", i)
			m.Methods = []string{"GET", "POST"}
		default:
			m.PathPrefix = fmt.Sprintf("/svc/%d", i%50)
			if i%3 == 0 {
				m.Hosts = []string{"*.example.com"}
			}
			if i%4 == 0 {
				m.Headers = map[string]string{"X-Tenant": "acme"}
			}
		}
		if err := r.Handle(fmt.Sprintf("r%d", i), m, named("x")); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// BenchmarkMatch measures matching alone: go test -bench Match -benchmem ./routes/
func BenchmarkMatch(b *testing.B) {
	one := NewRouter()
	if err := one.Handle("api", MatchConfig{PathPrefix: "/api"}, named("api")); err != nil {
		b.Fatal(err)
	}
	hundred := benchRouter(b, 100)
	cases := []struct {
		name string
		r    *Router
		path string
	}{
		{"1route/prefix", one, "/api/v1/orders/42"},
		{"100routes/exact", hundred, "/exact/13"},
		{"100routes/prefix", hundred, "/svc/14/orders/42/items"},
		{"100routes/regex", hundred, "/re89/12345"},
		{"100routes/miss", hundred, "/nothing/here/at/all"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", "http://svc.example.com"+c.path, nil)
			req.Header.Set("X-Tenant", "acme")
			b.ReportAllocs()
			for b.Loop() {
				c.r.match(req)
			}
		})
	}
}

// A query longer than net/url will parse is refused: policies would see part of it, the backend
// all of it.
func TestTooManyQueryParametersRejected(t *testing.T) {
	r := mustRouter(t, []routeDecl{{"public", MatchConfig{PathPrefix: "/public"}}})
	for n, ok := range map[int]bool{100: true, maxQueryParams: true, maxQueryParams + 1: false} {
		q := strings.TrimSuffix(strings.Repeat("a=1&", n), "&")
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest("GET", "/public/x?"+q, nil))
		if ok && rec.Header().Get("X-Route") != "public" {
			t.Errorf("%d parameters: status %d, want the route", n, rec.Code)
		}
		if !ok {
			assertError(t, rec, http.StatusBadRequest, "BAD_REQUEST")
		}
	}
}

func TestDotSegmentsRejected(t *testing.T) {
	r := mustRouter(t, []routeDecl{{"public", MatchConfig{PathPrefix: "/public"}}})
	tests := []struct {
		name, target string
		ok           bool
	}{
		{"dot-dot escapes the prefix", "/public/../admin", false},
		{"encoded dot-dot", "/public/%2e%2e/admin", false},
		{"single dot", "/public/./x", false},
		{"trailing dot-dot", "/public/..", false},
		{"dot-dot with a path parameter (Tomcat, Spring)", "/public/..;/admin", false},
		{"encoded dot-dot with a parameter", "/public/%2e%2e;x/admin", false},
		{"dot-dot before an encoded backslash (IIS)", "/public/..%5Cadmin", false},
		{"dot-dot after an encoded backslash", "/public%5C..%5Cadmin", false},
		{"dots inside a name", "/public/a..b/.well-known/x.y", true},
		{"a parameter on a name", "/public/a;v=1/x", true},
		{"three dots is a name", "/public/...", true},
		// "/public/a%00/../x" aside, a NUL cuts the path short in C and PHP backends.
		{"encoded NUL", "/public/a%00/x", false},
		{"encoded NUL at the end", "/public%00", false},
		{"an encoded control byte other than NUL", "/public/a%01b", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, httptest.NewRequest("GET", tc.target, nil))
			if tc.ok {
				if rec.Header().Get("X-Route") != "public" {
					t.Errorf("status %d, want the public route", rec.Code)
				}
				return
			}
			assertError(t, rec, http.StatusBadRequest, "BAD_REQUEST")
		})
	}
}

// Routes match the path as Tomcat and Spring map it: each segment's ";parameters" removed.
// "/admin;x/users" is /admin/users to such a backend, so it must meet the /admin route and its
// policies, not miss it (and fall to a catch-all that forwards it there). An encoded ";" is data (those
// backends cut parameters before decoding), so "%3B" stays part of the segment's name.
func TestRoutingIgnoresPathParameters(t *testing.T) {
	r := mustRouter(t, []routeDecl{
		{"admin-exact", MatchConfig{Path: "/admin"}},
		{"admin", MatchConfig{PathPrefix: "/admin"}},
		{"admin-users", MatchConfig{PathPrefix: "/admin/users"}},
		{"report", MatchConfig{PathRegex: `/reports/[0-9]+/pdf`}},
		{"literal-semicolon", MatchConfig{Path: "/a;b"}},
	})
	tests := []struct {
		name, target string
		want         string // route name, or "404"
	}{
		{"exact with a parameter", "/admin;x", "admin-exact"},
		{"exact with an empty parameter", "/admin;", "admin-exact"},
		{"prefix with a parameter on its last segment", "/admin;x/users", "admin-users"},
		{"prefix with an empty parameter", "/admin;/users", "admin-users"},
		{"prefix with a parameter below it", "/admin/settings;jsessionid=1", "admin"},
		{"parameters on every segment", "/admin;a=1/users;b=2/7;c", "admin-users"},
		{"parameter in the middle of a prefix", "/admin;x/users/7", "admin-users"},
		{"a segment of parameters only", "/;x/admin/users", "admin-users"},
		{"prefix boundary still holds", "/adminx;y", "404"},
		{"prefix boundary still holds below", "/adminx;y/users", "404"},
		{"regex", "/reports;v=2/42;x/pdf", "report"},
		{"encoded ; is data, not a parameter", "/admin%3Bx/users", "404"},
		{"encoded ; matches a literal route", "/a%3Bb", "literal-semicolon"},
		{"encoded ; next to a parameter", "/a%3Bb;x", "literal-semicolon"},
		{"literal ; is a parameter", "/a;b", "404"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, httptest.NewRequest("GET", tc.target, nil))
			if tc.want == "404" {
				assertError(t, rec, http.StatusNotFound, "ROUTE_NOT_FOUND")
				return
			}
			if got := rec.Header().Get("X-Route"); got != tc.want {
				t.Errorf("%s: route = %q (status %d), want %q", tc.target, got, rec.Code, tc.want)
			}
		})
	}
}

// The 405's Allow lists the methods of the routes the parameter-free path matches.
func TestPathParametersInAllow(t *testing.T) {
	r := mustRouter(t, []routeDecl{{"admin", MatchConfig{PathPrefix: "/admin", Methods: []string{"POST"}}}})
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest("DELETE", "/admin;x/users", nil))
	assertError(t, rec, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
	if got := rec.Header().Get("Allow"); got != "POST" {
		t.Errorf("Allow = %q, want POST", got)
	}
}

// "/admin;x/users" (which Tomcat and Spring serve as /admin/users) is routed to the /admin route,
// with its policies, and not to the catch-all in front of such a monolith. The forwarded path
// keeps its parameters: routing reads them away, forwarding does not.
func TestPathParameterDoesNotSkipPrefixRoute(t *testing.T) {
	monolithGot := make(chan string, 1)
	monolith := upstreamFunc(func(r *http.Request) (*http.Response, error) {
		monolithGot <- r.URL.Path
		return staticUpstream(200, "{}").RoundTrip(r)
	})
	adminGot := make(chan string, 1)
	admin := upstreamFunc(func(r *http.Request) (*http.Response, error) {
		adminGot <- r.URL.EscapedPath()
		return staticUpstream(200, "{}").RoundTrip(r)
	})
	gw, _ := gateway(t, []Config{
		{Name: "admin", Match: MatchConfig{PathPrefix: "/admin"}, Upstream: "admin"},
		{Name: "legacy", Match: MatchConfig{PathPrefix: "/"}, Upstream: "monolith"},
	}, Deps{Upstream: lookup(map[string]http.RoundTripper{"admin": admin, "monolith": monolith})})
	resp, err := http.Get(gw.URL + "/admin;x/users")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case p := <-monolithGot:
		t.Fatalf("%q was routed to the catch-all (status %d), not to the /admin route", p, resp.StatusCode)
	case p := <-adminGot:
		if p != "/admin;x/users" {
			t.Errorf("admin upstream got %q, want the path as sent", p)
		}
	default:
		t.Fatalf("no upstream called (status %d)", resp.StatusCode)
	}
}

// BenchmarkMatchPathParameters measures the one routing path that allocates: a path with ';'.
func BenchmarkMatchPathParameters(b *testing.B) {
	r := benchRouter(b, 100)
	req := httptest.NewRequest("GET", "http://svc.example.com/svc/14;jsessionid=abc/orders/42", nil)
	req.Header.Set("X-Tenant", "acme")
	b.ReportAllocs()
	for b.Loop() {
		r.match(req)
	}
}

// TRACE is refused (a backend echoes the request as it got it, with the fields the route adds)
// unless the route lists it.
func TestTraceRefusedUnlessListed(t *testing.T) {
	r := mustRouter(t, []routeDecl{
		{"any", MatchConfig{PathPrefix: "/any"}},
		{"some", MatchConfig{PathPrefix: "/some", Methods: []string{"GET", "POST"}}},
		{"traced", MatchConfig{PathPrefix: "/traced", Methods: []string{"GET", "TRACE"}}},
	})
	for target, allow := range map[string]string{"/any/x": "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS", "/some/x": "GET, HEAD, POST"} {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest("TRACE", target, nil))
		assertError(t, rec, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
		if got := rec.Header().Get("Allow"); got != allow {
			t.Errorf("TRACE %s: Allow %q, want %q", target, got, allow)
		}
	}
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest("TRACE", "/traced/x", nil))
	if rec.Header().Get("X-Route") != "traced" {
		t.Errorf("TRACE on a route that lists it: status %d, want the route", rec.Code)
	}

	// An endpoint (a BFF) answers TRACE itself, with the Allow of what it serves there.
	endpoint := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Allow", "GET, POST, OPTIONS")
		w.WriteHeader(http.StatusMethodNotAllowed)
	})
	if err := r.HandleEndpoint("bff", MatchConfig{PathPrefix: "/bff"}, endpoint); err != nil {
		t.Fatal(err)
	}
	rec = httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest("TRACE", "/bff/graphql", nil))
	if got := rec.Header().Get("Allow"); rec.Code != http.StatusMethodNotAllowed || got != "GET, POST, OPTIONS" {
		t.Errorf("TRACE on an endpoint: %d with Allow %q; want the endpoint's own 405 and Allow", rec.Code, got)
	}
}
