package upstreams

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
)

// Upstream is one named set of targets and the whole call stack in front of them: circuit
// breaker, total timeout, target selection, retries with a budget, passive health and metrics,
// over one shared, tuned http.Transport. It is an http.RoundTripper, so the pass-through proxy
// uses it as its Transport and Client uses the very same path.
type Upstream struct {
	name      string
	balName   string
	targets   []*target
	bal       balancer
	transport roundTripper
	// probes carries active health checks: transport itself, or, under max_conns_per_target, a
	// transport of its own, so that probes never queue behind the cap. Long streams holding every
	// allowed connection of a busy target would otherwise time its probes out and take it out
	// of rotation for everyone.
	probes roundTripper
	// plainHTTP is true when every target is cleartext and h1Transport serves the upstream.
	plainHTTP bool
	log       *slog.Logger
	m         upstreamMetrics

	total          time.Duration
	attempts       int
	retryConnect   bool
	retryTimeout   bool
	retryStatus    [10]uint64 // bit set of retried status codes 0..639
	idempotentOnly bool
	backoff        time.Duration
	budgetPercent  int64
	minConcurrent  int64

	passive *passiveSettings
	active  *activeSettings
	breaker *gobreaker.TwoStepCircuitBreaker[struct{}]
	// breakerSet is the breaker's effective settings, and breakerOwner the upstream its state
	// changes report to: a reload that keeps the settings hands the breaker, open or not, to
	// the new upstream (carryFrom) and points the owner there.
	breakerSet   breakerSettings
	breakerOwner *atomic.Pointer[Upstream]

	inflight atomic.Int64 // calls in RoundTrip, for the retry budget
	retrying atomic.Int64 // retry attempts in flight

	rebuildMu sync.Mutex
	closed    atomic.Bool
}

type passiveSettings struct {
	failures int32
	ejectFor time.Duration
}

type activeSettings struct {
	path               string
	interval, timeout  time.Duration
	healthy, unhealthy int
}

// Name returns the upstream's name.
func (u *Upstream) Name() string { return u.name }

var _ http.RoundTripper = (*Upstream)(nil)

// errBackend5xx and errExcluded are what the breaker is told about a call that got an answer:
// a 5xx counts as a failure; a call the caller ended (gone, out of its own deadline, its body
// failed or stalled), or that found no target, counts as neither.
var (
	errBackend5xx = errors.New("backend answered 5xx")
	errExcluded   = errors.New("excluded from breaker counts")
)

// RoundTrip sends req to one of the upstream's targets. req.URL's scheme and host are replaced by
// the chosen target's; the path, query, headers and req.Host are sent as given (leave Host empty
// to send the target's host). req is never modified: each attempt is a shallow copy. The total
// timeout covers every attempt and reading the body; closing the body or reading it to the end
// releases it. Errors are *Error and say nothing of the target to clients.
func (u *Upstream) RoundTrip(req *http.Request) (*http.Response, error) {
	parent := req.Context()
	if err := parent.Err(); err != nil {
		closeRequestBody(req)
		return nil, u.callerError(err, nil)
	}
	if req.URL == nil {
		closeRequestBody(req)
		return nil, &Error{Upstream: u.name, Kind: ErrBadGateway, Err: errors.New("request has no URL")}
	}
	var done func(error)
	if u.breaker != nil {
		var err error
		if done, err = u.breaker.Allow(); err != nil {
			closeRequestBody(req)
			return nil, &Error{Upstream: u.name, Kind: ErrCircuitOpen, Err: err}
		}
	}
	u.inflight.Add(1)
	resp, caller, err := u.do(parent, req)
	u.inflight.Add(-1)
	if done != nil {
		done(breakerVerdict(resp, caller, err))
	}
	return resp, err
}

// breakerVerdict is what the breaker is told about a call. caller is the last attempt's verdict:
// the caller's own context or body ended the call. Passive health ignores such an attempt, and
// so must the breaker: a caller with a deadline shorter than the backend's usual latency (a
// mirror's, a resolver's) would otherwise open the circuit for every other caller.
func breakerVerdict(resp *http.Response, caller bool, err error) error {
	if err != nil {
		if caller || errors.Is(err, ErrNoHealthyTarget) {
			return errExcluded
		}
		return err
	}
	if targetFault(resp.StatusCode) {
		return errBackend5xx
	}
	return nil
}

