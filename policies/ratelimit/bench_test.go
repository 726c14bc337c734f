package ratelimit

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/policies"
)

// huge keeps every benchmark check admitted, so they measure counting, not rejecting.
const huge = 1 << 40

var benchConfigs = []struct {
	name string
	cfg  Config
}{
	{"sliding_window", Config{Limits: Limits{Second: huge, Minute: huge, Hour: huge}}},
	{"fixed_window", Config{Strategy: FixedWindow, Limits: Limits{Minute: huge}}},
	{"token_bucket", Config{Strategy: TokenBucket, Rate: 1_000_000, Burst: huge}},
}

func benchKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = []byte("consumer:user-" + strconv.Itoa(i))
	}
	return keys
}

// benchCheck runs the store check in parallel; keys == 1 is one hot key shared by every
// goroutine, the worst case for lock contention.
func benchCheck(b *testing.B, l *Limiter, nkeys int) {
	keys := benchKeys(nkeys)
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7919))
		var pos [maxWindows]windowPos
		var r result
		ctx := b.Context()
		for pb.Next() {
			i++
			now := l.now()
			positions(l.spec, now, &pos)
			if err := l.store.take(ctx, keys[i%nkeys], now, &pos, &r); err != nil || !r.allowed {
				b.Fatalf("check failed: %v %v", err, r.allowed)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
}

func BenchmarkMemoryCheck(b *testing.B) {
	for _, bc := range benchConfigs {
		for _, nkeys := range []int{10_000, 1} {
			b.Run(bc.name+"/keys="+strconv.Itoa(nkeys), func(b *testing.B) {
				l, err := newLimiter("bench", bc.cfg, policies.Deps{}, nil)
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				benchCheck(b, l, nkeys)
			})
		}
	}
}

func BenchmarkRedisCheck(b *testing.B) {
	rc := sharedRedis(&testing.T{})
	for _, bc := range benchConfigs {
		b.Run(bc.name, func(b *testing.B) {
			name := "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
			cfg := bc.cfg
			cfg.StoreTimeout = confDuration(time.Second)
			l, err := newLimiter(name, cfg, policies.Deps{Redis: rc}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer func() {
				t := &testing.T{}
				deleteKeys(t, rc, "portico:rl:"+name+":*")
			}()
			benchCheck(b, l, 1000)
		})
	}
}

// BenchmarkServeHTTP is the whole policy on the request path in memory: identifier, check,
// headers, then the next handler. Limits are realistic (their header values are precomputed
// strings) and the clock moves on so that every request is admitted.
func BenchmarkServeHTTP(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  Config
		step time.Duration
	}{
		{"sliding_window", Config{Limits: Limits{Second: 10, Minute: 100, Hour: 1000}}, time.Hour},
		{"fixed_window", Config{Strategy: FixedWindow, Limits: Limits{Minute: 100}}, time.Minute},
		{"token_bucket", Config{Strategy: TokenBucket, Rate: 100, Burst: 10}, 10 * time.Millisecond},
	} {
		b.Run(bc.name, func(b *testing.B) {
			clk := newClock(at(start))
			l, err := newLimiter("bench", bc.cfg, policies.Deps{}, func() int64 { clk.add(bc.step); return clk.now() })
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			h := l.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			r := httptest.NewRequest(http.MethodGet, "/orders", nil)
			r = r.WithContext(reqctx.With(r.Context(), &reqctx.Info{ClientIP: "192.0.2.1",
				Identity: &reqctx.Identity{Consumer: "alice"}}))
			w := &headerWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, r)
				if len(w.h[headerRemaining]) != 1 || len(w.h["Retry-After"]) != 0 {
					b.Fatalf("headers %v", w.h)
				}
			}
		})
	}
}

// headerWriter is a ResponseWriter that allocates nothing itself.
type headerWriter struct{ h http.Header }

func (w *headerWriter) Header() http.Header         { return w.h }
func (w *headerWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *headerWriter) WriteHeader(int)             {}
