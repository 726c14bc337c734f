package main

import (
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	tests := []struct {
		name        string
		env         map[string]string
		cgroup      int64
		wantPercent int
		wantLimit   int64
	}{
		{name: "defaults without a cgroup limit", wantPercent: gcPercent, wantLimit: -1},
		{name: "cgroup limit gives a soft limit", cgroup: 1000, wantPercent: gcPercent, wantLimit: 900},
		{name: "GOGC and GOMEMLIMIT win", env: map[string]string{"GOGC": "50", "GOMEMLIMIT": "1GiB"}, cgroup: 1000, wantPercent: -1, wantLimit: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, l := tuneGC(func(k string) string { return tc.env[k] }, func() int64 { return tc.cgroup })
			if p != tc.wantPercent || l != tc.wantLimit {
				t.Errorf("tuneGC = %d, %d; want %d, %d", p, l, tc.wantPercent, tc.wantLimit)
			}
		})
	}
}
