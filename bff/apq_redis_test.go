package bff

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	respcache "github.com/portico-gw/portico/policies/cache"
	"github.com/portico-gw/portico/testing/redistest"
)

// redisClient is a client of srv with the gateway's options: no retries and a socket backstop
// far above the APQ store's own bound.
func redisClient(t *testing.T, srv *redistest.Server) *redis.Client {
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr, DialTimeout: time.Second,
		ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, ContextTimeoutEnabled: true,
		MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = rc.Close() })
	return rc
}

// TestAPQStalledRedisIsBounded: a Redis that stops answering costs a lookup or a registration
// at most the APQ store's bound, then counts as a miss; without a bound of its own the APQ
// waited for the client's socket timeout on every GraphQL request.
func TestAPQStalledRedisIsBounded(t *testing.T) {
	srv := redistest.Start(t)
	apq, err := NewRedisAPQCache(redisClient(t, srv), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	apq = apq.WithPrefix("test:apq:stall:").WithLogger(slog.New(slog.DiscardHandler))
	apq.Add(context.Background(), "h1", "{ me { id } }")
	if _, ok := apq.Get(context.Background(), "h1"); !ok {
		t.Fatal("setup: document not found")
	}
	srv.Stop()
	start := time.Now()
	_, ok := apq.Get(context.Background(), "h1")
	getTook := time.Since(start)
	start = time.Now()
	apq.Add(context.Background(), "h2", "{ me { name } }")
	addTook := time.Since(start)
	if ok {
		t.Fatal("a stalled Redis answered")
	}
	// The bound is 250ms; the margin absorbs a loaded machine, not the socket's 5s.
	if getTook > 2*time.Second || addTook > 2*time.Second {
		t.Fatalf("APQ against a stalled Redis: Get %v, Add %v", getTook.Round(time.Millisecond), addTook.Round(time.Millisecond))
	}
}

// TestAPQRedisDownLogsOncePerInterval: with Redis gone every lookup is a miss, counted, and the
// log gets one line per interval, not one per request.
func TestAPQRedisDownLogsOncePerInterval(t *testing.T) {
	srv := redistest.Start(t)
	apq, err := NewRedisAPQCache(redisClient(t, srv), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	errs := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_apq_store_errors_total", Help: "test"})
	apq = apq.WithPrefix("test:apq:down:").WithLogger(slog.New(slog.NewTextHandler(&logs, nil))).WithStoreErrors(errs)
	apq.Add(context.Background(), "h1", "{ me { id } }")
	srv.Kill()
	for range 10 {
		if _, ok := apq.Get(context.Background(), "h1"); ok {
			t.Fatal("hit on a dead Redis")
		}
	}
	if lines := strings.Count(logs.String(), "\n"); lines != 1 {
		t.Fatalf("%d log lines for 10 failed lookups, want 1:\n%s", lines, logs.String())
	}
	if got := testutil.ToFloat64(errs); got != 10 {
		t.Fatalf("store errors counted %v, want 10", got)
	}
}

// TestAPQHungRedisBacksOff: once a call to a hung Redis has timed out, the lookups and
// registrations behind it give up at once (still counted) instead of each waiting the bound, and
// once Redis answers again the store is used after the back-off window.
func TestAPQHungRedisBacksOff(t *testing.T) {
	srv := redistest.Start(t)
	errs := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_apq_store_errors_total", Help: "test"})
	apq, err := NewRedisAPQCache(redisClient(t, srv), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	apq = apq.WithPrefix("test:apq:backoff:").WithLogger(slog.New(slog.DiscardHandler)).WithStoreErrors(errs)
	ctx := context.Background()
	apq.Add(ctx, "h1", "{ me { id } }")
	srv.Stop()
	t.Cleanup(srv.Continue)
	timed := func(fn func()) time.Duration { start := time.Now(); fn(); return time.Since(start) }
	if d := timed(func() { apq.Get(ctx, "h1") }); d < APQStoreTimeout/2 {
		t.Fatalf("first lookup on a hung Redis took %v: it never reached Redis", d)
	}
	for i := range 3 {
		var ok bool
		get := timed(func() { _, ok = apq.Get(ctx, "h1") })
		add := timed(func() { apq.Add(ctx, "h2", "{ me { name } }") })
		if ok || get >= APQStoreTimeout/2 || add >= APQStoreTimeout/2 {
			t.Fatalf("round %d in the back-off window: Get %v (found %v), Add %v; want a miss at once", i, get, ok, add)
		}
	}
	if got := testutil.ToFloat64(errs); got != 7 {
		t.Fatalf("store errors counted %v, want 7: a bypass in the window still counts", got)
	}
	srv.Continue()
	time.Sleep(respcache.DefaultStoreBackoff + 100*time.Millisecond)
	if q, ok := apq.Get(ctx, "h1"); !ok || q != "{ me { id } }" {
		t.Fatalf("after Redis came back and the window passed: %q, %v", q, ok)
	}
}
