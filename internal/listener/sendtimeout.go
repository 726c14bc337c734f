package listener

import (
	"bufio"
	"net"
	"net/http"
	"time"
)

// defaultSendTimeout is nginx's send_timeout default.
const defaultSendTimeout = 60 * time.Second

// sendTimeout bounds how long a client may stall an HTTP/1.x answer, as nginx's send_timeout
// does: a write that makes no progress for the timeout fails and the connection is closed. A
// client that stops reading would otherwise hold its handler, and the upstream connection behind
// it, until TCP gives up, which with a peer that still acknowledges (a zero window) is never.
// write_timeout cannot do this job: it is a deadline for the whole answer, so it also cuts
// streams and long downloads that are making progress.
//
// net/http offers only deadlines, so writes get one: the first write or flush of an answer (or
// the handler's return, for an answer net/http writes afterwards) sets it, and later ones move it
// forward once it has aged by a 64th of the timeout (moving a deadline is a timer change, and
// most answers are written within the first). A stream that was
// quiet for longer than the timeout is therefore not cut: its next write comes with a fresh
// deadline. net/http clears the deadline after each answer and on hijack, so an idle keep-alive
// connection and a WebSocket tunnel carry none.
//
// HTTP/2 multiplexes streams on one connection and writes them from its own goroutine; there the
// same bound is http.HTTP2Config.WriteByteTimeout (see New), and this handler stays out of the way.
type sendTimeout struct {
	next http.Handler
	d    time.Duration
	// capAfter is write_timeout: an answer's writes never get a deadline past its start plus
	// this, so moving the deadline cannot extend it (0: no cap).
	capAfter time.Duration
}

// deadliner is what net/http's HTTP/1 response writer offers (and http.ResponseController uses).
type deadliner interface{ SetWriteDeadline(time.Time) error }

func (s *sendTimeout) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	dl, ok := w.(deadliner)
	if r.ProtoMajor != 1 || !ok {
		s.next.ServeHTTP(w, r)
		return
	}
	g := &sendGuard{ResponseWriter: w, dl: dl, d: s.d}
	if s.capAfter > 0 {
		g.cap = time.Now().Add(s.capAfter)
	}
	// The answer's last bytes (all of a short one) are written by net/http after the handler
	// returns; they need a deadline, and a fresh one after a quiet stretch.
	defer g.refresh()
	s.next.ServeHTTP(g, r)
}

// sendGuard is the response writer that moves the write deadline; Unwrap lets
// http.ResponseController reach the rest of net/http's writer.
type sendGuard struct {
	http.ResponseWriter
	dl       deadliner
	d        time.Duration
	cap      time.Time
	armedAt  time.Time
	hijacked bool
}

func (g *sendGuard) arm(now time.Time) {
	by := now.Add(g.d)
	if !g.cap.IsZero() && g.cap.Before(by) {
		by = g.cap
	}
	g.armedAt = now
	_ = g.dl.SetWriteDeadline(by)
}

// refresh sets the deadline, or moves it when it has aged by more than a 64th of the timeout.
func (g *sendGuard) refresh() {
	if g.hijacked {
		return
	}
	if now := time.Now(); now.Sub(g.armedAt) > g.d/64 {
		g.arm(now)
	}
}

// Write hands p on in pieces of at most sendPiece, each with a fresh deadline when the last has
// aged: net/http sends a large write to the socket in one blocking call, and a body written at
// once (a GraphQL answer, a cache hit) must not be cut while the client is still reading it.
func (g *sendGuard) Write(p []byte) (int, error) {
	n := 0
	for {
		g.refresh()
		piece := p[n:]
		if len(piece) > sendPiece {
			piece = piece[:sendPiece]
		}
		m, err := g.ResponseWriter.Write(piece)
		n += m
		if err != nil || n == len(p) {
			return n, err
		}
	}
}

// sendPiece is how much one write may hand to the socket under one deadline.
const sendPiece = 64 << 10

func (g *sendGuard) Flush() { _ = g.FlushError() }

func (g *sendGuard) FlushError() error {
	g.refresh()
	if f, ok := g.ResponseWriter.(interface{ FlushError() error }); ok {
		return f.FlushError()
	}
	return http.NewResponseController(g.ResponseWriter).Flush()
}

// Hijack hands the connection over (a WebSocket tunnel). net/http clears its deadlines; this
// writer must not set one afterwards, when the handler returns while another goroutine still
// uses the connection.
func (g *sendGuard) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(g.ResponseWriter).Hijack()
	if err == nil {
		g.hijacked = true
	}
	return conn, brw, err
}

func (g *sendGuard) Unwrap() http.ResponseWriter { return g.ResponseWriter }
