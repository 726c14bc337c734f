package gateway

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// While Redis is down every command fails to dial, and go-redis logs each failure: with redisLog
// the gateway's log gets one line per interval, with the count of those left out, not one per
// request.
func TestRedisClientLogIsRateLimited(t *testing.T) {
	var buf bytes.Buffer
	l := &redisLog{logger: slog.New(slog.NewTextHandler(&buf, nil)), every: time.Hour}
	redis.SetLogger(l)
	t.Cleanup(func() { redis.SetLogger(&redisLog{logger: slog.New(slog.DiscardHandler), every: time.Hour}) })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	opts, err := redisOptions("redis://"+addr+"/0", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	defer c.Close()
	for range 20 {
		if err := c.Ping(context.Background()).Err(); err == nil {
			t.Fatal("a ping to a closed port answered")
		}
	}
	if n := strings.Count(buf.String(), "redis client"); n != 1 {
		t.Errorf("%d log lines for 20 failed dials, want 1:\n%s", n, buf.String())
	}
	l.every = 0
	l.Printf(context.Background(), "later %d", 1)
	if out := buf.String(); !strings.Contains(out, "later 1") || !strings.Contains(out, "suppressed=") || strings.Contains(out, "suppressed=0\nlater") {
		t.Errorf("the next line after the interval: %s", out)
	}
}
