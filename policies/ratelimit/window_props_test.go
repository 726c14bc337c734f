package ratelimit

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Randomised property test of the windowed stores: the memory and the Redis store are driven with
// the same sequence of clock moves (forward, slightly back, far back: a straggler's reading, a
// clock stepped back), one request after each, and checked for
//   - per-window caps: a fixed window of limit L admits at most L requests whose readings fall in
//     it;
//   - agreement: until the clock is stepped back, both stores answer every request alike (status
//     and every rate-limit header), as both count by window number;
//   - sane headers: 0 ≤ remaining ≤ limit, and no panic.
//
// Seeds are fixed; RL_PROPS_SEEDS=n runs n seeds instead of the default 40 (exploration), and
// RL_PROPS_SHRINK=1 minimises each failure.

// propMove is one clock move, in µs relative to the current reading.
type propMove struct {
	kind byte  // 'f' forward, 's' a straggler (≤1s before the latest reading), 'b' the clock stepped back (>1s)
	d    int64 // µs, ≥ 0
}

func (m propMove) String() string {
	sign := "+"
	if m.kind != 'f' {
		sign = "-"
	}
	return fmt.Sprintf("%c%s%s", m.kind, sign, time.Duration(m.d)*time.Microsecond)
}

type propCase struct {
	strategy string
	limits   Limits
	moves    []propMove
}

func (c propCase) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %+v:", c.strategy, c.limits)
	for _, m := range c.moves {
		b.WriteString(" " + m.String())
	}
	return b.String()
}

func genPropCase(r *rand.Rand) propCase {
	c := propCase{strategy: FixedWindow}
	if r.IntN(2) == 1 {
		c.strategy = SlidingWindow
	}
	switch r.IntN(3) {
	case 0:
		c.limits = Limits{Minute: 1 + r.Int64N(4)}
	case 1:
		c.limits = Limits{Second: 1 + r.Int64N(3)}
	default:
		c.limits.Second = 1 + r.Int64N(3)
		c.limits.Minute = c.limits.Second + r.Int64N(4)
	}
	n := 10 + r.IntN(40)
	stepped := false // a wall clock is stepped back now and then, not back and forth
	for range n {
		var m propMove
		switch x := r.IntN(100); {
		case x < 35:
			m = propMove{'f', 0}
		case x < 60:
			m = propMove{'f', r.Int64N(400_000)}
		case x < 75:
			m = propMove{'f', r.Int64N(3_000_000)}
		case x < 80:
			m = propMove{'f', r.Int64N(90_000_000)}
		case x < 92:
			m = propMove{'s', 1 + r.Int64N(1_000_000)}
		case !stepped:
			m = propMove{'b', 1_000_001 + r.Int64N(150_000_000)}
			stepped = true
		default:
			m = propMove{'f', 0}
		}
		c.moves = append(c.moves, m)
	}
	return c
}

// propAnswer is what one request got from one store.
type propAnswer struct {
	code    int
	headers string
	limit   []int64
	remain  []int64
}

type propFailure struct {
	check string // cap, agree, headers, panic
	msg   string
}

func (f *propFailure) Error() string { return f.check + ": " + f.msg }

func sendProp(h http.Handler, l *Limiter) (a propAnswer, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &propFailure{"panic", fmt.Sprint(v)}
		}
	}()
	w := req{consumer: "alice"}.send(h)
	a.code = w.Code
	hd := w.Header()
	a.headers = fmt.Sprintf("limit=%s remaining=%s", hd.Get(headerLimit), hd.Get(headerRemaining))
	pairs := [][2]string{{headerLimit, headerRemaining}}
	for _, win := range l.spec.windows {
		pairs = append(pairs, l.headerNames[win.kind])
	}
	for i, p := range pairs {
		lim, err1 := strconv.ParseInt(hd.Get(p[0]), 10, 64)
		rem, err2 := strconv.ParseInt(hd.Get(p[1]), 10, 64)
		if err1 != nil || err2 != nil {
			return a, &propFailure{"headers", fmt.Sprintf("%s=%q %s=%q", p[0], hd.Get(p[0]), p[1], hd.Get(p[1]))}
		}
		if i > 0 {
			a.headers += fmt.Sprintf(" %s=%d", windowNames[l.spec.windows[i-1].kind], rem)
		}
		a.limit, a.remain = append(a.limit, lim), append(a.remain, rem)
		if rem < 0 || rem > lim {
			return a, &propFailure{"headers", fmt.Sprintf("%s=%d %s=%d", p[0], lim, p[1], rem)}
		}
	}
	return a, nil
}

