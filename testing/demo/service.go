// Package demo holds the demo and test backends of Portico's example domain: users, orders,
// payments, notifications and a legacy monolith, plus a fixed-body backend for proxy benchmarks.
// They are real HTTP services with deterministic seeded data, so tests, the `portico demo` mode
// and benchmarks all see the same answers. Each Service counts requests per route, remembers the
// headers it last received (to assert identity and trace propagation), and takes runtime switches
// for latency, injected errors and outages through its Behavior.
package demo

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
)

// Route patterns, as registered on the services' ServeMux. Pass them to Service.Requests and
// Service.LastHeadersFor.
const (
	// RouteHealth is served by every demo service.
	RouteHealth = "GET /health"

	RouteCurrentUser = "GET /users/current"
	RouteUser        = "GET /users/{id}"
	RouteUsers       = "GET /users"

	RouteRecentOrders = "GET /orders/recent"
	RouteOrder        = "GET /orders/{id}"
	RouteOrders       = "GET /orders"
	RouteCreateOrder  = "POST /orders"

	RoutePayment  = "GET /payments/{id}"
	RoutePayments = "GET /payments"

	RouteNotificationCount = "GET /notifications/count"
	RouteNotifications     = "GET /notifications"
	RouteMarkRead          = "POST /notifications/read"

	RouteLegacyUser  = "GET /api/v1/users/{id}"
	RouteLegacyOrder = "GET /api/v1/orders/{id}"
	RouteEcho        = "/echo"
	RouteCatchAll    = "/"
)

// Service is one demo backend: an http.Handler with per-route counters, the last headers seen
// and a Behavior. Build one with NewUsers, NewOrders, NewPayments, NewNotifications, NewMonolith
// or NewBench; serve it with Start, httptest.NewServer or any http.Server.
type Service struct {
	// Behavior shapes the answers (latency, injected errors, outages) and may be changed at any
	// time, including while requests are in flight.
	Behavior *Behavior

	name   string
	mux    *http.ServeMux
	routes []string
	// stats is written only while the constructor registers routes, so lookups need no lock.
	stats map[string]*routeStats
	total atomic.Int64
	last  atomic.Value // http.Header of the latest non-health request

	// resetState puts the service's mutable data back to its seed; nil for read-only services.
	resetState func()

	mu      sync.Mutex
	servers []*http.Server
}

type routeStats struct {
	count atomic.Int64
	last  atomic.Value // http.Header
}

func newService(name string) *Service {
	s := &Service{
		Behavior: &Behavior{},
		name:     name,
		mux:      http.NewServeMux(),
		stats:    make(map[string]*routeStats),
	}
	s.handle(RouteHealth, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "service": s.name})
	})
	return s
}

func (s *Service) handle(pattern string, h http.HandlerFunc) {
	s.mux.HandleFunc(pattern, h)
	s.routes = append(s.routes, pattern)
	s.stats[pattern] = &routeStats{}
}

// Name is the service's name: users, orders, payments, notifications, monolith or bench.
func (s *Service) Name() string { return s.name }

// Routes lists the route patterns the service serves, in registration order.
func (s *Service) Routes() []string { return slices.Clone(s.routes) }

