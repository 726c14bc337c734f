package bff

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
)

// ownRedis starts a redis-server on a free port for a test that stops or kills it, by its PID
// only. It returns the server and a client with the gateway's options: no retries and a
// socket backstop far above the APQ store's own bound.
func ownRedis(t *testing.T) (*exec.Cmd, *redis.Client) {
	t.Helper()
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
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + port, DialTimeout: time.Second,
		ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, ContextTimeoutEnabled: true,
		MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = rc.Close() })
	deadline := time.Now().Add(5 * time.Second)
	for rc.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cmd, rc
}

// TestAPQStalledRedisIsBounded: a Redis that stops answering costs a lookup or a registration
// at most the APQ store's bound, then counts as a miss; without a bound of its own the APQ
// waited for the client's socket timeout on every GraphQL request.
func TestAPQStalledRedisIsBounded(t *testing.T) {
	cmd, rc := ownRedis(t)
	apq, err := NewRedisAPQCache(rc, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	apq = apq.WithPrefix("test:apq:stall:").WithLogger(slog.New(slog.DiscardHandler))
	apq.Add(context.Background(), "h1", "{ me { id } }")
	if _, ok := apq.Get(context.Background(), "h1"); !ok {
		t.Fatal("setup: document not found")
	}
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
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
	cmd, rc := ownRedis(t)
	apq, err := NewRedisAPQCache(rc, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	errs := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_apq_store_errors_total", Help: "test"})
	apq = apq.WithPrefix("test:apq:down:").WithLogger(slog.New(slog.NewTextHandler(&logs, nil))).WithStoreErrors(errs)
	apq.Add(context.Background(), "h1", "{ me { id } }")
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
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
