package upstreams

import (
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/portico-gw/portico/internal/reqctx"
)

// makeTargets returns in-rotation targets t0, t1, ... with the given weights.
func makeTargets(weights ...int) []*target {
	ts := make([]*target, len(weights))
	for i, w := range weights {
		t := &target{url: "http://t" + strconv.Itoa(i), scheme: "http", host: "t" + strconv.Itoa(i), weight: w, bit: 1 << i}
		t.healthy.Store(true)
		t.inRotation.Store(w > 0)
		ts[i] = t
	}
	return ts
}

func eligibleOf(ts []*target) []*target {
	var out []*target
	for _, t := range ts {
		if t.inRotation.Load() {
			out = append(out, t)
		}
	}
	return out
}

func mustBalancer(t *testing.T, name, hashOn string, ts []*target) balancer {
	t.Helper()
	b, err := newBalancer(name, hashOn, ts)
	if err != nil {
		t.Fatal(err)
	}
	b.update(eligibleOf(ts))
	return b
}

func TestBalancerDistribution(t *testing.T) {
	const picks = 10000
	tests := []struct {
		name     string
		balancer string
		weights  []int
		want     []float64 // share per target
		tol      float64
	}{
		{name: "round robin equal", balancer: "round_robin", weights: []int{100, 100, 100}, want: []float64{1. / 3, 1. / 3, 1. / 3}, tol: 0.001},
		{name: "round robin weighted", balancer: "round_robin", weights: []int{100, 100, 50}, want: []float64{.4, .4, .2}, tol: 0.02},
		{name: "weighted round robin", balancer: "weighted_round_robin", weights: []int{100, 100, 50}, want: []float64{.4, .4, .2}, tol: 0.02},
		{name: "weighted round robin coprime", balancer: "weighted_round_robin", weights: []int{7, 3}, want: []float64{.7, .3}, tol: 0.001},
		{name: "weight zero gets nothing", balancer: "round_robin", weights: []int{100, 0, 100}, want: []float64{.5, 0, .5}, tol: 0.001},
		{name: "random weighted", balancer: "random", weights: []int{100, 100, 50}, want: []float64{.4, .4, .2}, tol: 0.02},
		{name: "random equal", balancer: "random", weights: []int{1, 1}, want: []float64{.5, .5}, tol: 0.02},
		{name: "least connections idle spreads evenly", balancer: "least_connections", weights: []int{100, 100}, want: []float64{.5, .5}, tol: 0.001},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := makeTargets(tc.weights...)
			b := mustBalancer(t, tc.balancer, "", ts)
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			counts := map[*target]int{}
			for range picks {
				counts[b.pick(req, 0)]++
			}
			for i, tg := range ts {
				got := float64(counts[tg]) / picks
				if math.Abs(got-tc.want[i]) > tc.tol {
					t.Errorf("target %d (weight %d): share %.3f, want %.3f ± %.3f", i, tg.weight, got, tc.want[i], tc.tol)
				}
			}
		})
	}
}

func TestSmoothSequenceInterleaves(t *testing.T) {
	ts := makeTargets(5, 1, 1)
	seq := smoothSequence(ts)
	got := ""
	for _, tg := range seq {
		got += tg.host[1:]
	}
	// nginx's documented order for weights 5,1,1.
	if want := "0010200"; got != want {
		t.Errorf("sequence %s, want %s", got, want)
	}
}

func TestSmoothSequenceScalesLargePeriods(t *testing.T) {
	ts := makeTargets(9973, 7919, 1) // coprime: the unscaled period would be 17893
	seq := smoothSequence(ts)
	if len(seq) > maxSequence+len(ts) {
		t.Fatalf("period %d exceeds the cap %d", len(seq), maxSequence)
	}
	counts := map[*target]int{}
	for _, tg := range seq {
		counts[tg]++
	}
	if counts[ts[2]] == 0 {
		t.Error("a tiny weight must still appear in the sequence")
	}
	if share := float64(counts[ts[0]]) / float64(len(seq)); math.Abs(share-9973./17893) > 0.01 {
		t.Errorf("share of the heaviest %.3f, want %.3f", share, 9973./17893)
	}
}