// targetFault reports a status that speaks of the target's health. 501 (a method the target does
// not implement, Tomcat's and Spring's answer to an unknown one) and 505 describe the request: a
// client sending "FOO /" would otherwise eject every target or open the circuit at will. nginx
// never counts either (proxy_next_upstream has no http_501).
func targetFault(code int) bool {
	return code >= 500 && code != http.StatusNotImplemented && code != http.StatusHTTPVersionNotSupported
}

// call is what one RoundTrip allocates besides the transport's own work: the first attempt's URL,
// the wrapper around the body that is returned and the deadline, in one allocation.
type call struct {
	url  url.URL
	body responseBody
	soft softDeadline
}

// verdict classifies one attempt.
type verdict struct {
	oc   outcome
	kind error // nil when a response arrived
	// connect means nothing reached the target (dial or TLS failure), so any method may be retried.
	connect bool
	// caller means the caller's own context ended (gone or its deadline): not the target's fault.
	caller bool
}

// do makes the call's attempts; caller reports that the last one was ended by the caller (its
// context or its body), not the target.
func (u *Upstream) do(parent context.Context, req *http.Request) (_ *http.Response, caller bool, _ error) {
	t := u.bal.pick(req, 0)
	if t == nil {
		closeRequestBody(req)
		return nil, false, &Error{Upstream: u.name, Kind: ErrNoHealthyTarget}
	}
	c := new(call)
	start := time.Now()
	ctx, cancel := u.callContext(parent, req, c, start)
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	var unread *unreadBody
	if !replayable {
		// A streamed body cannot be sent twice, but one no attempt has begun to read can still
		// go to another target after a connect failure.
		unread = &unreadBody{rc: req.Body}
		r := *req
		r.Body = unread
		req = &r
		defer unread.release()
	}
	var (
		tried     uint64
		resp      *http.Response
		err       error
		v         verdict
		retrySlot bool
	)
	for n := 0; ; n++ {
		tried |= t.bit
		if n > 0 {
			start = time.Now()
		}
		resp, v, err = u.attempt(ctx, req, t, c, n, start)
		if retrySlot {
			u.retrying.Add(-1)
			retrySlot = false
		}
		if !u.shouldRetry(n, req, resp, v, replayable || v.connect && unread.untouched()) || ctx.Err() != nil {
			break
		}
		if !u.acquireRetry() {
			if err != nil {
				v.kind = ErrRetryBudget
			}
			break
		}
		if !sleep(ctx, u.backoffFor(n)) {
			u.retrying.Add(-1)
			break
		}
		next := u.bal.pick(req, tried)
		if next == nil {
			u.retrying.Add(-1)
			break
		}
		if resp != nil {
			discard(resp.Body)
			t.active.Add(-1)
			resp = nil
		}
		if u.m.retries != nil {
			u.m.retries.Inc()
		}
		retrySlot = true
		t = next
	}
	if err != nil {
		cancel()
		var cbe *ClientBodyError
		if errors.As(err, &cbe) {
			return nil, true, err
		}
		if v.oc == outcomeCanceled {
			return nil, true, u.callerError(parent.Err(), err)
		}
		return nil, v.caller, &Error{Upstream: u.name, Target: t.url, Kind: v.kind, Err: err}
	}
	// A body-less answer has already given its connection back, and an upgraded connection
	// (101) belongs to the caller now and must outlive the total timeout: release at once.
	if resp.Body == nil || resp.Body == http.NoBody || resp.StatusCode == http.StatusSwitchingProtocols {
		t.active.Add(-1)
		cancel()
		return resp, false, nil
	}
	c.body = responseBody{rc: resp.Body, cancel: cancel, t: t}
	resp.Body = &c.body
	return resp, false, nil
}

// callContext bounds the call by the total timeout. Calls that h1Transport makes itself get a
// softDeadline, which it enforces as the connection's deadline; the rest get context.WithTimeout,
// whose runtime timer and cancellation wiring cost more per call than the rest of this file's
// bookkeeping together.
func (u *Upstream) callContext(parent context.Context, req *http.Request, c *call, now time.Time) (context.Context, context.CancelFunc) {
	if u.plainHTTP && bodyless(req) {
		c.soft = softDeadline{Context: parent, at: now.Add(u.total)}
		return &c.soft, noCancel
	}
	return context.WithTimeout(parent, u.total)
}

func noCancel() {}

