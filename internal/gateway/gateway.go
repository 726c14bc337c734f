// Package gateway assembles one immutable Snapshot (upstream pools, router, policy chains) from a
// config file, serves client requests through the snapshot that is current when they arrive, and
// swaps in a new snapshot on reload with one atomic store. In-flight requests finish on the
// snapshot they started with.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portico-gw/portico/bff"
	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/internal/listener"
	"github.com/portico-gw/portico/policies"
	"github.com/portico-gw/portico/policies/builtin"
	"github.com/portico-gw/portico/policies/cache"
	"github.com/portico-gw/portico/resolvers"
	"github.com/portico-gw/portico/routes"
	"github.com/portico-gw/portico/schema"
	"github.com/portico-gw/portico/upstreams"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Gateway serves requests with the current Snapshot and builds new ones on reload.
type Gateway struct {
	// readTimeout is the listeners' read timeout (nanoseconds), set by Serve; 0 before it.
	readTimeout atomic.Int64
	logger      *slog.Logger
	prom        *prometheus.Registry
	metrics     *edgeMetrics
	upm         *upstreams.Metrics
	routem      *routes.Metrics
	// apqStoreErrors counts the shared APQ store's failures; the store outlives snapshots.
	apqStoreErrors prometheus.Counter
	reloads        *prometheus.CounterVec

	current atomic.Pointer[Snapshot]
	ready   atomic.Bool
	// applied delivers after a config is applied (buffered: a signal waiting is enough).
	applied chan struct{}

	// sessions counts requests that may become hijacked connections (protocol upgrades, such as
	// WebSockets): http.Server.Shutdown neither tracks nor waits for those, so the drain does.
	// cutSessions, canceled when the drain time is up, ends the ones still open.
	sessions    sync.WaitGroup
	cutSessions context.Context
	cut         context.CancelFunc

	mu      sync.Mutex // serialises Apply and guards the fields below
	outputs map[string]io.Writer
	servers []*listener.Server
	// adminAddr is the admin address Serve bound ("" for none): like the listeners, the admin
	// API stays where it started, and a reload that moves or disables it says so.
	adminAddr string
	stores    *stores
	closed    bool
	// procsSet is true while server.procs, not Go, decides GOMAXPROCS.
	procsSet bool
	// check marks the throw-away gateway of Check: its build has no side effects beyond the
	// process (no Redis connection, health checks, JWKS fetches or new files) and reports every
	// problem instead of the first.
	check bool
}

var errClosed = errors.New("gateway is shut down")

// Snapshot is everything one config produces. It is never modified after Build.
type Snapshot struct {
	File      *config.File
	Upstreams *upstreams.Registry
	Router    *routes.Router
	Profiles  []*bff.Profile

	handler    http.Handler
	stores     *stores
	policies   builtin.Instances
	catalog    *builtin.Catalog
	policyDeps policies.Deps
	purger     *policies.Purger
	trusted    []netip.Prefix
	accessLog  *slog.Logger
	cancel     context.CancelFunc
	// inputs are the files the config reads, with their content's hash before the build.
	inputs map[string]string
}

// Options are the process-wide parts a Gateway is built with.
type Options struct {
	// Logger receives operational logs (default slog.Default()).
	Logger *slog.Logger
	// Stdout is where access_log output "stdout" goes (default os.Stdout); tests capture it.
	Stdout io.Writer
}

// New builds the first snapshot from f. The gateway is ready to serve when New returns.
func New(f *config.File, opts Options) (*Gateway, error) {
	g := assemble(opts)
	if err := g.Apply(f); err != nil {
		g.cut()
		return nil, err
	}
	g.ready.Store(true)
	return g, nil
}

