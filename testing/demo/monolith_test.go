package demo

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

func TestMonolithMirrorsNewServicesByteForByte(t *testing.T) {
	mono, users, orders := NewMonolith(), NewUsers(), NewOrders()
	tests := []struct {
		name      string
		legacy    string
		svc       http.Handler
		newTarget string
	}{
		{"user", "/api/v1/users/u1", users, "/users/u1"},
		{"another user", "/api/v1/users/u73", users, "/users/u73"},
		{"unknown user", "/api/v1/users/u999", users, "/users/u999"},
		{"order", "/api/v1/orders/o1", orders, "/orders/o1"},
		{"another order", "/api/v1/orders/o333", orders, "/orders/o333"},
		{"unknown order", "/api/v1/orders/o999", orders, "/orders/o999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, neu := call(t, mono, "GET", tt.legacy, ""), call(t, tt.svc, "GET", tt.newTarget, "")
			if old.Code != neu.Code || !bytes.Equal(old.Body.Bytes(), neu.Body.Bytes()) ||
				old.Header().Get("Content-Type") != neu.Header().Get("Content-Type") {
				t.Fatalf("monolith %d %s\nservice  %d %s", old.Code, old.Body, neu.Code, neu.Body)
			}
		})
	}
}

func TestMonolithCatchAll(t *testing.T) {
	mono := NewMonolith()
	tests := []struct {
		method, target string
		want           catchAllBody
	}{
		{"GET", "/", catchAllBody{"monolith", "GET", "/", ""}},
		{"GET", "/api/v1/products?page=2&q=x", catchAllBody{"monolith", "GET", "/api/v1/products", "page=2&q=x"}},
		{"POST", "/api/v1/users/u1", catchAllBody{"monolith", "POST", "/api/v1/users/u1", ""}},
		{"DELETE", "/legacy/cart/7", catchAllBody{"monolith", "DELETE", "/legacy/cart/7", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			if got := decode[catchAllBody](t, call(t, mono, tt.method, tt.target, ""), 200); got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	if n := mono.Requests(RouteCatchAll); n != int64(len(tests)) {
		t.Errorf("catch-all counted %d, want %d", n, len(tests))
	}
}

func TestEcho(t *testing.T) {
	for _, svc := range []*Service{NewMonolith(), NewBench()} {
		t.Run(svc.Name(), func(t *testing.T) {
			srv := httptest.NewServer(svc)
			defer srv.Close()
			req, _ := http.NewRequest("PUT", srv.URL+"/echo?x=1", strings.NewReader(`{"hello":"world"}`))
			req.Host = "shop.example"
			req.Header.Set("X-Request-ID", "req-1")
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got echoBody
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if got.Method != "PUT" || got.Host != "shop.example" || got.URI != "/echo?x=1" || got.Body != `{"hello":"world"}` ||
				got.Headers.Get("X-Request-Id") != "req-1" {
				t.Fatalf("echo = %+v", got)
			}
		})
	}
}

func TestBench(t *testing.T) {
	svc := NewBench()
	body := BenchBody()
	if len(body) < 900 || len(body) > 1200 {
		t.Errorf("bench body is %d bytes, want about 1 KiB", len(body))
	}
	var parsed struct {
		Source, Status string
		Items          []struct {
			ID          int
			Title, Desc string
		}
	}
	if err := json.Unmarshal(body, &parsed); err != nil || parsed.Status != "ok" || parsed.Source != "backend" || len(parsed.Items) != 10 {
		t.Fatalf("bench body %s (%v)", body, err)
	}
	for _, target := range []string{"/", "/health", "/anything/at/all?x=1"} {
		for _, method := range []string{"GET", "POST"} {
			rec := call(t, svc, method, target, "")
			if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), body) || rec.Header().Get("Content-Length") != strconv.Itoa(len(body)) {
				t.Errorf("%s %s: %d %s", method, target, rec.Code, rec.Body)
			}
		}
	}
	if n := svc.Requests(RouteCatchAll); n != 6 {
		t.Errorf("counted %d", n)
	}
}
