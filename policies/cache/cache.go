// Package cache is Portico's response cache policy (YAML type key `cache`) and the resolver-side
// cache of upstream GET calls. Entries live in memory (ristretto) or, when store.redis is
// configured, in Redis shared by every instance, both through eko/gocache. Concurrent misses on
// one key are coalesced into a single upstream call.
package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-gw/portico/internal/apierror"
	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/policies"
)

// Response headers the cache sets on every answer that passes through it.
const (
	headerStatus = "X-Cache-Status"
	headerKey    = "X-Cache-Key"
)

// X-Cache-Status values, as Kong's proxy-cache names them.
const (
	statusHit     = "Hit"
	statusMiss    = "Miss"
	statusBypass  = "Bypass"
	statusRefresh = "Refresh"
)

// statusValues holds one shared, clipped header value per status, so setting X-Cache-Status does
// not allocate; an append by a later handler copies (len == cap).
var statusValues = map[string][]string{
	statusHit: {statusHit}, statusMiss: {statusMiss}, statusBypass: {statusBypass}, statusRefresh: {statusRefresh},
}

// Policy is a built response cache. One instance may serve several routes; the route is part of
// every key, and no per-request state lives here.
type Policy struct {
	name         string
	ttl          time.Duration
	getOK        bool
	headOK       bool
	status       map[int]bool
	contentTypes []string
	varyHeaders  []string
	varySet      map[string]bool
	varyQuery    map[string]struct{}
	public       bool
	maxBody      int64
	respect      bool

	store   entryStore
	flights flights
	now     func() time.Time
	metrics *metrics
}

var (
	_ policies.Policy    = (*Policy)(nil)
	_ policies.Purgeable = (*Policy)(nil)
)

// New builds the cache policy called name. With deps.Redis set, entries are shared through
// Redis; otherwise they live in a memory store that survives config reloads for the same policy
// name and sizes. The policy registers itself with deps.Purger for the admin API.
func New(name string, c Config, deps policies.Deps) (policies.Policy, error) {
	if name == "" {
		return nil, errors.New("building cache policy: empty name")
	}
	var probs confval.Problems
	c.Validate("", &probs)
	if err := probs.Err(fmt.Sprintf("building cache policy %q", name)); err != nil {
		return nil, err
	}
	p := &Policy{
		name:    name,
		ttl:     DefaultTTL,
		status:  map[int]bool{},
		varySet: map[string]bool{},
		public:  c.Public,
		maxBody: c.MaxBodyBytes.Or(DefaultMaxBodyBytes),
		respect: c.RespectCacheControl == nil || *c.RespectCacheControl,
		now:     time.Now,
		metrics: newMetrics(deps, name),
	}
	if c.TTL != nil {
		p.ttl = c.TTL.Std() // positive: Validate refused the rest
	}
	methods := c.Methods
	if len(methods) == 0 {
		methods = defaultMethods
	}
	for _, m := range methods {
		p.getOK = p.getOK || m == http.MethodGet
		p.headOK = p.headOK || m == http.MethodHead
	}
	statuses := c.Status
	if len(statuses) == 0 {
		statuses = defaultStatus
	}
	for _, s := range statuses {
		p.status[s] = true
	}
	cts := c.ContentTypes
	if len(cts) == 0 {
		cts = defaultContentTypes
	}
	for _, ct := range cts {
		mt, _ := parseContentType(ct)
		p.contentTypes = append(p.contentTypes, mt)
	}
	for _, h := range c.VaryHeaders {
		h = http.CanonicalHeaderKey(h)
		if !p.varySet[h] {
			p.varySet[h] = true
			p.varyHeaders = append(p.varyHeaders, h)
		}
	}
	if len(c.VaryQueryParams) > 0 {
		p.varyQuery = map[string]struct{}{}
		for _, q := range c.VaryQueryParams {
			p.varyQuery[q] = struct{}{}
		}
	}
	if deps.Redis != nil {
		p.store = newRedisStore(deps.Redis, c.RedisTimeout.Or(DefaultRedisTimeout))
	} else {
		maxKeys := c.Memory.MaxKeys
		if maxKeys == 0 {
			maxKeys = DefaultMaxKeys
		}
		ms, err := acquireMemStore(name, c.Memory.MaxCost.Or(DefaultMaxCost), maxKeys)
		if err != nil {
			return nil, fmt.Errorf("building cache policy %q: %w", name, err)
		}
		p.store = ms
		runtime.AddCleanup(p, func(s *memStore) { s.release() }, ms)
	}
	deps.Purger.Add(p)
	return p, nil
}

