package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// These tests start the real binary with a real YAML file, as an operator would.

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "portico-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "portico")
	build := exec.Command("go", "build", "-race", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building portico:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running portico process with the addresses it reported binding.
type proc struct {
	cmd   *exec.Cmd
	addrs map[string]string
	logs  *syncBuffer
	done  chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listenLine = regexp.MustCompile(`"msg":"listening","listener":"([^"]+)","addr":"([^"]+)"`)

// start runs `portico run -config path` and waits until the proxy and admin listeners are bound.
func start(t *testing.T, path string) *proc {
	t.Helper()
	return startCmd(t, exec.Command(binary, "run", "-config", path))
}

// startCmd runs a portico command and waits until it reports its proxy and admin listeners.
func startCmd(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, addrs: map[string]string{}, logs: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout = p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		n := 0
		for sc.Scan() {
			line := sc.Text()
			p.logs.Write([]byte(line + "\n"))
			if m := listenLine.FindStringSubmatch(line); m != nil {
				p.addrs[m[1]] = m[2]
				n++
				if n == 2 {
					close(ready)
				}
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("portico output:\n%s", p.logs.String())
		}
	})
	select {
	case <-ready:
	case <-p.done:
		t.Fatalf("portico exited early:\n%s", p.logs.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("portico did not start:\n%s", p.logs.String())
	}
	return p
}

func (p *proc) proxyURL() string {
	for name, a := range p.addrs {
		if name != "admin" {
			return "http://" + a
		}
	}
	return ""
}

func (p *proc) adminURL() string { return "http://" + p.addrs["admin"] }

func writeConfig(t *testing.T, path, body string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	// Rename, as editors and config tools do, so a reader never sees half a file.
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// namedBackend answers with its name; seen, if given, is told of each request as it arrives.
func namedBackend(t *testing.T, name string, seen ...func(*http.Request)) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, f := range seen {
			f(r)
		}
		if r.URL.Path == "/slow" {
			time.Sleep(500 * time.Millisecond)
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"backend":%q,"path":%q,"request_id":%q}`, name, r.URL.Path, r.Header.Get("X-Request-ID"))
	}))
	t.Cleanup(s.Close)
	return s
}

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func configFor(blue, green string, upstream string) string {
	return fmt.Sprintf(`listen: "127.0.0.1:0"
admin: "127.0.0.1:0"
access_log: {enabled: false}
upstreams:
  blue: {targets: [{url: %q}]}
  green: {targets: [{url: %q}]}
routes:
  - name: app
    match: {path_prefix: /}
    upstream: %s
`, blue, green, upstream)
}

func TestValidateReportsEveryProblemWithLines(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.yaml")
	writeConfig(t, path, `listen: "127.0.0.1:0"
upstreams:
  orders: {targets: [{url: "http://127.0.0.1:1"}]}
routes:
  - name: a
    match: {path_prefix: /a}
    upstream: order
  - name: b
    match: {path_prefix: /b}
    upstream: orders
    colour: blue
`)
	out, err := exec.Command(binary, "validate", "-config", path).CombinedOutput()
	if err == nil {
		t.Fatalf("validate accepted a bad file:\n%s", out)
	}
	if code := err.(*exec.ExitError).ExitCode(); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	for _, want := range []string{`bad.yaml:7:`, `unknown upstream "order"`, `(known: orders)`, `bad.yaml:11:`, `colour`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}

	good := filepath.Join(dir, "good.yaml")
	writeConfig(t, good, configFor("http://127.0.0.1:1", "http://127.0.0.1:2", "blue"))
	if out, err := exec.Command(binary, "validate", "-config", good).CombinedOutput(); err != nil {
		t.Fatalf("validate rejected a good file: %v\n%s", err, out)
	}
}

func TestServesProxyAndAdmin(t *testing.T) {
	blue := namedBackend(t, "blue")
	path := filepath.Join(t.TempDir(), "portico.yaml")
	writeConfig(t, path, configFor(blue.URL, blue.URL, "blue"))
	p := start(t, path)

	code, body, hdr := get(t, p.proxyURL()+"/hello?x=1")
	if code != 200 || !strings.Contains(body, `"backend":"blue"`) || !strings.Contains(body, `"path":"/hello"`) {
		t.Fatalf("proxy answered %d %s", code, body)
	}
	if id := hdr.Get("X-Request-ID"); id == "" || !strings.Contains(body, id) {
		t.Errorf("request ID %q not generated and forwarded: %s", id, body)
	}
	for _, path := range []string{"/health", "/ready", "/metrics", "/upstreams", "/config"} {
		if code, body, _ := get(t, p.adminURL()+path); code != 200 {
			t.Errorf("admin %s: %d %s", path, code, body)
		}
	}
	_, metrics, _ := get(t, p.adminURL()+"/metrics")
	if !strings.Contains(metrics, `portico_requests_total{route="app",status="200",upstream="blue"}`) {
		t.Errorf("metrics lack the request series:\n%s", grepLines(metrics, "portico_requests_total"))
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// load keeps n clients busy against url until stop is closed, counting answers by outcome.
type load struct {
	ok, failed atomic.Int64
	bodies     sync.Map // distinct backend names seen
	firstErr   atomic.Value
	wg         sync.WaitGroup
}

func startLoad(ctx context.Context, url string, n int) *load {
	l := &load{}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	for range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil {
				resp, err := client.Get(url)
				if err != nil {
					if ctx.Err() == nil {
						l.failed.Add(1)
						l.firstErr.CompareAndSwap(nil, err.Error())
					}
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					l.failed.Add(1)
					l.firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %s", resp.StatusCode, b))
					continue
				}
				l.ok.Add(1)
				var v struct{ Backend string }
				if json.Unmarshal(b, &v) == nil {
					l.bodies.Store(v.Backend, true)
				}
			}
		}()
	}
	return l
}

func TestReloadUnderLoadLosesNoRequest(t *testing.T) {
	blue, green := namedBackend(t, "blue"), namedBackend(t, "green")
	path := filepath.Join(t.TempDir(), "portico.yaml")
	writeConfig(t, path, configFor(blue.URL, green.URL, "blue"))
	p := start(t, path)

	ctx, cancel := context.WithCancel(context.Background())
	l := startLoad(ctx, p.proxyURL()+"/x", 8)
	waitFor(t, func() bool { return l.ok.Load() > 50 }, "load to start")

	// A file change (no signal) switches the route to green.
	writeConfig(t, path, configFor(blue.URL, green.URL, "green"))
	waitFor(t, func() bool { _, ok := l.bodies.Load("green"); return ok }, "file-change reload to reach green")

	// An invalid file is rejected and green keeps serving.
	writeConfig(t, path, configFor(blue.URL, green.URL, "nowhere"))
	waitFor(t, func() bool { return strings.Contains(p.logs.String(), "config reload rejected") }, "the bad file to be rejected")

	// SIGHUP with a fixed file switches back to blue.
	writeConfig(t, path, configFor(blue.URL, green.URL, "blue"))
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	before := l.ok.Load()
	waitFor(t, func() bool {
		code, body, _ := get(t, p.proxyURL()+"/x")
		return code == 200 && strings.Contains(body, "blue")
	}, "SIGHUP reload back to blue")
	waitFor(t, func() bool { return l.ok.Load() > before+50 }, "more load after the reload")
	cancel()
	l.wg.Wait()

	if f := l.failed.Load(); f != 0 {
		t.Fatalf("%d of %d requests failed across reloads; first: %v", f, f+l.ok.Load(), l.firstErr.Load())
	}
	t.Logf("%d requests, 0 failed, across three reloads", l.ok.Load())
}

func TestSIGTERMDrainsInFlightRequests(t *testing.T) {
	arrived := make(chan struct{}, 1)
	blue := namedBackend(t, "blue", func(r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case arrived <- struct{}{}:
			default:
			}
		}
	})
	path := filepath.Join(t.TempDir(), "portico.yaml")
	writeConfig(t, path, configFor(blue.URL, blue.URL, "blue"))
	p := start(t, path)

	result := make(chan string, 1)
	go func() {
		resp, err := http.Get(p.proxyURL() + "/slow")
		if err != nil {
			result <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		result <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	// SIGTERM only once the slow request is in flight: a fixed 150ms sleep can let a loaded machine
	// send the signal before Portico has even accepted it, and the request is refused.
	select {
	case <-arrived:
	case got := <-result:
		t.Fatalf("slow request ended before reaching the backend: %s", got)
	case <-time.After(10 * time.Second):
		t.Fatal("the slow request never reached the backend")
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := <-result; !strings.HasPrefix(got, "200 ") {
		t.Fatalf("in-flight request during shutdown: %s", got)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("portico did not exit after draining")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(p.proxyURL(), "http://"), time.Second); err == nil {
		t.Error("listener still accepting after shutdown")
	}
}

// With shutdown_delay, /ready turns 503 while requests are still served; a drain that runs out
// of time cuts what is left and still exits 0.
func TestShutdownDelayAndDrainTimeout(t *testing.T) {
	blue := namedBackend(t, "blue")
	path := filepath.Join(t.TempDir(), "portico.yaml")
	writeConfig(t, path, configFor(blue.URL, blue.URL, "blue")+"server: {shutdown_delay: 700ms, shutdown_timeout: 100ms}\n")
	p := start(t, path)

	slow := make(chan error, 1)
	go func() {
		resp, err := http.Get(p.proxyURL() + "/slow") // 500ms: longer than the drain allows
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		slow <- err
	}()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { code, _, _ := get(t, p.adminURL()+"/ready"); return code == 503 }, "/ready to answer 503")
	if code, body, _ := get(t, p.proxyURL()+"/x"); code != 200 {
		t.Fatalf("during shutdown_delay the proxy answered %d %s, want it still serving", code, body)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("portico did not exit")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d after a drain that ran out of time, want 0", code)
	}
	<-slow
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// Three Portico processes sharing Redis enforce one global limit: 3x the limit sent across them,
// concurrently, lets exactly the limit through (fixed window counting is atomic in Redis).
func TestThreeInstancesShareOneRateLimitOnRedis(t *testing.T) {
	if err := exec.Command("redis-cli", "-h", "127.0.0.1", "-p", "6379", "ping").Run(); err != nil {
		t.Skip("no redis on 127.0.0.1:6379 (.ci/run starts one)")
	}
	blue := namedBackend(t, "blue")
	const limit = 30
	policy := fmt.Sprintf("global-%d", time.Now().UnixNano())
	cfg := fmt.Sprintf(`listen: "127.0.0.1:0"
admin: "127.0.0.1:0"
access_log: {enabled: false}
store: {redis: "redis://127.0.0.1:6379/0"}
upstreams:
  blue: {targets: [{url: %q}]}
policies:
  %s: {rate-limit: {strategy: fixed_window, limits: {hour: %d}, by: route, store_timeout: 2s}}
routes:
  - {name: app, match: {path_prefix: /}, upstream: blue, policies: [%s]}
`, blue.URL, policy, limit, policy)
	dir := t.TempDir()
	var urls []string
	for i := range 3 {
		path := filepath.Join(dir, fmt.Sprintf("p%d.yaml", i))
		writeConfig(t, path, cfg)
		urls = append(urls, start(t, path).proxyURL())
	}
	var allowed, limited, other atomic.Int64
	var wg sync.WaitGroup
	for i := range 3 * limit {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(urls[i%3] + "/x")
			if err != nil {
				other.Add(1)
				return
			}
			resp.Body.Close()
			switch resp.StatusCode {
			case 200:
				allowed.Add(1)
			case 429:
				limited.Add(1)
			default:
				other.Add(1)
			}
		}()
	}
	wg.Wait()
	if allowed.Load() != limit || limited.Load() != 2*limit || other.Load() != 0 {
		t.Fatalf("allowed %d, limited %d, other %d; want exactly %d allowed across three instances", allowed.Load(), limited.Load(), other.Load(), limit)
	}
}

// `make run` is the first thing a user tries: the demo must come up with its backends, BFFs,
// routes and policies.
func TestDemoServesFacadesRoutesAndPolicies(t *testing.T) {
	cmd := exec.Command(binary, "demo", "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-backends-port", "0")
	p := startCmd(t, cmd)
	base := p.proxyURL()
	for _, tc := range []struct {
		path, key string
		status    int
		contains  string
	}{
		{"/web/dashboard", "", 200, `"unreadNotifications"`},
		{"/mobile/home", "", 200, `"dashboard"`},
		{"/api/v1/users/u7", "", 200, `"id":"u7"`},
		{"/svc/payments/p1", "", 401, `"UNAUTHORIZED"`},
		{"/svc/payments/p1", "demo-key", 200, `"id":"p1"`},
		{"/anything/else", "", 200, `"source":"monolith"`},
	} {
		req, _ := http.NewRequest("GET", base+tc.path, nil)
		if tc.key != "" {
			req.Header.Set("apikey", tc.key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.contains) {
			t.Errorf("GET %s (key %q): %d %s", tc.path, tc.key, resp.StatusCode, b)
		}
		if resp.Header.Get("X-Frame-Options") == "" {
			t.Errorf("GET %s: the global security-headers policy did not apply", tc.path)
		}
	}
}
