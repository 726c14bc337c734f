package bff_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/bff"
	"github.com/portico-gw/portico/testing/demo"
)

// TestRESTAnswersEqualGraphQLAnswers runs each REST route and the same stored operation over
// GraphQL and compares the REST body with the GraphQL data at the route's result path.
func TestRESTAnswersEqualGraphQLAnswers(t *testing.T) {
	e := newEnv(t, envOptions{})
	tests := []struct {
		profile, path, operation string
		vars                     map[string]any
		result                   string
	}{
		{"web", "/web/dashboard", "Dashboard", nil, ""},
		{"web", "/web/orders/o7", "OrderDetail", map[string]any{"id": "o7"}, "order"},
		{"web", "/web/orders?first=3", "MyOrders", map[string]any{"first": 3}, "orders"},
		{"mobile", "/mobile/home", "MobileHome", nil, "dashboard"},
		{"mobile", "/mobile/orders/o7", "MobileOrder", map[string]any{"id": "o7"}, "order"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			rest := e.do(t, http.MethodGet, tt.path, nil)
			if rest.status != http.StatusOK || rest.header.Get("Content-Type") != "application/json" {
				t.Fatalf("REST %d %s", rest.status, rest.body)
			}
			a := e.post(t, tt.profile, map[string]any{"operationName": tt.operation, "variables": tt.vars})
			r := a.graphql(t)
			if a.status != http.StatusOK || len(r.Errors) > 0 {
				t.Fatalf("GraphQL %d %s", a.status, a.body)
			}
			want := []byte(r.Data)
			if tt.result != "" {
				var m map[string]json.RawMessage
				if err := json.Unmarshal(r.Data, &m); err != nil {
					t.Fatal(err)
				}
				want = m[tt.result]
			}
			if !jsonEqual(t, rest.body, want) {
				t.Errorf("REST body\n%s\ndiffers from GraphQL data\n%s", rest.body, want)
			}
		})
	}
	t.Run("mobile is a trimmed shape of web", func(t *testing.T) {
		var web, mobile struct {
			Me map[string]any `json:"me"`
		}
		webBody := e.do(t, http.MethodGet, "/web/dashboard", nil).body
		var wrapped struct {
			Dashboard json.RawMessage `json:"dashboard"`
		}
		if err := json.Unmarshal(webBody, &wrapped); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal(wrapped.Dashboard, &web)
		mobileBody := e.do(t, http.MethodGet, "/mobile/home", nil).body
		_ = json.Unmarshal(mobileBody, &mobile)
		if len(mobile.Me) >= len(web.Me) || len(mobileBody) >= len(webBody) {
			t.Errorf("mobile home (%d bytes, me %v) is not smaller than web (%d bytes, me %v)", len(mobileBody), mobile.Me, len(webBody), web.Me)
		}
	})
}

