package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisLogEvery is how often go-redis's own log lines reach the log at most.
const redisLogEvery = 10 * time.Second

// redisLog takes go-redis's own log lines (a failed dial, a pool error) to the gateway's log, at
// most one per redisLogEvery with a count of those left out. Its default logger wrote every
// failed dial to stderr unformatted: while Redis was down, one line per request, next to
// Portico's own warnings, which are logged once per interval.
type redisLog struct {
	logger *slog.Logger
	every  time.Duration

	mu      sync.Mutex
	last    time.Time
	dropped int
}

// Printf is go-redis's logging interface.
func (l *redisLog) Printf(_ context.Context, format string, v ...any) {
	l.mu.Lock()
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.dropped++
		l.mu.Unlock()
		return
	}
	dropped := l.dropped
	l.last, l.dropped = now, 0
	l.mu.Unlock()
	l.logger.Warn("redis client", "message", fmt.Sprintf(format, v...), "suppressed", dropped)
}

// redisLogOnce installs redisLog for the process: go-redis has one logger for all its clients.
var redisLogOnce sync.Once

func useRedisLog(logger *slog.Logger) {
	redisLogOnce.Do(func() { redis.SetLogger(&redisLog{logger: logger, every: redisLogEvery}) })
}
