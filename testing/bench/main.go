// Command bench is the load scenario behind `make bench`: the same backend measured directly and
// through a real Portico process, in alternating rounds within one run, printing req/s, p50 and
// p99 for each and the ratio. Alternating rounds and medians keep a noisy shared machine from
// favouring either side. Only loopback traffic; everything it starts it stops.
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
	"sort"
	"strings"
	"time"

	"github.com/portico-gw/portico/testing/demo"
	"github.com/portico-gw/portico/testing/load"
)

func main() {
	rounds := flag.Int("rounds", 3, "alternating rounds per scenario")
	dur := flag.Duration("duration", 5*time.Second, "length of one round")
	conns := flag.Int("conns", 64, "keep-alive connections")
	flag.StringVar(&profileDir, "profile", "", "write CPU profiles of the Portico processes to this directory (passthrough.prof, bff.prof)")
	flag.Parse()
	if err := run(*rounds, *dur, *conns); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// profileDir, when set, makes each Portico process write a CPU profile there.
var profileDir string

// startPortico runs the gateway on cfg; stop ends it with SIGINT so that a profile gets written.
func startPortico(bin, cfg, name string) (stop func(), err error) {
	args := []string{"run", "-config", cfg, "-log-level", "warn"}
	if profileDir != "" {
		args = append(args, "-cpuprofile", filepath.Join(profileDir, name+".prof"))
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _, _ = cmd.Process.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}, nil
}

func run(rounds int, dur time.Duration, conns int) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := os.MkdirTemp("", "portico-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	backendAddr, stopBackend, err := serve(demo.NewBench())
	if err != nil {
		return err
	}
	defer stopBackend()

	bin := filepath.Join(dir, "portico")
	build := exec.Command("go", "build", "-o", bin, "./cmd/portico")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building portico: %w", err)
	}
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
	stop, err := startPortico(bin, cfg, "passthrough")
	if err != nil {
		return err
	}
	if err := waitUp("http://" + proxyAddr + "/"); err != nil {
		stop()
		return err
	}

	fmt.Printf("pass-through and cache hit: %d connections, keep-alive, ~1 KiB JSON, %d rounds of %s, alternating\n", conns, rounds, dur)
	if err := compare(ctx, rounds, []target{
		{"direct", "http://" + backendAddr + "/"},
		{"portico", "http://" + proxyAddr + "/"},
		// A response-cache hit: Portico answers without calling the backend at all.
		{"cache-hit", "http://" + proxyAddr + "/cached/"},
	}, conns, dur); err != nil {
		stop()
		return err
	}
	stop()
	return bffScenarios(ctx, dir, bin, conns, dur)
}

