package upstreams

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// reload builds the registry that replaces prev with cfgs, as a config reload does, and closes
// it with the test. It is not started, so no probe changes what it carried.
func reload(t *testing.T, prev *Registry, m *Metrics, cfg Config) *Registry {
	t.Helper()
	reg, err := NewRegistry(map[string]Config{"svc": cfg}, Options{Logger: quietLogger, Metrics: m, Previous: prev})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	return reg
}

func TestReloadCarriesPassiveEjection(t *testing.T) {
	log := &hitLog{}
	var failing atomic.Bool
	failing.Store(true)
	flaky := recordingBackend(t, "flaky", log, func() int {
		if failing.Load() {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	good := recordingBackend(t, "good", log, fixed(http.StatusOK))
	cfg := Config{
		Targets: targetsOf(flaky.URL, good.URL),
		Retries: RetryConfig{Attempts: intp(0)},
		Health:  HealthConfig{Passive: &PassiveHealthConfig{ConsecutiveFailures: 1, EjectFor: dur(400 * time.Millisecond)}},
	}
	promReg := prometheus.NewRegistry()
	m := NewMetrics(promReg)
	old, u := newTestRegistry(t, cfg, Options{Metrics: m})
	resp, err := get(t, u, "0") // round robin: the first call goes to flaky, which is ejected
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	was := old.Status()[0].Targets[0]
	if was.EjectedUntil == nil {
		t.Fatalf("flaky target status %+v, want ejected", was)
	}

	reg := reload(t, old, m, cfg)
	old.Close()
	old.ForgetMetrics(reg)
	st := reg.Status()[0].Targets[0]
	// Status shows the monotonic instant on today's wall clock, to within a clock read.
	if st.Healthy || st.EjectedUntil == nil || st.EjectedUntil.Sub(*was.EjectedUntil).Abs() > time.Millisecond {
		t.Fatalf("after the reload flaky is %+v, want ejected until %v", st, was.EjectedUntil)
	}
	if g := metricValue(t, promReg, "portico_upstream_healthy", "target", flaky.URL); g != 0 {
		t.Errorf("healthy gauge %v for the carried ejection, want 0", g)
	}
	nu, _ := reg.Get("svc")
	for i := range 4 {
		resp, err := get(t, nu, "after")
		if err != nil {
			t.Fatal(err)
		}
		if body := readAll(t, resp); body != "good" {
			t.Fatalf("call %d after the reload went to the ejected target", i)
		}
	}

	failing.Store(false)
	waitFor(t, "the target back in rotation", nu.targets[0].inRotation.Load)
	back := time.Now()
	if back.Before(*was.EjectedUntil) {
		t.Errorf("back in rotation %v before the ejection ends", was.EjectedUntil.Sub(back))
	}
	if late := back.Sub(*was.EjectedUntil); late > 200*time.Millisecond {
		t.Errorf("back in rotation %v after the ejection ends", late)
	}
	if g := metricValue(t, promReg, "portico_upstream_healthy", "target", flaky.URL); g != 1 {
		t.Errorf("healthy gauge %v after the ejection, want 1", g)
	}
}

func TestReloadShortensCarriedEjection(t *testing.T) {
	srv := recordingBackend(t, "a", &hitLog{}, fixed(http.StatusBadGateway))
	cfg := Config{
		Targets: targetsOf(srv.URL),
		Retries: RetryConfig{Attempts: intp(0)},
		Health:  HealthConfig{Passive: &PassiveHealthConfig{ConsecutiveFailures: 1, EjectFor: dur(time.Hour)}},
	}
	old, u := newTestRegistry(t, cfg)
	resp, err := get(t, u, "0")
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	cfg.Health.Passive.EjectFor = dur(50 * time.Millisecond)
	reg := reload(t, old, nil, cfg)
	if st := reg.Status()[0].Targets[0]; st.EjectedUntil == nil || time.Until(*st.EjectedUntil) > time.Second {
		t.Fatalf("status %+v, want an ejection cut to the new eject_for", st)
	}
	nu, _ := reg.Get("svc")
	waitFor(t, "the target back in rotation", nu.targets[0].inRotation.Load)

	// Without passive checks in the new config nothing is ejected.
	resp, err = get(t, nu, "1")
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	cfg.Health.Passive = nil
	if st := reload(t, reg, nil, cfg).Status()[0].Targets[0]; !st.Healthy || st.EjectedUntil != nil {
		t.Errorf("status %+v without passive checks, want healthy", st)
	}
}

func TestReloadCarriesActiveVerdictOnlyToTheSameChecks(t *testing.T) {
	dead, fresh := newHealthBackend(t), newHealthBackend(t)
	dead.up.Store(false)
	active := func(path string) *ActiveHealthConfig {
		return &ActiveHealthConfig{Path: path, Interval: dur(10 * time.Millisecond), UnhealthyFailures: 1}
	}
	cfg := Config{Targets: targetsOf(dead.URL), Health: HealthConfig{Active: active("/health")}}
	promReg := prometheus.NewRegistry()
	m := NewMetrics(promReg)
	old, _ := newTestRegistry(t, cfg, Options{Metrics: m})
	old.Start(context.Background())
	waitFor(t, "the target to turn unhealthy", func() bool { return !old.Status()[0].Targets[0].Healthy })
	old.Close() // its probes must not write the gauge while this test reads it

	gauge := func(url string) float64 {
		return metricValue(t, promReg, "portico_upstream_healthy", "target", url)
	}
	// The same checks, and a new target beside the old one.
	cfg.Targets = targetsOf(dead.URL, fresh.URL)
	st := reload(t, old, m, cfg).Status()[0].Targets
	if st[0].Healthy || gauge(dead.URL) != 0 {
		t.Errorf("the dead target is healthy (gauge %v) after a reload with the same checks", gauge(dead.URL))
	}
	if !st[1].Healthy || gauge(fresh.URL) != 1 {
		t.Errorf("the new target starts unhealthy (gauge %v)", gauge(fresh.URL))
	}

	for name, h := range map[string]HealthConfig{
		"another path":     {Active: active("/ready")},
		"no active checks": {},
	} {
		cfg.Health = h
		if st := reload(t, old, m, cfg).Status()[0].Targets[0]; !st.Healthy || gauge(dead.URL) != 1 {
			t.Errorf("with %s the old verdict was carried: healthy %v, gauge %v", name, st.Healthy, gauge(dead.URL))
		}
	}
	cfg.Health = HealthConfig{Active: active("/health")}
	cfg.Targets = targetsOf(fresh.URL)
	if st := reload(t, old, m, cfg).Status()[0].Targets; len(st) != 1 || !st[0].Healthy {
		t.Errorf("with the dead target removed: %+v", st)
	}
}

// An open circuit stays open across a reload that keeps its settings, and keeps reporting to the
// gauge after the old registry is gone; changed settings start a closed breaker.
func TestReloadCarriesBreakerWithSameSettings(t *testing.T) {
	log := &hitLog{}
	var status atomic.Int64
	status.Store(http.StatusInternalServerError)
	srv := recordingBackend(t, "svc", log, func() int { return int(status.Load()) })
	cfg := Config{
		Targets:        targetsOf(srv.URL),
		Retries:        RetryConfig{Attempts: intp(0)},
		CircuitBreaker: &BreakerConfig{MinRequests: 2, OpenFor: dur(300 * time.Millisecond)},
	}
	promReg := prometheus.NewRegistry()
	m := NewMetrics(promReg)
	old, u := newTestRegistry(t, cfg, Options{Metrics: m})
	openBreaker(t, old, u)

	reg := reload(t, old, m, cfg)
	old.Close()
	old.ForgetMetrics(reg)
	if st := reg.Status()[0].Breaker; st != "open" {
		t.Fatalf("breaker %q after a reload with the same settings, want open", st)
	}
	if g := metricValue(t, promReg, "portico_upstream_breaker_state", "upstream", "svc"); g != 2 {
		t.Errorf("breaker gauge %v after the reload, want 2 (open)", g)
	}
	nu, _ := reg.Get("svc")
	hits := len(log.all())
	if _, err := get(t, nu, "x"); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("err = %v, want circuit open", err)
	}
	if len(log.all()) != hits {
		t.Error("an open circuit carried by a reload let a call through")
	}
	// The carried breaker reports to the new registry: half-open, then closed on a good probe.
	status.Store(http.StatusOK)
	waitFor(t, "half-open", func() bool { return reg.Status()[0].Breaker == "half-open" })
	resp, err := get(t, nu, "x")
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if g := metricValue(t, promReg, "portico_upstream_breaker_state", "upstream", "svc"); reg.Status()[0].Breaker != "closed" || g != 0 {
		t.Errorf("after a good half-open call: breaker %q, gauge %v; want closed, 0", reg.Status()[0].Breaker, g)
	}

	// Trip it again, then reload with other settings: a fresh, closed breaker.
	status.Store(http.StatusInternalServerError)
	for range 2 {
		resp, err := get(t, nu, "x")
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
	}
	changed := cfg
	changed.CircuitBreaker = &BreakerConfig{MinRequests: 3, OpenFor: dur(300 * time.Millisecond)}
	next := reload(t, reg, m, changed)
	if st := next.Status()[0].Breaker; st != "closed" {
		t.Errorf("breaker %q after a reload that changed its settings, want closed", st)
	}
}

// A reload that points an upstream at new targets (the usual fix for a dead backend) must not
// inherit the circuit the targets it replaced opened.
func TestReloadDoesNotCarryBreakerToNewTargets(t *testing.T) {
	bad := recordingBackend(t, "bad", &hitLog{}, fixed(http.StatusInternalServerError))
	good := recordingBackend(t, "good", &hitLog{}, fixed(http.StatusOK))
	cfg := Config{
		Targets:        targetsOf(bad.URL),
		Retries:        RetryConfig{Attempts: intp(0)},
		CircuitBreaker: &BreakerConfig{MinRequests: 2, FailureRatio: 0.5, OpenFor: dur(time.Minute)},
	}
	old, u := newTestRegistry(t, cfg)
	openBreaker(t, old, u)
	moved := cfg
	moved.Targets = targetsOf(good.URL)
	reg := reload(t, old, nil, moved)
	if st := reg.Status()[0].Breaker; st != "closed" {
		t.Fatalf("breaker %q after a reload to new targets, want closed", st)
	}
	nu, _ := reg.Get("svc")
	resp, err := get(t, nu, "y")
	if err != nil {
		t.Fatalf("new, healthy targets refused by the replaced targets' open circuit: %v", err)
	}
	readAll(t, resp)
}

// The series a retiring registry shares with its successor end up showing the successor's state,
// whatever the old one wrote last before it closed.
func TestForgetMetricsRepublishesSuccessorGauges(t *testing.T) {
	srv := recordingBackend(t, "svc", &hitLog{}, fixed(http.StatusOK))
	promReg := prometheus.NewRegistry()
	m := NewMetrics(promReg)
	cfg := Config{Targets: targetsOf(srv.URL), CircuitBreaker: &BreakerConfig{MinRequests: 2}}
	old, ou := newTestRegistry(t, cfg, Options{Metrics: m})
	changed := cfg
	changed.CircuitBreaker = &BreakerConfig{MinRequests: 3} // not carried: a fresh, closed breaker
	next := reload(t, old, m, changed)
	// The old registry's last probe and breaker change land after the new one was built.
	ou.setHealthyGauge(ou.targets[0], false)
	ou.m.breaker.Set(2)
	old.Close()
	old.ForgetMetrics(next)
	if g := metricValue(t, promReg, "portico_upstream_healthy", "target", srv.URL); g != 1 {
		t.Errorf("healthy gauge %v after the retirement, want the new registry's 1", g)
	}
	if g := metricValue(t, promReg, "portico_upstream_breaker_state", "upstream", "svc"); g != 0 {
		t.Errorf("breaker gauge %v after the retirement, want the new registry's 0 (closed)", g)
	}
}

// A reload refused after the new registry was built (a bad policy further on) hands a carried
// breaker back: the serving upstream's breaker changes must keep setting the gauge, not report
// to the rejected, closed upstream that had taken it over.
func TestRejectedReloadHandsTheBreakerBack(t *testing.T) {
	log := &hitLog{}
	srv := recordingBackend(t, "svc", log, func() int { return http.StatusInternalServerError })
	cfg := Config{
		Targets:        targetsOf(srv.URL),
		Retries:        RetryConfig{Attempts: intp(0)},
		CircuitBreaker: &BreakerConfig{MinRequests: 2, OpenFor: dur(time.Minute)},
	}
	promReg := prometheus.NewRegistry()
	m := NewMetrics(promReg)
	serving, u := newTestRegistry(t, cfg, Options{Metrics: m})
	rejected := reload(t, serving, m, cfg)
	rejected.Close()
	rejected.ForgetMetrics(serving) // what the gateway does when the rest of the build fails
	for range 2 {
		resp, err := get(t, u, "x")
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
	}
	if st := serving.Status()[0].Breaker; st != "open" {
		t.Fatalf("breaker %q, want open", st)
	}
	if g := metricValue(t, promReg, "portico_upstream_breaker_state", "upstream", "svc"); g != 2 {
		t.Errorf("breaker gauge %v for the serving config's open breaker, want 2", g)
	}
}

// A registry that fails to build leaves no series behind: the upstreams built before the one that
// failed had published gauges, a new upstream's beside the serving ones and a shared target's
// over the serving registry's own value.
func TestFailedRegistryLeavesNoSeries(t *testing.T) {
	promReg := prometheus.NewRegistry()
	m := NewMetrics(promReg)
	const dead = "http://127.0.0.1:1"
	serving, err := NewRegistry(map[string]Config{"svc": {Targets: targetsOf(dead)}}, Options{Logger: quietLogger, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(serving.Close)
	u, _ := serving.Get("svc")
	u.targets[0].healthy.Store(false) // as a failed health check leaves it
	u.setHealthyGauge(u.targets[0], false)
	_, err = NewRegistry(map[string]Config{
		"svc":   {Targets: targetsOf(dead)},
		"extra": {Targets: targetsOf("http://127.0.0.1:2")},
		"bad":   {Targets: targetsOf("http://user:pw@127.0.0.1:3")},
	}, Options{Logger: quietLogger, Metrics: m, Previous: serving})
	if err == nil {
		t.Fatal("a target with credentials in its URL was accepted")
	}
	if _, ok := findSeries(t, promReg, "portico_upstream_healthy", "upstream", "extra"); ok {
		t.Error("the failed registry's new upstream left its healthy series")
	}
	if g := metricValue(t, promReg, "portico_upstream_healthy", "upstream", "svc"); g != 0 {
		t.Errorf("the serving registry's dead target reads %v after a failed rebuild, want 0", g)
	}
}

// openBreaker fails two calls through u, whose only target fails and whose breaker opens after
// two, and checks that it opened.
func openBreaker(t *testing.T, reg *Registry, u *Upstream) {
	t.Helper()
	for range 2 {
		resp, err := get(t, u, "x")
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
	}
	if st := reg.Status()[0].Breaker; st != "open" {
		t.Fatalf("breaker %q before the reload, want open", st)
	}
}
