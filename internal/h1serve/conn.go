package h1serve

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"
)

// conn is one client connection while this server has it.
type conn struct {
	s      *Server
	nc     net.Conn
	src    savedByteReader
	br     *bufio.Reader
	bw     *bufio.Writer
	remote string
	base   context.Context

	// head is where a response's status line and header are serialised; reused.
	head []byte
	// pending holds the start of a body until the header can be finished (see response).
	pending []byte
	keys    []string
	// writeDeadline: this answer set one, to be cleared before the next.
	writeDeadline bool
	// headBy is the header timeout's deadline (zero: none), set on the connection only when
	// reading a head has to wait for more bytes; headPending: it has not been set yet.
	headBy      time.Time
	headPending bool

	// watch notices a client that goes away while a slow handler runs (see watch).
	watch watcher
}

// savedByteReader is what the connection's buffered reader reads: the connection, after any
// byte the watcher read while a handler ran (the start of a pipelined request).
type savedByteReader struct {
	net.Conn
	b    byte
	have bool
}

func (r *savedByteReader) Read(p []byte) (int, error) {
	if r.have && len(p) > 0 {
		p[0] = r.b
		r.have = false
		return 1, nil
	}
	return r.Conn.Read(p)
}

// aLongTimeAgo is a deadline in the past: it makes a blocked read return at once.
var aLongTimeAgo = time.Unix(1, 0)

func (s *Server) newConn(nc net.Conn) *conn {
	c := &conn{s: s, nc: nc, remote: nc.RemoteAddr().String()}
	c.src.Conn = nc
	c.br = bufio.NewReaderSize(&c.src, maxHead)
	c.bw = bufio.NewWriterSize(nc, 4<<10)
	ctx := context.WithValue(context.Background(), http.ServerContextKey, s.fallback)
	c.base = context.WithValue(ctx, http.LocalAddrContextKey, nc.LocalAddr())
	c.watch.c = c
	c.watch.timer = time.AfterFunc(time.Hour, c.watch.fire)
	c.watch.timer.Stop()
	return c
}

// serve runs the connection's requests until it closes or is handed to net/http.
func (c *conn) serve() {
	handedOff := false
	defer func() {
		if err := recover(); err != nil && err != http.ErrAbortHandler {
			buf := make([]byte, 64<<10)
			buf = buf[:runtime.Stack(buf, false)]
			c.s.logf("http: panic serving %v: %v\n%s", c.remote, err, buf)
		}
		c.watch.timer.Stop()
		if !handedOff {
			// What is already past the held-back bytes goes out, as net/http's final flush
			// sends it: after a panic that cuts an answer short, the client sees a truncated
			// answer, not a connection closed before any, which it could take for a stale one
			// and send its request again.
			_ = c.bw.Flush()
			_ = c.nc.Close()
		}
		c.s.forget(c)
	}()
	// The first request's header timeout runs from the accept, as in net/http; a later one's
	// from its first byte, after the idle timeout that waits for it.
	// read_timeout runs from the same start (t0) and covers the body too.
	t0 := time.Now()
	_ = c.nc.SetReadDeadline(after(t0, c.s.headerTimeout))
	lastPOST := false
	for first := true; ; first = false {
		// As net/http: after the first request, the next one waits for four bytes (its idle
		// Peek(4)); fewer, and then the end of the stream, close the connection without an answer.
		want := 1
		if !first {
			want = 4
		}
		if _, err := c.br.Peek(want); err != nil {
			return
		}
		if lastPOST && !c.skipStrayCRLF() {
			return
		}
		if !c.s.setState(c, connState{busy: true}) {
			return // shutting down
		}
		if !first {
			// The header timeout bounds the reads the head still needs; one that came whole
			// (the usual case) needs none, and setting a deadline is a timer change.
			t0 = time.Now()
			c.headBy, c.headPending = after(t0, c.s.headerTimeout), true
		}
		head, ok, err := c.readHead()
		if err != nil {
			return
		}
		var req *http.Request
		var closeAfter bool
		var length int64
		if ok {
			req, closeAfter, length, ok = parseHead(head, c.remote)
		}
		if !ok {
			handedOff = c.handOff()
			return
		}
		_, _ = c.br.Discard(len(head))
		var b *body
		if length > 0 {
			// read_timeout bounds reading the body, as in net/http; it ends with the body.
			b = &body{c: c, remain: length, closing: closeAfter}
			req.Body = b
			_ = c.nc.SetReadDeadline(after(t0, c.s.readTimeout))
		}
		// Without a body the read deadline left from reading the head stays: nothing reads the
		// connection until the next request but the watcher, which clears it first (fire).
		if c.s.writeTimeout > 0 {
			_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.writeTimeout))
			c.writeDeadline = true
		}
		lastPOST = req.Method == http.MethodPost
		if !c.serveRequest(req, closeAfter, b) {
			return
		}
		if c.writeDeadline {
			// As net/http: a deadline set for this answer (write_timeout, send_timeout) must not
			// fail the next answer, which may be written long after, by either server.
			_ = c.nc.SetWriteDeadline(time.Time{})
			c.writeDeadline = false
		}
		if !c.s.setState(c, connState{idle: true}) {
			return
		}
		_ = c.nc.SetReadDeadline(deadline(c.s.idleTimeout))
	}
}