// bffScenarios measures the GraphQL facade: the dashboard fan-out over three backends that each
// answer in 20ms (its overhead is the latency above the slowest backend's), the REST dashboard
// (which adds a batched payments call after orders), and a small query against instant backends.
func bffScenarios(ctx context.Context, dir, bin string, conns int, dur time.Duration) error {
	cluster, err := demo.StartAll(ctx, "127.0.0.1", 0)
	if err != nil {
		return err
	}
	defer cluster.Close()
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	cfg := filepath.Join(dir, "bff.yaml")
	var ups strings.Builder
	for _, name := range demo.Names {
		fmt.Fprintf(&ups, "  %s: {targets: [{url: %q}], timeouts: {total: 5s}}\n", name, cluster.URL(name))
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
	stop, err := startPortico(bin, cfg, "bff")
	if err != nil {
		return err
	}
	defer stop()
	if err := waitUp("http://" + addr + "/web/openapi.json"); err != nil {
		return err
	}
	gql := func(query string) load.Options {
		body, _ := json.Marshal(map[string]string{"query": query})
		return load.Options{URL: "http://" + addr + "/web/graphql", Method: "POST", Body: body,
			Header: http.Header{"Content-Type": {"application/json"}}, Connections: conns, Duration: dur, Warmup: 500 * time.Millisecond}
	}
	const backendLatency = 20 * time.Millisecond
	for _, name := range []string{demo.NameUsers, demo.NameOrders, demo.NameNotifications, demo.NamePayments} {
		if err := cluster.Service(name).Behavior.SetLatency(backendLatency); err != nil {
			return err
		}
	}
	scenarios := []struct {
		name  string
		opts  load.Options
		floor time.Duration // the slowest backend path: what the answer cannot beat
	}{
		{"graphql dashboard (users, orders, notifications at 20ms, concurrent)",
			gql(`{ dashboard { me { id name email tier } recentOrders(first: 5) { id status totalCents currency createdAt } unreadNotifications } }`), backendLatency},
		{"REST GET /web/dashboard (same, plus batched payments after orders)",
			load.Options{URL: "http://" + addr + "/web/dashboard", Connections: conns, Duration: dur, Warmup: 500 * time.Millisecond}, 2 * backendLatency},
	}
	fmt.Printf("\nBFF facade: %d connections, keep-alive, each backend answers in %s\n", conns, backendLatency)
	fmt.Printf("%-72s %10s %9s %9s %14s %14s\n", "scenario", "req/s", "p50", "p99", "p50-overhead", "p99-overhead")
	for _, sc := range scenarios {
		res, err := load.Run(ctx, sc.opts)
		if err != nil {
			return err
		}
		if res.Errors > 0 || res.Non2xx > 0 {
			fmt.Printf("  %s: %d errors, %d non-2xx\n", sc.name, res.Errors, res.Non2xx)
		}
		fmt.Printf("%-72s %10.0f %9s %9s %14s %14s\n", sc.name, res.RPS, round(res.P50), round(res.P99), round(res.P50-sc.floor), round(res.P99-sc.floor))
	}
	for _, name := range demo.Names {
		_ = cluster.Service(name).Behavior.SetLatency(0)
	}
	res, err := load.Run(ctx, gql(`{ me { id name } }`))
	if err != nil {
		return err
	}
	fmt.Printf("%-72s %10.0f %9s %9s\n", "graphql small query { me { id name } }, instant backend", res.RPS, round(res.P50), round(res.P99))
	return nil
}

func round(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }

type target struct{ name, url string }

func compare(ctx context.Context, rounds int, targets []target, conns int, dur time.Duration) error {
	results := make([][]load.Result, len(targets))
	for r := 0; r < rounds; r++ {
		for i, tg := range targets {
			res, err := load.Run(ctx, load.Options{URL: tg.url, Connections: conns, Duration: dur, Warmup: 500 * time.Millisecond})
			if err != nil {
				return fmt.Errorf("%s: %w", tg.name, err)
			}
			if res.Errors > 0 || res.Non2xx > 0 {
				fmt.Printf("  round %d %s: %d errors, %d non-2xx\n", r+1, tg.name, res.Errors, res.Non2xx)
			}
			results[i] = append(results[i], res)
		}
	}
	fmt.Printf("%-10s %12s %10s %10s   %s\n", "target", "req/s(med)", "p50(med)", "p99(med)", "req/s per round")
	med := make([]float64, len(targets))
	for i, tg := range targets {
		var rps []float64
		var p50, p99 []time.Duration
		var per []string
		for _, r := range results[i] {
			rps, p50, p99 = append(rps, r.RPS), append(p50, r.P50), append(p99, r.P99)
			per = append(per, fmt.Sprintf("%.0f", r.RPS))
		}
		med[i] = median(rps)
		fmt.Printf("%-10s %12.0f %10s %10s   %s\n", tg.name, med[i], medianDur(p50), medianDur(p99), strings.Join(per, " "))
	}
	for i := 1; i < len(targets); i++ {
		fmt.Printf("ratio %s/%s = %.2f\n", targets[i].name, targets[0].name, med[i]/med[0])
	}
	return nil
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

func serve(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() { _ = srv.Close() }, nil
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
