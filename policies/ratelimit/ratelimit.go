// Package ratelimit is the rate-limit policy: fixed and sliding windows (per second, minute, hour,
// day and calendar month, several at once), token bucket and leaky bucket, keyed by consumer,
// credential, IP, header or route, counted atomically in memory or in Redis. See README.md for
// the algorithms, their bounds and the headers.
package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portico-gw/portico/internal/apierror"
	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/policies"
	"github.com/prometheus/client_golang/prometheus"
)

// store counts requests. take checks one request for key (the identifier, built per request in a
// reused buffer the store must not keep) and fills r; an error means the store could not decide.
type store interface {
	take(ctx context.Context, key []byte, now int64, pos *[maxWindows]windowPos, r *result) error
	close() error
}

// errorLogInterval spaces the log lines about a failing store: one line per interval with the
// number of failures since the last, instead of one per request.
const errorLogInterval = 10 * time.Second

// maxIdentifierLen bounds how much of a client-chosen identifier (a header value) becomes a
// counter key; longer ones are replaced by their SHA-256.
const maxIdentifierLen = 128

// Limiter is a built rate-limit policy. One Limiter may serve several routes; it keeps no
// per-request state. An in-memory Limiter owns a janitor goroutine: call Close when its config
// snapshot is retired (it is also stopped when the Limiter is garbage collected).
type Limiter struct {
	name         string
	spec         *spec
	store        store
	by           string
	header       string // canonical header name for by: header:<Name>
	perRoute     bool
	failOpen     bool
	hideHeaders  bool
	now          func() int64
	log          *slog.Logger
	allowed      prometheus.Counter
	limited      prometheus.Counter
	storeErrors  prometheus.Counter
	lastLog      atomic.Int64 // unix µs of the last store error log line
	suppressed   atomic.Int64 // failures not logged since
	limitStrings [maxWindows]string
	headerNames  [maxWindows][2]string // X-Ratelimit-Limit-<Window>, X-Ratelimit-Remaining-<Window>
	closeOnce    sync.Once
}

var (
	_ policies.Policy = (*Limiter)(nil)
	_ io.Closer       = (*Limiter)(nil)
)

var metricDecisions = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "portico_ratelimit_decisions_total",
	Help: "Rate-limit verdicts by policy and result (allowed, limited). Checks the store could not answer are counted in portico_ratelimit_store_errors_total instead.",
}, []string{"policy", "result"})

var metricStoreErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "portico_ratelimit_store_errors_total",
	Help: "Rate-limit checks the counter store failed or did not answer within store_timeout; the request was let through (fault_tolerant) or answered 503.",
}, []string{"policy"})

// New builds the policy instance called name. With deps.Redis set, counters live in Redis and
// are shared by every instance using it; otherwise they live in this process.
func New(name string, c Config, deps policies.Deps) (policies.Policy, error) {
	return newLimiter(name, c, deps, nil)
}

