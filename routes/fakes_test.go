package routes

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/reqctx"
)

// upstreamFunc is a RoundTripper made of a function: the shape the upstream layer hands us.
type upstreamFunc func(*http.Request) (*http.Response, error)

func (f upstreamFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// toServer plays the upstream layer for one httptest backend: it points the outbound request at
// the server and leaves a non-empty Host alone, as the real upstream RoundTripper does.
func toServer(t *testing.T, srv *httptest.Server) http.RoundTripper {
	t.Helper()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return upstreamFunc(func(r *http.Request) (*http.Response, error) {
		out := r.Clone(r.Context())
		out.URL.Scheme, out.URL.Host = u.Scheme, u.Host
		return tr.RoundTrip(out)
	})
}

// staticUpstream answers every call itself with status and body, without a network.
func staticUpstream(status int, body string) http.RoundTripper {
	return upstreamFunc(func(r *http.Request) (*http.Response, error) {
		if r.Body != nil {
			_, _ = io.Copy(io.Discard, r.Body)
		}
		return &http.Response{
			StatusCode:    status,
			Header:        http.Header{"Content-Type": {"application/json"}},
			Body:          io.NopCloser(strings.NewReader(body)),
			ContentLength: int64(len(body)),
			Request:       r,
		}, nil
	})
}

// neverCalled fails the test if the route ever calls it.
func neverCalled(t *testing.T) http.RoundTripper {
	return upstreamFunc(func(r *http.Request) (*http.Response, error) {
		t.Errorf("upstream called for %s %s, want no call", r.Method, r.URL.Path)
		return nil, io.ErrUnexpectedEOF
	})
}

// lookup builds Deps.Upstream from a map.
func lookup(m map[string]http.RoundTripper) func(string) (http.RoundTripper, bool) {
	return func(name string) (http.RoundTripper, bool) {
		rt, ok := m[name]
		return rt, ok
	}
}

// quietLogger keeps expected warnings out of test output; logs land in buf when given.
func quietLogger(buf *syncBuffer) *slog.Logger {
	if buf == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// withInfo plays the edge: it puts a reqctx.Info in the context and, when seen is not nil,
// reports it after the request is served.
func withInfo(h http.Handler, seen chan<- reqctx.Info) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := &reqctx.Info{ID: "req-123", ClientIP: "127.0.0.1", Start: time.Now(),
			Identity: &reqctx.Identity{Consumer: "web-app", Groups: []string{"first-party", "beta"}}}
		h.ServeHTTP(w, r.WithContext(reqctx.With(r.Context(), info)))
		if seen != nil {
			seen <- *info
		}
	})
}

// gateway builds routes and serves them on a test server.
func gateway(t *testing.T, cfgs []Config, deps Deps) (*httptest.Server, *Router) {
	t.Helper()
	if deps.Logger == nil {
		deps.Logger = quietLogger(nil)
	}
	r, err := Build(cfgs, deps)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	srv := httptest.NewServer(withInfo(r, nil))
	t.Cleanup(func() {
		srv.Close()
		r.Close()
	})
	return srv, r
}

// recv waits for a value the test is sure to get; the bound only turns a hang into a failure.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// eventually polls cond until it holds; the bound only turns a hang into a failure.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
