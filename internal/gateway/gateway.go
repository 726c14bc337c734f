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
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/portico-gw/portico/bff"
	"github.com/portico-gw/portico/internal/config"
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
	logger  *slog.Logger
	prom    *prometheus.Registry
	metrics *edgeMetrics
	upm     *upstreams.Metrics
	routem  *routes.Metrics
	// apqStoreErrors counts the shared APQ store's failures; the store outlives snapshots.
	apqStoreErrors prometheus.Counter
	reloads        *prometheus.CounterVec

	current atomic.Pointer[Snapshot]
	ready   atomic.Bool

	// sessions counts requests that may become hijacked connections (protocol upgrades, such as
	// WebSockets): http.Server.Shutdown neither tracks nor waits for those, so the drain does.
	// cutSessions, canceled when the drain time is up, ends the ones still open.
	sessions    sync.WaitGroup
	cutSessions context.Context
	cut         context.CancelFunc

	mu      sync.Mutex // serialises Apply and guards the fields below
	outputs map[string]io.Writer
	servers []*listener.Server
	stores  *stores
	closed  bool
	// procsSet is true while server.procs, not Go, decides GOMAXPROCS.
	procsSet bool
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
	}
	g.apqStoreErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "portico_apq_store_errors_total",
		Help: "Persisted-query store (Redis) failures; lookups counted as misses, registrations lost.",
	})
	reg.MustRegister(g.reloads, g.apqStoreErrors)
	g.cutSessions, g.cut = context.WithCancel(context.Background())
	if err := g.Apply(f); err != nil {
		g.cut()
		return nil, err
	}
	g.ready.Store(true)
	return g, nil
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
	snap, err := g.build(f)
	if err != nil {
		if cur := g.current.Load(); cur != nil {
			g.applyProcs(cur.File.Server.Procs) // the config that keeps serving keeps its procs
		}
		g.reloads.WithLabelValues("failure").Inc()
		return err
	}
	old := g.current.Swap(snap)
	g.reloads.WithLabelValues("success").Inc()
	g.adoptStores(snap.stores)
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

func (g *Gateway) build(f *config.File) (snap *Snapshot, err error) {
	snap = &Snapshot{File: f}
	defer func() {
		if err != nil {
			snap.release()
			if snap.stores != nil && snap.stores != g.stores {
				snap.stores.close()
			}
			snap = nil
		}
	}()
	if snap.stores, err = g.storesFor(f); err != nil {
		return snap, err
	}
	upOpts := upstreams.Options{Metrics: g.upm, Logger: g.logger}
	if cur := g.current.Load(); cur != nil {
		// Targets the probes found dead, or passive checks ejected, stay out across a reload.
		upOpts.Previous = cur.Upstreams
	}
	if snap.Upstreams, err = upstreams.NewRegistry(f.Upstreams, upOpts); err != nil {
		return snap, fmt.Errorf("building upstreams: %w", err)
	}
	if err = g.buildPolicies(snap); err != nil {
		return snap, err
	}
	routeCfg := make(map[string]*routes.Config, len(f.Routes))
	for i := range f.Routes {
		routeCfg[f.Routes[i].Name] = &f.Routes[i]
	}
	reg := snap.Upstreams
	snap.Router, err = routes.Build(f.Routes, routes.Deps{
		Upstream: func(name string) (http.RoundTripper, bool) {
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
			return snap.catalog.Wrap(route, routeCfg[route].Policies, h), nil
		},
	})
	if err != nil {
		return snap, fmt.Errorf("building routes: %w", err)
	}
	snap.handler = snap.Router
	if err = g.mountBFFs(snap); err != nil {
		return snap, err
	}
	if snap.trusted, err = parsePrefixes(f.TrustedProxies); err != nil {
		return snap, err
	}
	if snap.accessLog, err = g.accessLogger(f); err != nil {
		return snap, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	snap.cancel = cancel
	reg.Start(ctx)
	return snap, nil
}

// buildPolicies builds the consumers and every named policy once for the snapshot; routes and
// BFFs then share the instances (so a rate limit on two routes counts once per key, and a
// cache is one cache).
func (g *Gateway) buildPolicies(snap *Snapshot) error {
	consumers, err := policies.NewConsumers(snap.File.Consumers)
	if err != nil {
		return fmt.Errorf("building consumers: %w", err)
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
	built, err := builtin.BuildAll(snap.File.Policies, deps)
	deps.Carry.Done()
	if err != nil {
		return err
	}
	snap.policies = built
	snap.catalog = &builtin.Catalog{Configs: snap.File.Policies, Built: built, Globals: snap.File.GlobalPolicies, Consumers: consumers}
	snap.policyDeps = deps
	return nil
}

// mountBFFs builds each BFF profile on the snapshot's upstream client and mounts it in the
// router at its path. Profiles share one executable schema: the resolvers are stateless and
// dataloaders are per operation.
func (g *Gateway) mountBFFs(snap *Snapshot) error {
	if len(snap.File.BFFs) == 0 {
		return nil
	}
	var backend resolvers.Backend = upstreams.NewClient(snap.Upstreams)
	if len(snap.File.BackendCache) > 0 {
		cached, err := cache.NewBackend(backend, snap.File.BackendCache, snap.policyDeps)
		if err != nil {
			return fmt.Errorf("backend_cache: %w", err)
		}
		backend = cached
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
			return fmt.Errorf("building BFF %q: %w", name, err)
		}
		snap.Profiles = append(snap.Profiles, p)
		h := snap.catalog.Wrap(name, cfg.Policies, p.Handler())
		if err := snap.Router.Handle(name, routes.MatchConfig{PathPrefix: p.Path()}, h); err != nil {
			return fmt.Errorf("mounting BFF %q: %w", name, err)
		}
	}
	return nil
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
	if !ok {
		file, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, fmt.Errorf("opening access log: %w", err)
		}
		// Files stay open for the life of the process so a reload that keeps the same path does
		// not reopen it; log rotation should use copytruncate or a new path.
		g.outputs[out], w = file, file
	}
	return slog.New(slog.NewJSONHandler(w, nil)), nil
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
	for name, w := range g.outputs {
		if f, ok := w.(*os.File); ok && name != "stdout" && name != "stderr" && name != "" {
			_ = f.Close()
		}
	}
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
