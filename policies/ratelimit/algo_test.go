package ratelimit

import (
	"log/slog"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"
)

// maxInAnyWindow is the largest number of times (µs, sorted) inside any interval [t, t+w).
func maxInAnyWindow(times []int64, w int64) int {
	best, j := 0, 0
	for i := range times {
		for j < len(times) && times[j] < times[i]+w {
			j++
		}
		best = max(best, j-i)
	}
	return best
}

// TestSlidingWindowBoundIsTight builds the worst case README.md derives: an idle window, then a
// full limit L at the very end of the next one, then steady traffic. Any real window of length W
// then holds 2L-1 admitted requests, and never more.
func TestSlidingWindowBoundIsTight(t *testing.T) {
	const limit = 10
	const w = 60 * time.Second
	tests := []struct {
		strategy string
		want     int
	}{
		{SlidingWindow, 2*limit - 1},
		{FixedWindow, 2 * limit}, // for contrast: a fixed window's worst case is 2L
	}
	for _, tc := range tests {
		for _, sk := range stores {
			t.Run(tc.strategy+"/"+sk.name, func(t *testing.T) {
				clk := newClock(at(start).Add(w - time.Millisecond))
				l := build(t, sk, Config{Strategy: tc.strategy, Limits: Limits{Minute: limit}}, clk)
				var admitted []int64
				for i := 0; i < limit+1; i++ {
					if ok, err := checkOnly(l, req{consumer: "alice"}); err != nil {
						t.Fatal(err)
					} else if ok {
						admitted = append(admitted, clk.now())
					}
				}
				for range 2 * int(w/time.Second) {
					clk.add(time.Second)
					if ok, err := checkOnly(l, req{consumer: "alice"}); err != nil {
						t.Fatal(err)
					} else if ok {
						admitted = append(admitted, clk.now())
					}
				}
				if got := maxInAnyWindow(admitted, int64(w/time.Microsecond)); got != tc.want {
					t.Fatalf("most requests in one %v: %d, want %d", w, got, tc.want)
				}
			})
		}
	}
}

// TestSlidingWindowBoundRandom throws bursty random traffic at a sliding window and checks the
// stated bounds: at most 2L-1 admitted in any real window of length W, at most L at one instant,
// and on average no more than L per W.
func TestSlidingWindowBoundRandom(t *testing.T) {
	const limit = 7
	const w = int64(time.Second / time.Microsecond)
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 42))
		clk := newClock(at(start))
		l := build(t, stores[0], Config{Limits: Limits{Second: limit}}, clk)
		var admitted []int64
		instants := 0
		for range 60 {
			// Gaps from a microsecond to two windows, bursts of 1 to 3L requests.
			clk.add(time.Duration(rng.Int64N(2*w)+1) * time.Microsecond)
			if rng.IntN(3) == 0 {
				clk.add(time.Duration(w-clk.now()%w-rng.Int64N(1000)-1) * time.Microsecond) // just before a boundary
			}
			n, at := rng.IntN(3*limit)+1, 0
			for range n {
				ok, _ := checkOnly(l, req{consumer: "alice"})
				if ok {
					admitted = append(admitted, clk.now())
					at++
				}
			}
			if at > limit {
				t.Fatalf("seed %d: %d admitted at one instant, limit %d", seed, at, limit)
			}
			instants++
		}
		if got := maxInAnyWindow(admitted, w); got > 2*limit-1 {
			t.Fatalf("seed %d: %d admitted in one window, bound %d", seed, got, 2*limit-1)
		}
		span := admitted[len(admitted)-1] - admitted[0]
		if got, most := int64(len(admitted)), (span/w+2)*limit; got > most {
			t.Fatalf("seed %d: %d admitted over %d windows", seed, got, span/w+1)
		}
		_ = l.Close()
	}
}

func TestShardEviction(t *testing.T) {
	sh := &shard{m: map[string]*entry{}, max: 3}
	sh.m["expired-1"] = &entry{expires: 90}
	sh.m["live-soon"] = &entry{expires: 150}
	sh.m["expired-2"] = &entry{expires: 100}
	sh.insert([]byte("new-1"), 100)
	if got := keys(sh); !slices.Equal(got, []string{"live-soon", "new-1"}) {
		t.Fatalf("after insert into a full shard: %v; want every expired entry gone", got)
	}
	sh.m["live-late"] = &entry{expires: 900}
	sh.m["new-1"].expires = 500
	sh.insert([]byte("new-2"), 100)
	if got := keys(sh); !slices.Equal(got, []string{"live-late", "new-1", "new-2"}) {
		t.Fatalf("full of live entries: %v; want the one closest to expiry evicted", got)
	}
}

func keys(sh *shard) []string {
	var out []string
	for k := range sh.m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestMemoryBounded: however many identities arrive, the store holds at most max_keys.
func TestMemoryBounded(t *testing.T) {
	clk := newClock(at(start))
	l := build(t, stores[0], Config{Limits: Limits{Hour: 5}, By: ByIP, MaxKeys: 640}, clk)
	h := l.Wrap(&backend{})
	for i := range 5000 {
		req{ip: "10.1." + itoa(i/250) + "." + itoa(i%250)}.send(h)
	}
	if n := l.store.(*memoryRef).len(); n > 640 || n < 600 {
		t.Fatalf("store holds %d keys, want at most 640 (and close to it)", n)
	}
}

func itoa(i int) string { return smallInt(int64(i)) }

// TestJanitor: expired counters are swept in the background, and Close stops the sweeper.
func TestJanitor(t *testing.T) {
	clk := newClock(at(start))
	s := buildSpec(&Config{Strategy: FixedWindow, Limits: Limits{Second: 5}})
	m := newMemoryStore(s, 1000, clk.now, 5*time.Millisecond, slog.New(slog.DiscardHandler))
	var pos [maxWindows]windowPos
	var r result
	positions(s, clk.now(), &pos)
	for _, k := range []string{"a", "b", "c"} {
		_ = m.take(t.Context(), []byte(k), clk.now(), &pos, &r)
	}
	if m.len() != 3 {
		t.Fatalf("len %d", m.len())
	}
	clk.add(time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for m.len() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("janitor left %d expired keys", m.len())
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = m.close()
	select {
	case <-m.done:
	default:
		t.Fatal("janitor still running after close")
	}
	_ = m.close() // twice is fine
}

// TestJanitorStopsWithoutClose: a snapshot dropped without Close does not leak its janitor.
func TestJanitorStopsWithoutClose(t *testing.T) {
	l, err := newLimiter("gc", Config{Limits: Limits{Minute: 1}}, noDeps, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := l.store.(*memoryRef).done
	l = nil
	deadline := time.Now().Add(5 * time.Second)
	for {
		select {
		case <-done:
			return
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("janitor of an unreachable limiter still running")
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}