// runPropCase drives both stores through c and returns the first failed property, nil if none.
func runPropCase(t *testing.T, c propCase) *propFailure {
	t.Helper()
	base := at("2030-01-07T10:00:30.5Z").UnixMicro()
	conf := Config{Strategy: c.strategy, Limits: c.limits}
	type side struct {
		name string
		clk  *fakeClock
		l    *Limiter
		h    http.Handler
		cnt  map[[2]int64]int64 // (window kind, window number) → admitted
	}
	var sides [2]*side
	for i, sk := range []storeKind{stores[0], stores[1]} {
		clk := newClock(time.UnixMicro(base))
		l := build(t, sk, conf, clk)
		sides[i] = &side{name: sk.name, clk: clk, l: l, h: l.Wrap(&backend{}), cnt: map[[2]int64]int64{}}
	}
	spec := sides[0].l.spec
	now, latest := base, base
	stepped := false
	for step, m := range c.moves {
		switch m.kind {
		case 'f':
			now += m.d
		case 's':
			now = latest - m.d // a straggler: read up to 1s before the latest reading
		default:
			now -= m.d
			latest = now
			// Caps are per epoch: a window counted before the step and read again after it
			// may have been forgotten by memory's four windows a size (Redis keeps its key).
			for _, sd := range sides {
				clear(sd.cnt)
			}
		}
		latest = max(latest, now)
		// After the clock is stepped back, the stores may differ where readings come back to
		// windows counted before the step: Redis keeps every window's key until its TTL, memory
		// four windows a size. Caps still hold.
		stepped = stepped || m.kind == 'b'
		var ans [2]propAnswer
		for i, sd := range sides {
			sd.clk.us.Store(now)
			a, err := sendProp(sd.h, sd.l)
			if err != nil {
				f := err.(*propFailure)
				f.msg = fmt.Sprintf("step %d (%s) %s: %s", step, m, sd.name, f.msg)
				return f
			}
			ans[i] = a
			if a.code != http.StatusOK {
				continue
			}
			var pos [maxWindows]windowPos
			positions(spec, now, &pos)
			for j, w := range spec.windows {
				k := [2]int64{int64(w.kind), pos[j].idx}
				sd.cnt[k]++
				if !spec.sliding && sd.cnt[k] > w.limit {
					return &propFailure{"cap", fmt.Sprintf("step %d (%s) %s: %s window %d (starting %s) admitted %d, limit %d",
						step, m, sd.name, windowNames[w.kind], pos[j].idx, time.UnixMicro(pos[j].start).UTC().Format("15:04:05"), sd.cnt[k], w.limit)}
				}
			}
		}
		if !stepped && (ans[0].code != ans[1].code || ans[0].headers != ans[1].headers) {
			return &propFailure{"agree", fmt.Sprintf("step %d (%s, reading %s): memory %d %s, redis %d %s", step, m,
				time.UnixMicro(now).UTC().Format("15:04:05.000000"), ans[0].code, ans[0].headers, ans[1].code, ans[1].headers)}
		}
	}
	return nil
}

// shrinkPropCase drops moves (and shortens far-back steps' partners) while the same check fails.
func shrinkPropCase(t *testing.T, c propCase, check string) propCase {
	fails := func(c propCase) bool {
		var f *propFailure
		t.Run("shrink", func(t *testing.T) { f = runPropCase(t, c) })
		return f != nil && f.check == check
	}
	for changed := true; changed; {
		changed = false
		for i := len(c.moves) - 1; i >= 0; i-- {
			try := c
			try.moves = append(append([]propMove{}, c.moves[:i]...), c.moves[i+1:]...)
			if fails(try) {
				c, changed = try, true
			}
		}
	}
	return c
}

func TestWindowStoresProperties(t *testing.T) {
	seeds := 40
	if s := os.Getenv("RL_PROPS_SEEDS"); s != "" {
		seeds, _ = strconv.Atoi(s)
	}
	shrink := os.Getenv("RL_PROPS_SHRINK") != ""
	found := map[string]bool{}
	for seed := range seeds {
		r := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
		c := genPropCase(r)
		var f *propFailure
		t.Run(fmt.Sprint(seed), func(t *testing.T) { f = runPropCase(t, c) })
		if f == nil {
			continue
		}
		key := f.check + " " + c.strategy
		if found[key] {
			continue
		}
		found[key] = true
		if shrink {
			c = shrinkPropCase(t, c, f.check)
			t.Run("min", func(t *testing.T) { f = runPropCase(t, c) })
		}
		t.Errorf("seed %d: %v\n  case: %s", seed, f, c)
	}
}
