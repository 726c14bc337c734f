package upstreams

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/portico-gw/portico/internal/confval"
)

// Defaults for every optional field of Config; config.go documents them for users.
const (
	defaultWeight            = 100
	defaultConnectTimeout    = 2 * time.Second
	defaultResponseHeader    = 15 * time.Second
	defaultTotalTimeout      = 30 * time.Second
	defaultAttempts          = 1
	defaultBackoff           = 25 * time.Millisecond
	defaultBudgetPercent     = 20
	defaultMinConcurrent     = 3
	defaultHealthPath        = "/health"
	defaultHealthInterval    = 5 * time.Second
	defaultHealthTimeout     = time.Second
	defaultHealthySuccesses  = 2
	defaultUnhealthyFailures = 3
	defaultPassiveFailures   = 5
	defaultEjectFor          = 30 * time.Second
	defaultFailureRatio      = 0.5
	defaultMinRequests       = 20
	defaultBreakerWindow     = 10 * time.Second
	defaultOpenFor           = 10 * time.Second
	defaultMaxIdlePerTarget  = 256
	// keepAlive is the TCP keep-alive period toward targets.
	keepAlive = 30 * time.Second
	// idleConnTimeout closes pooled connections a target has not used for this long.
	idleConnTimeout = 90 * time.Second
)

var defaultRetryOn = []string{"connect_failure", "502", "503", "504"}

// Options carries what every upstream of a registry shares.
type Options struct {
	// Metrics records per-upstream metrics; nil records none.
	Metrics *Metrics
	// Logger receives health changes, ejections, breaker changes and wiring errors; nil means
	// slog.Default().
	Logger *slog.Logger
	// Previous is the registry a reload replaces (nil: none). Its targets' health state carries
	// over to the same targets here; see carryFrom.
	Previous *Registry
}

// Registry is the set of upstreams of one config snapshot. It is immutable after NewRegistry: a
// reload builds a new Registry, starts it, swaps it in and closes the old one.
type Registry struct {
	ups     map[string]*Upstream
	names   []string
	log     *slog.Logger
	metrics *Metrics

	mu      sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// NewRegistry applies defaults and builds every upstream: transports, balancers, breakers. It
// reports every upstream that cannot work at runtime (bad URL, unreadable CA file, unknown
// balancer), not only the first. Health checks begin with Start.
func NewRegistry(cfgs map[string]Config, opts Options) (*Registry, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	r := &Registry{ups: make(map[string]*Upstream, len(cfgs)), log: log, metrics: opts.Metrics}
	var errs []error
	for name, cfg := range cfgs {
		u, err := newUpstream(name, cfg, opts.Metrics, log)
		if err != nil {
			errs = append(errs, fmt.Errorf("upstream %q: %w", name, err))
			continue
		}
		r.ups[name] = u
		r.names = append(r.names, name)
	}
	if len(errs) > 0 {
		for _, u := range r.ups {
			u.closeIdle()
		}
		// The upstreams built so far published their gauges: over the serving registry's for
		// the targets both have, and beside them for the rest.
		r.ForgetMetrics(opts.Previous)
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return nil, errors.Join(errs...)
	}
	slices.Sort(r.names)
	r.carryFrom(opts.Previous)
	return r, nil
}

// Get returns the named upstream.
func (r *Registry) Get(name string) (*Upstream, bool) {
	u, ok := r.ups[name]
	return u, ok
}

// Names returns the upstream names, sorted.
func (r *Registry) Names() []string { return slices.Clone(r.names) }

// Start begins active health checks; they stop when ctx is done or at Close. Calling it again,
// or after Close, does nothing.
func (r *Registry) Start(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started || r.closed {
		return
	}
	r.started = true
	ctx, r.cancel = context.WithCancel(ctx)
	for _, name := range r.names {
		u := r.ups[name]
		if u.active == nil {
			continue
		}
		for _, t := range u.targets {
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				u.probeLoop(ctx, t)
			}()
		}
	}
}

