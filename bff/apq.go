package bff

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	"github.com/vektah/gqlparser/v2/gqlerror"

	respcache "github.com/portico-gw/portico/policies/cache"
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
	// backoff bypasses a Redis that just timed out or could not be reached, shared by the
	// copies; nil (never bypass) for the in-memory store.
	backoff *respcache.StoreBackoff
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
	c, err := NewAPQCache(redisstore.NewRedis(client), ttl)
	if err != nil {
		return nil, err
	}
	// The bound alone made a hung Redis cost every GraphQL request a lookup's or a
	// registration's whole timeout; the back-off makes it one timeout per window.
	c.backoff = respcache.NewStoreBackoff(respcache.DefaultStoreBackoff)
	return c, nil
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
	var v string
	err := c.backoff.Call(ctx, c.timeout, func(ctx context.Context) error {
		var err error
		if v, err = c.cache.Get(ctx, c.prefix+hash); errors.Is(err, store.NotFound{}) {
			v, err = "", nil // Redis answered
		}
		return err
	})
	if err != nil {
		c.storeFailed(ctx, "apq cache lookup failed; treating as a miss", err)
		return "", false
	}
	return v, v != ""
}

// Add registers query under hash; the APQ extension has already checked that they match.
func (c *APQCache) Add(ctx context.Context, hash, query string) {
	err := c.backoff.Call(ctx, c.timeout, func(ctx context.Context) error {
		return c.cache.Set(ctx, c.prefix+hash, query, store.WithExpiration(c.ttl), store.WithCost(int64(len(query))))
	})
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

// automaticPersistedQueries is Apollo's APQ protocol over a graphql.Cache: a request with only
// extensions.persistedQuery.sha256Hash runs the document registered under that hash, or answers
// PERSISTED_QUERY_NOT_FOUND so the client sends the text with the hash.
//
// It replaces gqlgen's extension.AutomaticPersistedQuery, which registers the text as soon as its
// hash matches, before anything parses it: any client could fill the shared store (Redis, across
// replicas and BFFs) with arbitrary text, refused documents included. Here the parameter mutator
// only notes the pending registration on the operation context, and apqRegistration, the last
// operation context mutator, registers it once the document has parsed, validated and passed
// every limit.
type automaticPersistedQueries struct {
	cache graphql.Cache[string]
	// docs are the BFF's stored operations, which storedDocuments resolves by hash before this
	// runs; their hashes are never registered.
	docs *documentSet
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = automaticPersistedQueries{}

// apqPendingKey names the pending registration in the operation's stats.
const apqPendingKey = "PorticoAPQPending"

// apqPending is a hash and the text it was checked against, to register if the operation passes.
type apqPending struct{ hash, query string }

// ExtensionName names the extension in gqlgen's stats.
func (automaticPersistedQueries) ExtensionName() string { return "PorticoAutomaticPersistedQueries" }

// Validate requires a cache.
func (a automaticPersistedQueries) Validate(graphql.ExecutableSchema) error {
	if a.cache == nil {
		return errors.New("automatic persisted queries need a cache")
	}
	return nil
}

// MutateOperationParameters looks a hash up, or checks a hash sent with its text and notes the
// text for apqRegistration.
func (a automaticPersistedQueries) MutateOperationParameters(ctx context.Context, params *graphql.RawParams) *gqlerror.Error {
	hash, present, err := persistedQueryHash(params)
	if err != nil || !present {
		return err
	}
	if params.Query == "" {
		q, ok := a.cache.Get(ctx, hash)
		if !ok {
			// Apollo's clients match on this message as well as on the code.
			return codedError(codePersistedQueryNotFound, "PersistedQueryNotFound")
		}
		params.Query = q
		return nil
	}
	sum := sha256.Sum256([]byte(params.Query))
	if hex.EncodeToString(sum[:]) != hash {
		return codedError(codeBadRequest, "provided APQ hash does not match query")
	}
	if a.docs.byHash[hash] == nil && graphql.HasOperationContext(ctx) {
		graphql.GetOperationContext(ctx).Stats.SetExtension(apqPendingKey, &apqPending{hash: hash, query: params.Query})
	}
	return nil
}

// apqRegistration registers the text a request sent with its persisted-query hash. It must be the
// last operation context mutator: gqlgen runs those only for a document that parsed and validated
// (variables included), and in the order they were added, so reaching it means every limit
// before it (introspection, depth, complexity) accepted the operation.
type apqRegistration struct{ cache graphql.Cache[string] }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = apqRegistration{}

// ExtensionName names the extension in gqlgen's stats.
func (apqRegistration) ExtensionName() string { return "PorticoAPQRegistration" }

// Validate accepts any schema.
func (apqRegistration) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext registers the pending document, if any.
func (r apqRegistration) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	if p, ok := opCtx.Stats.GetExtension(apqPendingKey).(*apqPending); ok && p.query == opCtx.RawQuery {
		r.cache.Add(ctx, p.hash, p.query)
	}
	return nil
}
