package upstreams

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// healthBackend answers /health with 200 or 503 by its switch, and 200 "work" elsewhere.
type healthBackend struct {
	*httptest.Server
	up     atomic.Bool
	probes atomic.Int64
	badUA  atomic.Bool
}

func newHealthBackend(t *testing.T) *healthBackend {
	b := &healthBackend{}
	b.up.Store(true)
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			_, _ = w.Write([]byte("work"))
			return
		}
		b.probes.Add(1)
		if r.Method != http.MethodGet || r.Header.Get("User-Agent") != healthUserAgent {
			b.badUA.Store(true)
		}
		if !b.up.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(b.Close)
	return b
}

func TestActiveHealthFlipsAndRecovers(t *testing.T) {
	b := newHealthBackend(t)
	promReg := prometheus.NewRegistry()
	reg, u := newTestRegistry(t, Config{
		Targets: targetsOf(b.URL),
		Health: HealthConfig{Active: &ActiveHealthConfig{
			Path: "/health", Interval: dur(15 * time.Millisecond), Timeout: dur(500 * time.Millisecond),
			HealthySuccesses: 2, UnhealthyFailures: 2,
		}},
	}, Options{Metrics: NewMetrics(promReg)})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg.Start(ctx)

	healthy := func() bool { return reg.Status()[0].Targets[0].Healthy }
	gauge := func() float64 { return metricValue(t, promReg, "portico_upstream_healthy", "target", b.URL) }
	waitFor(t, "a first probe", func() bool { return b.probes.Load() > 0 })
	if !healthy() || gauge() != 1 {
		t.Fatalf("target starts unhealthy: healthy=%v gauge=%v", healthy(), gauge())
	}

	b.up.Store(false)
	waitFor(t, "the target to turn unhealthy", func() bool { return !healthy() })
	if g := gauge(); g != 0 {
		t.Errorf("gauge %v for an unhealthy target, want 0", g)
	}
	start := time.Now()
	if _, err := get(t, u, "1"); !errors.Is(err, ErrNoHealthyTarget) {
		t.Fatalf("err = %v with the only target unhealthy, want no healthy target", err)
	}
	if el := time.Since(start); el > 500*time.Millisecond {
		t.Errorf("failing took %v, want at once", el)
	}

	b.up.Store(true)
	waitFor(t, "the target to recover", healthy)
	if g := gauge(); g != 1 {
		t.Errorf("gauge %v after recovery, want 1", g)
	}
	resp, err := get(t, u, "2")
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); body != "work" {
		t.Errorf("body %q", body)
	}
	if b.badUA.Load() {
		t.Error("a probe was not a GET with the health-check User-Agent")
	}
}

func TestHealthChecksStopAtClose(t *testing.T) {
	b := newHealthBackend(t)
	reg, err := NewRegistry(map[string]Config{"svc": {
		Targets: targetsOf(b.URL),
		Health:  HealthConfig{Active: &ActiveHealthConfig{Interval: dur(10 * time.Millisecond)}},
	}}, Options{Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	reg.Start(context.Background())
	reg.Start(context.Background()) // a second Start must not double the probes
	waitFor(t, "probes", func() bool { return b.probes.Load() >= 3 })
	reg.Close()
	reg.Close()
	// A probe already written when Close cancelled it may still reach the handler afterwards,
	// whenever a loaded machine schedules the server's goroutine: one such straggler is not a
	// probe after Close. Probes every 10ms would show as several.
	after := b.probes.Load()
	time.Sleep(60 * time.Millisecond)
	if n := b.probes.Load() - after; n > 1 {
		t.Errorf("%d probes after Close, want none", n)
	}
	reg.Start(context.Background())
	time.Sleep(30 * time.Millisecond)
	if n := b.probes.Load() - after; n > 1 {
		t.Errorf("Start after Close probed again (%d probes since Close)", n)
	}
}

func TestHealthChecksStopWithContext(t *testing.T) {
	b := newHealthBackend(t)
	reg, _ := newTestRegistry(t, Config{
		Targets: targetsOf(b.URL),
		Health:  HealthConfig{Active: &ActiveHealthConfig{Interval: dur(10 * time.Millisecond)}},
	})
	ctx, cancel := context.WithCancel(context.Background())
	reg.Start(ctx)
	waitFor(t, "probes", func() bool { return b.probes.Load() >= 2 })
	cancel()
	reg.wg.Wait()
}

func TestStatusJSON(t *testing.T) {
	srv := recordingBackend(t, "a", &hitLog{}, fixed(200))
	reg, err := NewRegistry(map[string]Config{
		"users":  {Targets: []TargetConfig{{URL: srv.URL, Weight: intp(50)}, {URL: "http://127.0.0.1:1"}}, Balancer: "least_connections"},
		"orders": {Targets: targetsOf(srv.URL), CircuitBreaker: &BreakerConfig{}},
	}, Options{Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if got := strings.Join(reg.Names(), ","); got != "orders,users" {
		t.Errorf("names %s, want sorted", got)
	}
	if _, ok := reg.Get("nope"); ok {
		t.Error("Get of an unknown name succeeded")
	}
	b, err := json.Marshal(reg.Status())
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"name":"orders","balancer":"round_robin","breaker":"closed","targets":[{"url":"` + srv.URL + `","weight":100,"healthy":true,"active_requests":0}]},` +
		`{"name":"users","balancer":"least_connections","targets":[{"url":"` + srv.URL + `","weight":50,"healthy":true,"active_requests":0},{"url":"http://127.0.0.1:1","weight":100,"healthy":true,"active_requests":0}]}]`
	if string(b) != want {
		t.Errorf("status\n got %s\nwant %s", b, want)
	}
}

// Under max_conns_per_target, probes have connections of their own: a busy target whose every
// allowed connection carries a long answer is still healthy, and must stay in rotation.
func TestProbesDoNotQueueBehindConnectionCap(t *testing.T) {
	release := make(chan struct{})
	var probes atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/long" {
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		probes.Add(1)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	reg, u := newTestRegistry(t, Config{
		Targets:           targetsOf(srv.URL),
		MaxConnsPerTarget: 1,
		Health: HealthConfig{Active: &ActiveHealthConfig{
			Path: "/health", Interval: dur(30 * time.Millisecond), Timeout: dur(25 * time.Millisecond), UnhealthyFailures: 2,
		}},
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := u.RoundTrip(httptest.NewRequest(http.MethodGet, "http://client.example/long", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	reg.Start(ctx)
	waitFor(t, "five probes answered", func() bool { return probes.Load() >= 5 })
	if st := reg.Status()[0].Targets[0]; !st.Healthy {
		t.Errorf("a target answering every probe was marked unhealthy while its one allowed connection was busy: %+v", st)
	}
}
