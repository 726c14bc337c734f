package routes

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/big"
	"math/rand/v2"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portico-gw/portico/internal/reqctx"
)

// Mirror defaults, as documented on MirrorConfig.
const (
	defaultMirrorMaxBody    = 1 << 20
	defaultMirrorConcurrent = 64
	defaultMirrorTimeout    = 5 * time.Second
	// closeCancelGrace is how long Close waits for cancelled shadow calls to return.
	closeCancelGrace = 250 * time.Millisecond
)

// HeaderMirror marks a shadow request so the shadow service (and its logs) can tell copies from
// real traffic.
const HeaderMirror = "X-Portico-Mirror"

// mirror sends fire-and-forget copies of a route's requests to a shadow upstream and, with
// compare, counts whether the shadow answers like the primary.
type mirror struct {
	route    string
	upstream string
	rt       http.RoundTripper
	percent  float64
	compare  bool
	maxBody  int64
	timeout  time.Duration
	rewrite  func(*httputil.ProxyRequest)
	c        mirrorCounters
	logger   *slog.Logger

	// sem bounds shadow calls in flight: a send takes a slot, and a full channel means drop.
	sem chan struct{}
	// base is the parent of every shadow call's context, so Close can cancel stragglers; shadow
	// calls deliberately do not inherit the client's context, which ends with the primary answer.
	base      context.Context
	cancel    context.CancelFunc
	closed    atomic.Bool
	closeOnce sync.Once
}

func newMirror(route string, c MirrorConfig, deps Deps, rewrite func(*httputil.ProxyRequest)) (*mirror, error) {
	if c.Upstream == "" {
		return nil, errors.New("upstream is required")
	}
	rt, ok := deps.Upstream(c.Upstream)
	if !ok || rt == nil {
		return nil, fmt.Errorf("unknown upstream %q", c.Upstream)
	}
	percent := 100.0
	if c.Percent != nil {
		percent = *c.Percent
	}
	if math.IsNaN(percent) || percent < 0 || percent > 100 {
		return nil, fmt.Errorf("percent %v out of range 0..100", percent)
	}
	if c.MaxConcurrent < 0 {
		return nil, fmt.Errorf("max_concurrent %d is negative", c.MaxConcurrent)
	}
	conc := c.MaxConcurrent
	if conc == 0 {
		conc = defaultMirrorConcurrent
	}
	m := &mirror{
		route:    route,
		upstream: c.Upstream,
		rt:       rt,
		percent:  percent,
		compare:  c.Compare,
		maxBody:  c.MaxBodyBytes.Or(defaultMirrorMaxBody),
		timeout:  c.Timeout.Or(defaultMirrorTimeout),
		rewrite:  rewrite,
		c:        deps.Metrics.forRoute(route),
		logger:   deps.Logger.With("route", route, "mirror", c.Upstream),
		sem:      make(chan struct{}, conc),
	}
	m.base, m.cancel = context.WithCancel(context.Background())
	return m, nil
}

// start decides whether r is mirrored and, if so, prepares the shadow call. It returns the request
// to proxy: one whose body copies itself for the shadow as the primary reads it, and whose context
// carries the compare job. The primary is never held back for the mirror: a client that streams
// its body (full duplex over HTTP/2, Expect: 100-continue) waits for an answer before it sends the
// rest, so reading the body ahead of the primary would leave client and gateway waiting on each
// other.
func (m *mirror) start(r *http.Request) *http.Request {
	if m.percent < 100 && rand.Float64()*100 >= m.percent {
		return r
	}
	if r.Header.Get("Upgrade") != "" {
		// A connection upgrade cannot be replayed (Envoy never mirrors upgrades either).
		return r
	}
	if m.closed.Load() {
		m.c.dropped.Inc()
		return r
	}
	if r.ContentLength > m.maxBody {
		m.c.dropped.Inc()
		return r
	}
	select {
	case m.sem <- struct{}{}:
	default:
		m.c.dropped.Inc()
		return r
	}
	call := &shadowCall{m: m, out: m.shadowRequest(r)}
	if info := reqctx.From(r.Context()); info != nil {
		// A copy: the request goroutine keeps writing its own Info while the shadow runs.
		shadowInfo := *info
		shadowInfo.Upstream = m.upstream
		call.info = &shadowInfo
	}
	if m.compare {
		call.job = &compareJob{maxBody: m.maxBody, done: make(chan capture, 1)}
		r = r.WithContext(context.WithValue(r.Context(), jobKey{}, call.job))
	}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		call.send(nil)
		return r
	}
	b := &shadowBody{rc: r.Body, call: call, limit: m.maxBody}
	if r.ContentLength > 0 {
		b.buf = make([]byte, 0, r.ContentLength) // at most maxBody, checked above
	}
	r.Body = b
	return r
}

