package gateway

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestRedisOptionsLeaveTheBoundToCallers runs the shared client's options against a Redis this
// test starts, stops and kills (by PID). A call waits for its own deadline when that is longer
// than the old 200ms socket timeout, which silently cut a rate limit's store_timeout: 2s to
// 200ms; and with Redis gone a call fails at once instead of retrying dials for ~1.7s.
func TestRedisOptionsLeaveTheBoundToCallers(t *testing.T) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	cmd := exec.Command(path, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	opts, err := redisOptions("redis://127.0.0.1:" + port + "/0")
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opts)
	t.Cleanup(func() { _ = rc.Close() })
	deadline := time.Now().Add(5 * time.Second)
	for rc.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}

	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
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

	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
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
