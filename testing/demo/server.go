package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Start listens on addr ("127.0.0.1:0" picks a free port) and serves svc until ctx ends or the
// returned server (or svc.Close) is closed. It returns once the listener is open, so the base URL
// ("http://127.0.0.1:PORT", loopback when addr has no host) is ready to use.
func Start(ctx context.Context, addr string, svc *Service) (*http.Server, string, error) {
	if svc == nil {
		return nil, "", errors.New("starting demo service: nil service")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("starting %s: %w", svc.name, err)
	}
	srv := &http.Server{
		Handler:           svc,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    1 << 20,
		// Closed connections and aborted requests are the point of some demos; not worth a log line.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	svc.track(srv)
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	srv.RegisterOnShutdown(func() { stop() })
	go func() {
		defer svc.untrack(srv)
		defer stop()
		srv.Serve(ln) // always returns an error, ErrServerClosed on Close: nothing to report
	}()
	return srv, baseURL(ln.Addr()), nil
}

// baseURL turns a listener address into a URL a client on this host can dial: a wildcard
// listener (":8080", "0.0.0.0:8080", "[::]:8080") is reached through loopback.
func baseURL(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://" + a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// Service names, in the order StartAll assigns ports.
const (
	NameUsers         = "users"
	NameOrders        = "orders"
	NamePayments      = "payments"
	NameNotifications = "notifications"
	NameMonolith      = "monolith"
)

// Names lists the services StartAll starts, in port order.
var Names = []string{NameUsers, NameOrders, NamePayments, NameNotifications, NameMonolith}

// Cluster is the five demo services running on real listeners, as `portico demo` and end-to-end
// tests use them. Stop and Restart take one service off the network and bring it back on the same
// address, to test health checks and retries against a backend that really disappears.
type Cluster struct {
	Users, Orders, Payments, Notifications, Monolith *Service

	ctx      context.Context
	mu       sync.Mutex
	services map[string]*clusterMember
}

type clusterMember struct {
	svc  *Service
	addr string // host:port, kept across Stop so Restart reuses it
	url  string
	srv  *http.Server // nil while stopped
}

// StartAll starts users, orders, payments, notifications and monolith on host (default
// 127.0.0.1) at basePort, basePort+1, … basePort+4, or each on a free port when basePort is 0
// (for tests). The services stop when ctx ends or on Close.
func StartAll(ctx context.Context, host string, basePort int) (*Cluster, error) {
	if basePort < 0 || basePort+len(Names)-1 > 65535 {
		return nil, fmt.Errorf("starting demo services: base port %d out of range", basePort)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	c := &Cluster{
		Users: NewUsers(), Orders: NewOrders(), Payments: NewPayments(),
		Notifications: NewNotifications(), Monolith: NewMonolith(),
		ctx: ctx, services: make(map[string]*clusterMember),
	}
	for i, svc := range []*Service{c.Users, c.Orders, c.Payments, c.Notifications, c.Monolith} {
		port := 0
		if basePort > 0 {
			port = basePort + i
		}
		srv, url, err := Start(ctx, net.JoinHostPort(host, strconv.Itoa(port)), svc)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("starting demo services: %w", err)
		}
		c.services[svc.name] = &clusterMember{svc: svc, addr: url[len("http://"):], url: url, srv: srv}
	}
	return c, nil
}

// URL returns the base URL of the named service, or "" for an unknown name.
func (c *Cluster) URL(name string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.services[name]; m != nil {
		return m.url
	}
	return ""
}

// URLs returns the base URL of every service by name.
func (c *Cluster) URLs() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]string, len(c.services))
	for name, m := range c.services {
		out[name] = m.url
	}
	return out
}

// Service returns the named service, or nil for an unknown name.
func (c *Cluster) Service(name string) *Service {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.services[name]; m != nil {
		return m.svc
	}
	return nil
}

// Stop closes the named service's listener and connections; until Restart, calls to it fail
// with "connection refused". Stopping a stopped service does nothing.
func (c *Cluster) Stop(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.services[name]
	if m == nil {
		return fmt.Errorf("stopping %q: unknown demo service (known: %v)", name, Names)
	}
	if m.srv == nil {
		return nil
	}
	err := m.srv.Close()
	m.srv = nil
	return err
}

// Restart serves the named service again on the address it had, with its state and counters
// intact. Restarting a running service does nothing.
func (c *Cluster) Restart(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.services[name]
	if m == nil {
		return fmt.Errorf("restarting %q: unknown demo service (known: %v)", name, Names)
	}
	if m.srv != nil {
		return nil
	}
	srv, _, err := Start(c.ctx, m.addr, m.svc)
	if err != nil {
		return fmt.Errorf("restarting %s: %w", name, err)
	}
	m.srv = srv
	return nil
}

// Reset puts every service back to its initial state (see Service.Reset), so tests can share one
// Cluster.
func (c *Cluster) Reset() {
	for _, svc := range []*Service{c.Users, c.Orders, c.Payments, c.Notifications, c.Monolith} {
		svc.Reset()
	}
}

// Close stops every service.
func (c *Cluster) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, m := range c.services {
		if m.srv != nil {
			errs = append(errs, m.srv.Close())
			m.srv = nil
		}
	}
	return errors.Join(errs...)
}