func newLimiter(name string, c Config, deps policies.Deps, now func() int64) (*Limiter, error) {
	var problems confval.Problems
	c.Validate("", &problems)
	if err := problems.Err(fmt.Sprintf("rate-limit policy %q", name)); err != nil {
		return nil, err
	}
	if now == nil {
		now = func() int64 { return time.Now().UnixMicro() }
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := buildSpec(&c)
	l := &Limiter{
		name:        name,
		spec:        s,
		by:          c.by(),
		perRoute:    c.PerRoute,
		failOpen:    c.FaultTolerant == nil || *c.FaultTolerant,
		hideHeaders: c.HideHeaders,
		now:         now,
		log:         log.With("policy", name),
	}
	if h, ok := strings.CutPrefix(l.by, ByHeaderPrefix); ok {
		l.by, l.header = ByHeaderPrefix, http.CanonicalHeaderKey(strings.TrimSpace(h))
	}
	for _, w := range s.windows {
		title := strings.ToUpper(windowNames[w.kind][:1]) + windowNames[w.kind][1:]
		l.limitStrings[w.kind] = strconv.FormatInt(w.limit, 10)
		l.headerNames[w.kind] = [2]string{"X-Ratelimit-Limit-" + title, "X-Ratelimit-Remaining-" + title}
	}
	decisions := policies.Register(deps.Metrics, metricDecisions)
	l.allowed = decisions.WithLabelValues(name, "allowed")
	l.limited = decisions.WithLabelValues(name, "limited")
	l.storeErrors = policies.Register(deps.Metrics, metricStoreErrors).WithLabelValues(name)
	if deps.Redis != nil {
		l.store = newRedisStore(name, s, deps.Redis, c.StoreTimeout.Or(DefaultStoreTimeout))
		return l, nil
	}
	maxKeys := c.MaxKeys
	if maxKeys == 0 {
		maxKeys = DefaultMaxKeys
	}
	// The snapshot a reload replaces hands over its counters when nothing that shapes them
	// changed, so a reload does not give every client a fresh allowance.
	key := fmt.Sprintf("ratelimit/%s/%+v/%s/%t/%d", name, *s, c.by(), c.PerRoute, maxKeys)
	ms, ok := deps.Carry.Take(key).(*memoryStore)
	if !ok || !ms.acquire() {
		ms = newMemoryStore(s, maxKeys, now, sweepInterval(s), log)
	}
	deps.Carry.Keep(key, ms)
	ref := &memoryRef{memoryStore: ms}
	l.store = ref
	// A snapshot nobody closes must not leak its janitor: let go of the store once the Limiter
	// is unreachable (the janitor references only the store).
	runtime.AddCleanup(l, func(r *memoryRef) { _ = r.close() }, ref)
	return l, nil
}

func buildSpec(c *Config) *spec {
	s := &spec{strategy: c.strategy()}
	switch s.strategy {
	case TokenBucket, LeakyBucket:
		// Rounded up: truncated, 600 per 1ms (1.67µs apart) let one through every 1µs, 67%
		// over the rate; rounded up, the rate is at most what was configured.
		s.interval = max(int64((c.interval()+time.Microsecond-1)/time.Microsecond), 1)
		if s.strategy == TokenBucket {
			burst := c.Burst
			if burst == 0 {
				burst = c.Rate
			}
			s.tolerance = (burst - 1) * s.interval
		} else {
			wait := int64(c.MaxWait.Std() / time.Microsecond)
			if q := c.Queue * s.interval; c.Queue > 0 && (wait == 0 || q < wait) {
				wait = q
			}
			s.tolerance = wait
		}
	default:
		s.sliding = s.strategy == SlidingWindow
		for i, v := range c.Limits.values() {
			if v > 0 {
				s.windows = append(s.windows, window{kind: i, limit: v})
			}
		}
	}
	return s
}

// sweepInterval is how often the janitor drops expired counters: about as often as the shortest
// state expires, between 1s and 10s.
func sweepInterval(s *spec) time.Duration {
	if s.gcra() || len(s.windows) == 0 {
		return 5 * time.Second
	}
	d := time.Duration(windowSizes[s.windows[0].kind]) * time.Microsecond
	return min(max(d, time.Second), 10*time.Second)
}

// Phase places rate limiting after authentication and ACL, so the consumer is known, and before
// the cache, so that cache hits count too (as in Kong).
func (l *Limiter) Phase() policies.Phase { return policies.PhaseRateLimit }

// Close stops the in-memory store's janitor; it is safe to call more than once and a no-op for
// Redis, whose client belongs to the gateway.
func (l *Limiter) Close() error {
	var err error
	l.closeOnce.Do(func() { err = l.store.close() })
	return err
}

// scratch is per-request working memory, pooled so a check allocates nothing in memory mode.
type scratch struct {
	key []byte
	pos [maxWindows]windowPos
	res result
}

var scratchPool = sync.Pool{New: func() any { return &scratch{key: make([]byte, 0, 64)} }}

// Wrap returns next behind the limit.
func (l *Limiter) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.serve(w, r, next)
	})
}

