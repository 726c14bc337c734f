package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Wrk runs the same closed-loop load as Run with the wrk binary (github.com/wg/wrk) instead of Go
// workers. wrk is written in C around epoll and costs a fraction of the CPU of Go workers per
// request, which matters on a small machine where the load generator, the backends and the
// gateway share a few cores: there, a heavy load generator takes CPU from the gateway and its
// queueing shows up as the gateway's latency.
//
// Differences from Run, all from wrk itself: durations are whole seconds (rounded up, so the
// warm-up is a separate unmeasured run of at least one second); MaxRequests and custom TLS
// configs are not supported; Result.Non2xx counts 4xx and 5xx answers only (wrk does not report
// 1xx and 3xx); and Result.Max is wrk's, exact to the microsecond.
type Wrk struct {
	// Path is the wrk executable.
	Path string
	// Threads is wrk's -t (default runtime.NumCPU(), at most Options.Connections).
	Threads int
}

// LookupWrk finds wrk on PATH.
func LookupWrk() (Wrk, error) {
	p, err := exec.LookPath("wrk")
	if err != nil {
		return Wrk{}, err
	}
	return Wrk{Path: p}, nil
}

// String names the generator for reports.
func (w Wrk) String() string { return "wrk (" + w.Path + ")" }

// wrkReportPrefix marks the one line the script's done() prints, so that wrk's own report
// around it does not matter.
const wrkReportPrefix = "PORTICO-WRK "

// Run sends load as o describes and reports what wrk measured. Result.LoaderCPU is wrk's own CPU
// time (user and system) over the measured run.
func (w Wrk) Run(ctx context.Context, o Options) (Result, error) {
	o, err := o.validate()
	if err != nil {
		return Result{}, err
	}
	switch {
	case o.MaxRequests > 0:
		return Result{}, errors.New("invalid load options for wrk: max requests is not supported (wrk runs for a duration)")
	case o.Duration <= 0:
		return Result{}, errors.New("invalid load options for wrk: a duration is required")
	case o.TLS != nil:
		return Result{}, errors.New("invalid load options for wrk: a custom TLS config is not supported")
	}
	if w.Path == "" {
		return Result{}, errors.New("wrk: no executable path")
	}
	dir, err := os.MkdirTemp("", "portico-wrk")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "load.lua")
	if err := os.WriteFile(script, wrkScript(o), 0o600); err != nil {
		return Result{}, err
	}
	if o.Warmup > 0 {
		if _, err := w.exec(ctx, o, script, o.Warmup); err != nil {
			return Result{}, fmt.Errorf("wrk warm-up: %w", err)
		}
	}
	return w.exec(ctx, o, script, o.Duration)
}

// exec runs wrk once for d (rounded up to whole seconds) and parses its report.
func (w Wrk) exec(ctx context.Context, o Options, script string, d time.Duration) (Result, error) {
	threads := w.Threads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	threads = min(threads, o.Connections)
	secs := int64((d + time.Second - 1) / time.Second)
	timeout := int64((o.Timeout + time.Second - 1) / time.Second)
	cmd := exec.CommandContext(ctx, w.Path,
		"-t", strconv.Itoa(threads), "-c", strconv.Itoa(o.Connections),
		"-d", strconv.FormatInt(secs, 10)+"s", "--timeout", strconv.FormatInt(timeout, 10)+"s",
		"-s", script, o.URL)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return Result{}, fmt.Errorf("load run interrupted: %w", context.Cause(ctx))
		}
		return Result{}, fmt.Errorf("running %s: %w: %s", w.Path, err, firstLine(stderr.String(), stdout.String()))
	}
	res, err := parseWrkReport(stdout.String())
	if err != nil {
		return Result{}, fmt.Errorf("reading %s's report: %w", w.Path, err)
	}
	if ps := cmd.ProcessState; ps != nil {
		res.LoaderCPU = ps.UserTime() + ps.SystemTime()
	}
	return res, nil
}

func firstLine(ss ...string) string {
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			line, _, _ := strings.Cut(s, "\n")
			return line
		}
	}
	return "no output"
}

// wrkScript sets the method, headers and body of every request and prints the figures Result
// needs on one line, in microseconds, so that nothing depends on wrk's human-readable units.
func wrkScript(o Options) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "wrk.method = %s\n", luaQuote([]byte(o.Method)))
	if o.Body != nil {
		fmt.Fprintf(&b, "wrk.body = %s\n", luaQuote(o.Body))
	}
	for k, vs := range o.Header {
		fmt.Fprintf(&b, "wrk.headers[%s] = %s\n", luaQuote([]byte(http.CanonicalHeaderKey(k))), luaQuote([]byte(strings.Join(vs, ", "))))
	}
	b.WriteString(`done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("` + wrkReportPrefix + `requests=%d duration_us=%d connect=%d read=%d write=%d timeout=%d status=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
`)
	return b.Bytes()
}

// luaQuote writes s as a Lua string literal. Anything but printable ASCII, quotes and
// backslashes becomes a decimal escape, which every Lua version (and LuaJIT, which wrk embeds)
// reads the same way, whatever bytes s holds.
func luaQuote(s []byte) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range s {
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, `\%03d`, c)
	}
	b.WriteByte('"')
	return b.String()
}

// parseWrkReport reads the line wrkScript's done() prints.
func parseWrkReport(out string) (Result, error) {
	var line string
	for l := range strings.Lines(out) {
		if rest, ok := strings.CutPrefix(l, wrkReportPrefix); ok {
			line = strings.TrimSpace(rest)
		}
	}
	if line == "" {
		return Result{}, fmt.Errorf("no %q line in the output: %s", strings.TrimSpace(wrkReportPrefix), firstLine(out))
	}
	v := map[string]int64{}
	for field := range strings.FieldsSeq(line) {
		k, s, ok := strings.Cut(field, "=")
		if !ok {
			return Result{}, fmt.Errorf("malformed field %q", field)
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return Result{}, fmt.Errorf("field %s: %w", k, err)
		}
		v[k] = n
	}
	for _, k := range []string{"requests", "duration_us", "connect", "read", "write", "timeout", "status", "p50_us", "p90_us", "p99_us", "max_us"} {
		if _, ok := v[k]; !ok {
			return Result{}, fmt.Errorf("field %s missing", k)
		}
	}
	us := func(k string) time.Duration { return time.Duration(v[k]) * time.Microsecond }
	res := Result{
		Requests: v["requests"],
		Errors:   v["connect"] + v["read"] + v["write"] + v["timeout"],
		Non2xx:   v["status"],
		Elapsed:  us("duration_us"),
		P50:      us("p50_us"), P90: us("p90_us"), P99: us("p99_us"), Max: us("max_us"),
	}
	if res.Elapsed > 0 {
		res.RPS = float64(res.Requests) / res.Elapsed.Seconds()
	}
	return res, nil
}