// Close stops the health checks, waits for them and closes idle connections. In-flight calls
// finish normally. Close is idempotent.
func (r *Registry) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	if r.cancel != nil {
		r.cancel()
	}
	r.mu.Unlock()
	r.wg.Wait()
	for _, u := range r.ups {
		u.closed.Store(true)
		u.closeIdle()
	}
}

// ForgetMetrics deletes the series of r's targets, upstreams and breakers that next (the registry
// that replaced r; nil: none) does not have. Without it a reload that removes a target leaves its
// healthy gauge at its last value for as long as the process lives, and a removed upstream's
// breaker can stay "open" in every dashboard and alert. Call it after Close: r's in-flight calls
// keep the children they resolved at build time, which no longer export anything once deleted,
// so nothing brings a deleted series back.
func (r *Registry) ForgetMetrics(next *Registry) {
	m := r.metrics
	if m == nil {
		return
	}
	for name, u := range r.ups {
		var nu *Upstream
		if next != nil {
			nu = next.ups[name]
		}
		for _, t := range u.targets {
			if nu == nil || !slices.ContainsFunc(nu.targets, func(n *target) bool { return n.url == t.url }) {
				m.forgetTarget(name, t.url)
			}
		}
		if nu == nil {
			m.retries.DeleteLabelValues(name)
		}
		if u.breaker != nil && (nu == nil || nu.breaker == nil) {
			m.breaker.DeleteLabelValues(name)
		}
	}
	if next != nil {
		next.publishGauges()
	}
}

// publishGauges sets every gauge r owns from its state. Until the swap retired its predecessor,
// the predecessor's probes and timers could still write the series they share; without this, one
// that marked a target down just before it retired would leave the gauge at 0 for good when r
// has no active checks to correct it. It also takes back a carried breaker that a refused
// reload's upstream had taken over.
func (r *Registry) publishGauges() {
	now := monoAt(time.Now())
	for _, u := range r.ups {
		for _, t := range u.targets {
			u.setHealthyGauge(t, t.healthy.Load() && t.ejectedUntil.Load() <= now)
		}
		if u.breaker != nil && !u.closed.Load() {
			// A rejected reload's upstream may have taken over the breaker (carryBreaker); the
			// registry that serves owns it again.
			u.breakerOwner.Store(u)
			if u.m.breaker != nil {
				u.m.breaker.Set(float64(breakerGaugeValue(u.breaker.State())))
			}
		}
	}
}

// UpstreamStatus is one upstream as the admin /upstreams endpoint shows it.
type UpstreamStatus struct {
	Name     string `json:"name"`
	Balancer string `json:"balancer"`
	// Breaker is the circuit breaker's state (closed, half-open, open); empty without a breaker.
	Breaker string         `json:"breaker,omitempty"`
	Targets []TargetStatus `json:"targets"`
}

// TargetStatus is one target's live state.
type TargetStatus struct {
	URL    string `json:"url"`
	Weight int    `json:"weight"`
	// Healthy is true when the target passes active checks (if any) and is not ejected; with a
	// weight above 0 it then receives traffic.
	Healthy        bool  `json:"healthy"`
	ActiveRequests int64 `json:"active_requests"`
	// EjectedUntil is set while passive health checking keeps the target out of rotation.
	EjectedUntil *time.Time `json:"ejected_until,omitempty"`
}

