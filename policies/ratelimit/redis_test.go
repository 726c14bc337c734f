package ratelimit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico-gw/portico/policies"
	"github.com/portico-gw/portico/testing/redistest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
)

func TestRedisKeys(t *testing.T) {
	rc := sharedRedis(t)
	ctx := t.Context()
	clk := newClock(at(start).Add(20 * time.Second))
	tests := []struct {
		cfg               Config
		key               string // after the policy name
		ttlLeast, ttlMost time.Duration
		value             string
	}{
		{Config{Strategy: FixedWindow, Limits: Limits{Minute: 5}}, ":minute:{consumer:alice}:" + strconv.FormatInt(at(start).Unix()/60, 10),
			40 * time.Second, 41 * time.Second, "1"},
		// A sliding window's count lives on through the next window, where it is the previous count.
		{Config{Strategy: SlidingWindow, Limits: Limits{Hour: 5}}, ":hour:{consumer:alice}:" + strconv.FormatInt(at(start).Unix()/3600, 10),
			2*time.Hour - 21*time.Second, 2*time.Hour - 19*time.Second, "1"},
		// The theoretical arrival time, exact to the microsecond (Lua would print 1.8936e+15).
		{Config{Strategy: TokenBucket, Rate: 1, Per: confDuration(time.Minute), Burst: 3}, ":token_bucket:{consumer:alice}",
			60 * time.Second, 61 * time.Second, strconv.FormatInt(clk.now()+60_000_000, 10)},
	}
	for _, tc := range tests {
		t.Run(tc.cfg.strategy(), func(t *testing.T) {
			name := uniqueName(t, rc)
			l := buildWith(t, name, tc.cfg, policies.Deps{Redis: rc}, clk)
			if w := (req{consumer: "alice"}).send(l.Wrap(&backend{})); w.Code != 200 {
				t.Fatalf("status %d", w.Code)
			}
			key := "portico:rl:" + name + tc.key
			ttl, err := rc.PTTL(ctx, key).Result()
			if err != nil || ttl < tc.ttlLeast || ttl > tc.ttlMost {
				keys, _ := rc.Keys(ctx, "portico:rl:"+name+":*").Result()
				t.Fatalf("key %s: ttl %v err %v; want %v ≤ ttl ≤ %v (keys: %v)", key, ttl, err, tc.ttlLeast, tc.ttlMost, keys)
			}
			if v, err := rc.Get(ctx, key).Result(); err != nil || v != tc.value {
				t.Fatalf("key %s = %q (%v), want %q", key, v, err, tc.value)
			}
		})
	}
}

// TestRedisKeysHashTag: whatever the policy name, one identifier's keys share a Redis Cluster
// hash tag.
func TestRedisKeysHashTag(t *testing.T) {
	st := newRedisStore("a{b}c", buildSpec(&Config{Limits: Limits{Second: 1, Minute: 2}}), nil, time.Second)
	for _, p := range []string{st.prefixes[0], st.prefixes[1], st.bucketPrefix} {
		if strings.Count(p, "{") != 1 || !strings.HasSuffix(p, "{") || strings.Contains(p, "}") {
			t.Fatalf("prefix %q: the identifier must be the first {…}", p)
		}
	}
}

