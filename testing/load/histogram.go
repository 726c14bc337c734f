package load

import (
	"math"
	"math/bits"
	"time"
)

// The latency histogram is log-linear, as HdrHistogram's: values below 2·subCount nanoseconds
// get a bucket each, and every power of two above is split into subCount equal buckets, so a
// bucket is at most 1/subCount (0.8%) of its values wide. Recording is an index computation and
// an increment, cheap enough to do per request in every worker without locks; workers merge at
// the end.
const (
	subBits  = 7
	subCount = 1 << subBits // 128
	// maxBits covers 2^40 ns, about 18 minutes; longer latencies land in the last bucket (Max
	// stays exact).
	maxBits    = 40
	numBuckets = 2*subCount + (maxBits-subBits-1)*subCount
)

type histogram struct {
	counts [numBuckets]uint64
	total  uint64
	max    int64
}

func bucketOf(v int64) int {
	if v < 2*subCount {
		return int(max(v, 0))
	}
	u := uint64(v)
	shift := bits.Len64(u) - (subBits + 1) // ≥ 1 here
	i := 2*subCount + (shift-1)*subCount + int(u>>shift) - subCount
	return min(i, numBuckets-1)
}

// bucketValue is a bucket's midpoint, which halves the worst-case error of reporting either edge.
func bucketValue(i int) int64 {
	if i < 2*subCount {
		return int64(i)
	}
	k := i - 2*subCount
	shift := k/subCount + 1
	low := uint64(k%subCount+subCount) << shift
	return int64(low + 1<<(shift-1))
}

func (h *histogram) record(d time.Duration) {
	v := int64(d)
	h.counts[bucketOf(v)]++
	h.total++
	if v > h.max {
		h.max = v
	}
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.max = max(h.max, o.max)
}

// quantile returns the value at or below which a share q of the recordings fall, never more than
// the exact maximum.
func (h *histogram) quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = min(max(rank, 1), h.total)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(bucketValue(i), h.max))
		}
	}
	return time.Duration(h.max)
}
