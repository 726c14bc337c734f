package upstreams

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// roundTripper is what an Upstream sends attempts and probes through: http.Transport, or
// h1Transport in front of it.
type roundTripper interface {
	http.RoundTripper
	CloseIdleConnections()
}

// h1Transport sends body-less HTTP/1.1 requests to cleartext targets on the caller's own
// goroutine: write the request, read the answer, hand the connection back at the body's end.
// http.Transport gives every connection a reader and a writer goroutine and passes each request
// and response between three goroutines over channels; on a proxy's hot path those hand-offs (and
// the thread wake-ups they cost on a busy machine) were the largest cost after the syscalls
// themselves. Everything else — TLS, HTTP/2, request bodies, upgrades, connection limits — goes
// to the wrapped http.Transport unchanged, so those keep net/http's behaviour exactly.
//
// It writes and reads the common case itself (writeRequest, readSimpleResponse: body-less
// requests, answers with one Content-Length) and leaves everything else to net/http's own wire
// code (Request.Write, http.ReadResponse), so chunked bodies, trailers and odd framing are
// net/http's. What it re-implements is small: an idle pool per
// host, the response-header timeout as a read deadline, cancellation as a deadline in the past,
// 1xx answers reported to httptrace like http.Transport does, the response-head size limit, a
// look at the socket before a pooled connection is used (peeker: what http.Transport's
// per-connection reader would have seen), one retry on a fresh connection when a pooled one
// turns out to have been closed by the target before answering, and an idle sweeper.
type h1Transport struct {
	fallback    *http.Transport
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	respHeader  time.Duration
	idleTimeout time.Duration
	maxIdle     int

	mu       sync.Mutex
	idle     map[string][]*h1Conn
	closed   bool
	sweeping bool // the idle sweeper runs (see sweep)
}

// h1Conn is one pooled connection with its buffers, kept together so that reuse allocates nothing.
type h1Conn struct {
	conn net.Conn
	// lr is what br reads the connection through: it caps how much an answer's head may take.
	lr     headLimit
	br     *bufio.Reader
	bw     *bufio.Writer
	host   string
	idleAt time.Time
	// abort interrupts a blocked read or write; made once per connection, not per call.
	abort func()
	// peek looks at the idle socket before reuse (nil where the platform cannot).
	peek *peeker
	// raw lets send wait for the answer without a read that must fail (nil: no such access).
	raw syscall.RawConn
	// sendOnce is send's callback, made once per connection so that a call allocates nothing;
	// sent and sendErr are what it reports.
	sendOnce func(fd uintptr) bool
	sent     bool
	sendErr  error
	// mustPeek: the request goes on a pooled connection, whose socket is looked at (peek) just
	// before its first byte goes out.
	mustPeek bool
}

// errIdleClosed: a pooled connection turned out to be closed (or to hold bytes nobody asked for)
// before any of the request was written; another connection is taken.
var errIdleClosed = errors.New("pooled connection closed by the target while idle")

// Write is what bw writes through. On a pooled connection the socket is looked at right before
// the request's first byte goes out, wherever the flush that sends it happens: the target may
// have closed the connection while it was idle, or sent bytes nobody asked for (a 408 before
// closing, or more than it framed), and the request must neither be written to a closed socket
// nor read those bytes as its answer. http.Transport's reader goroutine notices the same on its
// own; h1Transport has none and asks the socket.
func (pc *h1Conn) Write(p []byte) (int, error) {
	if pc.mustPeek {
		pc.mustPeek = false
		if pc.peek.closed() {
			return 0, errIdleClosed
		}
	}
	return pc.conn.Write(p)
}

var _ roundTripper = (*h1Transport)(nil)

// headLimit reads the connection with a budget, as http.Transport's persistConn does: an
// answer's head may take MaxResponseHeaderBytes, its body anything.
type headLimit struct {
	net.Conn
	left int64
}

func (l *headLimit) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, errHeadTooLarge
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.Conn.Read(p)
	l.left -= int64(n)
	return n, err
}