// Check builds a snapshot from f exactly as New and a reload do, then releases it, and returns
// every problem the build finds (errors.Join of them, each naming what it concerns), or nil:
// what config.Load cannot see, such as API keys shared by two consumers, PEM keys that do not
// parse, or BFF operations that do not exist. It binds no listener and leaves nothing running:
// no health checks, no Redis connection (an unreachable Redis is not a problem, as at start),
// no JWKS fetch (a key set that is down is not one either: run only logs it), and no access log
// file is created. GOMAXPROCS is left alone. For `portico validate`.
func Check(f *config.File, opts Options) error {
	g := assemble(opts)
	g.check = true
	defer g.cut()
	snap, err := g.build(f)
	if snap != nil {
		snap.release()
		snap.stores.close()
	}
	return err
}

// assemble makes a Gateway with its process-wide parts and no snapshot yet.
func assemble(opts Options) *Gateway {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	g := &Gateway{
		logger:  opts.Logger,
		prom:    reg,
		metrics: newEdgeMetrics(reg),
		upm:     upstreams.NewMetrics(reg),
		routem:  routes.NewMetrics(reg),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portico_config_reloads_total",
			Help: "Config reloads by result (success or failure).",
		}, []string{"result"}),
		outputs: map[string]io.Writer{"stdout": opts.Stdout, "": opts.Stdout, "stderr": os.Stderr},
		applied: make(chan struct{}, 1),
	}
	g.apqStoreErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "portico_apq_store_errors_total",
		Help: "Persisted-query store (Redis) failures; lookups counted as misses, registrations lost.",
	})
	reg.MustRegister(g.reloads, g.apqStoreErrors)
	g.cutSessions, g.cut = context.WithCancel(context.Background())
	return g
}

// Apply builds a snapshot from f and makes it current. On error the current snapshot keeps
// serving and nothing of the new one stays running.
func (g *Gateway) Apply(f *config.File) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return errClosed
	}
	// Before the build: policies size their worker pools from GOMAXPROCS (basic-auth's hashing).
	g.applyProcs(f.Server.Procs)
	// Before the build too: a file changed while the build reads it then differs from its hash,
	// and the watcher reloads once more, where a hash taken after could hide the change.
	inputs := hashFiles(f.InputFiles())
	snap, err := g.build(f)
	if err != nil {
		if cur := g.current.Load(); cur != nil {
			g.applyProcs(cur.File.Server.Procs) // the config that keeps serving keeps its procs
		}
		g.reloads.WithLabelValues("failure").Inc()
		return err
	}
	snap.inputs = inputs
	old := g.current.Swap(snap)
	g.reloads.WithLabelValues("success").Inc()
	select {
	case g.applied <- struct{}{}:
	default:
	}
	g.adoptStores(snap.stores)
	g.pruneOutputs(f)
	if err := g.reloadListeners(f); err != nil {
		// Routes and upstreams are already live; a bad certificate keeps the old one serving.
		g.logger.Error("reloading listener certificates; the previous ones stay in use", "error", err.Error())
	}
	if old != nil {
		old.retire()
		if old.Upstreams != nil {
			// After retire: the old registry's health checks have stopped and cannot set a
			// gauge again once its series are gone.
			old.Upstreams.ForgetMetrics(snap.Upstreams)
		}
	}
	return nil
}