// Phase places the cache after rate limiting, so hits still count against limits (as in Kong),
// and outside request and response transformation, so what is stored is what the client gets.
func (p *Policy) Phase() policies.Phase { return policies.PhaseCache }

// Wrap returns next behind the cache.
func (p *Policy) Wrap(next http.Handler) http.Handler { return &handler{p: p, next: next} }

// WrapKeyed returns next behind the cache, keyed also on what the policies inside it (inner)
// will render from each request (see policies.KeyVariant).
func (p *Policy) WrapKeyed(next http.Handler, inner []policies.KeyVariant) http.Handler {
	if len(inner) == 0 {
		return p.Wrap(next)
	}
	e := &edits{variants: inner}
	for _, v := range inner {
		e.headers = append(append(e.headers, v.KeyHeaders()...), v.ReadHeaders()...)
		e.query = e.query || v.EditsQuery()
	}
	slices.Sort(e.headers)
	e.headers = slices.Compact(e.headers)
	return &handler{p: p, next: next, edits: e}
}

type handler struct {
	p     *Policy
	next  http.Handler
	edits *edits // nil without request transforms inside the cache
}

// edits are the KeyVariants inside a cache, with what their replay needs, worked out once.
type edits struct {
	variants []policies.KeyVariant
	// headers are the names any of them reads or changes: the only ones the replay copies.
	headers []string
	// query is set when one of them edits the query.
	query bool
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.p.serve(w, r, h.next, h.edits)
}

func (p *Policy) serve(w http.ResponseWriter, r *http.Request, next http.Handler, edits *edits) {
	info := reqctx.From(r.Context())
	// HEAD is answered from the GET entry, and a HEAD miss fetches GET so the entry serves both.
	keyMethod := r.Method
	cacheable := false
	switch r.Method {
	case http.MethodGet:
		cacheable = p.getOK
	case http.MethodHead:
		cacheable = p.headOK
		keyMethod = http.MethodGet
	}
	key := p.key(r, info, keyMethod, edits)
	hdr := w.Header()
	hdr[headerKey] = []string{key}
	// An upgrade (a WebSocket's GET) is a session, not a cacheable answer: coalesced behind one
	// leader, a second client would wait for the first one's whole session.
	if !cacheable || r.Header.Get("Range") != "" || r.Header.Get("Upgrade") != "" || p.unsafeAuthorization(r, info) {
		p.bypass(w, r, next)
		return
	}
	var rc requestControl
	if p.respect {
		rc = parseRequestControl(r.Header)
	} else {
		rc.maxAge = -1
	}
	if rc.noStore {
		p.bypass(w, r, next)
		return
	}
	refresh := rc.noCache
	if !refresh {
		e, err := p.store.get(r.Context(), key)
		if err != nil {
			p.storeFailed(err)
			p.bypass(w, r, next)
			return
		}
		if e != nil {
			if rc.maxAge >= 0 && p.age(e) > time.Duration(rc.maxAge)*time.Second {
				refresh = true
			} else {
				p.metrics.hit.Inc()
				p.serveEntry(w, r, e, statusHit)
				return
			}
		}
	}
	if rc.onlyIfCached {
		p.metrics.miss.Inc()
		hdr[headerStatus] = statusValues[statusMiss]
		apierror.Write(w, r, apierror.New(http.StatusGatewayTimeout, "NOT_CACHED",
			"the response is not cached and the request asked for only-if-cached"))
		return
	}
	p.fetch(w, r, next, key, keyMethod, refresh)
}

// unsafeAuthorization is a request carrying credentials the upstream may answer per user while
// the cache key holds no such user, so it is not cached unless the policy is public:
//   - a Cookie (an upstream-managed session) is never in the key;
//   - an Authorization header is safe only when Portico turned it into an identity with a
//     subject (JWT sub, basic-auth user), which is in the key; an anonymous identity, or an
//     application key that many end users share (no subject), says nothing about the end user
//     the upstream sees in Authorization.
func (p *Policy) unsafeAuthorization(r *http.Request, info *reqctx.Info) bool {
	if p.public {
		return false
	}
	if _, ok := r.Header["Cookie"]; ok {
		return true
	}
	if r.Header.Get("Authorization") == "" {
		return false
	}
	return info == nil || info.Identity == nil || info.Identity.Anonymous || info.Identity.Subject == ""
}