var errHeadTooLarge = errors.New("read limit exhausted")

// defaultMaxHeadBytes is http.Transport's limit when MaxResponseHeaderBytes is 0.
const defaultMaxHeadBytes = 10 << 20

func (t *h1Transport) maxHeadBytes() int64 {
	if n := t.fallback.MaxResponseHeaderBytes; n > 0 {
		return n
	}
	return defaultMaxHeadBytes
}

// stale marks a failure that proves nothing reached the target's application: the pooled
// connection was closed or reset before the first byte of any answer. Such a request may be
// sent again on a new connection; one whose answer had begun (a 1xx) may not.
type stale struct{ error }

func (s stale) Unwrap() error { return s.error }

// aLongTimeAgo is a deadline in the past: it makes a blocked read or write return at once.
var aLongTimeAgo = time.Unix(1, 0)

func (t *h1Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.fastPath(req) {
		return t.fallback.RoundTrip(req)
	}
	ctx := req.Context()
	host := canonicalHost(req.URL)
	for try := 0; ; try++ {
		pc, reused := t.get(host)
		if pc == nil {
			var err error
			if pc, err = t.dialConn(ctx, host); err != nil {
				return nil, err
			}
		}
		pc.mustPeek = reused
		resp, err := t.exchange(ctx, req, pc)
		if err == nil {
			return resp, nil
		}
		if errors.Is(err, errIdleClosed) {
			continue // nothing was sent
		}
		// A pooled connection the target closed after the check above fails before any
		// answer; net/http retries such a request on a new connection, and so do we, once per
		// pooled connection.
		var st stale
		if !errors.As(err, &st) {
			return nil, err
		}
		if !reused || ctx.Err() != nil || !resendable(req) || try >= t.maxIdle {
			return nil, st.error
		}
	}
}

// fastPath is true for what h1Transport handles itself: plain HTTP, no request body, no upgrade.
func (t *h1Transport) fastPath(req *http.Request) bool {
	return req.URL != nil && req.URL.Scheme == "http" && bodyless(req)
}

// bodyless is a request h1Transport sends itself when the target is cleartext.
func bodyless(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody {
		return false
	}
	if _, ok := req.Header["Upgrade"]; ok {
		return false
	}
	_, ok := req.Header["Expect"]
	return !ok
}

// resendable follows net/http's rule for resending a request after a stale connection.
func resendable(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, key := req.Header["Idempotency-Key"]
	_, xkey := req.Header["X-Idempotency-Key"]
	return key || xkey
}

func staleConnError(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// canonicalHost is the address to dial for u, with the default port when it has none (as
// http.Transport's canonicalAddr: an IPv6 literal loses its brackets before they are put back).
func canonicalHost(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

func (t *h1Transport) dialConn(ctx context.Context, host string) (*h1Conn, error) {
	if d, ok := ctx.Deadline(); ok {
		// A softDeadline's Done does not close at its deadline, and a resolver that waits on
		// Done (cgo's) would outlive it; dialing is rare enough for a real timer.
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d)
		defer cancel()
	}
	conn, err := t.dial(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	pc := &h1Conn{conn: conn, lr: headLimit{Conn: conn, left: math.MaxInt64}, host: host}
	pc.bw = bufio.NewWriterSize(pc, 4<<10)
	pc.br = bufio.NewReaderSize(&pc.lr, 4<<10)
	pc.abort = func() { _ = conn.SetDeadline(aLongTimeAgo) }
	pc.peek = newPeeker(conn)
	if sc, ok := conn.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			pc.raw = raw
			pc.sendOnce = func(fd uintptr) bool {
				if pc.sent {
					return true
				}
				pc.sent = true
				// mustPeek is still set unless the head outgrew bw and went out in part.
				idle := pc.mustPeek
				pc.mustPeek = false // looked at here, not again in Write
				if pc.peek.unusableFD(fd) {
					if idle {
						pc.sendErr = errIdleClosed
						return true
					}
					// Bytes before the request was (all) sent: a target that spoke first on a
					// new connection, or answered a long head before reading all of it. Their
					// wake-up may have come before the reset, so no wait: the read finds them.
					pc.sendErr = pc.bw.Flush()
					return true
				}
				pc.sendErr = pc.bw.Flush()
				return pc.sendErr != nil
			}
		}
	}
	return pc, nil
}