func (l *Limiter) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	sc.key = l.appendKey(sc.key[:0], r)
	now := l.now()
	if !l.spec.gcra() {
		positions(l.spec, now, &sc.pos)
	}
	if err := l.store.take(r.Context(), sc.key, now, &sc.pos, &sc.res); err != nil {
		if ended(r.Context()) {
			// The client went away or the request ran out of time; that says nothing about the
			// store.
			cause := r.Context().Err()
			if cause == nil {
				cause = context.DeadlineExceeded
			}
			apierror.Write(w, r, cause)
			return
		}
		l.storeFailed(err)
		if l.failOpen {
			next.ServeHTTP(w, r)
			return
		}
		apierror.Write(w, r, &apierror.Error{Status: http.StatusServiceUnavailable, Code: "RATE_LIMIT_UNAVAILABLE",
			Message: "rate limiting is unavailable", Err: err})
		return
	}
	res := &sc.res
	if !l.hideHeaders {
		l.setHeaders(w.Header(), res)
	}
	if !res.allowed {
		l.limited.Inc()
		e := apierror.New(http.StatusTooManyRequests, "RATE_LIMITED", "API rate limit exceeded")
		e.Header = http.Header{"Retry-After": {seconds(res.retryAfter)}}
		apierror.Write(w, r, e)
		return
	}
	l.allowed.Inc()
	if res.wait > 0 {
		// A leaky bucket's slot is in the future: hold the request until then.
		t := time.NewTimer(time.Duration(res.wait) * time.Microsecond)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			apierror.Write(w, r, r.Context().Err())
			return
		}
	}
	next.ServeHTTP(w, r)
}

// ended reports whether ctx is done or past its deadline: a socket deadline taken from ctx can
// fire a moment before ctx itself is marked done.
func ended(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// storeFailed counts a store failure and logs it at most once per errorLogInterval.
func (l *Limiter) storeFailed(err error) {
	l.storeErrors.Inc()
	now := time.Now().UnixMicro()
	last := l.lastLog.Load()
	if now-last < int64(errorLogInterval/time.Microsecond) || !l.lastLog.CompareAndSwap(last, now) {
		l.suppressed.Add(1)
		return
	}
	action := "letting requests through (fault_tolerant)"
	if !l.failOpen {
		action = "answering 503 (fault_tolerant: false)"
	}
	l.log.Warn("rate-limit store failed; "+action, "error", err, "failures_not_logged", l.suppressed.Swap(0))
}

// appendKey appends the request's counter identifier: kind, value and, with per_route, the route.
func (l *Limiter) appendKey(b []byte, r *http.Request) []byte {
	info := reqctx.From(r.Context())
	var kind, id string
	// scope and issuer, with scoped, are the consumer and the token issuer a credential's
	// subject belongs to.
	var scope, issuer string
	scoped := false
	switch l.by {
	case ByConsumer:
		kind, id = "consumer:", consumer(info, r)
	case ByCredential:
		kind, id = "credential:", credential(info, r)
		if id == "" {
			kind, id = "consumer:", consumer(info, r)
		} else {
			scope, scoped = info.Identity.Consumer, true
			// With allow_unknown_consumers, tokens of several issuers have no consumer.
			issuer, _ = info.Identity.Claims["iss"].(string)
		}
	case ByRoute:
		if info != nil {
			kind, id = "route:", info.Route
		}
	case ByHeaderPrefix:
		if v := r.Header[l.header]; len(v) > 0 {
			kind, id = "header:", v[0]
		}
	}
	if id == "" {
		kind, id = "ip:", clientIP(info, r)
	}
	b = append(b, kind...)
	start := len(b)
	if scoped {
		// A subject is unique only within what vouched for it (an issuer, a CA, a user list),
		// and two consumers' tokens may both say sub=1: the consumer is part of the identifier,
		// its length first so that no other (consumer, subject) pair spells the same bytes; so is
		// a token's issuer.
		b = strconv.AppendInt(b, int64(len(scope)), 10)
		b = append(b, ':')
		b = append(b, scope...)
		b = strconv.AppendInt(b, int64(len(issuer)), 10)
		b = append(b, '@')
		b = append(b, issuer...)
	}
	b = append(b, id...)
	if len(b)-start > maxIdentifierLen {
		sum := sha256.Sum256(b[start:])
		b = append(b[:start], "sha256:"...)
		b = hex.AppendEncode(b, sum[:])
	}
	if l.perRoute && info != nil && info.Route != "" {
		b = append(b, "|route:"...)
		b = append(b, info.Route...)
	}
	return b
}

// consumer is the authenticated consumer's name, or "" when there is none or it is the anonymous
// fallback: every anonymous client sharing one counter would let one of them starve the rest
// (Kong counts them as one consumer; Portico counts them by IP).
func consumer(info *reqctx.Info, r *http.Request) string {
	if info == nil || info.Identity == nil || info.Identity.Anonymous || r.Header.Get("X-Anonymous-Consumer") == "true" {
		return ""
	}
	return info.Identity.Consumer
}

// credential is the authenticated subject (the JWT sub, certificate subject or user name), which
// tells apart several credentials of one consumer. appendKey pairs it with the consumer, since
// a subject alone does not tell apart two consumers' credentials.
func credential(info *reqctx.Info, r *http.Request) string {
	if info == nil || info.Identity == nil || info.Identity.Anonymous || r.Header.Get("X-Anonymous-Consumer") == "true" {
		return ""
	}
	return info.Identity.Subject
}

func clientIP(info *reqctx.Info, r *http.Request) string {
	ip := r.RemoteAddr
	if info != nil && info.ClientIP != "" {
		ip = info.ClientIP
	} else if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		ip = host
	}
	return ipKey(ip)
}