func (p *Policy) bypass(w http.ResponseWriter, r *http.Request, next http.Handler) {
	p.metrics.bypass.Inc()
	w.Header()[headerStatus] = statusValues[statusBypass]
	next.ServeHTTP(w, r)
}

func (p *Policy) age(e *entry) time.Duration {
	a := p.now().Sub(e.stored)
	if a < 0 {
		return 0 // another instance's clock is ahead
	}
	return a
}

// notModifiedHeaders are what a 304 carries from the stored response (RFC 9110 §15.4.5).
var notModifiedHeaders = []string{"Cache-Control", "Content-Location", "Date", "Etag", "Expires", "Vary", "Last-Modified"}

// serveEntry answers from e: 304 when the client's validators match, else the stored response.
func (p *Policy) serveEntry(w http.ResponseWriter, r *http.Request, e *entry, status string) {
	h := w.Header()
	h[headerStatus] = statusValues[status]
	h["Age"] = []string{strconv.FormatInt(int64(p.age(e)/time.Second), 10)}
	if e.status == http.StatusOK && notModified(r, e.header) {
		for _, k := range notModifiedHeaders {
			if v, ok := e.header[k]; ok {
				setHeader(h, k, v)
			}
		}
		w.WriteHeader(http.StatusNotModified)
		return
	}
	copyHeader(h, e.header)
	h["Content-Length"] = e.contentLength
	w.WriteHeader(e.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(e.body)
	}
}

// outcome is what one coalesced upstream call produced for the requests waiting on it.
type outcome struct {
	e        *entry // the stored response, shareable; nil otherwise
	personal bool   // an answer that must not be shared (private, Set-Cookie, too big…)
}

// flights coalesces concurrent misses on one key into one upstream call. It is singleflight
// with one difference that matters: the leader releases the waiting requests as soon as it
// knows the outcome (at the upstream's header when the answer may not be shared, at the byte
// that overflows max_body_bytes), not when its own response ends, so that a long personal
// answer (an event stream, a large download) does not hold every other client.
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

// flight is one upstream call that requests missing on the same key wait for.
type flight struct {
	g        *flights
	key      string
	done     chan struct{} // closed by release, after out is set
	out      outcome
	released bool // guarded by g.mu
}

// join returns the key's flight in progress, or starts one that the caller leads.
func (g *flights) join(key string) (f *flight, leader bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f := g.m[key]; f != nil {
		return f, false
	}
	if g.m == nil {
		g.m = make(map[string]*flight)
	}
	f = &flight{g: g, key: key, done: make(chan struct{})}
	g.m[key] = f
	return f, true
}

// release hands out to the waiting requests and frees the key for a new flight; only the first
// call counts. A zero outcome (the call failed, panicked, or its client left) sends the waiting
// requests to coalesce again behind a new leader.
func (f *flight) release(out outcome) {
	f.g.mu.Lock()
	defer f.g.mu.Unlock()
	if f.released {
		return
	}
	f.released = true
	f.out = out
	if f.g.m[f.key] == f {
		delete(f.g.m, f.key)
	}
	close(f.done)
}

// fetch makes one upstream call per key however many clients miss at once. The first caller
// leads: its response streams to its own client, on its own goroutine, while being captured;
// the others wait (bounded by their context) and get a copy when it is shareable, or call the
// upstream themselves as soon as the leader knows it is not.
func (p *Policy) fetch(w http.ResponseWriter, r *http.Request, next http.Handler, key, method string, refresh bool) {
	label, counter := statusMiss, p.metrics.miss
	if refresh {
		label, counter = statusRefresh, p.metrics.refresh
	}
	for attempt := 0; attempt < 2; attempt++ {
		f, leader := p.flights.join(key)
		if leader {
			p.lead(w, r, next, f, key, method, label, refresh)
			return
		}
		select {
		case <-f.done:
		case <-r.Context().Done():
			apierror.Write(w, r, r.Context().Err())
			return
		}
		switch {
		case f.out.e != nil:
			counter.Inc()
			p.serveEntry(w, r, f.out.e, label)
			return
		case f.out.personal:
			p.bypass(w, r, next)
			return
		}
		// The leader failed or left; try once more to coalesce behind a new leader.
	}
	p.bypass(w, r, next)
}

