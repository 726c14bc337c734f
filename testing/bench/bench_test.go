package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portico-gw/portico/testing/demo"
	"github.com/portico-gw/portico/testing/load"
)

func TestNewGenerator(t *testing.T) {
	found := func() (load.Wrk, error) { return load.Wrk{Path: "/usr/bin/wrk"}, nil }
	missing := func() (load.Wrk, error) {
		return load.Wrk{}, errors.New(`exec: "wrk": executable file not found in $PATH`)
	}
	for _, tc := range []struct {
		name, mode string
		lookup     func() (load.Wrk, error)
		wantWrk    bool
		wantErr    string
	}{
		{"auto picks wrk when installed", loaderAuto, found, true, ""},
		{"auto falls back to Go without wrk", loaderAuto, missing, false, ""},
		{"wrk required and installed", loaderWrk, found, true, ""},
		{"wrk required and missing", loaderWrk, missing, false, "not found"},
		{"go never looks for wrk", loaderGo, func() (load.Wrk, error) { t.Fatal("lookup called for -loader go"); return load.Wrk{}, nil }, false, ""},
		{"unknown mode", "ab", found, false, `-loader "ab"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := newGenerator(tc.mode, tc.lookup, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g.usesWrk() != tc.wantWrk {
				t.Fatalf("usesWrk = %v, want %v (%s)", g.usesWrk(), tc.wantWrk, g)
			}
			if want := "Go (testing/load)"; !tc.wantWrk && !strings.Contains(g.String(), want) {
				t.Errorf("String = %q, want it to name %q", g, want)
			}
		})
	}
}

// brokenWrk stands in for a wrk that is installed but cannot run the scenario.
func brokenWrk(t *testing.T) func() (load.Wrk, error) {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh for a fake wrk")
	}
	p := filepath.Join(t.TempDir(), "wrk")
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho 'wrk: broken' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return func() (load.Wrk, error) { return load.Wrk{Path: p}, nil }
}

func TestGeneratorFallsBackFromBrokenWrk(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	o := load.Options{URL: srv.URL, Connections: 2, Duration: 100 * time.Millisecond}

	var log strings.Builder
	g, err := newGenerator(loaderAuto, brokenWrk(t), &log)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		res, err := g.run(context.Background(), o)
		if err != nil || res.Requests == 0 {
			t.Fatalf("run %d: %v, %v", i, res, err)
		}
	}
	if g.usesWrk() || strings.Count(log.String(), "falling back") != 1 || !strings.Contains(log.String(), "wrk: broken") {
		t.Fatalf("usesWrk %v, log %q: want one fall-back notice naming wrk's error", g.usesWrk(), log.String())
	}

	// Asked for wrk explicitly, a broken one is an error, not a silent switch.
	g, err = newGenerator(loaderWrk, brokenWrk(t), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "wrk: broken") {
		t.Fatalf("err = %v, want wrk's failure", err)
	}
}

func TestServeBackends(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := serveBackends(context.Background(), inR, outW)
		outW.Close()
		done <- err
	}()
	out := bufio.NewScanner(outR)
	if !out.Scan() {
		t.Fatal("no URL line")
	}
	var urls backendURLs
	if err := json.Unmarshal(out.Bytes(), &urls); err != nil {
		t.Fatal(err)
	}
	if len(urls.Services) != len(demo.Names) || urls.Bench == "" {
		t.Fatalf("urls %+v", urls)
	}
	get := func(url string) time.Duration {
		t.Helper()
		start := time.Now()
		getOK(t, url)
		return time.Since(start)
	}
	get(urls.Bench + "/")
	command := func(line string) string {
		t.Helper()
		if _, err := io.WriteString(inW, line+"\n"); err != nil {
			t.Fatal(err)
		}
		if !out.Scan() {
			t.Fatal("no reply to", line)
		}
		return out.Text()
	}
	if reply := command("latency 50ms"); reply != "ok" {
		t.Fatalf("latency: %q", reply)
	}
	if d := get(urls.Services[demo.NameUsers] + "/users/u1"); d < 50*time.Millisecond {
		t.Errorf("users answered in %s after latency 50ms", d)
	}
	for _, line := range []string{"latency soon", "restart users"} {
		if reply := command(line); !strings.HasPrefix(reply, "error: ") {
			t.Errorf("%q: reply %q, want an error", line, reply)
		}
	}
	inW.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serveBackends did not return when stdin closed")
	}
}

func TestParseProcStat(t *testing.T) {
	// The command name may hold spaces and parentheses; utime 250 and stime 50 ticks.
	line := "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 1000 0 0"
	got, ok := parseProcStat(line)
	if !ok || got != 3*time.Second {
		t.Fatalf("got %s, %v; want 3s", got, ok)
	}
	for _, bad := range []string{"", "4242 (cmd", "4242 (cmd) S 1 2", "4242 (cmd) S 1 4242 4242 0 -1 4194560 100 0 0 0 x 50 0"} {
		if _, ok := parseProcStat(bad); ok {
			t.Errorf("parseProcStat(%q) ok", bad)
		}
	}
}

func TestCPUUse(t *testing.T) {
	before := cpuSample{portico: time.Second, backends: time.Second, self: time.Second, ok: true}
	after := cpuSample{portico: 2 * time.Second, backends: 1500 * time.Millisecond, self: 1100 * time.Millisecond, ok: true}
	f := after.use(before, 0, 2*time.Second, 4000).figures()
	if got := f.perRequestString(); got != "250µs/req" {
		t.Errorf("per request = %s", got)
	}
	if got := f.coresString(); got != "0.50/0.25/0.05" {
		t.Errorf("cores = %s (the bench process's own CPU is the Go generator's)", got)
	}
	if got := after.use(before, 400*time.Millisecond, 2*time.Second, 4000).figures().coresString(); got != "0.50/0.25/0.20" {
		t.Errorf("cores with wrk = %s (wrk's own CPU is the generator's)", got)
	}
	unknown := after.use(cpuSample{}, 0, time.Second, 1).figures()
	if unknown.perRequestString() != "-" || unknown.coresString() != "-" {
		t.Errorf("without /proc: %s %s", unknown.perRequestString(), unknown.coresString())
	}

	rounds := []cpuFigures{
		{perRequest: 300 * time.Microsecond, portico: 0.8, backends: 0.4, loader: 0.05, ok: true},
		{perRequest: 500 * time.Microsecond, portico: 0.9, backends: 0.3, loader: 0.04, ok: true},
		{perRequest: 350 * time.Microsecond, portico: 0.7, backends: 0.5, loader: 0.06, ok: true},
	}
	m := medianFigures(rounds)
	if m.perRequestString() != "350µs/req" || m.coresString() != "0.80/0.40/0.05" {
		t.Errorf("medians: %s %s", m.perRequestString(), m.coresString())
	}
	if medianFigures(append(rounds, cpuFigures{})).ok {
		t.Error("a round without figures must make the median unknown")
	}
}

func TestServeYardsticks(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cluster, err := demo.StartAll(ctx, "127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	bench := demo.NewBench()
	_, benchURL, err := demo.Start(ctx, "127.0.0.1:0", bench)
	if err != nil {
		t.Fatal(err)
	}
	defer bench.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // an address nothing answers on

	start := func(t *testing.T, tg yardstickTargets) (yardstickURLs, io.WriteCloser, chan error) {
		t.Helper()
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		done := make(chan error, 1)
		go func() {
			err := serveYardsticks(ctx, inR, outW)
			outW.Close()
			done <- err
		}()
		line, _ := json.Marshal(tg)
		if _, err := inW.Write(append(line, '\n')); err != nil {
			t.Fatal(err)
		}
		out := bufio.NewScanner(outR)
		if !out.Scan() {
			t.Fatal("no URL line")
		}
		var urls yardstickURLs
		if err := json.Unmarshal(out.Bytes(), &urls); err != nil {
			t.Fatal(err)
		}
		return urls, inW, done
	}
	fetch := func(t *testing.T, method, url string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(`{"query":"{ dashboard { me { id } } }"}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	var dials atomic.Int32
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}}
	defer client.CloseIdleConnections()
	get := func(t *testing.T, url string) (int, string) {
		t.Helper()
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	wait := func(t *testing.T, done chan error) {
		t.Helper()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("serveYardsticks did not return when stdin closed")
		}
	}

	t.Run("proxy and fan-out answer like the real thing", func(t *testing.T) {
		urls, in, done := start(t, yardstickTargets{Bench: benchURL, Users: cluster.URL(demo.NameUsers),
			Orders: cluster.URL(demo.NameOrders), Notifications: cluster.URL(demo.NameNotifications)})
		if status, body := fetch(t, http.MethodGet, urls.ReverseProxy+"/"); status != 200 || !strings.Contains(body, `"status":"ok"`) {
			t.Errorf("reverse proxy: %d %q", status, body)
		}
		for i := 0; i < 3; i++ {
			if status, body := get(t, urls.Floor+"/"); status != 200 || body != string(demo.BenchBody()) {
				t.Errorf("floor, request %d: %d %q", i, status, body)
			}
		}
		// Kept alive: fewer connections than answers. Not exactly one: under load net/http's
		// Transport drops a connection whose writer goroutine has not reported the request
		// written within 50ms of the answer (maxWriteWaitBeforeConnReuse), and dials again.
		if n := dials.Load(); n >= 3 {
			t.Errorf("the floor's three answers took %d connections, want them kept alive", n)
		}
		// The floor carries what the client asked for, under the backend's Host.
		if status, body := get(t, urls.Floor+"/echo?x=1"); status != 200 || !strings.Contains(body, `"uri":"/echo?x=1"`) || !strings.Contains(body, `"host":"`+strings.TrimPrefix(benchURL, "http://")+`"`) {
			t.Errorf("floor /echo: %d %q", status, body)
		}
		// What it cannot forward ends the connection rather than answering wrongly.
		if _, err := http.Post(urls.Floor+"/", "text/plain", strings.NewReader("body")); err == nil {
			t.Error("floor answered a request with a body")
		}
		status, body := fetch(t, http.MethodPost, urls.Fanout+"/")
		var got struct {
			Me           struct{ ID string }
			RecentOrders struct{ Orders []struct{ ID string } }
			Unread       struct{ Unread *int }
		}
		if err := json.Unmarshal([]byte(body), &got); status != 200 || err != nil {
			t.Fatalf("fan-out: %d %v %q", status, err, body)
		}
		if got.Me.ID == "" || len(got.RecentOrders.Orders) != 5 || got.Unread.Unread == nil {
			t.Errorf("fan-out did not join the three answers: %q", body)
		}
		in.Close()
		wait(t, done)
	})
	t.Run("a failed call fails the fan-out", func(t *testing.T) {
		urls, in, done := start(t, yardstickTargets{Bench: benchURL, Users: cluster.URL(demo.NameUsers),
			Orders: cluster.URL(demo.NameOrders), Notifications: down.URL})
		if status, body := fetch(t, http.MethodPost, urls.Fanout+"/"); status != http.StatusBadGateway {
			t.Errorf("fan-out with notifications down: %d %q, want 502", status, body)
		}
		in.Close()
		wait(t, done)
	})
	t.Run("bad targets are refused", func(t *testing.T) {
		for _, line := range []string{"", "not json", `{"bench":"no-scheme"}`} {
			err := serveYardsticks(ctx, strings.NewReader(line), io.Discard)
			if err == nil {
				t.Errorf("targets %q: no error", line)
			}
		}
	})
}

