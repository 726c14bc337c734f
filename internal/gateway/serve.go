package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/listener"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
)

// Bound reports an address the gateway listens on, once it is bound: name is "admin" or the
// listener's configured address.
type Bound func(name, addr string)

// Serve binds every listener of the gateway's current config and the admin listener, serves until
// ctx is done, then drains: /ready turns 503, listeners stop accepting, in-flight requests get up
// to server.shutdown_timeout to finish. Serve returns after the drain.
func (g *Gateway) Serve(ctx context.Context, bound Bound) error {
	f := g.Current().File
	// The listeners keep the read timeout they start with, whatever a reload says; the edge's
	// bound on a stalled body follows them.
	g.readTimeout.Store(int64(f.Server.ReadTimeout.Or(listener.DefaultReadTimeout)))
	var servers []*listener.Server
	var lns []net.Listener
	closeAll := func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}
	for _, lc := range f.EffectiveListeners() {
		s, err := listener.New(lc, f.Server, g)
		if err != nil {
			closeAll()
			return err
		}
		ln, err := s.Listen()
		if err != nil {
			closeAll()
			return err
		}
		servers, lns = append(servers, s), append(lns, ln)
		if bound != nil {
			bound(lc.Address, s.Addr())
		}
	}
	var admin *http.Server
	var adminLn net.Listener
	if addr := f.AdminAddr(); addr != "" {
		var err error
		adminLn, err = net.Listen("tcp", addr)
		if err != nil {
			closeAll()
			return fmt.Errorf("admin listener: %w", err)
		}
		admin = newAdminServer(g.AdminHandler())
		if bound != nil {
			bound("admin", adminLn.Addr().String())
		}
	}
	g.mu.Lock()
	g.servers = servers
	g.adminAddr = f.AdminAddr()
	g.mu.Unlock()

	eg, egctx := errgroup.WithContext(ctx)
	for i, s := range servers {
		eg.Go(func() error { return s.Serve(lns[i]) })
	}
	if admin != nil {
		eg.Go(func() error {
			if err := admin.Serve(adminLn); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	eg.Go(func() error {
		<-egctx.Done()
		g.SetReady(false)
		sc := g.Current().File.Server
		if d := sc.ShutdownDelay.Std(); d > 0 && ctx.Err() != nil {
			// Keep serving while load balancers notice /ready is 503 and stop sending traffic.
			g.logger.Info("draining: /ready is 503, listeners close after shutdown_delay", "delay", d.String())
			time.Sleep(d)
		}
		sctx, cancel := context.WithTimeout(context.Background(), sc.ShutdownTimeout.Or(30*time.Second))
		defer cancel()
		// Every listener stops accepting at once and drains in parallel: one after another, the
		// later ones kept accepting while the first drained, then got what was left of the time.
		errs := make([]error, len(servers))
		var drain sync.WaitGroup
		for i, s := range servers {
			drain.Go(func() {
				if err := s.Shutdown(sctx); errors.Is(err, context.DeadlineExceeded) {
					// Streams and long polls that outlive the drain are cut rather than left
					// running on a retired configuration; that is the end of a drain, not a failure.
					g.logger.Warn("drain time is up; closing the connections still open", "listener", s.Config().Address)
					_ = s.Close()
				} else if err != nil {
					errs[i] = err
				}
			})
		}
		drain.Wait()
		g.drainSessions(sctx)
		if admin != nil {
			if err := admin.Shutdown(sctx); errors.Is(err, context.DeadlineExceeded) {
				_ = admin.Close()
			} else if err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
	err := eg.Wait()
	g.Close()
	return err
}

// newAdminServer is the admin listener's server. The admin API is on localhost by default, but
// whoever can reach it could hold connections open without limit (a slowloris sending a body
// byte by byte, a keep-alive connection left idle, a client that never reads /metrics), each
// pinning a goroutine, so every phase of a connection is bounded as on the client listeners.
// Admin requests are small and answered at once, so the bounds are tighter than theirs.
func newAdminServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

// reloadListeners re-reads TLS material for the running listeners that are still configured.
// Adding, removing or changing a listener (its address, TLS on or off, h2c) needs a restart;
// that is logged, naming the listeners not updated, rather than half-applied.
//
// A listener is known by its address, not its place in the list: matched by position, a listener
// added in front of a TLS one made every later one look changed, and their renewed certificates
// were never read while every reload reported success. Listeners sharing an address (several on
// port 0) are matched in the order they are written.
func (g *Gateway) reloadListeners(f *config.File) error {
	if len(g.servers) == 0 {
		return nil
	}
	next := map[string][]listener.Config{}
	for _, lc := range f.EffectiveListeners() {
		next[lc.Address] = append(next[lc.Address], lc)
	}
	var removed, changed, added []string
	var errs []error
	for _, s := range g.servers {
		cur := s.Config()
		same := next[cur.Address]
		if len(same) == 0 {
			removed = append(removed, cur.Address)
			continue
		}
		lc := same[0]
		next[cur.Address] = same[1:]
		switch {
		case (lc.TLS == nil) != (cur.TLS == nil) || lc.H2C != cur.H2C:
			changed = append(changed, cur.Address)
		case lc.TLS != nil:
			if err := s.ReloadTLS(*lc.TLS); err != nil {
				errs = append(errs, fmt.Errorf("listener %s: %w", cur.Address, err))
			}
		}
	}
	for _, lc := range f.EffectiveListeners() {
		if rest := next[lc.Address]; len(rest) > 0 {
			added = append(added, lc.Address)
			next[lc.Address] = rest[1:]
		}
	}
	if len(removed)+len(changed)+len(added) > 0 {
		g.logger.Warn("listener changes take effect after a restart; these listeners were not updated",
			"added", added, "removed", removed, "changed", changed)
	}
	if want := f.AdminAddr(); want != g.adminAddr {
		// An operator who turns the admin API off by reload must not be told it worked while
		// /config and DELETE /cache stay reachable.
		running := g.adminAddr
		if running == "" {
			running = "off"
		}
		if want == "" {
			want = "off"
		}
		g.logger.Warn("admin changes take effect after a restart; the admin API was not moved",
			"running", running, "configured", want)
	}
	return errors.Join(errs...)
}

// AdminHandler serves the admin API: liveness, readiness, Prometheus metrics, upstream health
// and the redacted config.
func (g *Gateway) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) {
		if !g.ready.Load() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(g.prom, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /upstreams", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, g.Current().Upstreams.Status())
	})
	mux.HandleFunc("DELETE /cache", g.purgeCache)
	mux.HandleFunc("GET /config", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, config.Redacted(g.Current().File))
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// purgeCache removes cache entries: ?key=<X-Cache-Key value> for one, ?prefix=<key prefix> for
// many (a policy's keys start with "<policy>:<route>:"). It answers how many entries went.
func (g *Gateway) purgeCache(w http.ResponseWriter, r *http.Request) {
	key, prefix := r.URL.Query().Get("key"), r.URL.Query().Get("prefix")
	if (key == "") == (prefix == "") {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "give exactly one of ?key= and ?prefix="})
		return
	}
	purged := 0
	for _, c := range g.Current().purger.Caches() {
		if key != "" {
			ok, err := c.Purge(r.Context(), key)
			if err != nil {
				writeJSON(w, http.StatusBadGateway, map[string]string{"error": "purging: " + err.Error()})
				return
			}
			if ok {
				purged++
			}
			continue
		}
		n, err := c.PurgePrefix(r.Context(), prefix)
		if err != nil {
			writeJSON(w, http.StatusBadGateway, map[string]string{"error": "purging: " + err.Error()})
			return
		}
		purged += n
	}
	writeJSON(w, http.StatusOK, map[string]int{"purged": purged})
}

// drainSessions waits, until ctx is done, for upgraded connections (WebSockets) to end by
// themselves, as plain requests are waited for, then cuts those still open.
func (g *Gateway) drainSessions(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		g.sessions.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	g.logger.Warn("drain time is up; closing the upgraded connections still open")
	g.cut()
	select {
	case <-done:
	case <-time.After(time.Second): // a tunnel's copy ends once its backend side is closed
	}
}