func TestRESTStatusesAndParameters(t *testing.T) {
	e := newEnv(t, envOptions{})
	tests := []struct {
		name        string
		method      string
		path        string
		body        string
		contentType string
		encoding    string // Content-Encoding
		status      int
		code        string
		mention     string // the error message names this
	}{
		{name: "missing order", method: "GET", path: "/web/orders/o999999", status: 404, code: "NOT_FOUND"},
		{name: "path parameter not UTF-8", method: "GET", path: "/web/orders/o%E9", status: 400, code: "BAD_REQUEST", mention: "UTF-8"},
		{name: "query parameter not UTF-8", method: "GET", path: "/web/orders?first=1&after=%E9", status: 400, code: "BAD_REQUEST", mention: "UTF-8"},
		{name: "query parameter name not UTF-8", method: "GET", path: "/web/orders?%E9=1", status: 400, code: "BAD_REQUEST", mention: "UTF-8"},
		{name: "non-integer parameter", method: "GET", path: "/web/orders?first=abc", status: 400, code: "BAD_REQUEST", mention: `"first"`},
		{name: "integer out of range", method: "GET", path: "/web/orders?first=99999999999", status: 400, code: "BAD_REQUEST", mention: `"first"`},
		{name: "unknown parameter", method: "GET", path: "/web/orders?frist=3", status: 400, code: "BAD_REQUEST", mention: `"frist"`},
		{name: "repeated parameter", method: "GET", path: "/web/orders?first=1&first=2", status: 400, code: "BAD_REQUEST", mention: `"first"`},
		{name: "limits apply to REST too", method: "GET", path: "/web/orders?first=1000", status: 400, code: "COMPLEXITY_LIMIT_EXCEEDED"},
		{name: "resolver rejects the value", method: "GET", path: "/web/orders?first=-1", status: 400, code: "BAD_USER_INPUT"},
		{name: "method not mapped", method: "DELETE", path: "/web/orders/o1", status: 405, code: "METHOD_NOT_ALLOWED"},
		{name: "body field of the wrong type", method: "POST", path: "/web/orders", body: `{"input": {"items": "x"}}`,
			status: 400, code: "BAD_REQUEST", mention: "input.items"},
		{name: "missing body field", method: "POST", path: "/web/orders", body: `{}`, status: 400, code: "BAD_REQUEST", mention: `"input"`},
		{name: "unknown body field", method: "POST", path: "/web/orders", body: `{"inptu": {}}`, status: 400, code: "BAD_REQUEST", mention: `"inptu"`},
		{name: "body not JSON", method: "POST", path: "/web/orders", body: `items=1`, contentType: "text/plain", status: 415, code: "UNSUPPORTED_MEDIA_TYPE"},
		// Read as UTF-8, the Latin-1 "Café" would be placed as "Caf\uFFFD"; /graphql answers 415 too.
		{name: "body not UTF-8", method: "POST", path: "/web/orders", body: "{\"input\": {\"items\": [{\"sku\": \"Caf\xe9\", \"quantity\": 1, \"unitPriceCents\": 5}]}}",
			contentType: "application/json; charset=iso-8859-1", status: 415, code: "UNSUPPORTED_MEDIA_TYPE", mention: `"iso-8859-1"`},
		{name: "body declared UTF-8", method: "POST", path: "/web/orders", body: `{"input": {"items": [{"sku": "Café", "quantity": 1, "unitPriceCents": 5}]}}`,
			contentType: "application/json; charset=UTF-8", status: 200},
		{name: "body not an object", method: "POST", path: "/web/orders", body: `[1]`, status: 400, code: "BAD_REQUEST"},
		{name: "bytes not UTF-8", method: "POST", path: "/web/orders", body: "{\"input\": {\"items\": [{\"sku\": \"caf\xe9\", \"quantity\": 1, \"unitPriceCents\": 5}]}}",
			status: 400, code: "BAD_REQUEST", mention: "UTF-8"},
		{name: "gzipped body", method: "POST", path: "/web/orders", body: "\x1f\x8b\x08\x00", encoding: "gzip",
			status: 415, code: "UNSUPPORTED_MEDIA_TYPE", mention: `"gzip"`},
		{name: "place an order", method: "POST", path: "/web/orders",
			body: `{"input": {"items": [{"sku": "SKU-1", "quantity": 2, "unitPriceCents": 150}]}}`, status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			headers := []string{}
			if tt.contentType != "" {
				headers = append(headers, "Content-Type", tt.contentType)
			}
			if tt.encoding != "" {
				headers = append(headers, "Content-Encoding", tt.encoding)
			}
			a := e.do(t, tt.method, tt.path, body, headers...)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
			if tt.encoding != "" && a.header.Get("Accept-Encoding") != "identity" {
				t.Errorf("Accept-Encoding %q on a refused coding, want identity", a.header.Get("Accept-Encoding"))
			}
			if tt.code == "" {
				return
			}
			var got struct {
				Error struct {
					Code, Message string
					RequestID     string `json:"request_id"`
				}
			}
			if err := json.Unmarshal(a.body, &got); err != nil || got.Error.Code != tt.code || got.Error.RequestID != testRequestID {
				t.Fatalf("body %s, want code %s and the request ID", a.body, tt.code)
			}
			if !strings.Contains(got.Error.Message, tt.mention) {
				t.Errorf("message %q does not name %s", got.Error.Message, tt.mention)
			}
		})
	}
	t.Run("placed order is returned", func(t *testing.T) {
		a := e.do(t, "POST", "/web/orders", []byte(`{"input": {"items": [{"sku": "SKU-9", "quantity": 1, "unitPriceCents": 999}]}}`))
		var o struct {
			ID         string
			TotalCents int
		}
		if err := json.Unmarshal(a.body, &o); err != nil || o.ID == "" || o.TotalCents != 999 {
			t.Fatalf("answer %d %s, want the new order", a.status, a.body)
		}
	})
}

// TestRESTRouteAtRootMatchesOnlyItsPath: a route at "/" is mounted at "/web/", which Go's
// ServeMux would read as the whole subtree; it answers its own path only, and anything else under
// the profile stays 404, whatever the method.
func TestRESTRouteAtRootMatchesOnlyItsPath(t *testing.T) {
	cfg := webConfig()
	cfg.REST = append(cfg.REST, bff.RESTConfig{Method: "GET", Path: "/", Operation: "Dashboard"})
	e := newEnv(t, envOptions{web: &cfg})
	if a := e.do(t, http.MethodGet, "/web/", nil); a.status != http.StatusOK || !strings.Contains(string(a.body), `"dashboard"`) {
		t.Fatalf("GET /web/ = %d %s, want the route's 200", a.status, a.body)
	}
	for _, req := range []struct{ method, path string }{
		{http.MethodGet, "/web/no-such-route"},
		{http.MethodGet, "/web/orders/o1/extra"},
		{http.MethodPost, "/web/no-such-route"},
	} {
		if a := e.do(t, req.method, req.path, nil); a.status != http.StatusNotFound {
			t.Errorf("%s %s = %d %.80s, want 404 (no route)", req.method, req.path, a.status, a.body)
		}
	}
}

