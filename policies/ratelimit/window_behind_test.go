package ratelimit

import (
	"fmt"
	"testing"
)

// Readings far behind the entry's latest, minimised from TestWindowStoresProperties. Each step
// sets the clock to an absolute reading and sends one request from the same client.
type behindStep struct {
	at   string // RFC 3339 reading
	want int    // status
}

func runBehindSteps(t *testing.T, sk storeKind, c Config, steps []behindStep) {
	t.Helper()
	clk := newClock(at(steps[0].at))
	h := build(t, sk, c, clk).Wrap(&backend{})
	q := req{consumer: "alice"}
	var got []string
	bad := false
	for _, s := range steps {
		clk.us.Store(at(s.at).UnixMicro())
		w := q.send(h)
		got = append(got, fmt.Sprintf("%s→%d (remaining %s)", s.at[11:], w.Code, w.Header().Get(headerRemaining)))
		if w.Code != s.want {
			bad = true
		}
	}
	if bad {
		var want []string
		for _, s := range steps {
			want = append(want, fmt.Sprintf("%s→%d", s.at[11:], s.want))
		}
		t.Fatalf("got  %v\nwant %v", got, want)
	}
}

func TestFarBehindReadingsAreCounted(t *testing.T) {
	cases := []struct {
		name  string
		conf  Config
		steps []behindStep
	}{{
		// The clock is stepped back two minutes: every request in 10:00 is judged on counts of 0
		// and counted nowhere (memory.go, take: case w.idx > p.idx), so the minute admits
		// without limit until the clock catches up with 10:02.
		name: "fixed minute, stepped back two windows",
		conf: Config{Strategy: FixedWindow, Limits: Limits{Minute: 3}},
		steps: []behindStep{
			{"2030-01-07T10:02:30Z", 200},
			{"2030-01-07T10:00:10Z", 200},
			{"2030-01-07T10:00:11Z", 200},
			{"2030-01-07T10:00:12Z", 200},
			{"2030-01-07T10:00:13Z", 429},
			{"2030-01-07T10:00:14Z", 429},
		},
	}, {
		name: "sliding minute, stepped back two windows",
		conf: Config{Strategy: SlidingWindow, Limits: Limits{Minute: 3}},
		steps: []behindStep{
			{"2030-01-07T10:02:30Z", 200},
			{"2030-01-07T10:00:10Z", 200},
			{"2030-01-07T10:00:11Z", 200},
			{"2030-01-07T10:00:12Z", 200},
			{"2030-01-07T10:00:13Z", 429},
		},
	}, {
		// Second+minute: a step back of 2.5s stays in the minute but is two seconds behind; the
		// second window (limit 1) admits every request of 10:00:28.
		name: "fixed second+minute, stepped back 2.5s",
		conf: Config{Strategy: FixedWindow, Limits: Limits{Second: 1, Minute: 10}},
		steps: []behindStep{
			{"2030-01-07T10:00:30.7Z", 200},
			{"2030-01-07T10:00:28.2Z", 200},
			{"2030-01-07T10:00:28.3Z", 429},
			{"2030-01-07T10:00:28.4Z", 429},
		},
	}, {
		// Sliding, one window behind: the entry (at 10:02) keeps 10:01's count as prev but not
		// 10:00's, which a reading in 10:01 weighs (55/60 of 1 request). memory.go take, case
		// w.idx == p.idx+1, takes it as 0 and admits; Redis reads key 10:00 and refuses.
		name: "sliding minute, one window behind forgets the window before",
		conf: Config{Strategy: SlidingWindow, Limits: Limits{Minute: 1}},
		steps: []behindStep{
			{"2030-01-07T10:00:50Z", 200},
			{"2030-01-07T10:02:10Z", 200},
			{"2030-01-07T10:01:05Z", 429}, // ≈0.92 (10:00) + 0 (10:01) + 1 > 1
		},
	}}
	for _, tc := range cases {
		for _, sk := range stores {
			t.Run(tc.name+"/"+sk.name, func(t *testing.T) { runBehindSteps(t, sk, tc.conf, tc.steps) })
		}
	}
}