// Weights at the bound validation allows, beside the smallest and over many targets, must neither
// overflow a balancer's arithmetic (above the bound, math.MaxInt panicked when the registry was
// built or on every request) nor starve the light target.
func TestBalancersAtTheWeightBound(t *testing.T) {
	many := make([]int, 1000)
	for i := range many {
		many[i] = maxTargetWeight
	}
	for _, name := range []string{"round_robin", "weighted_round_robin", "least_connections", "consistent_hash", "random"} {
		for _, weights := range [][]int{{maxTargetWeight, 1}, append(many, 1)} {
			t.Run(name+"/"+strconv.Itoa(len(weights)), func(t *testing.T) {
				ts := makeTargets(weights...)
				b := mustBalancer(t, name, "", ts)
				heavy := 0
				for i := range 1000 {
					req := httptest.NewRequest(http.MethodGet, "/", nil)
					req.RemoteAddr = "10.0.0." + strconv.Itoa(i%250) + ":1234"
					got := b.pick(req, 0)
					if got == nil {
						t.Fatal("no target picked")
					}
					if got.weight == maxTargetWeight {
						heavy++
					}
				}
				// Idle, least_connections spreads evenly whatever the weights.
				if name != "least_connections" && heavy < 990 {
					t.Errorf("weight %d against 1 took %d of 1000 picks", maxTargetWeight, heavy)
				}
				if len(ts) == 2 && b.pick(httptest.NewRequest(http.MethodGet, "/", nil), ts[0].bit) != ts[1] {
					t.Error("a retry that tried the heavy target must get the light one")
				}
			})
		}
	}
}

func TestBalancersAvoidTriedTargets(t *testing.T) {
	for _, name := range []string{"round_robin", "least_connections", "consistent_hash", "random"} {
		t.Run(name, func(t *testing.T) {
			ts := makeTargets(100, 100, 50)
			b := mustBalancer(t, name, "", ts)
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			for range 200 {
				first := b.pick(req, 0)
				second := b.pick(req, first.bit)
				if second == first {
					t.Fatalf("retry picked the tried target %s again", first.url)
				}
				third := b.pick(req, first.bit|second.bit)
				if third == first || third == second {
					t.Fatalf("second retry picked a tried target %s", third.url)
				}
				if all := b.pick(req, first.bit|second.bit|third.bit); all == nil {
					t.Fatal("with every target tried a pick must still return one")
				}
			}
		})
	}
}

func TestBalancersEmpty(t *testing.T) {
	for _, name := range []string{"round_robin", "least_connections", "consistent_hash", "random"} {
		t.Run(name, func(t *testing.T) {
			ts := makeTargets(100, 100)
			b, err := newBalancer(name, "", ts)
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if got := b.pick(req, 0); got != nil {
				t.Errorf("pick before any update = %v, want nil", got.url)
			}
			b.update(nil)
			if got := b.pick(req, 0); got != nil {
				t.Errorf("pick with no eligible target = %v, want nil", got.url)
			}
		})
	}
}

func TestLeastConnectionsPrefersIdle(t *testing.T) {
	tests := []struct {
		name    string
		weights []int
		active  []int64
		want    int
	}{
		{name: "idle target wins", weights: []int{100, 100, 100}, active: []int64{5, 0, 3}, want: 1},
		{name: "relative to weight", weights: []int{100, 300}, active: []int64{2, 3}, want: 1},
		{name: "heavier weight loses when busier", weights: []int{100, 300}, active: []int64{1, 6}, want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := makeTargets(tc.weights...)
			for i, a := range tc.active {
				ts[i].active.Store(a)
			}
			b := mustBalancer(t, "least_connections", "", ts)
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			for range 10 {
				if got := b.pick(req, 0); got != ts[tc.want] {
					t.Fatalf("picked %s, want %s", got.url, ts[tc.want].url)
				}
			}
		})
	}
}

func TestRandomTwoChoicesPrefersLessLoaded(t *testing.T) {
	ts := makeTargets(100, 100)
	ts[0].active.Store(50)
	b := mustBalancer(t, "random", "", ts)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	busy := 0
	for range 1000 {
		if b.pick(req, 0) == ts[0] {
			busy++
		}
	}
	// The busy target wins only when both draws land on it: about a quarter of the time.
	if busy > 350 {
		t.Errorf("busy target picked %d/1000 times, want about 250", busy)
	}
}

func TestConsistentHash(t *testing.T) {
	ts := makeTargets(100, 100, 100, 100)
	b := mustBalancer(t, "consistent_hash", "header:X-User", ts)
	const keys = 4000
	owner := make([]*target, keys)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	perTarget := map[*target]int{}
	for i := range keys {
		req.Header.Set("X-User", "user-"+strconv.Itoa(i))
		owner[i] = b.pick(req, 0)
		perTarget[owner[i]]++
		if again := b.pick(req, 0); again != owner[i] {
			t.Fatalf("key %d moved between two picks with no change", i)
		}
	}
	for _, tg := range ts {
		if share := float64(perTarget[tg]) / keys; share < .15 || share > .35 {
			t.Errorf("target %s owns %.2f of keys, want about 0.25", tg.url, share)
		}
	}

	// Take one target out: only its keys move, each to some other target.
	down := ts[2]
	down.inRotation.Store(false)
	b.update(eligibleOf(ts))
	moved := 0
	for i := range keys {
		req.Header.Set("X-User", "user-"+strconv.Itoa(i))
		got := b.pick(req, 0)
		if got == down {
			t.Fatalf("key %d still goes to the unhealthy target", i)
		}
		if got != owner[i] {
			moved++
			if owner[i] != down {
				t.Fatalf("key %d moved from healthy %s to %s", i, owner[i].url, got.url)
			}
		}
	}
	if share := float64(moved) / keys; share < .15 || share > .35 {
		t.Errorf("%.2f of keys moved, want about 1/4", share)
	}

	// Back in rotation: every key returns to its first owner.
	down.inRotation.Store(true)
	b.update(eligibleOf(ts))
	for i := range keys {
		req.Header.Set("X-User", "user-"+strconv.Itoa(i))
		if got := b.pick(req, 0); got != owner[i] {
			t.Fatalf("key %d did not return to %s after recovery", i, owner[i].url)
		}
	}
}