// build makes a snapshot of f. On error nothing of it stays running, and nothing of it stays
// in /metrics either. In check mode (Check) it goes on after a problem wherever the next step
// does not depend on what failed, and returns every problem found.
func (g *Gateway) build(f *config.File) (snap *Snapshot, err error) {
	snap = &Snapshot{File: f}
	var errs []error
	// failed records err and reports whether the build must stop: always in run mode, where the
	// first problem rejects the file; in check mode only if the next steps need what failed.
	failed := func(err error, needed bool) bool {
		errs = append(errs, err)
		return !g.check || needed
	}
	defer func() {
		if len(errs) == 0 {
			return
		}
		err = errors.Join(errs...)
		snap.release()
		if snap.Upstreams != nil {
			// NewRegistry published this registry's gauges, over the serving registry's for the
			// targets both have (a dead target showed healthy) and beside them for the others:
			// drop what the serving registry does not have and let it publish its own again.
			var serving *upstreams.Registry
			if cur := g.current.Load(); cur != nil {
				serving = cur.Upstreams
			}
			snap.Upstreams.ForgetMetrics(serving)
		}
		if snap.stores != nil && snap.stores != g.stores {
			snap.stores.close()
		}
		snap = nil
	}()
	if snap.stores, err = g.storesFor(f); err != nil {
		if failed(err, false) {
			return
		}
		// Check goes on with the in-memory stores, which every later step can use.
		if snap.stores, err = g.storesFor(&config.File{}); err != nil {
			failed(err, true)
			return
		}
	}
	upOpts := upstreams.Options{Metrics: g.upm, Logger: g.logger}
	if cur := g.current.Load(); cur != nil {
		// Targets the probes found dead, or passive checks ejected, stay out across a reload.
		upOpts.Previous = cur.Upstreams
	}
	if snap.Upstreams, err = upstreams.NewRegistry(f.Upstreams, upOpts); err != nil {
		if failed(fmt.Errorf("building upstreams: %w", err), false) {
			return
		}
	}
	if err = g.buildPolicies(snap); err != nil {
		if failed(err, false) {
			return
		}
	}
	g.buildRoutes(snap, failed)
	if len(errs) > 0 && !g.check {
		return
	}
	if snap.trusted, err = parsePrefixes(f.TrustedProxies); err != nil {
		if failed(err, false) {
			return
		}
	}
	if snap.accessLog, err = g.accessLogger(f); err != nil {
		if failed(err, false) {
			return
		}
	}
	if g.check {
		// What Serve does before it binds: TLS material is loaded (config.Load read it too).
		for _, lc := range f.EffectiveListeners() {
			if _, err := listener.New(lc, f.Server, g); err != nil {
				failed(fmt.Errorf("listener %s: %w", lc.Address, err), false)
			}
		}
		return snap, nil // the deferred cleanup turns errs into the error
	}
	if len(errs) > 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	snap.cancel = cancel
	snap.Upstreams.Start(ctx)
	return snap, nil
}

// buildRoutes builds the router and mounts the BFFs in it, recording problems with failed (see
// build). Without an upstream registry or policies (check mode, after those failed) routes are
// built against stand-ins, so their own problems are still found.
func (g *Gateway) buildRoutes(snap *Snapshot, failed func(error, bool) bool) {
	f := snap.File
	routeCfg := make(map[string]*routes.Config, len(f.Routes))
	for i := range f.Routes {
		routeCfg[f.Routes[i].Name] = &f.Routes[i]
	}
	reg := snap.Upstreams
	router, err := routes.Build(f.Routes, routes.Deps{
		Upstream: func(name string) (http.RoundTripper, bool) {
			if reg == nil {
				_, ok := f.Upstreams[name]
				return unbuiltUpstream{}, ok
			}
			u, ok := reg.Get(name)
			if !ok {
				return nil, false
			}
			return u, true
		},
		Logger:       g.logger,
		Metrics:      g.routem,
		MaxBodyBytes: f.Server.MaxBodyBytes.Or(10 << 20),
		Wrap: func(route string, h http.Handler) (http.Handler, error) {
			return snap.wrap(route, routeCfg[route].Policies, h), nil
		},
	})
	if err != nil {
		failed(fmt.Errorf("building routes: %w", err), true)
		return
	}
	snap.Router = router
	snap.handler = snap.Router
	g.mountBFFs(snap, failed)
}

// wrap puts a route's or BFF's policies around h. Without a catalog (check mode, after the
// policies failed) h stays bare, so the routes' and BFFs' own problems are still found.
func (s *Snapshot) wrap(scope string, local []string, h http.Handler) http.Handler {
	if s.catalog == nil {
		return h
	}
	return s.catalog.Wrap(scope, local, h)
}

