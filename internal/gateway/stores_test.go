package gateway

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/testing/redistest"
)

// TestRedisOptionsLeaveTheBoundToCallers runs the shared client's options against a Redis this
// test starts, stops and kills (by PID). A call waits for its own deadline when that is longer
// than the old 200ms socket timeout, which silently cut a rate limit's store_timeout: 2s to
// 200ms; and with Redis gone a call fails at once instead of retrying dials for ~1.7s.
func TestRedisOptionsLeaveTheBoundToCallers(t *testing.T) {
	srv := redistest.Start(t)
	opts, err := redisOptions("redis://"+srv.Addr+"/0", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opts)
	t.Cleanup(func() { _ = rc.Close() })
	srv.Stop()
	const storeTimeout = 700 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	start := time.Now()
	err = rc.Get(ctx, "k").Err()
	took := time.Since(start)
	cancel()
	if err == nil || errors.Is(err, redis.Nil) {
		t.Fatalf("a stopped Redis answered: %v", err)
	}
	if took < storeTimeout-100*time.Millisecond {
		t.Fatalf("a call with a %v deadline gave up after %v: the client's own timeout cut it", storeTimeout, took.Round(time.Millisecond))
	}

	srv.Kill()
	rc.Close()
	rc = redis.NewClient(opts) // no pooled connection: every call dials the dead port
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start = time.Now()
	if err := rc.Get(ctx, "k").Err(); err == nil || errors.Is(err, redis.Nil) {
		t.Fatalf("a dead Redis answered: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("a refused connection took %v: dials and commands are retried", took.Round(time.Millisecond))
	}
}

// The client's own timeout is the longest a policy asks for: a fixed 5s cut a store_timeout of 8s
// to 5s, since go-redis takes the earlier of the two.
func TestRedisBackstopCoversTheLongestStoreTimeout(t *testing.T) {
	for _, tc := range []struct {
		policies string
		want     time.Duration
	}{
		{`{}`, 5 * time.Second},
		{`{rl: {rate-limit: {limits: {second: 5}, store_timeout: 8s}}}`, 8 * time.Second},
		{`{c: {cache: {ttl: 1m, redis_timeout: 6s}}, rl: {rate-limit: {limits: {second: 5}, store_timeout: 20ms}}}`, 6 * time.Second},
		{`{c: {cache: {ttl: 1m, redis_timeout: 1s}}}`, 5 * time.Second},
	} {
		f, err := config.Parse([]byte("admin: \"off\"\npolicies: "+tc.policies+"\n"), "t.yaml")
		if err != nil {
			t.Fatalf("%s: %v", tc.policies, err)
		}
		if got := redisBackstop(f); got != tc.want {
			t.Errorf("%s: backstop %v, want %v", tc.policies, got, tc.want)
		}
	}
}
