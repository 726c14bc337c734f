package gateway

import (
	"context"
	"fmt"
	"time"

	"github.com/portico-gw/portico/bff"
	"github.com/portico-gw/portico/internal/config"
	"github.com/redis/go-redis/v9"
)

// stores are the shared-state backends: Redis when configured, and the APQ document cache. They
// outlive snapshots: a reload that keeps `store.redis` keeps the same connections and the same
// persisted queries, so clients' registered documents survive it.
type stores struct {
	url   string
	redis *redis.Client
	apq   *bff.APQCache
}

// apqTTL bounds how long a registered persisted query lives unused in the shared store.
const apqTTL = 24 * time.Hour

// storesFor returns the current stores when the config asks for the same backend, or new ones.
// It is called with g.mu held.
func (g *Gateway) storesFor(f *config.File) (*stores, error) {
	if g.stores != nil && g.stores.url == f.Store.Redis {
		return g.stores, nil
	}
	st := &stores{url: f.Store.Redis}
	if f.Store.Redis == "" {
		apq, err := bff.NewAPQCache(nil, apqTTL)
		if err != nil {
			return nil, fmt.Errorf("creating APQ cache: %w", err)
		}
		st.apq = apq
		return st, nil
	}
	opts, err := redisOptions(f.Store.Redis)
	if err != nil {
		return nil, err
	}
	useRedisLog(g.logger)
	st.redis = redis.NewClient(opts)
	// Check (portico validate) never pings: the client connects on first use, which never
	// comes, so an unreachable Redis neither delays nor fails a check, as it does not fail a start.
	if !g.check {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := st.redis.Ping(ctx).Err(); err != nil {
			// Not fatal: Redis may come up after Portico; policies fail open meanwhile.
			g.logger.Warn("redis store not answering yet; until it does, the cache is bypassed and rate limits fail open (503 where fault_tolerant is false)", "error", err.Error())
		}
	}
	apq, err := bff.NewRedisAPQCache(st.redis, apqTTL)
	if err != nil {
		_ = st.redis.Close()
		return nil, fmt.Errorf("creating APQ cache on redis: %w", err)
	}
	st.apq = apq.WithLogger(g.logger).WithStoreErrors(g.apqStoreErrors)
	return st, nil
}

// redisOptions are the shared client's options for a store.redis URL.
func redisOptions(url string) (*redis.Options, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("store.redis: %w", err)
	}
	// A slow Redis must degrade (fail open, cache bypass), not stall requests. Every caller bounds
	// its calls with a context deadline of its own (rate-limit store_timeout, cache
	// redis_timeout, the APQ store's 250ms), which ContextTimeoutEnabled applies to the socket.
	// The client's timeouts are only a backstop: go-redis takes the earlier of the two, so a short
	// one here would silently cut a store_timeout configured longer.
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = time.Second, 5*time.Second, 5*time.Second
	opts.ContextTimeoutEnabled = true
	// No retries: within a deadline of milliseconds a retry only delays the verdict (fail open,
	// bypass) that the caller will reach anyway, and a refused dial retried 5 times with 100ms
	// pauses costs every request half a second while Redis is down.
	opts.MaxRetries, opts.DialerRetries = -1, 1
	return opts, nil
}

// adoptStores makes st current; stores it replaces are closed once requests that may still use
// them have had time to finish. Called with g.mu held.
func (g *Gateway) adoptStores(st *stores) {
	if g.stores == st {
		return
	}
	old := g.stores
	g.stores = st
	if old != nil {
		time.AfterFunc(time.Minute, old.close)
	}
}

func (s *stores) close() {
	if s.apq != nil {
		s.apq.Close()
	}
	if s.redis != nil {
		_ = s.redis.Close()
	}
}