// TestClientGoneIsNotStoreError: a request whose client went away during the Redis check is not
// a store failure and does not reach the backend.
func TestClientGoneIsNotStoreError(t *testing.T) {
	rc := redis.NewClient(&redis.Options{Addr: blackhole(t), MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rc.Close() })
	name := uniqueName(t, nil)
	l := buildWith(t, name, Config{Limits: Limits{Minute: 1}, StoreTimeout: confDuration(5 * time.Second)}, policies.Deps{Redis: rc}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	b := &backend{}
	req{consumer: "alice", ctx: ctx}.send(l.Wrap(b))
	if b.calls.Load() != 0 {
		t.Fatal("request of a client that went away reached the backend")
	}
	if got := testutil.ToFloat64(metricStoreErrors.WithLabelValues(name)); got != 0 {
		t.Fatalf("store errors = %v, want 0", got)
	}
}

// TestGlobalLimitAcrossInstances: three limiters built independently, each with its own Redis
// client, as three Portico processes would be, enforce one limit between them.
func TestGlobalLimitAcrossInstances(t *testing.T) {
	const limit = 30
	// Real clocks, as in three processes; hour-long windows so the burst does not straddle two.
	if left := time.Hour - time.Duration(time.Now().UnixNano())%time.Hour; left < 3*time.Second {
		time.Sleep(left + 100*time.Millisecond)
	}
	for strategy, cfg := range burstConfigs(limit) {
		if cfg.Limits.Minute > 0 {
			cfg.Limits = Limits{Hour: limit}
		}
		t.Run(strategy, func(t *testing.T) {
			name := uniqueName(t, sharedRedis(t))
			var ls []*Limiter
			for range 3 {
				ls = append(ls, buildWith(t, name, cfg, policies.Deps{Redis: sharedRedis(t)}, nil))
			}
			allowed, err := burst(ls[0], 3*limit, req{consumer: "acme"}, ls[1:]...)
			if err != nil {
				t.Fatal(err)
			}
			// At one instant the sliding window is exact too (its bound 2L-1 concerns requests
			// spread over a window); see README.md.
			if allowed != limit {
				t.Fatalf("%d allowed across three instances, want %d", allowed, limit)
			}
		})
	}
}

// blackhole accepts connections and never answers: a Redis that hangs.
func blackhole(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// TestSlowRedis: a Redis that does not answer costs a request store_timeout, not the client's
// seconds-long socket timeouts, whether or not the client honours context deadlines.
func TestSlowRedis(t *testing.T) {
	addr := blackhole(t)
	for _, honours := range []bool{true, false} {
		for _, failOpen := range []bool{true, false} {
			t.Run("deadlines="+strconv.FormatBool(honours)+"/fault_tolerant="+strconv.FormatBool(failOpen), func(t *testing.T) {
				rc := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second,
					WriteTimeout: 10 * time.Second, MaxRetries: -1, ContextTimeoutEnabled: honours})
				t.Cleanup(func() { _ = rc.Close() })
				name := uniqueName(t, nil)
				l := buildWith(t, name, Config{Limits: Limits{Minute: 1}, FaultTolerant: &failOpen, StoreTimeout: confDuration(50 * time.Millisecond)},
					policies.Deps{Redis: rc}, nil)
				if l.store.(*redisStore).honoursDeadlines != honours {
					t.Fatalf("honoursDeadlines not detected from the client options")
				}
				b := &backend{}
				began := time.Now()
				codes := statuses(l.Wrap(b), req{consumer: "alice"}, 3)
				if took := time.Since(began); took > 5*time.Second {
					t.Fatalf("3 checks took %v against a hung Redis; want about 3×store_timeout", took)
				}
				want := http.StatusOK
				if !failOpen {
					want = http.StatusServiceUnavailable
				}
				for _, c := range codes {
					if c != want {
						t.Fatalf("codes %v, want all %d", codes, want)
					}
				}
				if got := testutil.ToFloat64(metricStoreErrors.WithLabelValues(name)); got != 3 {
					t.Fatalf("store errors = %v, want 3", got)
				}
			})
		}
	}
}

// TestOrphanCap: with a client that ignores deadlines, calls left running are capped; beyond the
// cap a check fails at once rather than piling up goroutines.
func TestOrphanCap(t *testing.T) {
	rc := redis.NewClient(&redis.Options{Addr: blackhole(t), MaxRetries: -1})
	t.Cleanup(func() { _ = rc.Close() })
	st := newRedisStore("cap", buildSpec(&Config{Limits: Limits{Minute: 1}}), rc, time.Hour)
	for range maxOrphans {
		st.orphans <- struct{}{}
	}
	var pos [maxWindows]windowPos
	var r result
	if err := st.take(t.Context(), []byte("k"), 0, &pos, &r); !errors.Is(err, errStoreBusy) {
		t.Fatalf("err = %v, want errStoreBusy", err)
	}
}

// failingStore is a store that is down.
type failingStore struct{ calls int }

func (f *failingStore) take(context.Context, []byte, int64, *[maxWindows]windowPos, *result) error {
	f.calls++
	return errors.New("connection refused")
}
func (f *failingStore) close() error { return nil }

