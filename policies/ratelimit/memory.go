package ratelimit

import (
	"context"
	"hash/maphash"
	"log/slog"
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
// maxStraggle bounds how far behind the latest reading a request's clock reading may be and still
// count as a straggler of the same moment (read, then descheduled before the lock); further back
// is the clock being stepped back.
const maxStraggle = int64(time.Second / time.Microsecond)

type entry struct {
	// expires is when the state no longer matters (µs): every counter it holds has rolled out of
	// the windows the algorithm reads, or the bucket has fully refilled.
	expires int64
	tat     int64
	// seen is the latest clock reading a window request brought (µs): a request whose clock
	// was read earlier but took the lock later is judged at seen (see take).
	seen int64
	win  [maxWindows]struct{ idx, cur, prev int64 }
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
	if now >= e.seen {
		e.seen = now
	} else if e.seen-now <= maxStraggle {
		// The clock was read before that of a request that took the lock first, across a window
		// edge perhaps: judged at its own time, it moved the entry back to the old window (a
		// limit of L admitted 2L), or weighed the new window's counts by the old position.
		now = e.seen
		positions(s, now, pos)
	}
	// Further back, the wall clock was stepped back (NTP, a restored VM): the request is judged
	// in its own windows, as the Redis store's per-window keys judge it, and no window the entry
	// holds moves back (moving it erased the current window's count, or froze a spent window for
	// as long as the step when the reading was clamped).
	var c [maxWindows]counts
	var behind [maxWindows]int8 // 1: the entry's previous window is the request's; 2: older still
	for i := range s.windows {
		w, p := &e.win[i], &pos[i]
		switch {
		case w.idx == p.idx:
		case w.idx == p.idx-1:
			w.prev, w.cur = w.cur, 0
			w.idx = p.idx
		case w.idx == p.idx+1:
			behind[i] = 1
			c[i] = counts{cur: w.prev} // the count before that is not kept: 0
			continue
		case w.idx > p.idx:
			behind[i] = 2
			continue
		default:
			w.prev, w.cur = 0, 0
			w.idx = p.idx
		}
		c[i] = counts{cur: w.cur, prev: w.prev}
	}
	ok := admits(s, pos, &c)
	if ok {
		for i := range s.windows {
			switch behind[i] {
			case 0:
				e.win[i].cur++
			case 1:
				e.win[i].prev++
			}
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