// unbuiltUpstream stands in for an upstream that did not build, in check mode only: that
// snapshot never serves.
type unbuiltUpstream struct{}

func (unbuiltUpstream) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("upstream not built")
}

// prefixEach prefixes every error joined in err (errors.Join), so that each is still one problem
// of its own ("portico validate" prints one per line) and says where it came from.
func prefixEach(prefix string, err error) error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, prefixEach(prefix, e))
	}
	return errors.Join(out...)
}

// buildPolicies builds the consumers and every named policy once for the snapshot; routes and
// BFFs then share the instances (so a rate limit on two routes counts once per key, and a
// cache is one cache).
func (g *Gateway) buildPolicies(snap *Snapshot) error {
	consumers, err := policies.NewConsumers(snap.File.Consumers)
	if err != nil {
		return prefixEach("building consumers", err)
	}
	snap.purger = &policies.Purger{}
	deps := policies.Deps{Consumers: consumers, Metrics: g.prom, Logger: g.logger, Purger: snap.purger}
	// State the serving snapshot's policies hand to this one's (in-memory rate-limit counters).
	var prev *policies.Carry
	if cur := g.current.Load(); cur != nil {
		prev = cur.policyDeps.Carry
	}
	deps.Carry = policies.NewCarry(prev)
	if snap.stores.redis != nil {
		// Only a real client: a nil *redis.Client in the interface would look configured.
		deps.Redis = snap.stores.redis
	}
	cfgs := snap.File.Policies
	if g.check {
		cfgs = withoutJWKSFetch(cfgs)
	}
	var built builtin.Instances
	if g.check {
		built, err = buildEach(cfgs, deps)
	} else {
		built, err = builtin.BuildAll(cfgs, deps)
	}
	deps.Carry.Done()
	if err != nil {
		return err
	}
	snap.policies = built
	snap.catalog = &builtin.Catalog{Configs: snap.File.Policies, Built: built, Globals: snap.File.GlobalPolicies, Consumers: consumers}
	snap.policyDeps = deps
	return nil
}