// ServeHTTP counts and records the request, applies the Behavior, then routes it. Requests are
// counted even when the Behavior refuses them, so a test can see that a retry reached the backend.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.total.Add(1)
	h, pattern := s.mux.Handler(r)
	st := s.stats[pattern]
	if st != nil {
		st.count.Add(1)
		st.last.Store(r.Header)
	}
	if pattern != RouteHealth {
		s.last.Store(r.Header)
	}

	b := s.Behavior
	if b.Drop() {
		panic(http.ErrAbortHandler)
	}
	if b.Down() {
		writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE", s.name+" is down")
		return
	}
	if pattern != RouteHealth {
		if !b.wait(r.Context()) {
			return // the caller is gone; nobody reads an answer
		}
		if b.fail() {
			status := b.ErrorStatus()
			writeError(w, status, "INJECTED_FAILURE", s.name+": injected failure")
			return
		}
	}
	if st == nil {
		// No route: the mux's own 404/405 (or a path-cleaning redirect) in this API's JSON shape.
		serveUnrouted(w, r, h)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Requests reports how many requests matched pattern (one of the Route constants the service
// serves) since the last reset. It reports -1 for a pattern the service does not serve, so a
// mistyped pattern fails an assertion instead of passing as "no calls".
func (s *Service) Requests(pattern string) int64 {
	st := s.stats[pattern]
	if st == nil {
		return -1
	}
	return st.count.Load()
}

// TotalRequests reports every request received since the last reset, including health probes and
// requests that matched no route. Tests that run with active health checking should assert on
// Requests(pattern) instead.
func (s *Service) TotalRequests() int64 { return s.total.Load() }

// ResetCounts zeroes the counters and forgets the recorded headers.
func (s *Service) ResetCounts() {
	s.total.Store(0)
	for _, st := range s.stats {
		st.count.Store(0)
		st.last.Store(http.Header(nil))
	}
	s.last.Store(http.Header(nil))
}

// LastHeaders returns a copy of the headers of the most recent request other than GET /health,
// or nil if none arrived; health probes are left out so background health checking cannot
// overwrite what a test is asserting (X-Request-ID, X-Consumer-Name, traceparent).
func (s *Service) LastHeaders() http.Header {
	h, _ := s.last.Load().(http.Header)
	return h.Clone()
}

// LastHeadersFor returns a copy of the headers of the most recent request that matched pattern,
// or nil if none did.
func (s *Service) LastHeadersFor(pattern string) http.Header {
	st := s.stats[pattern]
	if st == nil {
		return nil
	}
	h, _ := st.last.Load().(http.Header)
	return h.Clone()
}

// Reset restores the service to its initial state: healthy Behavior, zero counters, and seed data
// (orders created and notifications marked read are forgotten). Servers started for it keep running.
func (s *Service) Reset() {
	s.Behavior.Reset()
	s.ResetCounts()
	if s.resetState != nil {
		s.resetState()
	}
}

// Close stops every server Start started for this service, closing their listeners and
// connections: afterwards callers get "connection refused", a backend that is really down.
func (s *Service) Close() error {
	s.mu.Lock()
	servers := s.servers
	s.servers = nil
	s.mu.Unlock()
	var first error
	for _, srv := range servers {
		if err := srv.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (s *Service) track(srv *http.Server) {
	s.mu.Lock()
	s.servers = append(s.servers, srv)
	s.mu.Unlock()
}

func (s *Service) untrack(srv *http.Server) {
	s.mu.Lock()
	s.servers = slices.DeleteFunc(s.servers, func(x *http.Server) bool { return x == srv })
	s.mu.Unlock()
}

// errorBody is the error shape of DESIGN.md, so gateway tests can tell a backend's own error from
// one Portico wrote by the code.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: message}})
}

// writeJSON encodes v in one piece so Content-Length is exact. Services that must answer
// byte-identical bodies (the monolith mirroring users and orders) share it.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "INTERNAL", "encoding response failed")
		return
	}
	body = append(body, '\n')
	writeBody(w, status, body)
}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// serveUnrouted runs the mux's fallback handler against a capturing writer and answers its status
// in JSON, keeping the headers that matter (Allow on a 405, Location on a redirect).
func serveUnrouted(w http.ResponseWriter, r *http.Request, h http.Handler) {
	c := &statusCapture{header: make(http.Header)}
	h.ServeHTTP(c, r)
	for _, k := range []string{"Allow", "Location"} {
		if v := c.header.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	switch status := c.status; {
	case status == http.StatusMethodNotAllowed:
		writeError(w, status, "METHOD_NOT_ALLOWED", "method "+r.Method+" not allowed on "+r.URL.Path)
	case status == http.StatusNotFound || status == 0:
		writeError(w, http.StatusNotFound, "NOT_FOUND", "no route for "+r.Method+" "+r.URL.Path)
	case status >= 400:
		writeError(w, status, "BAD_REQUEST", http.StatusText(status))
	default:
		w.WriteHeader(status)
	}
}

type statusCapture struct {
	header http.Header
	status int
}

func (c *statusCapture) Header() http.Header { return c.header }

func (c *statusCapture) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}

func (c *statusCapture) Write(b []byte) (int, error) {
	c.WriteHeader(http.StatusOK)
	return len(b), nil
}
