package load

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsAreWithinOnePercent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	prev := -1
	for v := int64(0); v < 5000; v++ {
		i := bucketOf(v)
		if i < prev {
			t.Fatalf("bucketOf(%d) = %d, below bucketOf(%d) = %d", v, i, v-1, prev)
		}
		prev = i
	}
	for range 100000 {
		v := rng.Int64N(int64(10 * time.Minute))
		got := bucketValue(bucketOf(v))
		if v > 0 && math.Abs(float64(got-v))/float64(v) > 0.01 {
			t.Fatalf("%d reported as %d", v, got)
		}
	}
	if i := bucketOf(math.MaxInt64); i != numBuckets-1 {
		t.Errorf("huge value went to bucket %d", i)
	}
	if i := bucketOf(-5); i != 0 {
		t.Errorf("negative value went to bucket %d", i)
	}
}

func TestQuantiles(t *testing.T) {
	var parts [4]histogram
	var all []time.Duration
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 20000 {
		// Log-uniform from 10µs to 1s, like latencies with a long tail.
		d := time.Duration(math.Exp(math.Log(10e3) + rng.Float64()*math.Log(1e5)))
		parts[i%4].record(d)
		all = append(all, d)
	}
	var h histogram
	for i := range parts {
		h.merge(&parts[i])
	}
	slices.Sort(all)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		exact := all[int(math.Ceil(q*float64(len(all))))-1]
		got := h.quantile(q)
		if math.Abs(float64(got-exact))/float64(exact) > 0.01 {
			t.Errorf("q%v = %v, exact %v", q, got, exact)
		}
	}
	if h.total != 20000 || time.Duration(h.max) != all[len(all)-1] || h.quantile(1) != all[len(all)-1] {
		t.Errorf("total %d, max %v, q1 %v, want max %v", h.total, time.Duration(h.max), h.quantile(1), all[len(all)-1])
	}
	var empty histogram
	if empty.quantile(0.5) != 0 {
		t.Error("empty histogram reports a latency")
	}
}

func BenchmarkRecord(b *testing.B) {
	var h histogram
	for i := range b.N {
		h.record(time.Duration(i%5000) * time.Microsecond)
	}
}
