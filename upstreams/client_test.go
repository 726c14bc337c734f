package upstreams

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/portico-gw/portico/internal/apierror"
	"github.com/portico-gw/portico/internal/reqctx"
)

type user struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// testMaxBody replaces MaxJSONBody in tests, so the size cap is proven without 10 MiB bodies.
const testMaxBody = 64 << 10

func newClient(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	reg, _ := newTestRegistry(t, Config{Targets: targetsOf(srv.URL), Retries: RetryConfig{Attempts: intp(0)}})
	c := NewClient(reg)
	if c.maxBody != MaxJSONBody {
		t.Fatalf("default body cap %d, want %d", c.maxBody, MaxJSONBody)
	}
	c.maxBody = testMaxBody
	return c
}

func TestClientGetJSON(t *testing.T) {
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		wantErr    bool
		wantStatus int
		wantCode   string
	}{
		{name: "success", handler: func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/users/7" || r.URL.RawQuery != "fields=name" || r.Method != http.MethodGet {
				http.Error(w, "unexpected "+r.Method+" "+r.URL.String(), http.StatusTeapot)
				return
			}
			if r.Header.Get("Accept") != "application/json" {
				http.Error(w, "no Accept", http.StatusNotAcceptable)
				return
			}
			_, _ = io.WriteString(w, `{"id":"7","name":"Ada"}`)
		}},
		{name: "not found", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"error":"no such user"}`, http.StatusNotFound)
		}, wantErr: true, wantStatus: 404, wantCode: "NOT_FOUND"},
		{name: "backend 500", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "boom", http.StatusInternalServerError)
		}, wantErr: true, wantStatus: 502, wantCode: "BAD_GATEWAY"},
		{name: "backend 502", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "boom", http.StatusBadGateway)
		}, wantErr: true, wantStatus: 502, wantCode: "BAD_GATEWAY"},
		{name: "backend 503 stays unavailable", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "boom", http.StatusServiceUnavailable)
		}, wantErr: true, wantStatus: 503, wantCode: "UPSTREAM_UNAVAILABLE"},
		{name: "backend 504 stays a timeout", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "slow", http.StatusGatewayTimeout)
		}, wantErr: true, wantStatus: 504, wantCode: "UPSTREAM_TIMEOUT"},
		{name: "bad JSON", handler: func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `{"id":`)
		}, wantErr: true, wantStatus: 502, wantCode: "BAD_GATEWAY"},
		{name: "too large", handler: func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `{"id":"`+strings.Repeat("x", testMaxBody)+`"}`)
		}, wantErr: true, wantStatus: 502, wantCode: "BAD_GATEWAY"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, tc.handler)
			var got user
			err := c.GetJSON(context.Background(), "svc", "/users/7?fields=name", &got)
			if !tc.wantErr {
				if err != nil {
					t.Fatal(err)
				}
				if got != (user{ID: "7", Name: "Ada"}) {
					t.Errorf("decoded %+v", got)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error")
			}
			status, code, msg := apierror.Classify(err)
			if status != tc.wantStatus || code != tc.wantCode {
				t.Errorf("classified as %d %s, want %d %s (err: %v)", status, code, tc.wantStatus, tc.wantCode, err)
			}
			if strings.Contains(msg, "127.0.0.1") {
				t.Errorf("client-facing message %q leaks an address", msg)
			}
		})
	}
}

func TestClientStatusErrorKeepsBackendStatus(t *testing.T) {
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "gone", http.StatusInternalServerError)
	})
	err := c.GetJSON(context.Background(), "svc", "users", nil)
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 500 || !strings.Contains(string(se.Body), "gone") {
		t.Fatalf("err = %#v, want a StatusError with the backend's 500 and body", err)
	}
}

func TestClientCancel(t *testing.T) {
	started := make(chan struct{})
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		cancel()
	}()
	err := c.GetJSON(ctx, "svc", "/slow", &user{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if status, _, _ := apierror.Classify(err); status == http.StatusBadGateway {
		t.Error("a cancelled call must not look like a bad gateway")
	}
}

func TestClientCancelWhileReadingBody(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"id":"1",`)
		w.(http.Flusher).Flush()
		cancel()
		<-r.Context().Done()
	})
	err := c.GetJSON(ctx, "svc", "/", &user{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestClientSendJSON(t *testing.T) {
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		var in user
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request line or type", http.StatusBadRequest)
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Name != "Ada" {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(user{ID: "9", Name: in.Name})
	})
	var out user
	if err := c.SendJSON(context.Background(), "svc", http.MethodPost, "/users", user{Name: "Ada"}, &out); err != nil {
		t.Fatal(err)
	}
	if out.ID != "9" {
		t.Errorf("decoded %+v", out)
	}
}

func TestClientUnknownUpstream(t *testing.T) {
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) { t.Error("no backend call expected") })
	err := c.GetJSON(context.Background(), "nope", "/", nil)
	if !errors.Is(err, ErrUnknownUpstream) {
		t.Fatalf("err = %v", err)
	}
	if status, code, _ := apierror.Classify(err); status != 502 || code != "BAD_GATEWAY" {
		t.Errorf("classified as %d %s", status, code)
	}
	var nilClient *Client
	if err := nilClient.GetJSON(context.Background(), "svc", "/", nil); !errors.Is(err, ErrUnknownUpstream) {
		t.Errorf("nil client: err = %v", err)
	}
}