// send writes the buffered request and waits until its answer can be read. A plain Flush
// followed by the answer's read costs a read that fails with EAGAIN on every exchange, since the
// answer cannot be there yet, and only then does Go wait for the socket: one wasted syscall per
// call, on the proxy's hot path. Inside RawConn.Read the runtime has already reset the socket's
// readiness (edge-triggered: a wake-up that came before the reset is forgotten), so the socket
// is looked at first (the peek a pooled connection needs anyway, see Write): bytes that came
// before the reset are seen there, and every later byte wakes the wait. The wait ends with the
// answer readable, at the end of the stream, or at the read deadline. It returns the write's
// error and the wait's.
func (pc *h1Conn) send() (writeErr, waitErr error) {
	if pc.raw == nil || pc.peek == nil || pc.br.Buffered() != 0 {
		return pc.bw.Flush(), nil
	}
	pc.sent, pc.sendErr = false, nil
	waitErr = pc.raw.Read(pc.sendOnce)
	if !pc.sent {
		// The wait failed before the callback ran (a deadline already past, a closed
		// connection): nothing was written, and the write reports why.
		return pc.bw.Flush(), nil
	}
	if pc.sendErr != nil {
		return pc.sendErr, nil
	}
	return nil, waitErr
}

// exchange sends req on pc and reads the answer's header. On error pc is closed.
func (t *h1Transport) exchange(ctx context.Context, req *http.Request, pc *h1Conn) (*http.Response, error) {
	// Cancellation interrupts a blocked read or write through the connection's deadline; a
	// connection that saw this is never reused.
	stop := context.AfterFunc(ctx, pc.abort)
	fail := func(err error) (*http.Response, error) {
		stop()
		_ = pc.conn.Close()
		if ctxErr := ctx.Err(); ctxErr != nil {
			// As http.Transport does: the caller learns why, not which read was interrupted.
			return nil, ctxErr
		}
		return nil, err
	}
	// The call's deadline (the upstream's total timeout) is the connection's, for writing the
	// request and reading the whole answer; the response-header timeout shortens it until the
	// header is in. A context without a timer (softDeadline) relies on this alone.
	deadline, _ := ctx.Deadline()
	headerBy := deadline
	if t.respHeader > 0 {
		if hb := time.Now().Add(t.respHeader); deadline.IsZero() || hb.Before(deadline) {
			headerBy = hb
		}
	}
	_ = pc.conn.SetDeadline(headerBy)
	// A cancellation that landed before this line had its deadline overwritten. (Done, not Err:
	// a softDeadline's Err reads the clock, and only cancellation can be missed here.)
	if canceled(ctx) {
		return fail(ctx.Err())
	}
	if err := writeRequest(pc.bw, req); err != nil {
		return fail(err)
	}
	writeErr, waitErr := pc.send()
	if writeErr != nil {
		if staleConnError(writeErr) {
			writeErr = stale{writeErr}
		}
		return fail(writeErr)
	}
	var resp *http.Response
	pc.lr.left = t.maxHeadBytes()
	for n := 0; ; n++ {
		// Peek first, as http.Transport does: a connection that ends before the first byte of an
		// answer was closed by the target and is worth one retry; ReadResponse would report it as
		// io.ErrUnexpectedEOF, like a truncated answer. After a 1xx it is not: the target has
		// the request.
		err := waitErr
		if err == nil {
			_, err = pc.br.Peek(1)
		}
		waitErr = nil
		if err != nil && n == 0 && staleConnError(err) {
			err = stale{err}
		}
		if err == nil {
			var simple bool
			if resp, simple = readSimpleResponse(pc.br, req); !simple {
				resp, err = http.ReadResponse(pc.br, req)
			}
		}
		if err != nil {
			if pc.lr.left <= 0 {
				err = fmt.Errorf("net/http: server response headers exceeded %d bytes; aborted", t.maxHeadBytes())
			} else if ne, ok := err.(net.Error); ok && ne.Timeout() && ctx.Err() == nil {
				err = errResponseHeaderTimeout
			}
			return fail(err)
		}
		// As http.Transport: a 1xx other than 101 precedes the answer; anything else, a status
		// below 100 included, is the answer.
		if resp.StatusCode < 100 || resp.StatusCode >= 200 {
			break
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			// No upgrade was asked for on this path, so a 101 is the target's error.
			return fail(errors.New("net/http: unexpected 1xx response from target"))
		}
		// 1xx answers count against the head budget unless a trace takes them, as in
		// http.Transport: then they are the trace owner's to bound (the forwarder relays them).
		if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(resp.StatusCode, textproto.MIMEHeader(resp.Header)); err != nil {
				return fail(err)
			}
			pc.lr.left = t.maxHeadBytes()
		}
	}
	pc.lr.left = math.MaxInt64
	// The body is read under the total deadline, not the response header's; a body that came
	// with the head (most answers through a gateway are a few KiB) is read from the buffer, and
	// then the deadline is not moved: moving it is a timer change, the next exchange sets it
	// anew, and there is no cancellation to re-check. A pooled connection may therefore keep a
	// read deadline in the past: nothing reads an idle connection through Go (the peeker uses
	// recv with MSG_DONTWAIT) before exchange sets its deadlines.
	if headerBy != deadline && !bodyBuffered(resp, pc.br) {
		_ = pc.conn.SetReadDeadline(deadline)
		if canceled(ctx) {
			// Connection first: closing the body of a live connection would drain it.
			_, err := fail(ctx.Err())
			_ = resp.Body.Close()
			return nil, err
		}
	}
	keep := !resp.Close && !req.Close
	if resp.Body == nil || resp.Body == http.NoBody {
		t.release(pc, stop, keep)
		return resp, nil
	}
	resp.Body = &h1Body{rc: resp.Body, pc: pc, t: t, ctx: ctx, stop: stop, keep: keep}
	return resp, nil
}