// shadowCall is a shadow request built on the request goroutine, waiting for its body. It holds a
// slot of the mirror's semaphore until it is sent or skipped.
type shadowCall struct {
	m    *mirror
	out  *http.Request
	info *reqctx.Info
	job  *compareJob
}

// send launches the shadow call with body. The shadow's timeout starts here, not when the client's
// request arrived, so a slow upload does not use it up.
func (c *shadowCall) send(body []byte) {
	m := c.m
	if m.closed.Load() {
		c.skip()
		return
	}
	ctx, cancel := context.WithTimeout(m.base, m.timeout)
	if c.info != nil {
		ctx = reqctx.With(ctx, c.info)
	}
	out := c.out.WithContext(ctx)
	if body != nil {
		out.Body, out.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	go m.run(ctx, cancel, out, c.job)
}

// skip gives up the shadow call: its body was larger than max_body_bytes, failed, or was not read
// to the end by the primary. Counted as dropped, like a body too large to mirror.
func (c *shadowCall) skip() {
	<-c.m.sem
	c.m.c.dropped.Inc()
}

// shadowBody is the primary's request body, copied for the shadow as the primary reads it, up to
// the mirror's max_body_bytes. The shadow is sent when the primary has read it to EOF, and skipped
// when it grows past the limit, fails, or is closed before EOF. Read runs on the transport's
// goroutine and Close may run on the request's, hence the lock.
type shadowBody struct {
	rc    io.ReadCloser
	call  *shadowCall
	limit int64

	mu   sync.Mutex
	buf  []byte
	done bool // the shadow has been sent or skipped
}

func (b *shadowBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return n, err
	}
	switch {
	case int64(len(b.buf))+int64(n) > b.limit:
		b.finish(false)
	case err == io.EOF:
		b.buf = append(b.buf, p[:n]...)
		b.finish(true)
	case err != nil:
		b.finish(false)
	default:
		b.buf = append(b.buf, p[:n]...)
	}
	return n, err
}

func (b *shadowBody) Close() error {
	b.mu.Lock()
	if !b.done {
		b.finish(false)
	}
	b.mu.Unlock()
	return b.rc.Close()
}

// finish sends or skips the shadow call, once; b.mu is held.
func (b *shadowBody) finish(complete bool) {
	b.done = true
	if complete {
		b.call.send(b.buf)
	} else {
		b.call.skip()
	}
	b.buf = nil
}

// shadowRequest builds the copy on the request goroutine (the inbound request must not be shared
// with the shadow's goroutine), with the same rewriting as the primary, Host included. It has no
// body and no context yet: shadowCall.send gives it both.
func (m *mirror) shadowRequest(r *http.Request) *http.Request {
	out := r.WithContext(m.base)
	out.RequestURI = ""
	out.Body, out.ContentLength, out.GetBody = nil, 0, nil
	// A client's "Connection: close" is about its own connection; the shadow's stays pooled,
	// like the primary's (an HTTP/1.0 client would otherwise cost a dial per shadow).
	out.Close = false
	u := *r.URL // the rewrite changes the path in place
	// The query the primary gets (withCleanQuery): the shadow must not see parameters the
	// route's policies never judged, nor count the difference as a mismatch.
	out.URL = withCleanQuery(&u)
	// What the primary's upstream gets: no hop-by-hop fields, forwarding fields left to the rewrite.
	out.Header = outboundHeader(r.Header)
	pr := &httputil.ProxyRequest{In: r, Out: out}
	m.rewrite(pr)
	out = pr.Out
	// The Host the primary gets (preserve_host's client Host, or a request_headers.set Host),
	// marked with "-shadow". Left empty, as it is for the primary, the shadow's upstream sends
	// its own target's host: a virtual-hosted shadow service then serves the site it is, not the
	// client's name for the primary.
	out.Host = shadowHost(out.Host)
	out.Header.Set(HeaderMirror, "1")
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header.Set("User-Agent", "")
	}
	return out
}

