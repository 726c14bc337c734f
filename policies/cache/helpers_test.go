package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/confval"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/policies"
)

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// storeKinds runs a test once on the memory store and once on the real Redis at 127.0.0.1:6379.
func storeKinds(t *testing.T, fn func(t *testing.T, deps policies.Deps)) {
	t.Run("memory", func(t *testing.T) {
		fn(t, policies.Deps{Logger: quietLogger, Metrics: prometheus.NewRegistry(), Purger: &policies.Purger{}})
	})
	t.Run("redis", func(t *testing.T) {
		fn(t, policies.Deps{Logger: quietLogger, Metrics: prometheus.NewRegistry(), Purger: &policies.Purger{},
			Redis: realRedis(t)})
	})
}

func realRedis(t testing.TB) redis.UniversalClient {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("real Redis at 127.0.0.1:6379 is required (start redis-server): %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// uniqueName gives each test its own policy name, hence its own key prefix in a shared Redis.
func uniqueName(t testing.TB) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "test-" + hex.EncodeToString(b)
}

// newPolicy builds a cache policy with a unique name and purges its keys after the test.
func newPolicy(t testing.TB, c Config, deps policies.Deps) *Policy {
	t.Helper()
	if c.RedisTimeout == 0 {
		// The default (250ms) is for production; a shared machine running the race-enabled suite
		// can stall Redis calls longer, which would turn the hits these tests expect into Bypass.
		c.RedisTimeout = confval.Duration(5 * time.Second)
	}
	pol, err := New(uniqueName(t), c, deps)
	if err != nil {
		t.Fatal(err)
	}
	p := pol.(*Policy)
	t.Cleanup(func() {
		if _, err := p.PurgePrefix(context.Background(), p.name+":"); err != nil {
			t.Errorf("cleaning up: %v", err)
		}
	})
	return p
}

// backend is a fake upstream that counts calls and records what it received.
type backend struct {
	*httptest.Server
	calls   atomic.Int64
	last    atomic.Pointer[http.Request]
	handler atomic.Pointer[http.HandlerFunc]
}

func newBackend(t testing.TB, h http.HandlerFunc) *backend {
	t.Helper()
	b := &backend{}
	b.set(h)
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.calls.Add(1)
		b.last.Store(r.Clone(context.Background()))
		(*b.handler.Load())(w, r)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) set(h http.HandlerFunc) { b.handler.Store(&h) }

// jsonBackend answers every request with a JSON body naming the path and the call number.
func jsonHandler(extra func(h http.Header)) http.HandlerFunc {
	var n atomic.Int64
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		if extra != nil {
			extra(w.Header())
		}
		io.WriteString(w, `{"path":"`+r.URL.Path+`","n":`+itoa(n.Add(1))+`}`)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// gateway is a front server: it sets the request Info the edge would (route from X-Test-Route,
// identity from X-Test-Consumer / X-Test-Subject) and runs the policy around a reverse proxy.
type gateway struct {
	*httptest.Server
	p *Policy
}

func newGateway(t testing.TB, p *Policy, upstream *backend) *gateway {
	t.Helper()
	u, _ := url.Parse(upstream.URL)
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ErrorLog = nil
	h := p.Wrap(proxy)
	g := &gateway{p: p}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := &reqctx.Info{ID: "req-1", Route: r.Header.Get("X-Test-Route")}
		if c := r.Header.Get("X-Test-Consumer"); c != "" {
			info.Identity = &reqctx.Identity{Consumer: c, Subject: r.Header.Get("X-Test-Subject")}
		}
		h.ServeHTTP(w, r.WithContext(reqctx.With(r.Context(), info)))
	}))
	t.Cleanup(g.Close)
	return g
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (a answer) cache() string { return a.header.Get(headerStatus) }

// do sends one request to the gateway; hdr is alternating header names and values.
func (g *gateway) do(t testing.TB, method, path string, hdr ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, g.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := g.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func counterValue(t testing.TB, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func proxyTo(t testing.TB, be *backend) http.Handler {
	t.Helper()
	u, _ := url.Parse(be.URL)
	return httputil.NewSingleHostReverseProxy(u)
}

// deadRedis is a client for a local port nothing listens on: every command fails at once.
func deadRedis(t testing.TB) redis.UniversalClient {
	t.Helper()
	// Port 1 (privileged), not a port freed by closing a listener, which another test process
	// running in parallel (a redistest server, say) could bind in the meantime.
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	return c
}
