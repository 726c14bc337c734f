package bff

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/dgraph-io/ristretto"
	"github.com/eko/gocache/lib/v4/cache"
	"github.com/eko/gocache/lib/v4/store"
	redisstore "github.com/eko/gocache/store/redis/v4"
	ristrettostore "github.com/eko/gocache/store/ristretto/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// DefaultAPQTTL is how long a registered persisted query is kept after its last registration.
const DefaultAPQTTL = 24 * time.Hour

// DefaultAPQMemoryBytes is the in-memory APQ cache's capacity in bytes of query text.
const DefaultAPQMemoryBytes = 32 << 20

// DefaultAPQPrefix starts every APQ key, so APQ documents share a Redis with other data safely.
const DefaultAPQPrefix = "portico:apq:"

// APQStoreTimeout bounds one lookup or registration in the store, like the cache policy's
// redis_timeout: a stalled Redis costs a GraphQL request at most this, then counts as a miss.
const APQStoreTimeout = 250 * time.Millisecond

// apqErrorLogEvery bounds the log to one line per interval while the store is down.
const apqErrorLogEvery = 10 * time.Second

// APQCache stores automatic persisted queries (sha256 → document text) in a gocache store. It
// implements gqlgen's graphql.Cache[string]. A failing store (Redis down) never fails a request:
// a lookup becomes a miss, so clients fall back to sending the full query, and a failed write only
// costs the next request its hash shortcut. Both are counted and logged (a line per 10s at most).
type APQCache struct {
	cache   *cache.Cache[string]
	ttl     time.Duration
	timeout time.Duration
	prefix  string
	log     *slog.Logger
	errs    prometheus.Counter // nil: not counted
	// lastLog and suppressed are shared by the copies With* make, which serve one store.
	lastLog    *atomic.Int64
	suppressed *atomic.Int64
	close      func()
}

var _ graphql.Cache[string] = (*APQCache)(nil)

// NewAPQCache returns an APQ cache over s, keeping documents for ttl (DefaultAPQTTL when 0). A nil
// s means an in-memory ristretto store of DefaultAPQMemoryBytes, private to this process; call
// Close to stop its goroutines.
func NewAPQCache(s store.StoreInterface, ttl time.Duration) (*APQCache, error) {
	if ttl < 0 {
		return nil, fmt.Errorf("apq ttl %s is negative", ttl)
	}
	if ttl == 0 {
		ttl = DefaultAPQTTL
	}
	c := &APQCache{ttl: ttl, timeout: APQStoreTimeout, prefix: DefaultAPQPrefix, log: slog.Default(),
		lastLog: new(atomic.Int64), suppressed: new(atomic.Int64), close: func() {}}
	if s == nil {
		rc, err := ristretto.NewCache(&ristretto.Config{
			NumCounters: 100_000, // ten times the documents expected at ~3 KiB each
			MaxCost:     DefaultAPQMemoryBytes,
			BufferItems: 64,
		})
		if err != nil {
			return nil, fmt.Errorf("creating in-memory apq cache: %w", err)
		}
		// Synchronous sets: a client that registers a query and at once sends its hash (Apollo's
		// retry) must find it.
		s = ristrettostore.NewRistretto(rc, store.WithSynchronousSet())
		c.close = rc.Close
	}
	c.cache = cache.New[string](s)
	return c, nil
}

// NewRedisAPQCache returns an APQ cache in Redis, shared by every Portico instance using the same
// server, with keys DefaultAPQPrefix+sha256 that expire after ttl (DefaultAPQTTL when 0).
func NewRedisAPQCache(client *redis.Client, ttl time.Duration) (*APQCache, error) {
	if client == nil {
		return nil, errors.New("redis apq cache: nil client")
	}
	return NewAPQCache(redisstore.NewRedis(client), ttl)
}

// WithPrefix returns a copy of c whose keys start with prefix instead of DefaultAPQPrefix, for
// several deployments (or tests) sharing one Redis.
func (c *APQCache) WithPrefix(prefix string) *APQCache {
	cp := *c
	cp.prefix = prefix
	return &cp
}

// WithLogger returns a copy of c that reports store failures to log.
func (c *APQCache) WithLogger(log *slog.Logger) *APQCache {
	cp := *c
	if log != nil {
		cp.log = log
	}
	return &cp
}

// WithStoreErrors returns a copy of c that counts store failures in errs.
func (c *APQCache) WithStoreErrors(errs prometheus.Counter) *APQCache {
	cp := *c
	cp.errs = errs
	return &cp
}

// Get returns the document registered under hash.
func (c *APQCache) Get(ctx context.Context, hash string) (string, bool) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	v, err := c.cache.Get(ctx, c.prefix+hash)
	if err != nil {
		if !errors.Is(err, store.NotFound{}) {
			c.storeFailed(ctx, "apq cache lookup failed; treating as a miss", err)
		}
		return "", false
	}
	return v, v != ""
}

// Add registers query under hash; the APQ extension has already checked that they match.
func (c *APQCache) Add(ctx context.Context, hash, query string) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	err := c.cache.Set(ctx, c.prefix+hash, query, store.WithExpiration(c.ttl), store.WithCost(int64(len(query))))
	if err != nil {
		c.storeFailed(ctx, "apq cache write failed", err)
	}
}

func (c *APQCache) storeFailed(ctx context.Context, msg string, err error) {
	if c.errs != nil {
		c.errs.Inc()
	}
	now := time.Now().UnixNano()
	last := c.lastLog.Load()
	if now-last < int64(apqErrorLogEvery) || !c.lastLog.CompareAndSwap(last, now) {
		c.suppressed.Add(1)
		return
	}
	c.log.WarnContext(ctx, msg, "error", err, "failures_not_logged", c.suppressed.Swap(0))
}

// Close releases an in-memory cache's goroutines; for a Redis cache it does nothing (the client
// belongs to the caller).
func (c *APQCache) Close() { c.close() }
