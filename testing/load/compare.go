package load

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Comparison is the outcome of Compare: the same measurement of two targets, a and b.
type Comparison struct {
	// Name describes what was compared ("pass-through, 64 connections, 1 KiB JSON").
	Name string
	// NameA and NameB label the targets (Options.Name, else "a" and "b").
	NameA, NameB string
	// A and B hold, field by field, the median over the rounds, so one noisy round cannot decide
	// the figures; the fields of one median Result may therefore come from different rounds.
	A, B Result
	// RoundsA and RoundsB are the rounds as measured, in order.
	RoundsA, RoundsB []Result
}

// Ratio is B's median throughput over A's ("through Portico" over "direct": 0.8 means Portico
// keeps 80% of the direct throughput); 0 when A served nothing.
func (c Comparison) Ratio() float64 {
	if c.A.RPS == 0 {
		return 0
	}
	return c.B.RPS / c.A.RPS
}

// String formats the comparison as a small table ending in the ratio line.
func (c Comparison) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s: medians of %d rounds\n", c.Name, len(c.RoundsA))
	width := max(len(c.NameA), len(c.NameB), len("target"))
	fmt.Fprintf(&sb, "  %-*s %10s %10s %10s %10s %10s %8s %8s\n", width, "target", "req/s", "p50", "p90", "p99", "max", "errors", "non-2xx")
	for _, row := range []struct {
		name string
		r    Result
	}{{c.NameA, c.A}, {c.NameB, c.B}} {
		fmt.Fprintf(&sb, "  %-*s %10.0f %10s %10s %10s %10s %8d %8d\n", width, row.name, row.r.RPS,
			round(row.r.P50), round(row.r.P90), round(row.r.P99), round(row.r.Max), row.r.Errors, row.r.Non2xx)
	}
	fmt.Fprintf(&sb, "  %s/%s: %.2fx req/s, p50 %s, p99 %s", c.NameB, c.NameA, c.Ratio(),
		signed(c.B.P50-c.A.P50), signed(c.B.P99-c.A.P99))
	return sb.String()
}

func signed(d time.Duration) string {
	if d >= 0 {
		return "+" + round(d).String()
	}
	return round(d).String()
}

// Compare measures a and b for the given number of rounds each, alternating a-b, b-a, a-b, … so
// that warm-up effects and machine drift fall on both sides alike, and reports the medians. It
// stops at the first round that fails (invalid options, ctx ended) and returns the rounds so far.
func Compare(ctx context.Context, name string, a, b Options, rounds int) (Comparison, error) {
	c := Comparison{Name: name, NameA: cmp.Or(a.Name, "a"), NameB: cmp.Or(b.Name, "b")}
	if rounds < 1 {
		return c, fmt.Errorf("comparing %s: rounds %d: must be at least 1", name, rounds)
	}
	if c.NameA == c.NameB {
		c.NameB += "'"
	}
	for i := range rounds {
		order := []bool{false, true} // false: a, true: b
		if i%2 == 1 {
			order = []bool{true, false}
		}
		for _, isB := range order {
			o, label := a, c.NameA
			if isB {
				o, label = b, c.NameB
			}
			res, err := Run(ctx, o)
			if err != nil {
				c.A, c.B = medianResult(c.RoundsA), medianResult(c.RoundsB)
				return c, fmt.Errorf("comparing %s: round %d, %s: %w", name, i+1, label, err)
			}
			if isB {
				c.RoundsB = append(c.RoundsB, res)
			} else {
				c.RoundsA = append(c.RoundsA, res)
			}
		}
	}
	c.A, c.B = medianResult(c.RoundsA), medianResult(c.RoundsB)
	return c, nil
}

// medianResult takes the median of each field separately.
func medianResult(rs []Result) Result {
	if len(rs) == 0 {
		return Result{}
	}
	pick := func(f func(Result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	dur := func(f func(Result) time.Duration) time.Duration {
		return time.Duration(pick(func(r Result) float64 { return float64(f(r)) }))
	}
	count := func(f func(Result) int64) int64 {
		return int64(pick(func(r Result) float64 { return float64(f(r)) }))
	}
	return Result{
		Requests:  count(func(r Result) int64 { return r.Requests }),
		Errors:    count(func(r Result) int64 { return r.Errors }),
		Non2xx:    count(func(r Result) int64 { return r.Non2xx }),
		Elapsed:   dur(func(r Result) time.Duration { return r.Elapsed }),
		RPS:       pick(func(r Result) float64 { return r.RPS }),
		P50:       dur(func(r Result) time.Duration { return r.P50 }),
		P90:       dur(func(r Result) time.Duration { return r.P90 }),
		P99:       dur(func(r Result) time.Duration { return r.P99 }),
		Max:       dur(func(r Result) time.Duration { return r.Max }),
		LoaderCPU: dur(func(r Result) time.Duration { return r.LoaderCPU }),
	}
}