// lead runs the upstream call for a key on behalf of all waiting clients, teeing the answer to
// its own client, and releases the waiting clients once the outcome is known. A panic in next
// reaches the leader's caller (net/http, or the edge) unchanged.
func (p *Policy) lead(w http.ResponseWriter, r *http.Request, next http.Handler, f *flight, key, method, label string, refresh bool) {
	// Whatever happens, a panic included, nobody waits on a flight that has ended; a release
	// that came first (the tee's, or the stored entry's) wins.
	defer f.release(outcome{})
	if !refresh {
		// A call that just finished may have stored the entry between our lookup and our turn
		// as leader; serving it saves a second upstream call.
		if e, err := p.store.get(r.Context(), key); err == nil && e != nil {
			f.release(outcome{e: e})
			p.metrics.hit.Inc()
			p.serveEntry(w, r, e, statusHit)
			return
		}
	}
	// The upstream call has a context of its own, so the tee can stop a download nobody reads
	// without touching the client's request.
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	t := &tee{p: p, w: w, client: r, header: make(http.Header), label: label,
		clientBody: r.Method != http.MethodHead, flight: f, cancel: cancel}
	up := r.Clone(ctx)
	up.Method = method
	// The cache answers conditionals itself; the upstream must send the full response to store.
	up.Header.Del("If-None-Match")
	up.Header.Del("If-Modified-Since")
	t.serve(next, up)
	t.finish()
	if r.Context().Err() != nil {
		return // the leader's client left mid-call: the answer may be cut short
	}
	if !t.storable {
		f.release(outcome{personal: true}) // the tee has done so already when it found out
		return
	}
	e := newEntry(t.status, storableHeader(t.header), t.buf, t.stored)
	if err := p.store.set(context.WithoutCancel(r.Context()), key, e, t.ttl); err != nil && !errors.Is(err, errNotStored) {
		p.storeFailed(err)
	}
	f.release(outcome{e: e})
}

type metrics struct {
	hit, miss, bypass, refresh prometheus.Counter
	storeErrors                prometheus.Counter
	log                        *slog.Logger
	lastLog                    *atomic.Int64
}

var (
	requestsDesc = prometheus.CounterOpts{
		Name: "portico_cache_requests_total",
		Help: "Requests through a cache policy, by X-Cache-Status (hit, miss, bypass, refresh).",
	}
	storeErrorsDesc = prometheus.CounterOpts{
		Name: "portico_cache_store_errors_total",
		Help: "Cache store (Redis) failures; the request bypassed the cache or its response was not stored.",
	}
)

// storeErrorLogEvery bounds the log to one line per interval per policy while a store is down.
const storeErrorLogEvery = 10 * time.Second

func newMetrics(deps policies.Deps, policy string) *metrics {
	req := policies.Register(deps.Metrics, prometheus.NewCounterVec(requestsDesc, []string{"policy", "status"}))
	errs := policies.Register(deps.Metrics, prometheus.NewCounterVec(storeErrorsDesc, []string{"policy"}))
	log := deps.Logger
	if log == nil {
		log = slog.Default()
	}
	return &metrics{
		hit:         req.WithLabelValues(policy, "hit"),
		miss:        req.WithLabelValues(policy, "miss"),
		bypass:      req.WithLabelValues(policy, "bypass"),
		refresh:     req.WithLabelValues(policy, "refresh"),
		storeErrors: errs.WithLabelValues(policy),
		log:         log.With("policy", policy),
		lastLog:     new(atomic.Int64),
	}
}

func (p *Policy) storeFailed(err error) { p.metrics.storeFailed(err) }

func (m *metrics) storeFailed(err error) {
	m.storeErrors.Inc()
	now := time.Now().UnixNano()
	last := m.lastLog.Load()
	if now-last < int64(storeErrorLogEvery) || !m.lastLog.CompareAndSwap(last, now) {
		return
	}
	m.log.Warn("cache store failed; requests bypass the cache until it recovers", "err", err)
}

// Purge removes the entry whose X-Cache-Key is key.
func (p *Policy) Purge(ctx context.Context, key string) (bool, error) {
	if !strings.HasPrefix(key, p.name+":") {
		return false, nil
	}
	return p.store.del(ctx, key)
}

// PurgePrefix removes every entry whose key starts with prefix, e.g. "<policy>:<route>:" for a
// route's entries; it reports how many live entries it removed.
func (p *Policy) PurgePrefix(ctx context.Context, prefix string) (int, error) {
	own := p.name + ":"
	if !strings.HasPrefix(prefix, own) && !strings.HasPrefix(own, prefix) {
		return 0, nil // not this policy's keys: skip a useless SCAN
	}
	return p.store.delPrefix(ctx, prefix)
}