// buildEach builds every policy like builtin.BuildAll but goes on after a failure, returning
// every policy's problem, sorted by policy name.
func buildEach(cfgs map[string]builtin.Config, deps policies.Deps) (builtin.Instances, error) {
	names := make([]string, 0, len(cfgs))
	for name := range cfgs {
		names = append(names, name)
	}
	sort.Strings(names)
	out := builtin.Instances{}
	var errs []error
	for _, name := range names {
		p, err := builtin.Build(name, cfgs[name], deps)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[name] = p
	}
	if len(errs) > 0 {
		out.Close()
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// withoutJWKSFetch returns cfgs with every jwt issuer's JWKS fetch timing out at once, leaving
// cfgs as they were. A fetch that fails is logged, not a build error, so the build is the same
// otherwise, and Check neither waits up to jwks_timeout nor needs the identity provider.
func withoutJWKSFetch(cfgs map[string]builtin.Config) map[string]builtin.Config {
	out := make(map[string]builtin.Config, len(cfgs))
	for name, c := range cfgs {
		if c.JWT != nil {
			jc := *c.JWT
			jc.Issuers = slices.Clone(jc.Issuers)
			for i := range jc.Issuers {
				if jc.Issuers[i].JWKSURL != "" {
					jc.Issuers[i].JWKSTimeout = confval.Duration(time.Nanosecond)
				}
			}
			c.JWT = &jc
		}
		out[name] = c
	}
	return out
}

// mountBFFs builds each BFF profile on the snapshot's upstream client and mounts it in the
// router at its path, recording problems with failed (see build). Profiles share one executable
// schema: the resolvers are stateless and dataloaders are per operation.
func (g *Gateway) mountBFFs(snap *Snapshot, failed func(error, bool) bool) {
	if len(snap.File.BFFs) == 0 {
		return
	}
	for _, name := range resolvers.Upstreams() {
		if _, ok := snap.File.Upstreams[name]; !ok {
			if failed(fmt.Errorf("bffs: the resolvers call upstream %q, which upstreams does not define (they call %s)",
				name, strings.Join(resolvers.Upstreams(), ", ")), false) {
				return
			}
		}
	}
	var backend resolvers.Backend = upstreams.NewClient(snap.Upstreams)
	if len(snap.File.BackendCache) > 0 {
		cached, err := cache.NewBackend(backend, snap.File.BackendCache, snap.policyDeps)
		if err != nil {
			if failed(fmt.Errorf("backend_cache: %w", err), false) {
				return
			}
		} else {
			backend = cached
		}
	}
	es := resolvers.NewExecutableSchema(resolvers.NewResolver(backend, resolvers.Options{}))
	names := make([]string, 0, len(snap.File.BFFs))
	for name := range snap.File.BFFs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		cfg := snap.File.BFFs[name]
		p, err := bff.New(name, cfg, bff.Deps{
			Schema:     es,
			Backend:    backend,
			APQCache:   snap.stores.apq,
			Operations: schema.Operations(),
			Logger:     g.logger,
		})
		if err != nil {
			if failed(fmt.Errorf("building BFF %q: %w", name, err), false) {
				return
			}
			continue
		}
		snap.Profiles = append(snap.Profiles, p)
		h := p.MarkGraphQL(snap.wrap(name, cfg.Policies, p.Handler()))
		if err := snap.Router.HandleEndpoint(name, routes.MatchConfig{PathPrefix: p.Path()}, h); err != nil {
			if failed(fmt.Errorf("mounting BFF %q: %w", name, err), false) {
				return
			}
		}
	}
}

// retire stops a replaced snapshot's background work. Requests still running on it keep their
// connections: closing idle connections does not touch active ones.
func (s *Snapshot) retire() {
	if s.cancel != nil {
		s.cancel()
	}
	s.release()
}

// release frees what a snapshot built; shared stores are not its to close. It copes with a
// snapshot whose build stopped half way.
func (s *Snapshot) release() {
	for _, p := range s.Profiles {
		p.Close()
	}
	if s.Router != nil {
		s.Router.Close()
	}
	if s.policies != nil {
		s.policies.Close()
	}
	if s.Upstreams != nil {
		s.Upstreams.Close()
	}
}

func (g *Gateway) accessLogger(f *config.File) (*slog.Logger, error) {
	if !f.AccessLogEnabled() {
		return nil, nil
	}
	out := f.AccessLog.Output
	w, ok := g.outputs[out]
	if !ok && g.check {
		return nil, checkAccessLog(out)
	}
	switch lf, isFile := w.(*logFile); {
	case !ok:
		lf, err := openLogFile(out)
		if err != nil {
			return nil, fmt.Errorf("opening access log: %w", err)
		}
		g.outputs[out], w = lf, lf
	case isFile && !g.check:
		// Every reload (SIGHUP) reopens the file, so a log rotated by renaming it (logrotate's
		// default, nginx's and Kong's way) continues in a new file at the path.
		if err := lf.reopen(); err != nil {
			g.logger.Warn("reopening the access log failed; it continues in the file open before", "path", out, "error", err.Error())
		}
	}
	return slog.New(slog.NewJSONHandler(w, nil)), nil
}

// pruneOutputs closes the access log files the config in force no longer writes to: each reload
// to a new path left the old one open for the life of the process. Called after the swap, with
// g.mu held.
func (g *Gateway) pruneOutputs(f *config.File) {
	for name, w := range g.outputs {
		if lf, ok := w.(*logFile); ok && (name != f.AccessLog.Output || !f.AccessLogEnabled()) {
			delete(g.outputs, name)
			lf.retire()
		}
	}
}

// logFile is an access log file that can be reopened at its path while loggers of several
// snapshots write to it: each write goes to the file open at that moment.
type logFile struct {
	path string
	f    atomic.Pointer[os.File]
}

func openLogFile(path string) (*logFile, error) {
	lf := &logFile{path: path}
	if err := lf.reopen(); err != nil {
		return nil, err
	}
	return lf, nil
}

func (l *logFile) Write(p []byte) (int, error) { return l.f.Load().Write(p) }

// logFileGrace is how long a replaced file stays open: a write that loaded it just before the
// swap finishes well within it.
const logFileGrace = time.Minute

func (l *logFile) reopen() error {
	nf, err := os.OpenFile(l.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if old := l.f.Swap(nf); old != nil {
		time.AfterFunc(logFileGrace, func() { _ = old.Close() })
	}
	return nil
}

// retire closes the file once writes that may still be under way have had time to finish.
func (l *logFile) retire() {
	if f := l.f.Load(); f != nil {
		time.AfterFunc(logFileGrace, func() { _ = f.Close() })
	}
}

// checkAccessLog reports what would stop the access log file from opening at start, without
// creating it: an existing file must open for appending, a new one needs its directory.
func checkAccessLog(path string) error {
	file, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		return file.Close()
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("opening access log: %w", err)
	}
	dir, err := os.Stat(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("opening access log: %w", err)
	}
	if !dir.IsDir() {
		return fmt.Errorf("opening access log: %s is not a directory", filepath.Dir(path))
	}
	return nil
}

func parsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("trusted_proxies: %w", err)
			}
			if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
				// Peers are compared unmapped, so ::ffff:10.0.0.0/104 is 10.0.0.0/8.
				p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted_proxies: %w", err)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// Current returns the snapshot serving new requests.