// ipKey counts IPv6 clients by their /64: one subscriber usually holds a whole /64, and counting
// single addresses would hand an attacker 2^64 fresh counters (and as many store keys).
func ipKey(ip string) string {
	if strings.IndexByte(ip, ':') < 0 {
		return ip // IPv4: as is, without parsing
	}
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Is4In6() {
		return ip
	}
	p, err := a.Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}

const (
	headerLimit     = "Ratelimit-Limit"
	headerRemaining = "Ratelimit-Remaining"
	headerReset     = "Ratelimit-Reset"
)

// setHeaders writes the Kong-compatible headers. Values share one backing slice, so the headers
// of a request cost one allocation.
func (l *Limiter) setHeaders(h http.Header, res *result) {
	vals := make([]string, 3+2*res.n)
	vals[0], vals[1], vals[2] = smallInt(res.limit), smallInt(res.remaining), seconds(res.reset)
	h[headerLimit], h[headerRemaining], h[headerReset] = vals[0:1:1], vals[1:2:2], vals[2:3:3]
	for i, w := range l.spec.windows[:res.n] {
		j := 3 + 2*i
		vals[j], vals[j+1] = l.limitStrings[w.kind], smallInt(res.win[i].remaining)
		names := &l.headerNames[w.kind]
		h[names[0]], h[names[1]] = vals[j:j+1:j+1], vals[j+1:j+2:j+2]
	}
}

// smallInts are the decimal strings of counts and of seconds up to an hour, so most header values
// need no allocation.
var smallInts = func() (s [3601]string) {
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

func smallInt(n int64) string {
	if n >= 0 && n < int64(len(smallInts)) {
		return smallInts[n]
	}
	return strconv.FormatInt(n, 10)
}

// seconds renders a duration in µs as whole seconds, rounded up and at least 1, as Kong does for
// RateLimit-Reset and Retry-After (0 would invite an immediate retry that fails again).
func seconds(us int64) string {
	s := (us + usPerSecond - 1) / usPerSecond
	return smallInt(max(s, 1))
}