// softDeadline carries a deadline without a timer. Its Done is the parent's: nothing may wait on
// the deadline through it, so it is only for code that reads Deadline and enforces it
// (h1Transport, which also dials under a real timer, and sleep). Err reports the deadline once
// it has passed.
type softDeadline struct {
	context.Context
	at time.Time
}

func (c *softDeadline) Deadline() (time.Time, bool) {
	if d, ok := c.Context.Deadline(); ok && d.Before(c.at) {
		return d, true
	}
	return c.at, true
}

func (c *softDeadline) Err() error {
	if err := c.Context.Err(); err != nil {
		return err
	}
	// The effective deadline, the parent's included: the connection's deadline (set from it)
	// can fire before the parent's own timer has cancelled the parent.
	if d, _ := c.Deadline(); !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// attempt sends one try to t, which began at start (for its duration metric). On error the
// target's active count is already released; on a response it is released when the body is.
func (u *Upstream) attempt(ctx context.Context, req *http.Request, t *target, c *call, n int, start time.Time) (*http.Response, verdict, error) {
	out := req.WithContext(ctx)
	var target *url.URL
	if n == 0 {
		target = &c.url
	} else {
		target = new(url.URL)
	}
	*target = *req.URL
	target.Scheme, target.Host = t.scheme, t.host
	out.URL = target
	if n > 0 && req.GetBody != nil && req.Body != nil && req.Body != http.NoBody {
		body, err := req.GetBody()
		if err != nil {
			return nil, verdict{oc: outcomeError, kind: ErrBadGateway}, err
		}
		out.Body = body
	}
	var body *bodyReader
	if out.Body != nil && out.Body != http.NoBody {
		body = &bodyReader{rc: out.Body}
		body.deadline, _ = ctx.Deadline()
		out.Body = body
		if set, ok := ctx.Value(bodyDeadlineKey{}).(func(time.Time) error); ok && req.GetBody == nil && !body.deadline.IsZero() {
			// The transport waits for its body writer, which waits on the client: a client
			// that stalls would hold the call past the total timeout until the server's read
			// timeout. Its reads now end at the call's deadline, as the caller's body error.
			// Only a streamed body is the client's: a resolver's JSON (replayable bytes) is
			// sent under the client's context long after its body was read, and a deadline on
			// the client's connection would then end net/http's watch for a gone client with a
			// timeout, which cancels the request.
			_ = set(body.deadline)
		}
	}
	t.active.Add(1)
	resp, err := u.transport.RoundTrip(out)
	if err == nil {
		if k := spacedFieldName(resp.Header); k != "" {
			// net/http keeps "Content-Length : 2" as a field named "Content-Length " (Go issue
			// 34540): the answer's length went unread and the field would be passed on to the
			// client as written, for a proxy behind it to read as the length.
			_ = resp.Body.Close()
			resp, err = nil, fmt.Errorf("net/http: the answer has a field name with whitespace before its colon (%q), which RFC 9112 (5.1) forbids", k)
		}
	}
	elapsed := time.Since(start)
	var v verdict
	switch {
	case err != nil && body != nil && body.failed() != nil:
		// The client's body failed (too large, malformed chunks, too slow), not the target: no
		// retry, no ejection, no breaker count, and the caller answers 4xx.
		t.active.Add(-1)
		v = verdict{oc: outcomeCanceled, caller: true}
		err = &ClientBodyError{Err: body.failed()}
	case err != nil:
		t.active.Add(-1)
		v = classify(ctx, req.Context(), err)
		if v.kind == ErrTimeout && !v.caller && body != nil && body.waiting() {
			// The total timeout fired while the transport was still waiting for the client's
			// next body bytes: the target never had the whole request, so a slow upload must
			// not eject it or count in the breaker. The caller answers 408.
			v = verdict{oc: outcomeCanceled, caller: true}
			err = &ClientBodyError{Err: fmt.Errorf("the body stalled until the upstream's total timeout: %w", context.DeadlineExceeded)}
		}
	default:
		v.oc = statusOutcome(resp.StatusCode)
	}
	if t.m.duration != nil {
		t.m.duration.Observe(elapsed.Seconds())
		t.m.requests[v.oc].Inc()
	}
	switch {
	case v.caller:
	case v.kind != nil || (v.oc == outcome5xx && targetFault(resp.StatusCode)):
		u.recordFailure(t)
	default:
		// Plain load, not a store, so that healthy targets keep their cache line shared.
		if t.fails.Load() != 0 {
			t.fails.Store(0)
		}
	}
	return resp, v, err
}

// classify names the failure of an attempt that got no response.
func classify(ctx, parent context.Context, err error) verdict {
	perr := parent.Err()
	if d, ok := parent.Deadline(); ok && perr == nil && !time.Now().Before(d) {
		// The caller's deadline passed and its timer has not fired yet; an I/O deadline set
		// from it can be first. Still the caller's, not the target's.
		perr = context.DeadlineExceeded
	}
	if perr != nil {
		if errors.Is(perr, context.Canceled) {
			return verdict{oc: outcomeCanceled, kind: context.Canceled, caller: true}
		}
		return verdict{oc: outcomeTimeout, kind: ErrTimeout, caller: true}
	}
	if ctx.Err() != nil {
		return verdict{oc: outcomeTimeout, kind: ErrTimeout}
	}
	var timeout interface{ Timeout() bool }
	isTimeout := errors.As(err, &timeout) && timeout.Timeout()
	if isConnectError(err) {
		v := verdict{oc: outcomeConnectFailure, kind: ErrBadGateway, connect: true}
		if isTimeout {
			v.kind = ErrTimeout
		}
		return v
	}
	if isTimeout {
		return verdict{oc: outcomeTimeout, kind: ErrTimeout}
	}
	return verdict{oc: outcomeError, kind: ErrBadGateway}
}

// isConnectError reports a failure before the request could be written: dialing (refused,
// unreachable, DNS, connect timeout) or the TLS handshake.
func isConnectError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var cve *tls.CertificateVerificationError
	var rhe tls.RecordHeaderError
	var ae tls.AlertError
	if errors.As(err, &cve) || errors.As(err, &rhe) || errors.As(err, &ae) {
		return true
	}
	// net/http's handshake timeout has no exported type.
	return err.Error() == "net/http: TLS handshake timeout"
}

