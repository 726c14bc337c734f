package cache

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/ristretto"
	gocache "github.com/eko/gocache/lib/v4/cache"
	gostore "github.com/eko/gocache/lib/v4/store"
	redisstore "github.com/eko/gocache/store/redis/v4"
	ristrettostore "github.com/eko/gocache/store/ristretto/v4"
	"github.com/redis/go-redis/v9"
)

// entryStore is where entries live: memory (ristretto) or Redis, both through gocache.
type entryStore interface {
	// get returns the entry under key, or nil without error when there is none.
	get(ctx context.Context, key string) (*entry, error)
	set(ctx context.Context, key string, e *entry, ttl time.Duration) error
	del(ctx context.Context, key string) (bool, error)
	delPrefix(ctx context.Context, prefix string) (int, error)
}

// errNotStored is a set the memory store declined (ristretto's admission policy or a full set
// buffer). It is not a store failure: the response was just not kept.
var errNotStored = errors.New("entry not admitted")

// memStore is a ristretto cache behind gocache, with an index of its keys: ristretto hashes keys
// and cannot list them, and purge by prefix needs the list.
type memStore struct {
	id      string
	rc      *ristretto.Cache
	cache   *gocache.Cache[any]
	maxKeys int

	mu    sync.Mutex
	index map[string]*list.Element // key → element holding the *memItem stored under it
	order *list.List               // insertion order, oldest first, for eviction beyond maxKeys
	refs  int
}

type memItem struct {
	key     string
	e       *entry
	expires time.Time
}

// memStores lets the snapshot built by a reload reuse the previous snapshot's memory store for
// the same policy, so a reload does not empty the cache. A store is closed (stopping ristretto's
// goroutines) when the last policy using it is garbage collected.
var memStores = struct {
	sync.Mutex
	m map[string]*memStore
}{m: map[string]*memStore{}}

func acquireMemStore(name string, maxCost int64, maxKeys int) (*memStore, error) {
	id := memStoreID(name, maxCost, maxKeys)
	memStores.Lock()
	defer memStores.Unlock()
	if s, ok := memStores.m[id]; ok {
		s.refs++
		return s, nil
	}
	s := &memStore{id: id, maxKeys: maxKeys, index: map[string]*list.Element{}, order: list.New(), refs: 1}
	rc, err := ristretto.NewCache(&ristretto.Config{
		NumCounters:        int64(maxKeys) * 10, // ristretto's advice: 10x the items held
		MaxCost:            maxCost,
		BufferItems:        64,
		IgnoreInternalCost: true, // cost is bytes of response; MaxCost reads as a byte budget
		OnEvict:            s.forget,
		OnReject:           s.forget,
	})
	if err != nil {
		return nil, fmt.Errorf("creating memory cache: %w", err)
	}
	s.rc = rc
	s.cache = gocache.New[any](ristrettostore.NewRistretto(rc))
	memStores.m[id] = s
	return s, nil
}

func memStoreID(name string, maxCost int64, maxKeys int) string {
	return fmt.Sprintf("%s\x00%d\x00%d", name, maxCost, maxKeys)
}

// release drops one reference; the last closes the store.
func (s *memStore) release() {
	memStores.Lock()
	defer memStores.Unlock()
	s.refs--
	if s.refs > 0 {
		return
	}
	delete(memStores.m, s.id)
	s.rc.Close()
}

// forget removes an item ristretto evicted, expired or rejected from the index. It runs on
// ristretto's goroutine, so nothing holding s.mu may wait on ristretto.
func (s *memStore) forget(it *ristretto.Item) {
	mi, ok := it.Value.(*memItem)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.index[mi.key]; ok && el.Value == mi {
		s.order.Remove(el)
		delete(s.index, mi.key)
	}
}

func (s *memStore) get(ctx context.Context, key string) (*entry, error) {
	v, err := s.cache.Get(ctx, key)
	if err != nil {
		if errors.Is(err, gostore.NotFound{}) {
			return nil, nil
		}
		return nil, err
	}
	mi, _ := v.(*memItem)
	if mi == nil {
		return nil, nil
	}
	return mi.e, nil
}

func (s *memStore) set(ctx context.Context, key string, e *entry, ttl time.Duration) error {
	mi := &memItem{key: key, e: e, expires: time.Now().Add(ttl)}
	// Index first: ristretto may evict or reject the item before Set returns, and forget must
	// find it then.
	var victims []string
	s.mu.Lock()
	if el, ok := s.index[key]; ok {
		el.Value = mi
		s.order.MoveToBack(el)
	} else {
		s.index[key] = s.order.PushBack(mi)
	}
	for s.order.Len() > s.maxKeys {
		old := s.order.Remove(s.order.Front()).(*memItem)
		delete(s.index, old.key)
		victims = append(victims, old.key)
	}
	s.mu.Unlock()
	for _, k := range victims {
		_ = s.cache.Delete(ctx, k)
	}
	err := s.cache.Set(ctx, key, mi, gostore.WithCost(int64(len(key))+e.cost()),
		gostore.WithExpiration(ttl), gostore.WithSynchronousSet())
	if err != nil {
		s.unindex(key, mi)
		return errNotStored
	}
	return nil
}