// bodyBuffered reports whether reading resp's body needs no read from the connection: it has
// none, or a Content-Length that is already in br.
func bodyBuffered(resp *http.Response, br *bufio.Reader) bool {
	switch b := resp.Body.(type) {
	case nil:
		return true
	case *fixedBody:
		return b.left <= int64(br.Buffered())
	}
	return resp.Body == http.NoBody
}

func canceled(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	default:
		return false
	}
}

// errResponseHeaderTimeout matches http.Transport's error, and like it reports Timeout.
var errResponseHeaderTimeout = &timeoutError{"net/http: timeout awaiting response headers"}

type timeoutError struct{ msg string }

func (e *timeoutError) Error() string   { return e.msg }
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }

// release returns pc to the pool when the exchange ended cleanly, and closes it otherwise.
func (t *h1Transport) release(pc *h1Conn, stop func() bool, keep bool) {
	// stop reports false when the cancel func already ran: the deadline is poisoned. Bytes
	// already buffered past the answer's end mean the backend sent more than it framed; the
	// next request must not read them as its answer.
	if !stop() || !keep || pc.br.Buffered() != 0 {
		_ = pc.conn.Close()
		return
	}
	pc.idleAt = time.Now()
	t.mu.Lock()
	if t.closed || len(t.idle[pc.host]) >= t.maxIdle {
		t.mu.Unlock()
		_ = pc.conn.Close()
		return
	}
	if t.idle == nil {
		t.idle = make(map[string][]*h1Conn)
	}
	t.idle[pc.host] = append(t.idle[pc.host], pc)
	if !t.sweeping && t.idleTimeout > 0 {
		t.sweeping = true
		go t.sweep()
	}
	t.mu.Unlock()
}