func TestHashKeys(t *testing.T) {
	tests := []struct {
		name    string
		hashOn  string
		prepare func(r *http.Request) *http.Request
		want    string
		ok      bool
	}{
		{name: "ip from reqctx", hashOn: "ip", prepare: func(r *http.Request) *http.Request {
			return r.WithContext(reqctx.With(r.Context(), &reqctx.Info{ClientIP: "203.0.113.9"}))
		}, want: "203.0.113.9", ok: true},
		{name: "ip from remote addr", hashOn: "", prepare: func(r *http.Request) *http.Request {
			r.RemoteAddr = "198.51.100.7:5555"
			return r
		}, want: "198.51.100.7", ok: true},
		{name: "header", hashOn: "header:x-user", prepare: func(r *http.Request) *http.Request {
			r.Header.Set("X-User", "alice")
			return r
		}, want: "alice", ok: true},
		{name: "missing header", hashOn: "header:X-User", prepare: func(r *http.Request) *http.Request { return r }},
		{name: "cookie", hashOn: "cookie:session", prepare: func(r *http.Request) *http.Request {
			r.Header.Add("Cookie", "a=1; sessionx=no")
			r.Header.Add("Cookie", `theme=dark;  session="abc123" ; z=2`)
			return r
		}, want: "abc123", ok: true},
		{name: "missing cookie", hashOn: "cookie:session", prepare: func(r *http.Request) *http.Request {
			r.Header.Set("Cookie", "sess=1; session=")
			return r
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := parseHashOn(tc.hashOn)
			if err != nil {
				t.Fatal(err)
			}
			r := tc.prepare(httptest.NewRequest(http.MethodGet, "/", nil))
			got, ok := k.of(r)
			if got != tc.want || ok != tc.ok {
				t.Errorf("key = %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestConsistentHashWithoutKeyRotates(t *testing.T) {
	ts := makeTargets(100, 100)
	b := mustBalancer(t, "consistent_hash", "header:X-User", ts)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	seen := map[*target]bool{}
	for range 4 {
		seen[b.pick(req, 0)] = true
	}
	if len(seen) != 2 {
		t.Errorf("requests without a key reached %d targets, want both", len(seen))
	}
}

func TestNewBalancerRejectsBadConfig(t *testing.T) {
	tests := []struct{ name, balancer, hashOn string }{
		{name: "unknown balancer", balancer: "fastest"},
		{name: "bad hash_on", balancer: "consistent_hash", hashOn: "query:x"},
		{name: "empty header name", balancer: "ip_hash", hashOn: "header:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := newBalancer(tc.balancer, tc.hashOn, makeTargets(1)); err == nil {
				t.Error("want an error")
			}
		})
	}
}

func BenchmarkPick(b *testing.B) {
	benches := []struct {
		name, balancer, hashOn string
		weights                []int
	}{
		{name: "round_robin", balancer: "round_robin", weights: []int{100, 100, 100}},
		{name: "weighted_round_robin", balancer: "weighted_round_robin", weights: []int{100, 100, 50}},
		{name: "least_connections", balancer: "least_connections", weights: []int{100, 100, 50}},
		{name: "consistent_hash_ip", balancer: "consistent_hash", weights: []int{100, 100, 50}},
		{name: "consistent_hash_cookie", balancer: "consistent_hash", hashOn: "cookie:session", weights: []int{100, 100, 50}},
		{name: "random", balancer: "random", weights: []int{100, 100, 50}},
	}
	for _, bc := range benches {
		b.Run(bc.name, func(b *testing.B) {
			ts := makeTargets(bc.weights...)
			bal, err := newBalancer(bc.balancer, bc.hashOn, ts)
			if err != nil {
				b.Fatal(err)
			}
			bal.update(eligibleOf(ts))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req = req.WithContext(reqctx.With(req.Context(), &reqctx.Info{ClientIP: "203.0.113.9"}))
			req.Header.Set("Cookie", "theme=dark; session=abc123")
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if bal.pick(req, 0) == nil {
						b.Fatal("no target")
					}
				}
			})
		})
	}
}
