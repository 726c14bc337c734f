package load

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// realWrk returns the wrk on PATH, or skips: the harness must work without it, so the tests that
// need the binary are optional and the rest of the file runs anywhere.
func realWrk(t *testing.T) Wrk {
	t.Helper()
	w, err := LookupWrk()
	if err != nil {
		t.Skip("wrk is not installed:", err)
	}
	w.Threads = 1
	return w
}

func TestWrkRunPOST(t *testing.T) {
	w := realWrk(t)
	// Every byte class the Lua quoting must survive: quotes, backslashes, newlines, a closing
	// long bracket, control and non-ASCII bytes.
	body := []byte("{\"query\":\"{ me { id } }\", \"x\":\"a\\\\b\\n]]==]\"}\n\x00\x01é")
	var mu sync.Mutex
	var bad []string
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		got, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.Method != http.MethodPost:
			bad = append(bad, "method "+r.Method)
		case !bytes.Equal(got, body):
			bad = append(bad, "body "+string(got))
		case r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-Test") != "a, b":
			bad = append(bad, "header "+r.Header.Get("Content-Type")+" / "+r.Header.Get("X-Test"))
		}
		io.WriteString(w, "ok")
	})
	res, err := w.Run(context.Background(), Options{URL: srv.URL, Method: http.MethodPost, Body: body,
		Header:      http.Header{"Content-Type": {"application/json"}, "x-test": {"a", "b"}},
		Connections: 2, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(bad) > 0 {
		t.Errorf("%d requests differ from the options, first: %s", len(bad), bad[0])
	}
	mu.Unlock()
	if res.Requests == 0 || res.Errors != 0 || res.Non2xx != 0 || res.RPS <= 0 {
		t.Fatalf("result %v", res)
	}
	// wrk counts answers read in full; the server may have seen a few more that were in flight.
	if seen := srv.requests.Load(); seen < res.Requests || seen > res.Requests+2 {
		t.Errorf("server saw %d, wrk counted %d", seen, res.Requests)
	}
	if res.Elapsed < time.Second || res.Elapsed > 5*time.Second {
		t.Errorf("elapsed %s for a 1s run", res.Elapsed)
	}
	if res.LoaderCPU <= 0 {
		t.Errorf("LoaderCPU %s: wrk's CPU time should be known", res.LoaderCPU)
	}
	checkOrdered(t, res)
}

func TestWrkRunCountsErrorStatuses(t *testing.T) {
	w := realWrk(t)
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	res, err := w.Run(context.Background(), Options{URL: srv.URL, Connections: 1, Duration: time.Second, Warmup: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Non2xx != res.Requests {
		t.Fatalf("result %v: every answer was a 503", res)
	}
}

// writeFakeWrk puts a shell script standing in for wrk in a temporary directory.
func writeFakeWrk(t *testing.T, script string) Wrk {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh for a fake wrk")
	}
	p := filepath.Join(t.TempDir(), "wrk")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return Wrk{Path: p}
}

func TestWrkRunFailures(t *testing.T) {
	base := Options{URL: "http://127.0.0.1:1/", Connections: 1, Duration: time.Second}
	for _, tc := range []struct {
		name string
		w    func(t *testing.T) Wrk
		opts func(Options) Options
		want string
	}{
		{"missing binary", func(*testing.T) Wrk { return Wrk{Path: filepath.Join(os.TempDir(), "no-such-wrk")} }, nil, "running"},
		{"no path", func(*testing.T) Wrk { return Wrk{} }, nil, "no executable"},
		{"exits non-zero", func(t *testing.T) Wrk { return writeFakeWrk(t, "echo 'unknown option' >&2; exit 1") }, nil, "unknown option"},
		{"no report line", func(t *testing.T) Wrk { return writeFakeWrk(t, "echo 'Running 1s test'") }, nil, "no \"PORTICO-WRK\" line"},
		{"malformed report", func(t *testing.T) Wrk { return writeFakeWrk(t, "echo 'PORTICO-WRK requests=x'") }, nil, "field requests"},
		{"max requests", func(*testing.T) Wrk { return Wrk{Path: "wrk"} },
			func(o Options) Options { o.MaxRequests = 10; return o }, "max requests"},
		{"no duration", func(*testing.T) Wrk { return Wrk{Path: "wrk"} },
			func(o Options) Options { o.Duration = 0; return o }, "duration or max requests"},
		{"custom TLS", func(*testing.T) Wrk { return Wrk{Path: "wrk"} },
			func(o Options) Options { o.TLS = &tls.Config{}; return o }, "TLS"},
		{"invalid options", func(*testing.T) Wrk { return Wrk{Path: "wrk"} },
			func(o Options) Options { o.Connections = 0; return o }, "connections"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			if tc.opts != nil {
				o = tc.opts(o)
			}
			_, err := tc.w(t).Run(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestParseWrkReport(t *testing.T) {
	out := "Running 1s test @ http://x/\n" + wrkReportPrefix +
		"requests=3000 duration_us=1500000 connect=1 read=2 write=0 timeout=3 status=7 p50_us=20100 p90_us=21000 p99_us=25000 max_us=40000\n" +
		"Requests/sec: 2000.00\n"
	res, err := parseWrkReport(out)
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Requests: 3000, Errors: 6, Non2xx: 7, Elapsed: 1500 * time.Millisecond, RPS: 2000,
		P50: 20100 * time.Microsecond, P90: 21 * time.Millisecond, P99: 25 * time.Millisecond, Max: 40 * time.Millisecond}
	if res != want {
		t.Fatalf("got %+v\nwant %+v", res, want)
	}
	if _, err := parseWrkReport(wrkReportPrefix + "requests=1 duration_us=2\n"); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("a report without percentiles: err = %v", err)
	}
}

func TestLuaQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":           `""`,
		"POST":       `"POST"`,
		`a"b\c`:      `"a\034b\092c"`,
		"x\n]]\x00é": `"x\010]]\000\195\169"`,
	} {
		if got := luaQuote([]byte(in)); got != want {
			t.Errorf("luaQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
