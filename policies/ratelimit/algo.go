package ratelimit

import (
	"math"
	"time"
)

// Both stores count in microseconds since the Unix epoch: Redis runs Lua on doubles, exact only
// up to 2^53, which nanoseconds since 1970 exceed and microseconds do not (for 285 years).

const maxWindows = len(windowNames)

const (
	usPerSecond = int64(time.Second / time.Microsecond)
	monthWindow = 4 // index of "month" in windowNames
)

var windowSizes = [...]int64{usPerSecond, 60 * usPerSecond, 3600 * usPerSecond, 86400 * usPerSecond, 0}

// window is one configured limit.
type window struct {
	kind  int // index into windowNames
	limit int64
}

// spec is a policy's algorithm, fixed at build time and shared by its store.
type spec struct {
	strategy string
	sliding  bool
	windows  []window // shortest first
	// interval is the GCRA emission interval (µs) and tolerance how far ahead of now the
	// theoretical arrival time may run: (burst-1)×interval for a token bucket, the longest wait
	// for a leaky bucket.
	interval, tolerance int64
}

func (s *spec) gcra() bool { return s.strategy == TokenBucket || s.strategy == LeakyBucket }

// windowPos is where now falls in one window.
type windowPos struct {
	idx        int64 // window number: start/size for fixed sizes, year×12+month for months
	start, end int64 // µs
	// weight is the share of the previous window still inside a sliding window ending now; 0 for
	// fixed windows.
	weight float64
}

func positions(s *spec, now int64, out *[maxWindows]windowPos) {
	for i, w := range s.windows {
		p := &out[i]
		if w.kind == monthWindow {
			t := time.UnixMicro(now).UTC()
			y, m, _ := t.Date()
			p.idx = int64(y)*12 + int64(m) - 1
			p.start = time.Date(y, m, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
			p.end = time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
		} else {
			size := windowSizes[w.kind]
			p.idx = floorDiv(now, size)
			p.start = p.idx * size
			p.end = p.start + size
		}
		p.weight = 0
		if s.sliding {
			p.weight = float64(p.end-now) / float64(p.end-p.start)
		}
	}
}

// keepUntil is when the counter of window w at position p stops mattering (µs): the window's end
// for a fixed window; for a sliding window, the end of the next one, through which it is the
// weighted previous count. A calendar month's successor is not its own length: a February
// counter is still read at the end of a 31-day March, so end+(end-start) would drop it 3 days
// early.
func (s *spec) keepUntil(w window, p *windowPos) int64 {
	if !s.sliding {
		return p.end
	}
	if w.kind == monthWindow {
		y, m, _ := time.UnixMicro(p.end).UTC().Date()
		return time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	}
	return p.end + windowSizes[w.kind]
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// counts are one window's counters after a check: this window's and the previous one's.
type counts struct{ cur, prev int64 }

// estimate is the request count the algorithm charges against the limit: the current window's
// count plus, for a sliding window, the previous window's count weighted by its overlap.
func estimate(c counts, p *windowPos) float64 {
	// The explicit conversion forbids a fused multiply-add, whose different rounding could make
	// this process and the Lua script disagree at the boundary.
	return float64(float64(c.prev)*p.weight) + float64(c.cur)
}

// admits reports whether one more request fits every window; the Lua script applies the same test
// with the same weights, so both stores decide alike.
func admits(s *spec, pos *[maxWindows]windowPos, c *[maxWindows]counts) bool {
	for i, w := range s.windows {
		if estimate(c[i], &pos[i])+1 > float64(w.limit) {
			return false
		}
	}
	return true
}

// windowState is what the result carries per window for headers.
type windowState struct {
	limit, remaining int64
	reset            int64 // µs until the window ends
}

// result is the outcome of one check.
type result struct {
	allowed bool
	// wait is how long a leaky bucket holds the request before it proceeds (µs).
	wait int64
	// retryAfter is how long a rejected client should wait (µs).
	retryAfter int64
	n          int // windows used
	win        [maxWindows]windowState
	// limit, remaining, reset are the most restrictive window's (or the bucket's), for the
	// RateLimit-* headers.
	limit, remaining, reset int64
}

// fillWindows computes headers and Retry-After from the counters after a check (incremented when
// allowed).
func fillWindows(s *spec, now int64, pos *[maxWindows]windowPos, c *[maxWindows]counts, allowed bool, r *result) {
	r.allowed, r.wait, r.retryAfter, r.n = allowed, 0, 0, len(s.windows)
	best := -1
	for i, w := range s.windows {
		p := &pos[i]
		est := estimate(c[i], p)
		rem := int64(math.Floor(float64(w.limit) - est))
		if rem < 0 {
			rem = 0
		}
		ws := &r.win[i]
		ws.limit, ws.remaining, ws.reset = w.limit, rem, p.end-now
		if best < 0 || rem < r.win[best].remaining || (rem == r.win[best].remaining && ws.reset > r.win[best].reset) {
			best = i
		}
		if !allowed && est+1 > float64(w.limit) {
			if wait := retryWindow(s, now, p, c[i], w.limit); wait > r.retryAfter {
				r.retryAfter = wait
			}
		}
	}
	r.limit, r.remaining, r.reset = r.win[best].limit, r.win[best].remaining, r.win[best].reset
}

// retryWindow is how long until one more request fits a window, if nothing else arrives.
func retryWindow(s *spec, now int64, p *windowPos, c counts, limit int64) int64 {
	toEnd := p.end - now
	if !s.sliding {
		return toEnd
	}
	size := float64(p.end - p.start)
	room := float64(limit - 1 - c.cur)
	if room >= 0 {
		// prev×(end-t)/size ≤ room from t = end - size×room/prev on.
		wait := toEnd - int64(size*room/float64(c.prev))
		if wait < 1 {
			wait = 1
		}
		return wait
	}
	// Only the next window has room: there this window's count is the previous one, weighted
	// (1 - e/size); it fits once e ≥ size×(1 - (limit-1)/cur).
	return toEnd + int64(math.Ceil(size*(1-float64(limit-1)/float64(c.cur))))
}

// fillBucket computes the outcome of a GCRA check from the theoretical arrival time before it
// (tat, already raised to now when in the past).
func fillBucket(s *spec, now, tat int64, allowed bool, r *result) {
	r.allowed, r.n, r.wait, r.retryAfter = allowed, 0, 0, 0
	capacity := s.tolerance/s.interval + 1
	ahead := tat - now
	if allowed {
		ahead += s.interval
		if s.strategy == LeakyBucket {
			r.wait = tat - now
		}
	} else {
		r.retryAfter = tat - now - s.tolerance
	}
	rem := int64(0)
	if s.tolerance+s.interval >= ahead {
		rem = (s.tolerance + s.interval - ahead) / s.interval
	}
	r.limit, r.remaining, r.reset = capacity, rem, ahead
}

// gcraAdmits is the one GCRA test shared with the Lua script.
func gcraAdmits(s *spec, now, tat int64) bool { return tat-now <= s.tolerance }
