package resolvers_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/resolvers"
	"github.com/portico-gw/portico/testing/demo"
	"github.com/portico-gw/portico/upstreams"
)

// The test stack is the real thing minus the BFF: demo services on 127.0.0.1, the real upstream
// registry and client, the generated executor with NewExecutableSchema, and gqlgen's POST
// transport.

// headerSubject lets a test act as an authenticated user; the stack's edge turns it into the
// reqctx identity the authentication policy would set.
const headerSubject = "X-Test-Subject"

// testRequestID is the request ID every test request carries, to check it reaches backends.
const testRequestID = "req-test-1"

type stackOptions struct {
	// total is the per-call timeout of every upstream (default 5s).
	total time.Duration
	// wrap puts a test handler in front of a demo service, by upstream name.
	wrap map[string]func(http.Handler) http.Handler
	// config edits an upstream's config before the registry is built.
	config func(name string, c *upstreams.Config)
	// lenient leaves FailOnRequired out, to see what the executor alone produces.
	lenient bool
	// batchWait is the dataloaders' collection window (default resolvers.DefaultBatchWait).
	batchWait time.Duration
}

type stack struct {
	backend resolvers.Backend
	svc     map[string]*demo.Service
	url     map[string]string
	handler http.Handler
	gql     *client.Client
}

func newStack(t testing.TB, opts stackOptions) *stack {
	t.Helper()
	if opts.total == 0 {
		opts.total = 5 * time.Second
	}
	s := &stack{
		svc: map[string]*demo.Service{
			"users":         demo.NewUsers(),
			"orders":        demo.NewOrders(),
			"payments":      demo.NewPayments(),
			"notifications": demo.NewNotifications(),
		},
		url: map[string]string{},
	}
	cfgs := map[string]upstreams.Config{}
	for name, svc := range s.svc {
		var h http.Handler = svc
		if w := opts.wrap[name]; w != nil {
			h = w(h)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		s.url[name] = srv.URL
		c := upstreams.Config{
			Targets:  []upstreams.TargetConfig{{URL: srv.URL}},
			Timeouts: upstreams.TimeoutsConfig{Total: confval.Duration(opts.total)},
		}
		if opts.config != nil {
			opts.config(name, &c)
		}
		cfgs[name] = c
	}
	reg, err := upstreams.NewRegistry(cfgs, upstreams.Options{Logger: discardLogger()})
	if err != nil {
		t.Fatalf("building registry: %v", err)
	}
	t.Cleanup(reg.Close)

	s.backend = upstreams.NewClient(reg)
	srv := newHandler(resolvers.NewResolver(s.backend, resolvers.Options{BatchWait: opts.batchWait}), opts.lenient)
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		info := &reqctx.Info{ID: testRequestID, Start: time.Now()}
		if sub := req.Header.Get(headerSubject); sub != "" {
			info.Identity = &reqctx.Identity{Consumer: "test-app", Subject: sub}
		}
		srv.ServeHTTP(w, req.WithContext(reqctx.With(req.Context(), info)))
	})
	s.gql = client.New(s.handler)
	return s
}

// newHandler serves the schema over r the way a BFF would, minus its own extensions.
func newHandler(r *resolvers.Resolver, lenient bool) http.Handler {
	srv := handler.New(resolvers.NewExecutableSchema(r))
	srv.AddTransport(transport.POST{})
	if !lenient {
		srv.Use(resolvers.FailOnRequired{})
	}
	srv.Use(resolvers.StableErrors{})
	return srv
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// resetCounts forgets requests made while a test prepared its expectations.
func (s *stack) resetCounts() {
	for _, svc := range s.svc {
		svc.ResetCounts()
	}
}

// gqlError is one entry of a response's errors.
type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

func (e gqlError) pathString() string {
	parts := make([]string, len(e.Path))
	for i, p := range e.Path {
		b, _ := json.Marshal(p)
		parts[i] = strings.Trim(string(b), `"`)
	}
	return strings.Join(parts, ".")
}

// query runs q and decodes data into out (when non-nil), returning the raw data and the errors.
func (s *stack) query(t *testing.T, q string, out any, opts ...client.Option) (json.RawMessage, []gqlError) {
	t.Helper()
	resp, err := s.gql.RawPost(q, opts...)
	if err != nil {
		t.Fatalf("posting query: %v", err)
	}
	data, err := json.Marshal(resp.Data)
	if err != nil {
		t.Fatalf("encoding data: %v", err)
	}
	if out != nil && string(data) != "null" {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("decoding data %s: %v", data, err)
		}
	}
	var errs []gqlError
	if len(resp.Errors) > 0 {
		if err := json.Unmarshal(resp.Errors, &errs); err != nil {
			t.Fatalf("decoding errors %s: %v", resp.Errors, err)
		}
	}
	return data, errs
}

// mustQuery runs q and fails the test on any GraphQL error.
func (s *stack) mustQuery(t *testing.T, q string, out any, opts ...client.Option) {
	t.Helper()
	if _, errs := s.query(t, q, out, opts...); len(errs) > 0 {
		t.Fatalf("query failed: %+v", errs)
	}
}

// backendJSON GETs path from a demo service directly, for expectations.
func (s *stack) backendJSON(t *testing.T, name, path string, out any) {
	t.Helper()
	resp, err := http.Get(s.url[name] + path)
	if err != nil {
		t.Fatalf("GET %s%s: %v", name, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s%s: status %d", name, path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("decoding %s%s: %v", name, path, err)
	}
}