// Status reports every upstream and target, sorted by upstream name.
func (r *Registry) Status() []UpstreamStatus {
	now := time.Now()
	out := make([]UpstreamStatus, 0, len(r.names))
	for _, name := range r.names {
		u := r.ups[name]
		s := UpstreamStatus{Name: name, Balancer: u.balName, Targets: make([]TargetStatus, 0, len(u.targets))}
		if u.breaker != nil {
			s.Breaker = u.breaker.State().String()
		}
		for _, t := range u.targets {
			ts := TargetStatus{URL: t.url, Weight: t.weight, ActiveRequests: t.active.Load()}
			ejected := false
			if until := t.ejectedUntil.Load(); until > monoAt(now) {
				at := now.Add(time.Duration(until - monoAt(now))).UTC()
				ts.EjectedUntil = &at
				ejected = true
			}
			ts.Healthy = t.healthy.Load() && !ejected
			s.Targets = append(s.Targets, ts)
		}
		out = append(out, s)
	}
	return out
}

func newUpstream(name string, cfg Config, metrics *Metrics, log *slog.Logger) (*Upstream, error) {
	if len(cfg.Targets) == 0 {
		return nil, errors.New("no targets")
	}
	u := &Upstream{name: name, log: log}

	https := false
	seen := make(map[string]bool, len(cfg.Targets))
	for i, tc := range cfg.Targets {
		scheme, host, err := parseTarget(tc.URL)
		if err != nil {
			return nil, fmt.Errorf("targets[%d]: %w", i, err)
		}
		t := &target{scheme: scheme, host: host, url: scheme + "://" + host, weight: defaultWeight, bit: 1 << (i % 64)}
		if tc.Weight != nil {
			if *tc.Weight < 0 {
				return nil, fmt.Errorf("targets[%d]: weight %d is negative", i, *tc.Weight)
			}
			if *tc.Weight > maxTargetWeight {
				// The balancers' arithmetic holds only within the bound (see maxTargetWeight).
				return nil, fmt.Errorf("targets[%d]: weight %d is above %d", i, *tc.Weight, maxTargetWeight)
			}
			t.weight = *tc.Weight
		}
		if seen[t.url] {
			return nil, fmt.Errorf("targets[%d]: duplicate target %s", i, t.url)
		}
		seen[t.url] = true
		https = https || scheme == "https"
		t.healthy.Store(true)
		t.m = metrics.forTarget(name, t.url)
		u.targets = append(u.targets, t)
	}

	u.balName = cfg.Balancer
	if u.balName == "" {
		u.balName = BalancerRoundRobin
	}
	bal, err := newBalancer(cfg.Balancer, cfg.HashOn, u.targets)
	if err != nil {
		return nil, err
	}
	u.bal = bal

	connect, respHeader, total := cfg.Timeouts.Connect.Or(defaultConnectTimeout),
		cfg.Timeouts.ResponseHeader.Or(defaultResponseHeader), cfg.Timeouts.Total.Or(defaultTotalTimeout)
	if connect < 0 || respHeader < 0 || total < 0 {
		return nil, errors.New("timeouts must not be negative")
	}
	u.total = total

	if err := u.applyRetries(cfg.Retries); err != nil {
		return nil, err
	}
	if err := u.applyHealth(cfg.Health); err != nil {
		return nil, err
	}
	if cfg.CircuitBreaker != nil {
		if err := u.applyBreaker(*cfg.CircuitBreaker, metrics); err != nil {
			return nil, err
		}
	}
	u.m = metrics.forUpstream(name, u.breaker != nil)

	tlsCfg, err := buildTLS(cfg.TLS)
	if err != nil {
		return nil, err
	}
	if cfg.MaxIdleConnsPerTarget < 0 || cfg.MaxConnsPerTarget < 0 {
		return nil, errors.New("connection limits must not be negative")
	}
	idle := cfg.MaxIdleConnsPerTarget
	if idle == 0 {
		idle = defaultMaxIdlePerTarget
	}
	dialer := &net.Dialer{Timeout: connect, KeepAlive: keepAlive}
	base := &http.Transport{
		// Backends are reached directly: an HTTP_PROXY meant for outbound traffic must not
		// capture service-to-service calls.
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   connect,
		ResponseHeaderTimeout: respHeader,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       idleConnTimeout,
		MaxIdleConns:          idle * len(u.targets),
		MaxIdleConnsPerHost:   idle,
		MaxConnsPerHost:       cfg.MaxConnsPerTarget,
		// Pass-through must hand the client the backend's bytes and Content-Encoding untouched.
		DisableCompression: true,
		// HTTP/2 only over TLS (ALPN); cleartext targets speak HTTP/1.1 with a connection pool,
		// which beats one multiplexed connection for a proxy's many small calls.
		ForceAttemptHTTP2: https,
	}
	u.transport, u.probes = base, base
	if cfg.MaxConnsPerTarget > 0 {
		probes := base.Clone()
		probes.MaxConnsPerHost, probes.MaxIdleConnsPerHost, probes.MaxIdleConns = 0, 1, len(u.targets)
		u.probes = probes
	}
	if cfg.MaxConnsPerTarget == 0 {
		// A connection cap needs http.Transport's wait queue; without one, plain-HTTP calls take
		// the synchronous path.
		u.transport = &h1Transport{fallback: base, dial: dialer.DialContext, respHeader: respHeader,
			idleTimeout: idleConnTimeout, maxIdle: idle}
		u.probes = u.transport
		u.plainHTTP = !https
	}
	u.rebuild()
	return u, nil
}

