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
	// backstop is the Redis client's own socket timeout (redisBackstop).
	backstop time.Duration
}

// redisBackstop is the shared Redis client's own read and write timeout: the longest
// store_timeout or redis_timeout a policy sets, and at least 5s, for callers without a deadline of
// their own (a purge's SCAN). go-redis takes the earlier of this and the caller's deadline, so a
// fixed 5s cut a store_timeout of 8s to 5s.
func redisBackstop(f *config.File) time.Duration {
	d := 5 * time.Second
	for _, pc := range f.Policies {
		if pc.RateLimit != nil {
			d = max(d, pc.RateLimit.StoreTimeout.Std())
		}
		if pc.Cache != nil {
			d = max(d, pc.Cache.RedisTimeout.Std())
		}
	}
	return d
}

// apqTTL bounds how long a registered persisted query lives unused in the shared store.
const apqTTL = 24 * time.Hour

// storesFor returns the current stores when the config asks for the same backend, or new ones.
// It is called with g.mu held.
func (g *Gateway) storesFor(f *config.File) (*stores, error) {
	backstop := redisBackstop(f)
	// A longer backstop than the running client's needs a new client; a shorter one does not (the
	// callers' own deadlines bound their calls).
	if g.stores != nil && g.stores.url == f.Store.Redis && (f.Store.Redis == "" || g.stores.backstop >= backstop) {
		return g.stores, nil
	}
	st := &stores{url: f.Store.Redis, backstop: backstop}
	if f.Store.Redis == "" {
		apq, err := bff.NewAPQCache(nil, apqTTL)
		if err != nil {
			return nil, fmt.Errorf("creating APQ cache: %w", err)
		}
		st.apq = apq
		return st, nil
	}
	opts, err := redisOptions(f.Store.Redis, backstop)
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
func redisOptions(url string, backstop time.Duration) (*redis.Options, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("store.redis: %w", err)
	}
	// A slow Redis must degrade (fail open, cache bypass), not stall requests. Every caller bounds
	// its calls with a context deadline of its own (rate-limit store_timeout, cache
	// redis_timeout, the APQ store's 250ms), which ContextTimeoutEnabled applies to the socket.
	// The client's timeouts are only a backstop: go-redis takes the earlier of the two, so one
	// shorter than a configured store_timeout would silently cut it (see redisBackstop).
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = time.Second, backstop, backstop
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
