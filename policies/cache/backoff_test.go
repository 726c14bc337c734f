package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/policies"
	"github.com/portico-gw/portico/testing/redistest"
)

func TestStoreBackoff(t *testing.T) {
	timeout := fmt.Errorf("reading: %w", context.DeadlineExceeded)
	refused := &net.OpError{Op: "dial", Err: errors.New("connection refused")}
	type step struct {
		after time.Duration // clock moves on this much first
		done  error         // when set, report this outcome of the call Allow let through
		want  bool          // what Allow says
	}
	ok := errors.New("")
	plainCanceled := fmt.Errorf("redis: %w", context.Canceled)
	tests := []struct {
		name  string
		steps []step
	}{
		{"healthy store is always allowed", []step{{want: true, done: ok}, {want: true}}},
		{"a timeout bypasses for the window", []step{{want: true, done: timeout}, {want: false}, {after: 999 * time.Millisecond, want: false}}},
		{"a connection error bypasses too", []step{{want: true, done: refused}, {want: false}}},
		{"an error reply does not: Redis answered", []step{{want: true, done: redis.Nil}, {want: true}}},
		{"one probe after the window, the others keep bypassing", []step{{want: true, done: timeout}, {after: time.Second, want: true}, {want: false}, {want: false}}},
		{"a successful probe resumes", []step{{want: true, done: timeout}, {after: time.Second, want: true, done: ok}, {want: true}, {want: true}}},
		{"a failed probe extends", []step{{want: true, done: timeout}, {after: time.Second, want: true, done: timeout}, {after: 999 * time.Millisecond, want: false}, {after: time.Millisecond, want: true}}},
		{"a probe whose caller left leaves the window as it was", []step{{want: true, done: timeout}, {after: time.Second, want: true, done: context.Canceled}, {want: false}, {after: time.Second, want: true}}},
		// go-redis hands back the caller's own context.Canceled (waiting for a pooled
		// connection), which is not Redis answering.
		{"a plain Canceled from the call leaves the window as it was", []step{{want: true, done: timeout}, {after: time.Second, want: true, done: plainCanceled}, {want: false}}},
		{"a Canceled call does not end a window another call started", []step{{want: true, done: timeout}, {want: false}, {after: time.Second, want: true, done: plainCanceled}, {want: false}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Unix(1000, 0)
			b := NewStoreBackoff(time.Second)
			b.now = func() time.Time { return now }
			for i, s := range tc.steps {
				now = now.Add(s.after)
				if got := b.Allow(); got != s.want {
					t.Fatalf("step %d: Allow = %v, want %v", i, got, s.want)
				}
				switch {
				case s.done == ok:
					b.Done(context.Background(), nil)
				case s.done == plainCanceled:
					b.Done(context.Background(), s.done)
				case errors.Is(s.done, context.Canceled):
					ctx, cancel := context.WithCancel(context.Background())
					cancel()
					b.Done(ctx, context.DeadlineExceeded)
				case s.done != nil:
					b.Done(context.Background(), s.done)
				}
			}
		})
	}
	var nilBackoff *StoreBackoff
	nilBackoff.Done(context.Background(), context.DeadlineExceeded)
	if !nilBackoff.Allow() {
		t.Fatal("a nil StoreBackoff bypassed")
	}
}

// stalledRedis is a redis-server of the test's own, and a client with the gateway's options (no
// retries, context deadlines applied to the socket).
func stalledRedis(t *testing.T) (*redistest.Server, redis.UniversalClient) {
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, DialTimeout: time.Second, ReadTimeout: 5 * time.Second,
		WriteTimeout: 5 * time.Second, ContextTimeoutEnabled: true, MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = c.Close() })
	return srv, c
}

// timed returns how long fn took.
func timed(fn func()) time.Duration {
	start := time.Now()
	fn()
	return time.Since(start)
}