// readHead waits until a whole request head is buffered and returns it (without consuming it).
// ok=false means the head is not one for this server: longer than the buffer, or with a bare
// LF, which net/http tolerates; what was read stays buffered for the hand-off.
func (c *conn) readHead() (head []byte, ok bool, err error) {
	for {
		buf, _ := c.br.Peek(c.br.Buffered())
		end := bytes.Index(buf, crlfcrlf)
		scan := buf
		if end >= 0 {
			scan = buf[:end+4]
		}
		if bareLF(scan) {
			return nil, false, nil
		}
		if end >= 0 {
			return buf[:end+4], true, nil
		}
		if len(buf) == c.br.Size() {
			return nil, false, nil
		}
		if c.headPending {
			// Zero (no header timeout) clears the idle deadline, as net/http does.
			_ = c.nc.SetReadDeadline(c.headBy)
			c.headPending = false
		}
		if _, err := c.br.Peek(len(buf) + 1); err != nil {
			if len(buf) > 0 && err == io.EOF {
				// A partial head and then the end of the stream (a client that half-closed):
				// net/http reads it as a malformed request and answers 400; so it is net/http's.
				return nil, false, nil
			}
			if len(buf) > 0 && !errors.Is(err, bufio.ErrBufferFull) {
				// A partial head and then a timeout or a reset: net/http answers nothing either.
				return nil, false, err
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				return nil, false, nil
			}
			return nil, false, err
		}
	}
}

var crlfcrlf = []byte("\r\n\r\n")

func bareLF(b []byte) bool {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return false
		}
		if i+j == 0 || b[i+j-1] != '\r' {
			return true
		}
		i += j + 1
	}
}

// handOff gives the connection, with what is buffered, to net/http for the rest of its life.
func (c *conn) handOff() bool {
	_ = c.nc.SetDeadline(time.Time{})
	rc := &replayConn{Conn: c.nc, br: c.br, src: &c.src}
	return c.s.handOff(c, rc)
}

// replayConn is a handed-off connection: what this server buffered is read first.
type replayConn struct {
	net.Conn
	mu  sync.Mutex
	br  *bufio.Reader
	src *savedByteReader
}

// CloseWrite lets net/http half-close the connection (its closeWriteAndWait), as it would a
// *net.TCPConn: a client still uploading a body nobody reads learns that the answer is complete.
func (r *replayConn) CloseWrite() error {
	if cw, ok := r.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (r *replayConn) Read(p []byte) (int, error) {
	r.mu.Lock()
	br := r.br
	if br != nil && br.Buffered() == 0 && !r.src.have {
		r.br = nil
		br = nil
	}
	r.mu.Unlock()
	if br != nil {
		return br.Read(p)
	}
	return r.Conn.Read(p)
}

// serveRequest runs the handler and finishes the answer; false means the connection is done.
func (c *conn) serveRequest(req *http.Request, closeAfter bool, b *body) (keep bool) {
	ctx, cancel := context.WithCancel(c.base)
	defer cancel()
	req = req.WithContext(ctx)
	w := &response{c: c, req: req, body: b, handlerHeader: make(http.Header, 8), contentLength: -1, closeAfter: closeAfter || c.s.shuttingDown()}
	c.watch.prepare(cancel)
	if b == nil {
		c.watch.start()
	} else {
		// The client is watched once its body is in: a read for it before would take body
		// bytes (net/http's registerOnHitEOF).
		b.onEOF = func() {
			b.end()
			c.watch.start()
		}
	}
	func() {
		defer func() {
			if err := recover(); err != nil {
				c.watch.disarm()
				w.dead = true
				panic(err)
			}
		}()
		c.s.handler.ServeHTTP(w, req)
	}()
	lost := !c.watch.disarm()
	err := w.finish()
	reusable, linger := true, false
	if b != nil {
		reusable, linger = b.finished()
	}
	if err != nil || lost {
		// A client that went away (or half-closed) still gets what was answered, as from
		// net/http, but the connection ends with it.
		_ = c.bw.Flush()
		return false
	}
	if linger {
		// Body bytes are still coming that nobody will read.
		c.closeWrite()
	}
	if !reusable {
		return false
	}
	// A connection that ends after this answer closes at once, as net/http's does when no
	// request body is left unread.
	return !w.closeAfter
}

// closeWrite ends a connection on which the client may still be sending a body nobody reads, as
// net/http's closeWriteAndWait: the write side first, so the client learns the answer is
// complete, then a pause before the close so that its unread bytes do not turn the close into a
// reset that could destroy the answer in flight.
func (c *conn) closeWrite() {
	if tc, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
	}
	time.Sleep(rstAvoidanceDelay)
}