func (u *Upstream) applyRetries(rc RetryConfig) error {
	u.attempts = defaultAttempts
	if rc.Attempts != nil {
		if *rc.Attempts < 0 {
			return fmt.Errorf("retries.attempts %d is negative", *rc.Attempts)
		}
		u.attempts = *rc.Attempts
	}
	on := rc.On
	if on == nil {
		on = defaultRetryOn
	}
	for _, s := range on {
		switch s = strings.ToLower(strings.TrimSpace(s)); s {
		case "connect_failure":
			u.retryConnect = true
		case "timeout":
			u.retryTimeout = true
		case "5xx":
			for code := 500; code < 600; code++ {
				u.retryStatus[code/64] |= 1 << (code % 64)
			}
		default:
			code, err := strconv.Atoi(s)
			if err != nil || code < 100 || code > 599 {
				return fmt.Errorf("retries.on: unknown condition %q (use connect_failure, timeout, 5xx or a status code)", s)
			}
			u.retryStatus[code/64] |= 1 << (code % 64)
		}
	}
	u.idempotentOnly = rc.IdempotentOnly == nil || *rc.IdempotentOnly
	u.backoff = rc.Backoff.Or(defaultBackoff)
	if u.backoff < 0 {
		return errors.New("retries.backoff must not be negative")
	}
	u.budgetPercent, u.minConcurrent = defaultBudgetPercent, defaultMinConcurrent
	if rc.BudgetPercent != nil {
		u.budgetPercent = int64(*rc.BudgetPercent)
	}
	if rc.MinConcurrent != nil {
		u.minConcurrent = int64(*rc.MinConcurrent)
	}
	if u.budgetPercent < 0 || u.minConcurrent < 0 {
		return errors.New("retries.budget_percent and retries.min_concurrent must not be negative")
	}
	return nil
}

func (u *Upstream) applyHealth(hc HealthConfig) error {
	if a := hc.Active; a != nil {
		s := &activeSettings{
			path:      a.Path,
			interval:  a.Interval.Or(defaultHealthInterval),
			timeout:   a.Timeout.Or(defaultHealthTimeout),
			healthy:   a.HealthySuccesses,
			unhealthy: a.UnhealthyFailures,
		}
		if s.path == "" {
			s.path = defaultHealthPath
		}
		if !strings.HasPrefix(s.path, "/") {
			return fmt.Errorf("health.active.path %q must start with /", s.path)
		}
		if s.healthy == 0 {
			s.healthy = defaultHealthySuccesses
		}
		if s.unhealthy == 0 {
			s.unhealthy = defaultUnhealthyFailures
		}
		if s.interval <= 0 || s.timeout <= 0 || s.healthy < 0 || s.unhealthy < 0 {
			return errors.New("health.active: interval, timeout and thresholds must be positive")
		}
		u.active = s
	}
	if p := hc.Passive; p != nil {
		s := &passiveSettings{failures: int32(p.ConsecutiveFailures), ejectFor: p.EjectFor.Or(defaultEjectFor)}
		if s.failures == 0 {
			s.failures = defaultPassiveFailures
		}
		if s.failures < 0 || s.ejectFor <= 0 {
			return errors.New("health.passive: consecutive_failures and eject_for must be positive")
		}
		u.passive = s
	}
	return nil
}