// TestStoreFailure: fail open by default, 503 when fault_tolerant is false, one log line per
// interval however many requests fail, and every failure counted.
func TestStoreFailure(t *testing.T) {
	no := false
	for _, tc := range []struct {
		name string
		ft   *bool
		want int
	}{{"fault tolerant by default", nil, 200}, {"fail closed", &no, 503}} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			name := uniqueName(t, nil)
			l := buildWith(t, name, Config{Limits: Limits{Minute: 1}, FaultTolerant: tc.ft},
				policies.Deps{Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Metrics: prometheus.NewRegistry()}, nil)
			_ = l.store.close()
			l.store = &failingStore{}
			b := &backend{}
			h := l.Wrap(b)
			var last *httptest.ResponseRecorder
			for range 20 {
				last = req{consumer: "alice"}.send(h)
				if last.Code != tc.want {
					t.Fatalf("status %d, want %d", last.Code, tc.want)
				}
			}
			if tc.want == 503 {
				var body struct{ Error struct{ Code string } }
				_ = json.Unmarshal(last.Body.Bytes(), &body)
				if body.Error.Code != "RATE_LIMIT_UNAVAILABLE" || b.calls.Load() != 0 {
					t.Fatalf("body %s, backend calls %d", last.Body, b.calls.Load())
				}
			} else if b.calls.Load() != 20 {
				t.Fatalf("backend calls %d, want 20", b.calls.Load())
			}
			if n := strings.Count(logs.String(), "\n"); n != 1 {
				t.Fatalf("%d log lines for 20 failures, want 1:\n%s", n, logs.String())
			}
			if got := testutil.ToFloat64(metricStoreErrors.WithLabelValues(name)); got != 20 {
				t.Fatalf("store errors = %v, want 20", got)
			}
			// The next interval logs again, with the count of failures not logged.
			l.lastLog.Add(-int64(errorLogInterval / time.Microsecond))
			req{consumer: "alice"}.send(h)
			if !strings.Contains(logs.String(), `"failures_not_logged":19`) {
				t.Fatalf("second log line: %s", logs.String())
			}
		})
	}
}

// TestRedisFailover kills the Redis a limiter uses: requests keep flowing (or get 503 when
// configured to fail closed), and limits apply again once Redis is back on the same port, with
// the script reloaded after Redis lost it.
func TestRedisFailover(t *testing.T) {
	srv := redistest.Start(t)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr, DialTimeout: 100 * time.Millisecond,
		ReadTimeout: 100 * time.Millisecond, WriteTimeout: 100 * time.Millisecond, MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rc.Close() })
	clk := newClock(at(start))
	no := false
	cfg := Config{Strategy: FixedWindow, Limits: Limits{Minute: 3}, StoreTimeout: confDuration(100 * time.Millisecond)}
	open := buildWith(t, "open", cfg, policies.Deps{Redis: rc}, clk).Wrap(&backend{})
	cfg.FaultTolerant = &no
	closed := buildWith(t, "closed", cfg, policies.Deps{Redis: rc}, clk).Wrap(&backend{})
	q := req{consumer: "alice"}
	for name, h := range map[string]http.Handler{"open": open, "closed": closed} {
		if got := statuses(h, q, 4); got[2] != 200 || got[3] != 429 {
			t.Fatalf("%s before the outage: %v", name, got)
		}
	}

	srv.Kill()
	for _, c := range statuses(open, q, 5) {
		if c != 200 {
			t.Fatalf("fault-tolerant limiter with Redis down answered %d, want 200", c)
		}
	}
	for _, c := range statuses(closed, q, 3) {
		if c != 503 {
			t.Fatalf("fail-closed limiter with Redis down answered %d, want 503", c)
		}
	}

	srv.Restart() // same port, empty: the counters and the script cache are gone
	deadline := time.Now().Add(5 * time.Second)
	for rc.Ping(context.Background()).Err() != nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for name, h := range map[string]http.Handler{"open": open, "closed": closed} {
		if got := statuses(h, q, 4); got[0] != 200 || got[2] != 200 || got[3] != 429 {
			t.Fatalf("%s after Redis returned: %v, want the limit enforced again", name, got)
		}
	}
}