const rstAvoidanceDelay = 500 * time.Millisecond

func deadline(d time.Duration) time.Time { return after(time.Now(), d) }

// after is t0+d, or no deadline when d is not positive.
func after(t0 time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return t0.Add(d)
}

// skipStrayCRLF drops up to four CR or LF bytes before a request that follows a POST, which old
// clients send after the body (RFC 7230, 3.5; net/http does the same). False: the connection ended.
func (c *conn) skipStrayCRLF() bool {
	for range 4 {
		p, err := c.br.Peek(1)
		if err != nil {
			return false
		}
		if p[0] != '\r' && p[0] != '\n' {
			return true
		}
		_, _ = c.br.Discard(1)
	}
	_, err := c.br.Peek(1)
	return err == nil
}

// watcher notices a client that closes its connection while a handler runs, and cancels the
// request's context, as net/http's background read does. net/http starts that read for every
// request; here it starts only once a handler has run for watchAfter, so the many requests that
// are answered sooner pay for none of it (a read that fails at once, a goroutine, two deadline
// changes). A client that goes away sooner finds its answer written to a closed socket, which is
// all net/http's cancellation would have saved.
type watcher struct {
	c     *conn
	timer *time.Timer

	mu      sync.Mutex
	state   int // watchIdle, watchArmed, watchReading
	cancel  context.CancelFunc
	aborted bool
	done    chan struct{}
	lost    bool // the read failed by itself: the client is gone
	running bool // between prepare and disarm
}

const (
	watchIdle = iota
	watchArmed
	watchReading
)

// watchAfter is how long a handler runs before its client is watched.
const watchAfter = 100 * time.Millisecond

// prepare readies the watcher for a request whose context cancel ends; start arms it.
func (w *watcher) prepare(cancel context.CancelFunc) {
	w.mu.Lock()
	w.state, w.cancel, w.aborted, w.lost, w.running = watchIdle, cancel, false, false, true
	w.mu.Unlock()
}

// start arms the watcher, unless the handler has returned (a body read to its end after that,
// by the server, must not start a watch).
func (w *watcher) start() {
	w.mu.Lock()
	if !w.running || w.state != watchIdle {
		w.mu.Unlock()
		return
	}
	w.state = watchArmed
	w.mu.Unlock()
	w.timer.Reset(watchAfter)
}

func (w *watcher) fire() {
	w.mu.Lock()
	if w.state != watchArmed {
		w.mu.Unlock()
		return
	}
	w.state = watchReading
	w.done = make(chan struct{})
	done := w.done
	// The deadline left from reading the request (see serve) would end this read as a lost
	// client. Cleared under the lock: disarm's abort, a deadline in the past, must come after.
	_ = w.c.nc.SetReadDeadline(time.Time{})
	w.mu.Unlock()
	defer close(done)
	src := &w.c.src
	if src.have || w.c.br.Buffered() > 0 {
		// The next request has begun already: the client is there.
		return
	}
	var b [1]byte
	n, err := w.c.nc.Read(b[:])
	w.mu.Lock()
	defer w.mu.Unlock()
	if n == 1 {
		src.b, src.have = b[0], true
	}
	var ne net.Error
	if err != nil && !(w.aborted && errors.As(err, &ne) && ne.Timeout()) {
		w.lost = true
		w.cancel()
	}
}

// disarm stops watching once the handler has returned, and reports whether the connection can
// go on.
func (w *watcher) disarm() bool {
	w.timer.Stop()
	w.mu.Lock()
	state := w.state
	w.state, w.running = watchIdle, false
	if state != watchReading {
		w.mu.Unlock()
		return true
	}
	w.aborted = true
	done := w.done
	w.mu.Unlock()
	_ = w.c.nc.SetReadDeadline(aLongTimeAgo)
	<-done
	_ = w.c.nc.SetReadDeadline(time.Time{})
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.lost
}

func (s *Server) logf(format string, args ...any) {
	if l := s.fallback.ErrorLog; l != nil {
		l.Printf(format, args...)
		return
	}
	fmt.Printf(format+"\n", args...)
}