func (u *Upstream) applyBreaker(bc BreakerConfig, metrics *Metrics) error {
	ratio := bc.FailureRatio
	if ratio == 0 {
		ratio = defaultFailureRatio
	}
	if ratio < 0 || ratio > 1 {
		return fmt.Errorf("circuit_breaker.failure_ratio %v must be between 0 and 1", ratio)
	}
	minReq := bc.MinRequests
	if minReq == 0 {
		minReq = defaultMinRequests
	}
	window, openFor := bc.Window.Or(defaultBreakerWindow), bc.OpenFor.Or(defaultOpenFor)
	if window <= 0 || openFor <= 0 {
		return errors.New("circuit_breaker: window and open_for must be positive")
	}
	half := bc.HalfOpenRequests
	if half == 0 {
		half = 1
	}
	// The gauge child is resolved here as the callback runs outside any request.
	var gauge interface{ Set(float64) }
	if metrics != nil {
		gauge = metrics.breaker.WithLabelValues(u.name)
	}
	u.breakerSet = breakerSettings{ratio: ratio, minReq: minReq, window: window, openFor: openFor, half: half}
	owner := new(atomic.Pointer[Upstream])
	owner.Store(u)
	u.breakerOwner = owner
	u.breaker = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        u.name,
		MaxRequests: half,
		Interval:    window,
		Timeout:     openFor,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			// Finished, counted calls only: gobreaker's Requests also holds calls still in flight
			// and excluded ones (client gone, client's broken body), which would dilute the ratio
			// as if they had succeeded; in an outage, clients giving up would keep it closed.
			n := c.TotalSuccesses + c.TotalFailures
			return n >= minReq && float64(c.TotalFailures) >= ratio*float64(n)
		},
		IsExcluded: func(err error) bool { return err == errExcluded },
		OnStateChange: func(name string, from, to gobreaker.State) {
			cur := owner.Load()
			cur.log.Warn("upstream circuit breaker changed state", "upstream", name, "from", from.String(), "to", to.String())
			if gauge != nil && !cur.closed.Load() {
				gauge.Set(float64(breakerGaugeValue(to)))
			}
		},
	})
	return nil
}

// breakerSettings are a breaker's effective settings, comparable so that a reload can tell
// whether a breaker may be carried over.
type breakerSettings struct {
	ratio           float64
	minReq, half    uint32
	window, openFor time.Duration
}

func breakerGaugeValue(s gobreaker.State) int {
	switch s {
	case gobreaker.StateHalfOpen:
		return 1
	case gobreaker.StateOpen:
		return 2
	}
	return 0
}

func buildTLS(c *TLSConfig) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c == nil {
		return cfg, nil
	}
	cfg.ServerName = c.ServerName
	cfg.InsecureSkipVerify = c.InsecureSkipVerify
	if c.CAFile != "" {
		pem, err := confval.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %s: no PEM certificates found", c.CAFile)
		}
		cfg.RootCAs = pool
	}
	if c.CertFile != "" || c.KeyFile != "" {
		if c.CertFile == "" || c.KeyFile == "" {
			return nil, errors.New("tls: cert_file and key_file must be set together")
		}
		cert, err := confval.LoadKeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