func (u *Upstream) callerError(ctxErr, cause error) error {
	if cause == nil {
		cause = ctxErr
	}
	if errors.Is(ctxErr, context.Canceled) {
		return &Error{Upstream: u.name, Kind: context.Canceled, Err: cause}
	}
	return &Error{Upstream: u.name, Kind: ErrTimeout, Err: cause}
}

func (u *Upstream) shouldRetry(n int, req *http.Request, resp *http.Response, v verdict, replayable bool) bool {
	if n >= u.attempts || v.caller || !replayable {
		return false
	}
	if resp != nil {
		code := resp.StatusCode
		return code >= 0 && code < 640 && u.retryStatus[code/64]&(1<<(code%64)) != 0 && u.idempotentOK(req)
	}
	if v.connect {
		// Nothing was sent, so even a POST is safe to send elsewhere.
		return u.retryConnect || (u.retryTimeout && v.kind == ErrTimeout)
	}
	return v.kind == ErrTimeout && u.retryTimeout && u.idempotentOK(req)
}

func (u *Upstream) idempotentOK(req *http.Request) bool {
	if !u.idempotentOnly {
		return true
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	// The same convention as net/http's own retries.
	_, key := req.Header["Idempotency-Key"]
	_, xkey := req.Header["X-Idempotency-Key"]
	return key || xkey
}

// acquireRetry takes a slot of the retry budget: concurrent retries stay under budget_percent of
// the calls in flight, or min_concurrent, whichever is larger.
func (u *Upstream) acquireRetry() bool {
	limit := max(u.minConcurrent, u.inflight.Load()*u.budgetPercent/100)
	if u.retrying.Add(1) > limit {
		u.retrying.Add(-1)
		return false
	}
	return true
}

// backoffFor is full-jitter exponential backoff: random in [0, base·2ⁿ), capped at ten times base.
func (u *Upstream) backoffFor(n int) time.Duration {
	if u.backoff <= 0 {
		return 0
	}
	d := u.backoff << min(n, 16)
	d = min(d, 10*u.backoff)
	return time.Duration(rand.Int64N(int64(d)) + 1)
}

// sleep waits d unless ctx ends first, and reports whether ctx is still live. It reads the
// deadline itself because a softDeadline's Done does not close when it passes.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	expires := false
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
		d, expires = max(time.Until(dl), 0), true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return !expires
	}
}

// discard closes an abandoned answer before a retry. It must not wait on it: a 503 whose body
// trickles in would hold the retry until the total timeout, which then starts with an expired
// deadline and is counted against the healthy target it went to. So only a body that is already
// whole in memory (h1Transport's, see drainBuffered) is read to its end to keep the connection;
// any other is closed, and the connection with it.
func discard(body io.ReadCloser) {
	if d, ok := body.(interface{ drainBuffered() }); ok {
		d.drainBuffered()
	}
	_ = body.Close()
}

