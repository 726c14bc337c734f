// Command bench is the load scenario behind `make bench`: the same backend measured directly and
// through a real Portico process, in alternating rounds within one run, printing req/s, p50 and
// p99 for each and the ratio, then the BFF scenarios with Portico's CPU per request. Alternating
// rounds and medians keep a noisy shared machine from favouring either side. The load comes from
// wrk when it is installed (-loader), else from the Go generator in this process; the demo
// backends run in a child process. Only loopback traffic; everything it starts it stops.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/portico-gw/portico/testing/demo"
	"github.com/portico-gw/portico/testing/load"
)

func main() {
	rounds := flag.Int("rounds", 3, "alternating rounds per scenario")
	dur := flag.Duration("duration", 5*time.Second, "length of one round (whole seconds with wrk)")
	conns := flag.Int("conns", 64, "keep-alive connections")
	loader := flag.String("loader", loaderAuto, "load generator: auto (wrk when installed and working, else Go), wrk, or go (testing/load)")
	scenarios := flag.String("scenarios", "all", "which scenarios: all, passthrough or bff")
	serve := flag.Bool("serve-backends", false, "internal: serve the demo backends for a parent bench process (see backends.go)")
	serveYard := flag.Bool("serve-yardsticks", false, "internal: serve the yardsticks for a parent bench process (see yardsticks.go)")
	flag.StringVar(&profileDir, "profile", "", "write CPU profiles of the Portico processes (passthrough.prof, bff.prof) and of the demo backends (backends.prof) to this directory")
	flag.Parse()
	if *serve {
		if err := serveBackendsProfiled(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "bench backends:", err)
			os.Exit(1)
		}
		return
	}
	if *serveYard {
		if err := serveYardsticks(context.Background(), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "bench yardsticks:", err)
			os.Exit(1)
		}
		return
	}
	var err error
	if profileDir != "" {
		err = os.MkdirAll(profileDir, 0o755)
	}
	var gen *generator
	if err == nil {
		gen, err = newGenerator(*loader, load.LookupWrk, os.Stdout)
	}
	if err == nil {
		err = run(gen, *scenarios, *rounds, *dur, *conns)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// profileDir, when set, makes each Portico process write a CPU profile there.
var profileDir string

// porticoProcess is a gateway started by startPortico.
type porticoProcess struct{ cmd *exec.Cmd }

// startPortico runs the gateway on cfg; Stop ends it with SIGINT so that a profile gets written.
func startPortico(bin, cfg, name string) (*porticoProcess, error) {
	args := []string{"run", "-config", cfg, "-log-level", "warn"}
	if profileDir != "" {
		args = append(args, "-cpuprofile", filepath.Join(profileDir, name+".prof"))
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &porticoProcess{cmd: cmd}, nil
}

// Pid is the gateway's process ID, for CPU accounting.
func (p *porticoProcess) Pid() int { return p.cmd.Process.Pid }

// Stop interrupts the gateway and waits for it, killing it after 5s.
func (p *porticoProcess) Stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _, _ = p.cmd.Process.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

func run(gen *generator, scenarios string, rounds int, dur time.Duration, conns int) error {
	if scenarios != "all" && scenarios != "passthrough" && scenarios != "bff" {
		return fmt.Errorf("-scenarios %q: want all, passthrough or bff", scenarios)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := os.MkdirTemp("", "portico-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	backends, err := startBackends()
	if err != nil {
		return err
	}
	defer backends.Close()
	yard, err := startYardsticks(yardstickTargets{Bench: backends.Bench, Users: backends.Services[demo.NameUsers],
		Orders: backends.Services[demo.NameOrders], Notifications: backends.Services[demo.NameNotifications]})
	if err != nil {
		return err
	}
	defer yard.Close()

	bin := filepath.Join(dir, "portico")
	build := exec.Command("go", "build", "-o", bin, "./cmd/portico")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building portico: %w", err)
	}
	fmt.Printf("load generator: %s; demo backends and yardsticks: processes of their own; %d CPUs\n", gen, runtime.NumCPU())
	if scenarios != "bff" {
		if err := passthroughScenarios(ctx, gen, dir, bin, backends.Bench, yard, rounds, conns, dur); err != nil {
			return err
		}
	}
	if scenarios != "passthrough" {
		return bffScenarios(ctx, gen, dir, bin, backends, yard, rounds, conns, dur)
	}
	return nil
}

// passthroughScenarios compares the benchmark backend direct, through Portico (uncached and as a
// response-cache hit) and through the reverse-proxy yardstick.
func passthroughScenarios(ctx context.Context, gen *generator, dir, bin, backendURL string, yard *yardstickProcess, rounds, conns int, dur time.Duration) error {
	backendAddr := strings.TrimPrefix(backendURL, "http://")
	proxyAddr, err := freeAddr()
	if err != nil {
		return err
	}
	cfg := filepath.Join(dir, "portico.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: %q
admin: "off"
access_log: {enabled: false}
upstreams:
  backend: {targets: [{url: "http://%s"}]}
policies:
  hit: {cache: {ttl: 1h}}
routes:
  - {name: cached, match: {path_prefix: /cached}, upstream: backend, strip_prefix: /cached, policies: [hit]}
  - {name: all, match: {path_prefix: /}, upstream: backend}
`, proxyAddr, backendAddr)), 0o644); err != nil {
		return err
	}
	proc, err := startPortico(bin, cfg, "passthrough")
	if err != nil {
		return err
	}
	defer proc.Stop()
	if err := waitUp("http://" + proxyAddr + "/"); err != nil {
		return err
	}
	fmt.Printf("pass-through and cache hit: %d connections, keep-alive, ~1 KiB JSON, %d rounds of %s, alternating\n", conns, rounds, dur)
	med, err := compare(ctx, gen, rounds, []target{
		{"direct", "http://" + backendAddr + "/"},
		{"portico", "http://" + proxyAddr + "/"},
		// A response-cache hit: Portico answers without calling the backend at all.
		{"cache-hit", "http://" + proxyAddr + "/cached/"},
		{"reverseproxy", yard.ReverseProxy + "/"},
		{"floor", yard.Floor + "/"},
	}, conns, dur)
	if err == nil {
		fmt.Printf("ratio portico/reverseproxy = %.2f   (reverseproxy: a bare httputil.ReverseProxy, the Go yardstick)\n", med[1]/med[3])
		fmt.Printf("ratio portico/floor = %.2f          (floor: hand-parsed HTTP/1.1, no net/http, no gateway: what Go forwards here now)\n", med[1]/med[4])
	}
	return err
}

// bffScenarios measures the GraphQL facade: the dashboard fan-out over three backends that each
// answer in 20ms (its overhead is the latency above the slowest backend's), the REST dashboard
// (which adds a batched payments call after orders), and a small query against instant backends.
// Beside latency it reports Portico's CPU per request and the cores each process kept busy, so
// that a saturated machine shows as such instead of as gateway overhead.
func bffScenarios(ctx context.Context, gen *generator, dir, bin string, backends *backendProcess, yard *yardstickProcess, rounds, conns int, dur time.Duration) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	cfg := filepath.Join(dir, "bff.yaml")
	var ups strings.Builder
	for _, name := range demo.Names {
		fmt.Fprintf(&ups, "  %s: {targets: [{url: %q}], timeouts: {total: 5s}}\n", name, backends.Services[name])
	}
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: %q
admin: "off"
access_log: {enabled: false}
upstreams:
%sbffs:
  web:
    path: /web
    rest: [{method: GET, path: /dashboard, operation: Dashboard}]
`, addr, ups.String())), 0o644); err != nil {
		return err
	}
	proc, err := startPortico(bin, cfg, "bff")
	if err != nil {
		return err
	}
	defer proc.Stop()
	if err := waitUp("http://" + addr + "/web/openapi.json"); err != nil {
		return err
	}
	gql := func(query string) load.Options {
		body, _ := json.Marshal(map[string]string{"query": query})
		return load.Options{URL: "http://" + addr + "/web/graphql", Method: "POST", Body: body,
			Header: http.Header{"Content-Type": {"application/json"}}, Connections: conns, Duration: dur, Warmup: 500 * time.Millisecond}
	}
	const backendLatency = 20 * time.Millisecond
	scenarios := []struct {
		name  string
		opts  load.Options
		floor time.Duration // the slowest backend path: what the answer cannot beat; 0 for none
		pid   int           // the process whose CPU the row reports: Portico, or the yardstick
	}{
		// Not Portico: the floor as measured. A 20ms backend answers a little later than 20ms
		// under load (timers, scheduling), and the dashboard waits for the slowest of three.
		{"users backend alone, direct, no Portico (the floor as measured)",
			load.Options{URL: backends.Services[demo.NameUsers] + "/users/current", Connections: conns, Duration: dur, Warmup: 500 * time.Millisecond}, backendLatency, proc.Pid()},
		// Not Portico either: the same three calls from a bare net/http aggregator, the floor for
		// the dashboard row below under this run's load (yardsticks.go).
		{"yardstick: the dashboard's 3 calls, bare net/http, no GraphQL",
			load.Options{URL: yard.Fanout + "/", Method: "POST", Body: []byte(`{}`), Connections: conns, Duration: dur, Warmup: 500 * time.Millisecond}, backendLatency, yard.Pid()},
		{"graphql dashboard (users, orders, notifications at 20ms, concurrent)",
			gql(`{ dashboard { me { id name email tier } recentOrders(first: 5) { id status totalCents currency createdAt } unreadNotifications } }`), backendLatency, proc.Pid()},
		{"REST GET /web/dashboard (same, plus batched payments after orders)",
			load.Options{URL: "http://" + addr + "/web/dashboard", Connections: conns, Duration: dur, Warmup: 500 * time.Millisecond}, 2 * backendLatency, proc.Pid()},
		{"graphql small query { me { id name } }, instant backend", gql(`{ me { id name } }`), 0, proc.Pid()},
	}
	fmt.Printf("\nBFF facade: %d connections, keep-alive, each backend answers in %s (the small query: at once); medians of %d rounds\n", conns, backendLatency, rounds)
	results := make([][]load.Result, len(scenarios))
	figures := make([][]cpuFigures, len(scenarios))
	for r := 0; r < rounds; r++ {
		if err := backends.SetLatency(backendLatency); err != nil {
			return err
		}
		for i, sc := range scenarios {
			if sc.floor == 0 {
				if err := backends.SetLatency(0); err != nil {
					return err
				}
			}
			res, use, err := measure(ctx, gen, sc.opts, sc.pid, backends.Pid())
			if err != nil {
				return err
			}
			if res.Errors > 0 || res.Non2xx > 0 {
				fmt.Printf("  round %d %s: %d errors, %d non-2xx\n", r+1, sc.name, res.Errors, res.Non2xx)
			}
			results[i], figures[i] = append(results[i], res), append(figures[i], use.figures())
		}
	}
	fmt.Printf("%-72s %10s %9s %9s %14s %14s %12s %16s   %s\n", "scenario", "req/s", "p50", "p99", "p50-overhead", "p99-overhead", "gateway-cpu", "cores P/B/L", "req/s per round")
	for i, sc := range scenarios {
		rps, p50, p99, per := summarize(results[i])
		p50o, p99o := "", ""
		if sc.floor > 0 {
			p50o, p99o = round(p50-sc.floor).String(), round(p99-sc.floor).String()
		}
		cpu := medianFigures(figures[i])
		fmt.Printf("%-72s %10.0f %9s %9s %14s %14s %12s %16s   %s\n", sc.name, rps, round(p50), round(p99), p50o, p99o,
			cpu.perRequestString(), cpu.coresString(), per)
	}
	fmt.Println("gateway-cpu: CPU time per answered request of Portico (of the yardstick process on its row); cores P/B/L: cores kept busy by that process, the demo backends and the load generator")
	return nil
}

// measure warms up (unmeasured), then runs o and samples the CPU time of the processes involved
// around the measured run only.
func measure(ctx context.Context, gen *generator, o load.Options, gatewayPid, backendsPid int) (load.Result, cpuUse, error) {
	if o.Warmup > 0 {
		warm := o
		warm.Duration, warm.Warmup = o.Warmup, 0
		if _, err := gen.run(ctx, warm); err != nil {
			return load.Result{}, cpuUse{}, err
		}
		o.Warmup = 0
	}
	before := sampleCPU(gatewayPid, backendsPid)
	res, err := gen.run(ctx, o)
	if err != nil {
		return res, cpuUse{}, err
	}
	after := sampleCPU(gatewayPid, backendsPid)
	return res, after.use(before, res.LoaderCPU, res.Elapsed, res.Requests), nil
}

func round(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }

type target struct{ name, url string }

// compare measures the targets in alternating rounds, prints the table and each target's ratio to
// the first, and returns the median req/s of each.
func compare(ctx context.Context, gen *generator, rounds int, targets []target, conns int, dur time.Duration) ([]float64, error) {
	results := make([][]load.Result, len(targets))
	for r := 0; r < rounds; r++ {
		for i, tg := range targets {
			res, err := gen.run(ctx, load.Options{URL: tg.url, Connections: conns, Duration: dur, Warmup: 500 * time.Millisecond})
			if err != nil {
				return nil, fmt.Errorf("%s: %w", tg.name, err)
			}
			if res.Errors > 0 || res.Non2xx > 0 {
				fmt.Printf("  round %d %s: %d errors, %d non-2xx\n", r+1, tg.name, res.Errors, res.Non2xx)
			}
			results[i] = append(results[i], res)
		}
	}
	fmt.Printf("%-12s %12s %10s %10s   %s\n", "target", "req/s(med)", "p50(med)", "p99(med)", "req/s per round")
	med := make([]float64, len(targets))
	for i, tg := range targets {
		var p50, p99 time.Duration
		var per string
		med[i], p50, p99, per = summarize(results[i])
		fmt.Printf("%-12s %12.0f %10s %10s   %s\n", tg.name, med[i], p50, p99, per)
	}
	for i := 1; i < len(targets); i++ {
		fmt.Printf("ratio %s/%s = %.2f\n", targets[i].name, targets[0].name, med[i]/med[0])
	}
	return med, nil
}

// summarize is one target's rounds: the medians of req/s, p50 and p99, and each round's req/s.
func summarize(rounds []load.Result) (rps float64, p50, p99 time.Duration, perRound string) {
	var r []float64
	var p50s, p99s []time.Duration
	var per []string
	for _, res := range rounds {
		r, p50s, p99s = append(r, res.RPS), append(p50s, res.P50), append(p99s, res.P99)
		per = append(per, fmt.Sprintf("%.0f", res.RPS))
	}
	return median(r), medianDur(p50s), medianDur(p99s), strings.Join(per, " ")
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianDur(v []time.Duration) time.Duration {
	f := make([]float64, len(v))
	for i, d := range v {
		f[i] = float64(d)
	}
	return time.Duration(median(f)).Round(time.Microsecond)
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func waitUp(url string) error {
	for i := 0; i < 100; i++ {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("portico did not answer at %s", url)
}