func (s *memStore) unindex(key string, mi *memItem) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.index[key]; ok && (mi == nil || el.Value == mi) {
		s.order.Remove(el)
		delete(s.index, key)
	}
}

func (s *memStore) del(ctx context.Context, key string) (bool, error) {
	now := time.Now()
	s.mu.Lock()
	el, ok := s.index[key]
	live := ok && el.Value.(*memItem).expires.After(now)
	if ok {
		s.order.Remove(el)
		delete(s.index, key)
	}
	s.mu.Unlock()
	return live, s.cache.Delete(ctx, key)
}

func (s *memStore) delPrefix(ctx context.Context, prefix string) (int, error) {
	now := time.Now()
	var keys []string
	live := 0
	s.mu.Lock()
	for k, el := range s.index {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
			if el.Value.(*memItem).expires.After(now) {
				live++
			}
			s.order.Remove(el)
			delete(s.index, k)
		}
	}
	s.mu.Unlock()
	for _, k := range keys {
		if err := s.cache.Delete(ctx, k); err != nil {
			return live, err
		}
	}
	return live, nil
}

// redisNamespace prefixes every cache key in Redis, apart from rate-limit counters and APQ
// documents sharing the same database.
const redisNamespace = "portico:cache:"

// redisStore keeps encoded entries in Redis through gocache, shared by every Portico instance.
// Request-path calls (get, set, del) go through a back-off, so that a hung Redis costs one
// timeout per back-off window instead of one per call.
type redisStore struct {
	client  redis.UniversalClient
	cache   *gocache.Cache[any]
	timeout time.Duration
	backoff *StoreBackoff
}

func newRedisStore(client redis.UniversalClient, timeout time.Duration) *redisStore {
	return &redisStore{client: client, cache: gocache.New[any](redisstore.NewRedis(client)), timeout: timeout,
		backoff: NewStoreBackoff(DefaultStoreBackoff)}
}

func (s *redisStore) get(ctx context.Context, key string) (*entry, error) {
	var v any
	err := s.backoff.Call(ctx, s.timeout, func(ctx context.Context) error {
		var err error
		if v, err = s.cache.Get(ctx, redisNamespace+key); errors.Is(err, gostore.NotFound{}) {
			v, err = nil, nil // Redis answered
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading cache entry from redis: %w", err)
	}
	var b []byte
	switch v := v.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return nil, nil
	}
	e, err := decodeEntry(b)
	if err != nil {
		// An entry written by an incompatible version is a miss, not an outage.
		return nil, nil
	}
	return e, nil
}

func (s *redisStore) set(ctx context.Context, key string, e *entry, ttl time.Duration) error {
	err := s.backoff.Call(ctx, s.timeout, func(ctx context.Context) error {
		return s.cache.Set(ctx, redisNamespace+key, e.encode(), gostore.WithExpiration(ttl))
	})
	if err != nil {
		return fmt.Errorf("writing cache entry to redis: %w", err)
	}
	return nil
}

func (s *redisStore) del(ctx context.Context, key string) (bool, error) {
	var n int64
	err := s.backoff.Call(ctx, s.timeout, func(ctx context.Context) error {
		var err error
		n, err = s.client.Del(ctx, redisNamespace+key).Result()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("deleting cache entry from redis: %w", err)
	}
	return n > 0, nil
}

// delPrefix walks the keyspace with SCAN MATCH (never KEYS, which blocks Redis) and unlinks
// matches batch by batch. On a cluster every master is scanned. It is bounded by ctx, not by
// the per-operation timeout, since a large keyspace takes many round trips.
func (s *redisStore) delPrefix(ctx context.Context, prefix string) (int, error) {
	pattern := redisNamespace + globEscape(prefix) + "*"
	if cc, ok := s.client.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		total := 0
		err := cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			n, err := scanDelete(ctx, node, pattern)
			mu.Lock()
			total += n
			mu.Unlock()
			return err
		})
		return total, err
	}
	return scanDelete(ctx, s.client, pattern)
}

func scanDelete(ctx context.Context, c redis.Cmdable, pattern string) (int, error) {
	total := 0
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, pattern, 500).Result()
		if err != nil {
			return total, fmt.Errorf("scanning redis for cache entries: %w", err)
		}
		if len(keys) > 0 {
			n, err := c.Unlink(ctx, keys...).Result()
			if err != nil {
				return total, fmt.Errorf("deleting cache entries from redis: %w", err)
			}
			total += int(n)
		}
		if next == 0 {
			return total, nil
		}
		cursor = next
	}
}

// globEscape quotes Redis glob metacharacters so a prefix matches only itself.
func globEscape(s string) string {
	if !strings.ContainsAny(s, `*?[]\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(`*?[]\`, s[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