// sweep closes pooled connections that stayed idle past idleTimeout, and those idle for a while
// that the target has closed, until the transport is closed. get drops expired connections too,
// but only from the top of a last-in-first-out pool: after a burst the connections below it
// would otherwise stay open for good, holding descriptors (in CLOSE_WAIT once the target gives
// up on them). Only connections idle for a sweep period are looked at, so that the ones a busy
// upstream keeps reusing cost nothing.
func (t *h1Transport) sweep() {
	every := min(max(t.idleTimeout/2, 10*time.Millisecond), 5*time.Second)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for range tick.C {
		var dead []*h1Conn
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return
		}
		now := time.Now()
		for host, list := range t.idle {
			kept := list[:0]
			for _, pc := range list {
				idle := now.Sub(pc.idleAt)
				if idle > t.idleTimeout || (idle >= every && pc.peek.closed()) {
					dead = append(dead, pc)
					continue
				}
				kept = append(kept, pc)
			}
			clear(list[len(kept):])
			t.idle[host] = kept
		}
		t.mu.Unlock()
		for _, pc := range dead {
			_ = pc.conn.Close()
		}
	}
}

// get takes the most recently used idle connection to host, dropping any idle too long.
func (t *h1Transport) get(host string) (*h1Conn, bool) {
	var stale []*h1Conn
	defer func() {
		for _, pc := range stale {
			_ = pc.conn.Close()
		}
	}()
	t.mu.Lock()
	defer t.mu.Unlock()
	for {
		list := t.idle[host]
		if len(list) == 0 {
			return nil, false
		}
		pc := list[len(list)-1]
		list[len(list)-1] = nil
		t.idle[host] = list[:len(list)-1]
		if t.idleTimeout > 0 && time.Since(pc.idleAt) > t.idleTimeout {
			stale = append(stale, pc)
			continue
		}
		return pc, true
	}
}

// CloseIdleConnections closes pooled connections, here and in the fallback. It is called when
// the upstream is retired, so connections released afterwards are closed instead of pooled.
func (t *h1Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle, t.closed = nil, true
	t.mu.Unlock()
	for _, list := range idle {
		for _, pc := range list {
			_ = pc.conn.Close()
		}
	}
	t.fallback.CloseIdleConnections()
}

// h1Body hands the connection back at EOF, or closes it when the caller stops reading early (the
// rest of the answer may be a never-ending stream).
type h1Body struct {
	rc   io.ReadCloser
	pc   *h1Conn
	t    *h1Transport
	ctx  context.Context
	stop func() bool
	keep bool
	done atomic.Bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil {
		if b.done.CompareAndSwap(false, true) {
			b.t.release(b.pc, b.stop, b.keep && err == io.EOF)
		}
		if ctxErr := b.ctx.Err(); err != io.EOF && ctxErr != nil {
			err = ctxErr
		}
	}
	return n, err
}

// drainBuffered reads the rest of a Content-Length answer when all of it is already in the
// connection's buffer, so that discard keeps the connection without waiting on the target. It
// reads nothing otherwise: Close then closes the connection.
func (b *h1Body) drainBuffered() {
	fb, ok := b.rc.(*fixedBody)
	if !ok || b.done.Load() || fb.left > int64(b.pc.br.Buffered()) {
		return
	}
	// Through h1Body.Read, not fixedBody's: at EOF it hands the connection back to the pool.
	_, _ = io.Copy(io.Discard, b)
}

func (b *h1Body) Close() error {
	if b.done.CompareAndSwap(false, true) {
		// Close the connection first: net/http's body Close would otherwise drain the rest.
		b.stop()
		_ = b.pc.conn.Close()
	}
	return b.rc.Close()
}

// std returns the http.Transport under rt, which carries the connection settings either way.
func std(rt roundTripper) *http.Transport {
	if h, ok := rt.(*h1Transport); ok {
		return h.fallback
	}
	return rt.(*http.Transport)
}
