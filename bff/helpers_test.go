package bff_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/bff"
	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/resolvers"
	"github.com/portico-gw/portico/schema"
	"github.com/portico-gw/portico/testing/demo"
	"github.com/portico-gw/portico/upstreams"
)

// The test environment is the real stack: demo services on 127.0.0.1 behind httptest servers,
// the real upstream registry and client, the real resolvers and generated executor, and the
// profiles served over real HTTP. Only the gateway's edge is replaced, by a handler that gives
// each request a known request ID.

const testRequestID = "req-bff-test"

func boolPtr(b bool) *bool { return &b }

// webConfig is the web profile the tests use: introspection on, the playground on, four REST
// routes (one with a body).
func webConfig() bff.Config {
	return bff.Config{
		Path:       "/web",
		Playground: boolPtr(true),
		GraphQL:    bff.GraphQLConfig{Introspection: boolPtr(true), MaxDepth: 8, MaxComplexity: 1500},
		REST: []bff.RESTConfig{
			{Method: "GET", Path: "/dashboard", Operation: "Dashboard"},
			{Method: "GET", Path: "/orders/{id}", Operation: "OrderDetail", Result: "order"},
			{Method: "GET", Path: "/orders", Operation: "MyOrders", Result: "orders"},
			{Method: "POST", Path: "/orders", Operation: "PlaceOrder", Result: "placeOrder"},
		},
	}
}

// mobileConfig is the mobile profile: trusted documents only, introspection off, a trimmed shape.
func mobileConfig() bff.Config {
	return bff.Config{
		Path:    "/mobile",
		GraphQL: bff.GraphQLConfig{TrustedDocumentsOnly: true, MaxDepth: 6},
		REST: []bff.RESTConfig{
			{Method: "GET", Path: "/home", Operation: "MobileHome", Result: "dashboard"},
			{Method: "GET", Path: "/orders/{id}", Operation: "MobileOrder", Result: "order"},
		},
	}
}

type envOptions struct {
	web, mobile *bff.Config
	// total is every upstream's per-call timeout (default 5s).
	total time.Duration
	// wrap puts a test handler in front of a demo service, by name.
	wrap map[string]func(http.Handler) http.Handler
	// serve wraps the profiles' handler, to observe requests from the gateway's side.
	serve func(http.Handler) http.Handler
	apq   *bff.APQCache
	log   *slog.Logger
	// batchWait is the dataloaders' collection window (default resolvers.DefaultBatchWait).
	batchWait time.Duration
}

type env struct {
	svc     map[string]*demo.Service
	srv     *httptest.Server
	web     *bff.Profile
	mobile  *bff.Profile
	backend resolvers.Backend
}

func newEnv(t testing.TB, opts envOptions) *env {
	t.Helper()
	if opts.total == 0 {
		opts.total = 5 * time.Second
	}
	e := &env{svc: map[string]*demo.Service{
		"users": demo.NewUsers(), "orders": demo.NewOrders(),
		"payments": demo.NewPayments(), "notifications": demo.NewNotifications(),
	}}
	cfgs := map[string]upstreams.Config{}
	for name, svc := range e.svc {
		var h http.Handler = svc
		if w := opts.wrap[name]; w != nil {
			h = w(h)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		cfgs[name] = upstreams.Config{
			Targets:  []upstreams.TargetConfig{{URL: srv.URL}},
			Timeouts: upstreams.TimeoutsConfig{Total: confval.Duration(opts.total)},
			// Retries would double the counts the batching tests assert.
			Retries: upstreams.RetryConfig{Attempts: new(int)},
		}
	}
	reg, err := upstreams.NewRegistry(cfgs, upstreams.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatalf("building registry: %v", err)
	}
	t.Cleanup(reg.Close)
	e.backend = upstreams.NewClient(reg)
	if opts.log == nil {
		opts.log = quietLogger()
	}
	deps := bff.Deps{
		Schema:     resolvers.NewExecutableSchema(resolvers.NewResolver(e.backend, resolvers.Options{BatchWait: opts.batchWait})),
		Backend:    e.backend,
		Operations: schema.Operations(),
		Logger:     opts.log,
	}
	if opts.apq != nil {
		deps.APQCache = opts.apq
	}
	webCfg, mobileCfg := webConfig(), mobileConfig()
	if opts.web != nil {
		webCfg = *opts.web
	}
	if opts.mobile != nil {
		mobileCfg = *opts.mobile
	}
	if e.web, err = bff.New("web", webCfg, deps); err != nil {
		t.Fatalf("bff.New(web): %v", err)
	}
	t.Cleanup(e.web.Close)
	if e.mobile, err = bff.New("mobile", mobileCfg, deps); err != nil {
		t.Fatalf("bff.New(mobile): %v", err)
	}
	t.Cleanup(e.mobile.Close)
	mux := http.NewServeMux()
	mux.Handle(e.web.Path()+"/", e.web.Handler())
	mux.Handle(e.mobile.Path()+"/", e.mobile.Handler())
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := &reqctx.Info{ID: testRequestID, Start: time.Now()}
		mux.ServeHTTP(w, r.WithContext(reqctx.With(r.Context(), info)))
	})
	if opts.serve != nil {
		h = opts.serve(h)
	}
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func (e *env) resetCounts() {
	for _, s := range e.svc {
		s.ResetCounts()
	}
}

// gqlResponse is a GraphQL answer as the tests read it.
type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []gqlError      `json:"errors"`
}

type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

func (e gqlError) code() string { s, _ := e.Extensions["code"].(string); return s }

// answer is one HTTP answer: status, headers and body.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) graphql(t testing.TB) gqlResponse {
	t.Helper()
	var r gqlResponse
	if err := json.Unmarshal(a.body, &r); err != nil {
		t.Fatalf("answer is not a GraphQL response: %v\n%s", err, a.body)
	}
	return r
}

// do sends a request with an optional body and headers (name, value pairs).
func (e *env) do(t testing.TB, method, path string, body []byte, headers ...string) answer {
	t.Helper()
	return e.doCtx(t, context.Background(), method, path, body, headers...)
}

func (e *env) doCtx(t testing.TB, ctx context.Context, method, path string, body []byte, headers ...string) answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// post sends a GraphQL request object to a profile's /graphql.
func (e *env) post(t testing.TB, profile string, req map[string]any, headers ...string) answer {
	t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return e.do(t, http.MethodPost, "/"+profile+"/graphql", b, headers...)
}

// query posts a query and fails the test unless it answers 200 without errors.
func (e *env) query(t testing.TB, profile, query string, vars map[string]any, out any) {
	t.Helper()
	a := e.post(t, profile, map[string]any{"query": query, "variables": vars})
	r := a.graphql(t)
	if a.status != http.StatusOK || len(r.Errors) > 0 {
		t.Fatalf("query answered %d with errors %+v", a.status, r.Errors)
	}
	if out != nil {
		if err := json.Unmarshal(r.Data, out); err != nil {
			t.Fatal(err)
		}
	}
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// operationText reads a stored operation's file as clients ship it.
func operationText(t testing.TB, bffName, file string) string {
	t.Helper()
	b, err := ioReadFile(bffName + "/" + file)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func ioReadFile(name string) ([]byte, error) {
	f, err := schema.Operations().Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// jsonEqual compares two JSON documents by value.
func jsonEqual(t testing.TB, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%v: %s", err, a)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// newServer serves h alone, without the test edge: the profile makes its own request IDs.
func newServer(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}