// The trace context is injected without setting otel's global propagator, which nothing in
// Portico sets: a test that set it would hide resolver calls losing the client's trace.
func TestClientPropagatesContextHeaders(t *testing.T) {
	var got http.Header
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		_, _ = io.WriteString(w, "{}")
	})
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled,
	}))
	ctx = reqctx.With(ctx, &reqctx.Info{
		ID:       "req-123",
		Identity: &reqctx.Identity{Consumer: "web-app", Groups: []string{"first-party", "beta"}, Subject: "user-42"},
	})

	// Do with a caller-built request that tries to claim another identity.
	req, _ := http.NewRequest(http.MethodGet, "http://ignored/me", nil)
	req.Header.Set("X-Consumer-Name", "admin")
	req.Header.Set("X-Authenticated-Subject", "root")
	resp, err := c.Do(ctx, "svc", req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	want := map[string]string{
		"X-Request-Id":            "req-123",
		"X-Consumer-Name":         "web-app",
		"X-Consumer-Groups":       "first-party,beta",
		"X-Authenticated-Subject": "user-42",
		"Traceparent":             "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	}
	for k, v := range want {
		if vals := got.Values(k); len(vals) != 1 || vals[0] != v {
			t.Errorf("%s = %q, want exactly %q", k, vals, v)
		}
	}
	if req.Header.Get("X-Consumer-Name") != "admin" || req.Header.Get("X-Request-Id") != "" {
		t.Error("Do modified the caller's request headers")
	}

	// Anonymous call: client-sent identity headers are dropped, not forwarded.
	anon := reqctx.With(context.Background(), &reqctx.Info{ID: "req-456"})
	req, _ = http.NewRequest(http.MethodGet, "http://ignored/me", nil)
	req.Header.Set("X-Consumer-Name", "admin")
	resp, err = c.Do(anon, "svc", req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if got.Get("X-Consumer-Name") != "" || got.Get("X-Request-Id") != "req-456" {
		t.Errorf("anonymous call sent X-Consumer-Name %q, X-Request-ID %q", got.Get("X-Consumer-Name"), got.Get("X-Request-Id"))
	}
}

// A traceparent the edge extracted (internal/gateway/edge.go, with TraceContext) reaches the
// backends of resolver calls unchanged.
func TestClientContinuesTheTraceTheEdgeExtracted(t *testing.T) {
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	var got http.Header
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		_, _ = io.WriteString(w, "{}")
	})
	in := http.Header{"Traceparent": {traceparent}}
	ctx := TraceContext.Extract(context.Background(), propagation.HeaderCarrier(in))
	if !trace.SpanContextFromContext(ctx).IsValid() {
		t.Fatal("setup: no span context extracted")
	}
	var out struct{}
	if err := c.GetJSON(ctx, "svc", "/x", &out); err != nil {
		t.Fatal(err)
	}
	if v := got.Get("Traceparent"); v != traceparent {
		t.Fatalf("backend got Traceparent %q, want the client's %q", v, traceparent)
	}
}

// Answers are read into pooled buffers; what a call decoded must stay intact however later calls
// reuse the buffer, whether the answer has a Content-Length or comes chunked in pieces.
func TestClientPooledBuffersDoNotLeakBetweenCalls(t *testing.T) {
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		n := len(r.URL.Query().Get("fill"))
		body := `{"id":"` + r.URL.Query().Get("id") + `","raw":{"fill":"` + strings.Repeat("x", n) + `"}}`
		if r.URL.Query().Get("chunked") == "" {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			_, _ = io.WriteString(w, body)
			return
		}
		for len(body) > 0 {
			k := min(len(body), 700)
			_, _ = io.WriteString(w, body[:k])
			w.(http.Flusher).Flush()
			body = body[k:]
		}
	})
	type answer struct {
		ID  string          `json:"id"`
		Raw json.RawMessage `json:"raw"`
	}
	var kept []answer
	for i := range 20 {
		q := url.Values{"id": {strconv.Itoa(i)}, "fill": {strings.Repeat("f", i*300)}}
		if i%2 == 1 {
			q.Set("chunked", "1")
		}
		var a answer
		if err := c.GetJSON(context.Background(), "svc", "/x?"+q.Encode(), &a); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		kept = append(kept, a)
	}
	for i, a := range kept {
		want := `{"fill":"` + strings.Repeat("x", i*300) + `"}`
		if a.ID != strconv.Itoa(i) || string(a.Raw) != want {
			t.Fatalf("answer %d changed after later calls: id %q, raw %d bytes", i, a.ID, len(a.Raw))
		}
	}
}

func TestClientRejectsTrailingData(t *testing.T) {
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"id":"7","name":"Ada"} {"id":"8"}`)
	})
	var got user
	err := c.GetJSON(context.Background(), "svc", "/users/7", &got)
	if status, code, _ := apierror.Classify(err); status != http.StatusBadGateway || code != "BAD_GATEWAY" {
		t.Fatalf("err = %v (%d %s), want a 502: an answer must be exactly one JSON value", err, status, code)
	}
}