func (g *Gateway) Current() *Snapshot { return g.current.Load() }

// SetReady flips /ready; shutdown sets it false first so load balancers stop sending traffic
// before listeners close.
func (g *Gateway) SetReady(ok bool) { g.ready.Store(ok) }

// Close retires the current snapshot. Call it after the listeners have drained.
func (g *Gateway) Close() {
	// Under the lock, so a reload that is building cannot swap in a snapshot after this retired
	// the current one (its health checks and stores would never stop).
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	g.closed = true
	g.cut() // upgraded connections still open end with the gateway
	if s := g.current.Load(); s != nil {
		s.retire()
	}
	if g.stores != nil {
		g.stores.close()
	}
	for _, w := range g.outputs {
		if lf, ok := w.(*logFile); ok {
			_ = lf.f.Load().Close()
		}
	}
}

// Applied delivers after each config applied, so a file watcher can follow the files the config
// in force reads (InputFiles). Signals coalesce: one waiting stands for any number of applies.
func (g *Gateway) Applied() <-chan struct{} { return g.applied }

// InputFiles lists the files the config in force reads (certificates, keys, CA bundles, key
// files), each with a hash of its content taken just before that config was built: a change to
// one of them takes a reload to be served, and a change the build may not have seen shows as a
// hash that differs from the file's.
func (g *Gateway) InputFiles() map[string]string {
	if cur := g.current.Load(); cur != nil {
		return cur.inputs
	}
	return nil
}

// Reload loads path and applies it, logging the outcome; a bad file leaves the old config serving.
func (g *Gateway) Reload(path string) error {
	f, err := config.Load(path)
	if err != nil {
		g.reloads.WithLabelValues("failure").Inc()
	} else {
		err = g.Apply(f) // counts its own outcome
	}
	if err != nil {
		g.logger.Error("config reload rejected; still serving the previous config", "path", path, "error", err.Error())
		return err
	}
	g.logger.Info("config reloaded", "path", path, "routes", len(f.Routes), "upstreams", len(f.Upstreams))
	return nil
}