// shadowHost appends "-shadow" to the host, before any port, as Envoy does to the authority it
// mirrors, so the shadow service can tell copies from live traffic by Host alone. An empty host
// stays empty.
func shadowHost(h string) string {
	if h == "" {
		return ""
	}
	host := stripPort(h)
	return host + "-shadow" + h[len(host):]
}

// run makes the shadow call; it never touches the client's response.
func (m *mirror) run(ctx context.Context, cancel context.CancelFunc, out *http.Request, job *compareJob) {
	defer func() { <-m.sem }()
	defer cancel()
	defer func() {
		if v := recover(); v != nil {
			m.logger.Error("mirror panicked", "panic", v)
		}
	}()
	resp, err := m.rt.RoundTrip(out)
	if err != nil {
		m.c.failed.Inc()
		m.logger.Debug("shadow call failed", "error", err)
		if job != nil {
			m.c.compareErr.Inc()
		}
		return
	}
	m.c.sent.Inc()
	if job == nil {
		// Drain a bounded amount so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, m.maxBody))
		_ = resp.Body.Close()
		return
	}
	shadow := capture{status: resp.StatusCode, encoding: resp.Header.Get("Content-Encoding")}
	shadow.body, shadow.err = readCapped(resp.Body, m.maxBody)
	_ = resp.Body.Close()

	var primary capture
	select {
	case primary = <-job.done:
	case <-ctx.Done():
		primary.err = fmt.Errorf("waiting for the primary response: %w", ctx.Err())
	}
	m.compareResults(primary, shadow)
}

func (m *mirror) compareResults(primary, shadow capture) {
	switch {
	case primary.err != nil:
		m.c.compareErr.Inc()
		m.logger.Debug("mirror compare skipped", "side", "primary", "error", primary.err)
	case shadow.err != nil:
		m.c.compareErr.Inc()
		m.logger.Debug("mirror compare skipped", "side", "shadow", "error", shadow.err)
	default:
		same, err := sameResponse(primary, shadow, m.maxBody)
		switch {
		case err != nil:
			m.c.compareErr.Inc()
			m.logger.Debug("mirror compare failed", "error", err)
		case same:
			m.c.compareMatch.Inc()
		default:
			m.c.compareMiss.Inc()
			m.logger.Info("mirror mismatch", "primary_status", primary.status, "shadow_status", shadow.status)
		}
	}
}

// capture is one side's answer as far as comparing goes.
type capture struct {
	status   int
	encoding string
	body     []byte
	err      error
}

var errTooLarge = errors.New("body larger than the mirror's max_body_bytes")

func readCapped(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errTooLarge
	}
	return b, nil
}

// sameResponse reports equal status and equal body: JSON semantically (key order and spacing do
// not matter), anything else byte for byte. Gzip bodies are compared decompressed, since two
// services may compress the same answer differently.
func sameResponse(a, b capture, limit int64) (bool, error) {
	if a.status != b.status {
		return false, nil
	}
	ab, err := decoded(a, limit)
	if err != nil {
		return false, fmt.Errorf("primary body: %w", err)
	}
	bb, err := decoded(b, limit)
	if err != nil {
		return false, fmt.Errorf("shadow body: %w", err)
	}
	if bytes.Equal(ab, bb) {
		return true, nil
	}
	av, aerr := decodeJSON(ab)
	bv, berr := decodeJSON(bb)
	if aerr != nil || berr != nil {
		return false, nil
	}
	return jsonEqual(av, bv), nil
}

// decodeJSON reads exactly one JSON value, numbers kept as written: float64 would make distinct
// 64-bit IDs equal (1234567890123456789 and ...788), and a new service answering wrong IDs
// would count as a match.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