// TestMain lets this test binary stand in for the bench binary as a child process: the parent
// side (startChild) runs os.Executable() with the child's flag.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "-serve-backends":
			if err := serveBackends(context.Background(), os.Stdin, os.Stdout); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			os.Exit(0)
		case "-serve-yardsticks":
			if err := serveYardsticks(context.Background(), os.Stdin, os.Stdout); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			os.Exit(0)
		}
	}
	os.Exit(m.Run())
}

func TestChildProcesses(t *testing.T) {
	backends, err := startBackends()
	if err != nil {
		t.Fatal(err)
	}
	defer backends.Close()
	if err := backends.SetLatency(0); err != nil {
		t.Fatal(err)
	}
	yard, err := startYardsticks(yardstickTargets{Bench: backends.Bench, Users: backends.Services[demo.NameUsers],
		Orders: backends.Services[demo.NameOrders], Notifications: backends.Services[demo.NameNotifications]})
	if err != nil {
		t.Fatal(err)
	}
	for _, url := range []string{yard.ReverseProxy + "/", yard.Fanout + "/"} {
		getOK(t, url)
	}
	pid := yard.Pid()
	yard.Close()
	if err := yard.cmd.Process.Signal(syscall.Signal(0)); err == nil {
		t.Errorf("yardsticks process %d still running after Close", pid)
	}
}

// getOK GETs url, reads the answer and fails the test unless it is a 200.
func getOK(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
}
