package ratelimit

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/policies"
	"github.com/redis/go-redis/v9"
)

// fakeClock is a settable clock in µs, shared by a test's limiters.
type fakeClock struct{ us atomic.Int64 }

func newClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.us.Store(t.UnixMicro())
	return c
}

func (c *fakeClock) now() int64          { return c.us.Load() }
func (c *fakeClock) add(d time.Duration) { c.us.Add(int64(d / time.Microsecond)) }

// at parses an RFC 3339 time in a test table.
func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// storeKind names the two stores behaviour tests run against.
type storeKind struct {
	name  string
	redis func(t *testing.T) redis.UniversalClient // nil: memory
}

var stores = []storeKind{
	{name: "memory"},
	{name: "redis", redis: sharedRedis},
}

// sharedRedis is a client of the Redis every development and CI machine runs on 6379.
func sharedRedis(t *testing.T) redis.UniversalClient {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis on 127.0.0.1:6379 does not answer (.ci/run starts one): %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

var nameCounter atomic.Int64
var unsafeName = regexp.MustCompile(`[^A-Za-z0-9-]+`)

// uniqueName is a policy name no other test (or earlier run) uses, so Redis keys never collide;
// its keys are deleted when the test ends.
func uniqueName(t *testing.T, rc redis.UniversalClient) string {
	name := fmt.Sprintf("t%d-%d-%s", time.Now().UnixNano(), nameCounter.Add(1), unsafeName.ReplaceAllString(t.Name(), "-"))
	if rc != nil {
		t.Cleanup(func() { deleteKeys(t, rc, "portico:rl:"+name+":*") })
	}
	return name
}

func deleteKeys(t *testing.T, rc redis.UniversalClient, pattern string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	iter := rc.Scan(ctx, 0, pattern, 500).Iterator()
	for iter.Next(ctx) {
		rc.Del(ctx, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Logf("cleaning %s: %v", pattern, err)
	}
}

// build makes a limiter on the given store with the clock (nil: real time).
func build(t *testing.T, sk storeKind, c Config, clk *fakeClock) *Limiter {
	t.Helper()
	var deps policies.Deps
	if sk.redis != nil {
		deps.Redis = sk.redis(t)
		if c.StoreTimeout == 0 {
			// Behaviour tests are not about timeouts; other tests share this machine's Redis.
			c.StoreTimeout = confDuration(2 * time.Second)
		}
	}
	return buildWith(t, uniqueName(t, deps.Redis), c, deps, clk)
}

func buildWith(t *testing.T, name string, c Config, deps policies.Deps, clk *fakeClock) *Limiter {
	t.Helper()
	var now func() int64
	if clk != nil {
		now = clk.now
	}
	l, err := newLimiter(name, c, deps, now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// backend counts the requests that got through.
type backend struct{ calls atomic.Int64 }

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.calls.Add(1)
	w.WriteHeader(http.StatusOK)
}

// req is a request from a client, optionally authenticated.
type req struct {
	consumer, subject, ip, route string
	anonymous                    bool
	header                       http.Header
	ctx                          context.Context
}

func (q req) send(h http.Handler) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptestRequestFor(q))
	return w
}

// httptestRequestFor builds q's request with its reqctx.Info.
func httptestRequestFor(q req) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/orders", nil)
	if q.ctx != nil {
		r = r.WithContext(q.ctx)
	}
	ip := q.ip
	if ip == "" {
		ip = "192.0.2.1"
	}
	info := &reqctx.Info{ID: "req-1", ClientIP: ip, Route: q.route}
	if q.consumer != "" {
		info.Identity = &reqctx.Identity{Consumer: q.consumer, Subject: q.subject}
	}
	if q.anonymous {
		r.Header.Set("X-Anonymous-Consumer", "true")
	}
	for k, v := range q.header {
		r.Header[k] = v
	}
	return r.WithContext(reqctx.With(r.Context(), info))
}

// httptestRequest is an unauthenticated request with the given headers.
func httptestRequest(headers map[string]string) *http.Request {
	q := req{header: http.Header{}}
	for k, v := range headers {
		q.header.Set(k, v)
	}
	return httptestRequestFor(q)
}

func confDuration(d time.Duration) confval.Duration { return confval.Duration(d) }

// statuses sends n identical requests and returns their status codes.
func statuses(h http.Handler, q req, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = q.send(h).Code
	}
	return out
}

var noDeps policies.Deps