// unreadBody is a streamed request body that may still go to another target while no attempt
// has begun to read it. http.Transport closes the body of a call it could not connect for; that
// Close is held back (release makes it at the end of the call). A Close once a Read has begun
// passes at once: the transport closes the body to unblock its writer when the target fails.
type unreadBody struct {
	rc io.ReadCloser

	mu      sync.Mutex
	started bool // a Read has begun
	held    bool // a Close came before any Read
}

func (b *unreadBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	b.started = true
	b.mu.Unlock()
	return b.rc.Read(p)
}

func (b *unreadBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.started {
		b.held = true
		return nil
	}
	return b.rc.Close()
}

// untouched reports that no attempt has read from the body; nil is never untouched.
func (b *unreadBody) untouched() bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.started
}

// release makes a Close that was held back for a retry that did not come.
func (b *unreadBody) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held && !b.started {
		_ = b.rc.Close()
	}
}

func closeRequestBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// responseBody releases the call's timeout and the target's active count once the caller is done
// with the body: at EOF or an error from Read, or at Close, whichever comes first.
type responseBody struct {
	rc       io.ReadCloser
	cancel   context.CancelFunc
	t        *target
	released atomic.Bool
}

func (b *responseBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil {
		// net/http has already taken the connection back when Read returns io.EOF, so
		// cancelling the context now cannot cost the connection.
		b.release()
	}
	return n, err
}

func (b *responseBody) Close() error {
	err := b.rc.Close()
	b.release()
	return err
}

func (b *responseBody) release() {
	if b.released.CompareAndSwap(false, true) {
		b.t.active.Add(-1)
		b.cancel()
	}
}

// recordFailure counts a failed call against t and ejects it after consecutive_failures.
func (u *Upstream) recordFailure(t *target) {
	if u.passive == nil {
		return
	}
	if t.fails.Add(1) < u.passive.failures {
		return
	}
	now := monoAt(time.Now())
	until := now + int64(u.passive.ejectFor)
	for {
		old := t.ejectedUntil.Load()
		if old > now {
			return // already ejected by a concurrent failure
		}
		if t.ejectedUntil.CompareAndSwap(old, until) {
			break
		}
	}
	t.fails.Store(0)
	if t.m.ejections != nil {
		t.m.ejections.Inc()
	}
	u.log.Warn("upstream target ejected after consecutive failures",
		"upstream", u.name, "target", t.url, "failures", u.passive.failures, "eject_for", u.passive.ejectFor)
	u.rebuild()
	time.AfterFunc(u.passive.ejectFor, u.rebuild)
}

// closeIdle closes the pooled connections of both transports.
func (u *Upstream) closeIdle() {
	u.transport.CloseIdleConnections()
	if u.probes != u.transport {
		u.probes.CloseIdleConnections()
	}
}

// rebuild recomputes which targets are in rotation and hands them to the balancer. It runs when
// health changes, never per request.
func (u *Upstream) rebuild() {
	u.rebuildMu.Lock()
	defer u.rebuildMu.Unlock()
	now := monoAt(time.Now())
	eligible := make([]*target, 0, len(u.targets))
	for _, t := range u.targets {
		until := t.ejectedUntil.Load()
		if until != 0 && until <= now {
			if t.ejectedUntil.CompareAndSwap(until, 0) {
				u.log.Info("upstream target back from ejection", "upstream", u.name, "target", t.url)
			}
			until = 0
		}
		in := t.weight > 0 && t.healthy.Load() && until == 0
		t.inRotation.Store(in)
		if in {
			eligible = append(eligible, t)
		}
		u.setHealthyGauge(t, t.healthy.Load() && until == 0)
	}
	u.bal.update(eligible)
}

func (u *Upstream) setHealthyGauge(t *target, healthy bool) {
	// A closed registry's timers must not overwrite the gauge its successor now owns.
	if t.m.healthy == nil || u.closed.Load() {
		return
	}
	if healthy {
		t.m.healthy.Set(1)
	} else {
		t.m.healthy.Set(0)
	}
}

// spacedFieldName returns a field name of h holding a space or tab, or "".
func spacedFieldName(h http.Header) string {
	for k := range h {
		if strings.ContainsAny(k, " \t") {
			return k
		}
	}
	return ""
}
