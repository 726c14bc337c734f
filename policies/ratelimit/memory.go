package ratelimit

import (
	"context"
	"hash/maphash"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// memoryShards spreads keys over independently locked maps so that parallel checks on different
// identities rarely contend; a power of two so the shard is a mask of the hash.
const memoryShards = 64

// memoryStore keeps counters in this process. Its memory is bounded by maxKeys entries; a janitor
// goroutine drops expired ones until the store is closed.
type memoryStore struct {
	spec   *spec
	seed   maphash.Seed
	shards [memoryShards]shard
	now    func() int64
	stop   context.CancelFunc
	done   chan struct{}
	// refs counts the Limiters holding the store: a reload hands it from one snapshot's Limiter
	// to the next one's, and the janitor stops when the last lets go.
	refs atomic.Int32
}

// acquire adds a holder, unless the store has already been let go of.
func (m *memoryStore) acquire() bool {
	for {
		n := m.refs.Load()
		if n == 0 {
			return false
		}
		if m.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// memoryRef is one Limiter's hold on a memory store.
type memoryRef struct {
	*memoryStore
	once sync.Once
}

// close lets go of the store, once; the last holder stops its janitor.
func (r *memoryRef) close() error {
	r.once.Do(func() {
		if r.refs.Add(-1) == 0 {
			_ = r.memoryStore.close()
		}
	})
	return nil
}

type shard struct {
	mu  sync.Mutex
	m   map[string]*entry
	max int
	// The padding keeps neighbouring shards' mutexes off one cache line.
	_ [40]byte
}

// entry is one identity's state. The window counters are a fixed array so that a new identity
// costs one allocation besides its key.
type entry struct {
	// expires is when the state no longer matters (µs): every counter it holds has rolled out of
	// the windows the algorithm reads, or the bucket has fully refilled.
	expires int64
	tat     int64
	win     [maxWindows]windowRing
}

// windowRing counts one window size's requests by window number, for the newest window seen
// (base) and the three before it, as the Redis store keeps a key per window: a request counts in
// the window its clock reading falls in, whatever the entry saw before. One current and one
// previous counter did not do: a request whose reading was taken before another's but reached
// the lock after it (at a window edge) moved the counters back and erased the newer window's
// count (a limit of L admitted 2L), and a clock stepped back left requests uncounted. A reading
// further back than the ring holds is a clock stepped back by more than three windows: the ring
// starts over there, as the Redis keys of windows that long ago have expired. 24 bytes a window
// size, as the pair was.
type windowRing struct {
	base int64
	n    [4]uint32 // n[k] counts window base-k
}

// count is window idx's count (0 outside the ring).
func (w *windowRing) count(idx int64) int64 {
	d := w.base - idx
	if d < 0 || d >= int64(len(w.n)) {
		return 0
	}
	return int64(w.n[d])
}

// add counts one request in window idx, moving the ring forward to a newer window.
func (w *windowRing) add(idx int64) {
	switch d := idx - w.base; {
	case d >= int64(len(w.n)) || -d >= int64(len(w.n)):
		w.n = [len(w.n)]uint32{}
		w.base = idx
	case d > 0:
		copy(w.n[d:], w.n[:int64(len(w.n))-d])
		clear(w.n[:d])
		w.base = idx
	}
	if i := w.base - idx; w.n[i] < math.MaxUint32 {
		w.n[i]++
	}
}

func newMemoryStore(s *spec, maxKeys int, now func() int64, sweep time.Duration, log *slog.Logger) *memoryStore {
	ctx, cancel := context.WithCancel(context.Background())
	m := &memoryStore{spec: s, seed: maphash.MakeSeed(), now: now, stop: cancel, done: make(chan struct{})}
	m.refs.Store(1)
	perShard := (maxKeys + memoryShards - 1) / memoryShards
	for i := range m.shards {
		m.shards[i].m = make(map[string]*entry)
		m.shards[i].max = perShard
	}
	go m.janitor(ctx, sweep, log)
	return m
}

func (m *memoryStore) shardFor(key []byte) *shard {
	return &m.shards[maphash.Bytes(m.seed, key)&(memoryShards-1)]
}

// take checks and counts one request for key. The memory store never fails.
func (m *memoryStore) take(_ context.Context, key []byte, now int64, pos *[maxWindows]windowPos, r *result) error {
	s := m.spec
	sh := m.shardFor(key)
	sh.mu.Lock()
	e := sh.m[string(key)] // no allocation: the compiler does not copy key for a lookup
	if e == nil {
		e = sh.insert(key, now)
	}
	if s.gcra() {
		tat := max(e.tat, now)
		ok := gcraAdmits(s, now, tat)
		if ok {
			e.tat = tat + s.interval
			e.expires = e.tat
		}
		sh.mu.Unlock()
		fillBucket(s, now, tat, ok, r)
		return nil
	}
	var c [maxWindows]counts
	for i := range s.windows {
		w, p := &e.win[i], &pos[i]
		c[i] = counts{cur: w.count(p.idx), prev: w.count(p.idx - 1)}
	}
	ok := admits(s, pos, &c)
	if ok {
		for i := range s.windows {
			e.win[i].add(pos[i].idx)
			c[i].cur++
		}
	}
	// The longest window is last, and its counter is the one that matters longest.
	last := len(s.windows) - 1
	e.expires = max(e.expires, s.keepUntil(s.windows[last], &pos[last]))
	sh.mu.Unlock()
	fillWindows(s, now, pos, &c, ok, r)
	return nil
}

// insert adds a fresh entry, first making room when the shard is full: every expired entry goes,
// and if none had expired, the one closest to expiry, so memory stays bounded whatever the
// number of identities (at the cost of forgetting a live counter under such a flood).
func (sh *shard) insert(key []byte, now int64) *entry {
	if len(sh.m) >= sh.max {
		var victim string
		soonest := int64(0)
		for k, e := range sh.m {
			if e.expires <= now {
				delete(sh.m, k)
				continue
			}
			if victim == "" || e.expires < soonest {
				victim, soonest = k, e.expires
			}
		}
		if len(sh.m) >= sh.max {
			delete(sh.m, victim)
		}
	}
	e := &entry{}
	sh.m[string(key)] = e
	return e
}

// sweep drops expired entries.
func (m *memoryStore) sweep(now int64) {
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for k, e := range sh.m {
			if e.expires <= now {
				delete(sh.m, k)
			}
		}
		sh.mu.Unlock()
	}
}

func (m *memoryStore) len() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

func (m *memoryStore) janitor(ctx context.Context, every time.Duration, log *slog.Logger) {
	defer close(m.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			func() {
				defer func() {
					if v := recover(); v != nil {
						log.Error("rate-limit janitor panicked", "panic", v)
					}
				}()
				m.sweep(m.now())
			}()
		}
	}
}

// close stops the janitor and waits for it.
func (m *memoryStore) close() error {
	m.stop()
	<-m.done
	return nil
}