// jsonEqual compares decoded JSON: objects by key, arrays in order, numbers by value.
func jsonEqual(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, av := range a {
			bv, ok := b[k]
			if !ok || !jsonEqual(av, bv) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !jsonEqual(a[i], b[i]) {
				return false
			}
		}
		return true
	case json.Number:
		b, ok := b.(json.Number)
		return ok && sameNumber(string(a), string(b))
	default: // string, bool, nil
		return a == b
	}
}

// sameNumber compares two JSON number literals: integers exactly, whatever their size; anything
// with a fraction or an exponent as float64 (so 1 and 1.0 are the same number).
func sameNumber(a, b string) bool {
	if a == b {
		return true
	}
	if !strings.ContainsAny(a, ".eE") && !strings.ContainsAny(b, ".eE") {
		x, okx := new(big.Int).SetString(a, 10)
		y, oky := new(big.Int).SetString(b, 10)
		return okx && oky && x.Cmp(y) == 0
	}
	x, errx := strconv.ParseFloat(a, 64)
	y, erry := strconv.ParseFloat(b, 64)
	return errx == nil && erry == nil && x == y
}

func decoded(c capture, limit int64) ([]byte, error) {
	if !strings.EqualFold(c.encoding, "gzip") || len(c.body) == 0 {
		return c.body, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(c.body))
	if err != nil {
		return nil, err
	}
	return readCapped(zr, limit)
}

// compareJob connects the primary's recorded answer to the shadow goroutine that compares it.
type compareJob struct {
	maxBody int64
	once    sync.Once
	done    chan capture // buffered 1: the primary never blocks on it
}

func (j *compareJob) finish(c capture) {
	j.once.Do(func() { j.done <- c })
}

func (j *compareJob) primaryFailed(err error) {
	j.finish(capture{err: fmt.Errorf("primary call failed: %w", err)})
}

type jobKey struct{}

func jobFrom(ctx context.Context) *compareJob {
	j, _ := ctx.Value(jobKey{}).(*compareJob)
	return j
}

var errPrimaryIncomplete = errors.New("primary body not read to the end")

// recordPrimary is the ModifyResponse of routes that compare: it tees the primary's body as the
// client reads it, so comparing never delays or buffers the client's answer.
func recordPrimary(resp *http.Response) error {
	if resp.Request == nil {
		return nil
	}
	job := jobFrom(resp.Request.Context())
	if job == nil {
		return nil
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		job.finish(capture{err: errors.New("protocol switched")})
		return nil
	}
	if resp.ContentLength > job.maxBody {
		job.finish(capture{err: errTooLarge})
		return nil
	}
	t := &teeBody{rc: resp.Body, job: job, c: capture{status: resp.StatusCode, encoding: resp.Header.Get("Content-Encoding")}}
	if resp.ContentLength > 0 {
		t.c.body = make([]byte, 0, resp.ContentLength)
	}
	resp.Body = t
	return nil
}

// teeBody records what the client reads, up to the job's limit, and reports on EOF or Close.
type teeBody struct {
	rc  io.ReadCloser
	job *compareJob
	c   capture
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.rc.Read(p)
	if n > 0 && t.c.err == nil {
		if int64(len(t.c.body)+n) > t.job.maxBody {
			t.c.err, t.c.body = errTooLarge, nil
		} else {
			t.c.body = append(t.c.body, p[:n]...)
		}
	}
	switch {
	case err == io.EOF:
		t.job.finish(t.c)
	case err != nil:
		t.job.finish(capture{err: err})
	}
	return n, err
}

func (t *teeBody) Close() error {
	t.job.finish(capture{err: errPrimaryIncomplete})
	return t.rc.Close()
}

// close stops new shadow calls and waits until deadline for those in flight, then cancels the rest
// and gives them a moment to return. Taking every semaphore slot is the wait: once all are held, no
// shadow call is running and none can start.
func (m *mirror) close(deadline time.Time) {
	m.closeOnce.Do(func() {
		m.closed.Store(true)
		held := 0
		held = m.fill(held, deadline)
		if held < cap(m.sem) {
			m.cancel()
			m.fill(held, time.Now().Add(closeCancelGrace))
		}
		m.cancel()
	})
}

func (m *mirror) fill(held int, deadline time.Time) int {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	for held < cap(m.sem) {
		select {
		case m.sem <- struct{}{}:
			held++
		case <-t.C:
			return held
		}
	}
	return held
}
