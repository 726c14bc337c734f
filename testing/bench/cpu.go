package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, 100 on every Linux
// architecture Go supports.
const userHZ = 100

// processCPU returns the CPU time (user and system, all threads) the process has used so far;
// ok is false where /proc is not available.
func processCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	return parseProcStat(string(b))
}

// parseProcStat reads utime and stime (fields 14 and 15) from a /proc/<pid>/stat line. The
// command name (field 2) is in parentheses and may hold spaces, so fields are counted after the
// last ')'.
func parseProcStat(s string) (time.Duration, bool) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * time.Second / userHZ, true
}

// cpuSample is the CPU time of the processes a measurement involves.
type cpuSample struct {
	portico, backends, self time.Duration
	ok                      bool
}

func sampleCPU(gatewayPid, backendsPid int) cpuSample {
	p, ok1 := processCPU(gatewayPid)
	b, ok2 := processCPU(backendsPid)
	s, ok3 := processCPU(os.Getpid())
	return cpuSample{portico: p, backends: b, self: s, ok: ok1 && ok2 && ok3}
}

// cpuUse is where the CPU went during one measured run.
type cpuUse struct {
	portico, backends, loader time.Duration
	elapsed                   time.Duration
	requests                  int64
	ok                        bool
}

// use subtracts before from after. loader is the load generator's CPU when it ran as its own
// process (wrk); 0 means it ran inside the bench process, whose own CPU is then the loader's.
func (after cpuSample) use(before cpuSample, loader, elapsed time.Duration, requests int64) cpuUse {
	u := cpuUse{portico: after.portico - before.portico, backends: after.backends - before.backends,
		loader: loader, elapsed: elapsed, requests: requests, ok: before.ok && after.ok && elapsed > 0}
	if loader == 0 {
		u.loader = after.self - before.self
	}
	return u
}

// cpuFigures is what the report prints of a cpuUse: Portico's CPU per answered request and the
// cores each process kept busy on average.
type cpuFigures struct {
	perRequest                time.Duration
	portico, backends, loader float64
	ok                        bool
}

func (u cpuUse) figures() cpuFigures {
	if !u.ok || u.requests == 0 {
		return cpuFigures{}
	}
	c := func(d time.Duration) float64 { return d.Seconds() / u.elapsed.Seconds() }
	return cpuFigures{perRequest: u.portico / time.Duration(u.requests),
		portico: c(u.portico), backends: c(u.backends), loader: c(u.loader), ok: true}
}

// medianFigures takes the median of each figure over rounds; unknown when any round's is.
func medianFigures(fs []cpuFigures) cpuFigures {
	if len(fs) == 0 {
		return cpuFigures{}
	}
	m := cpuFigures{ok: true}
	var per, p, b, l []float64
	for _, f := range fs {
		m.ok = m.ok && f.ok
		per, p, b, l = append(per, float64(f.perRequest)), append(p, f.portico), append(b, f.backends), append(l, f.loader)
	}
	m.perRequest, m.portico, m.backends, m.loader = time.Duration(median(per)), median(p), median(b), median(l)
	return m
}

// perRequestString is Portico's CPU per answered request, "-" when unknown.
func (f cpuFigures) perRequestString() string {
	if !f.ok {
		return "-"
	}
	return f.perRequest.Round(time.Microsecond).String() + "/req"
}

// coresString is "portico/backends/loader" cores, "-" when unknown.
func (f cpuFigures) coresString() string {
	if !f.ok {
		return "-"
	}
	return fmt.Sprintf("%.2f/%.2f/%.2f", f.portico, f.backends, f.loader)
}