// TestHungRedisCostsOneTimeoutPerWindow: once a call to a hung (SIGSTOPped) Redis has timed
// out, the requests behind it bypass at once instead of each waiting the timeout; once the
// window has passed and Redis answers again, one probe resumes caching. Timings are one-sided
// with wide margins: "fast" is under half the 500ms timeout.
func TestHungRedisCostsOneTimeoutPerWindow(t *testing.T) {
	const timeout = 500 * time.Millisecond
	srv, client := stalledRedis(t)
	deps := policies.Deps{Logger: quietLogger, Metrics: prometheus.NewRegistry(), Purger: &policies.Purger{}, Redis: client}
	p := newPolicy(t, Config{RedisTimeout: confval.Duration(timeout)}, deps)
	backoff := p.store.(*redisStore).backoff
	var skew atomic.Int64 // how far the back-off's clock is ahead, to end a window without waiting
	backoff.now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	g := newGateway(t, p, newBackend(t, jsonHandler(nil)))
	t.Cleanup(srv.Continue) // before newPolicy's purge, should the test stop half way

	srv.Stop()
	var a answer
	if d := timed(func() { a = g.do(t, "GET", "/h") }); a.cache() != "Bypass" || d < timeout/2 {
		t.Fatalf("first request on a hung Redis: %s in %v, want Bypass after its timeout", a.cache(), d)
	}
	for i := range 3 {
		if d := timed(func() { a = g.do(t, "GET", "/h") }); a.cache() != "Bypass" || d >= timeout/2 {
			t.Fatalf("request %d in the back-off window: %s in %v, want Bypass at once", i, a.cache(), d)
		}
	}
	if got := counterValue(t, deps.Metrics.(*prometheus.Registry), "portico_cache_store_errors_total", map[string]string{"policy": p.name}); got != 4 {
		t.Fatalf("store errors %v, want 4: a bypass in the window still counts", got)
	}

	skew.Store(int64(2 * DefaultStoreBackoff)) // the window is over: the next call probes, still hung
	g.do(t, "GET", "/h")
	if d := timed(func() { a = g.do(t, "GET", "/h") }); a.cache() != "Bypass" || d >= timeout/2 {
		t.Fatalf("after a failed probe: %s in %v, want Bypass at once", a.cache(), d)
	}

	srv.Continue()
	skew.Store(int64(4 * DefaultStoreBackoff))
	if a = g.do(t, "GET", "/h"); a.cache() != "Miss" {
		t.Fatalf("probe after Redis came back: %s, want Miss", a.cache())
	}
	if a = g.do(t, "GET", "/h"); a.cache() != "Hit" {
		t.Fatalf("after recovery: %s, want Hit", a.cache())
	}
}

// TestHungRedisResolverCacheBacksOff: the resolver cache pays a hung Redis's timeout once, not
// once per resolver call.
func TestHungRedisResolverCacheBacksOff(t *testing.T) {
	srv, client := stalledRedis(t)
	up := fakeUpstream{}
	b, err := NewBackend(up, BackendRules{{Upstream: "users"}}, policies.Deps{Logger: quietLogger,
		Metrics: prometheus.NewRegistry(), Purger: &policies.Purger{}, Redis: client})
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	ctx := context.Background()
	var out map[string]any
	if d := timed(func() { err = b.GetJSON(ctx, "users", "/users/1", &out) }); err != nil || d < DefaultRedisTimeout/2 {
		t.Fatalf("first call on a hung Redis: %v in %v, want the upstream's answer after the timeout", err, d)
	}
	for i := range 3 {
		if d := timed(func() { err = b.GetJSON(ctx, "users", "/users/2", &out) }); err != nil || d >= DefaultRedisTimeout/2 {
			t.Fatalf("call %d in the back-off window: %v in %v, want the upstream's answer at once", i, err, d)
		}
	}
}

// fakeUpstream answers every GET with a small object.
type fakeUpstream struct{}

func (fakeUpstream) GetJSON(_ context.Context, _, _ string, out any) error {
	return json.Unmarshal([]byte(`{"id":"1"}`), out)
}

func (fakeUpstream) SendJSON(context.Context, string, string, string, any, any) error {
	return http.ErrNotSupported
}