// TestClientCancelStopsBackendCalls: when the client goes away, the backend call's context is
// cancelled and the handler returns, instead of both waiting out a slow backend.
func TestClientCancelStopsBackendCalls(t *testing.T) {
	backendCanceled := make(chan struct{}, 1)
	handlerDone := make(chan struct{}, 1)
	e := newEnv(t, envOptions{
		wrap: map[string]func(http.Handler) http.Handler{"orders": func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h.ServeHTTP(w, r)
				if errors.Is(r.Context().Err(), context.Canceled) {
					backendCanceled <- struct{}{}
				}
			})
		}},
		serve: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h.ServeHTTP(w, r)
				handlerDone <- struct{}{}
			})
		},
	})
	if err := e.svc["orders"].Behavior.SetLatency(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/web/dashboard", nil)
	start := time.Now()
	if resp, err := e.srv.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("the request succeeded; want the client to give up")
	}
	deadline := time.After(time.Second) // well under the backend's 2s
	for _, c := range []struct {
		name string
		ch   chan struct{}
	}{{"backend call cancelled", backendCanceled}, {"handler returned", handlerDone}} {
		select {
		case <-c.ch:
		case <-deadline:
			t.Fatalf("%s: not within a second of the client giving up", c.name)
		}
	}
	if n := e.svc["orders"].Requests(demo.RouteRecentOrders); n != 1 {
		t.Errorf("orders got %d calls, want 1 (no retry after the client left)", n)
	}
	t.Logf("backend cancelled and handler returned %v after the request started", time.Since(start))
}

// A backend's client error (403, 422) that nulls a REST route's result keeps its status: as a 502
// a client would take it for the gateway's failure, and retry it, a POST included.
func TestRESTKeepsABackendsClientErrorStatus(t *testing.T) {
	e := newEnv(t, envOptions{wrap: map[string]func(http.Handler) http.Handler{
		"orders": func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.Method == http.MethodPost && r.URL.Path == "/orders":
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusUnprocessableEntity)
					_, _ = w.Write([]byte(`{"error":{"code":"OUT_OF_STOCK","message":"no"}}`))
				case r.Method == http.MethodGet && r.URL.Path == "/orders" && r.URL.Query().Has("ids"):
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusForbidden)
					_, _ = w.Write([]byte(`{"error":{"code":"FORBIDDEN","message":"not yours"}}`))
				default:
					next.ServeHTTP(w, r)
				}
			})
		},
	}})
	for _, tc := range []struct {
		name, method, path, body string
		want                     int
		code                     string
	}{
		{"POST mutation rejected with 422", "POST", "/web/orders", `{"input": {"items": [{"sku": "SKU-1", "quantity": 2, "unitPriceCents": 150}]}}`, http.StatusUnprocessableEntity, "UNPROCESSABLE_ENTITY"},
		{"GET lookup forbidden with 403", "GET", "/web/orders/o1", "", http.StatusForbidden, "FORBIDDEN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body []byte
			if tc.body != "" {
				body = []byte(tc.body)
			}
			a := e.do(t, tc.method, tc.path, body)
			var got struct{ Error struct{ Code string } }
			_ = json.Unmarshal(a.body, &got)
			if a.status != tc.want || got.Error.Code != tc.code {
				t.Errorf("status %d, code %s; want %d %s", a.status, got.Error.Code, tc.want, tc.code)
			}
		})
	}
}

// HEAD is served on a GET route, so a 405 there lists it in Allow. OPTIONS is answered with the
// same list, as /graphql answers it, rather than refused.
func TestRESTAllowListsHEADAndOPTIONS(t *testing.T) {
	e := newEnv(t, envOptions{})
	if a := e.do(t, http.MethodHead, "/web/dashboard", nil); a.status != http.StatusOK {
		t.Fatalf("HEAD /web/dashboard: %d", a.status)
	}
	a := e.do(t, http.MethodPut, "/web/dashboard", nil)
	if allow := a.header.Get("Allow"); a.status != http.StatusMethodNotAllowed || allow != "GET, HEAD, OPTIONS" {
		t.Errorf("PUT /web/dashboard: %d Allow %q, want 405 with GET, HEAD, OPTIONS", a.status, allow)
	}
	for path, want := range map[string]string{
		"/web/dashboard":    "GET, HEAD, OPTIONS",
		"/web/orders":       "GET, POST, HEAD, OPTIONS",
		"/web/openapi.json": "GET, HEAD, OPTIONS",
	} {
		a := e.do(t, http.MethodOptions, path, nil)
		if allow := a.header.Get("Allow"); a.status != http.StatusNoContent || allow != want || len(a.body) != 0 {
			t.Errorf("OPTIONS %s: %d Allow %q body %q, want 204 with %s", path, a.status, allow, a.body, want)
		}
	}
}
