// Package h1serve serves HTTP/1.1 on cleartext listeners with less work per request than
// net/http's server, for the requests a gateway mostly carries: HTTP/1.1, origin form, no body or
// one of declared length, no upgrade. Any other request, the first time one arrives on a
// connection, hands that connection (with what was already read) to a net/http server for the
// rest of its life, so chunked bodies, Expect, upgrades, HTTP/1.0, odd framing and every refusal
// keep net/http's behaviour exactly.
//
// Why: on a pass-through request net/http's server cost about a third of Portico's CPU, mostly
// in work a proxy does not need per request: a goroutine and a read that fails at once to watch
// for the client going away, a cancelable context and per-request buffers, a header map copied
// when the status is written. Here the client is watched only once a handler has run for a few
// milliseconds, the header is serialised once, and the connection's buffers are reused. The
// response writer follows net/http's rules (implicit Content-Length for short answers, chunking,
// Content-Type sniffing, Date, 1xx, trailers, HEAD, Connection: close) so a handler cannot tell
// the two apart; the tests run the same handlers through both and compare the bytes.
package h1serve

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves one listener. Its timeouts and error log are the fallback server's, which also
// serves every handed-off connection and must not be started by the caller.
type Server struct {
	handler  http.Handler
	fallback *http.Server

	headerTimeout time.Duration
	readTimeout   time.Duration
	idleTimeout   time.Duration
	writeTimeout  time.Duration

	handed   *handOffListener
	fallDone chan error

	mu       sync.Mutex
	conns    map[*conn]connState
	ln       net.Listener
	shutting atomic.Bool
	closed   chan struct{}
}

// New returns a server running fallback's handler with fallback's timeouts.
func New(fallback *http.Server) *Server {
	s := &Server{
		handler:       fallback.Handler,
		fallback:      fallback,
		headerTimeout: fallback.ReadHeaderTimeout,
		readTimeout:   fallback.ReadTimeout,
		idleTimeout:   fallback.IdleTimeout,
		writeTimeout:  fallback.WriteTimeout,
		conns:         map[*conn]connState{},
		closed:        make(chan struct{}),
	}
	if s.headerTimeout <= 0 {
		s.headerTimeout = fallback.ReadTimeout
	}
	if s.idleTimeout <= 0 {
		s.idleTimeout = fallback.ReadTimeout
	}
	return s
}

// Serve accepts connections on ln until Shutdown or Close; it returns nil then.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		_ = ln.Close()
		return nil
	}
	s.ln = ln
	s.handed = &handOffListener{addr: ln.Addr(), conns: make(chan net.Conn), done: make(chan struct{})}
	s.fallDone = make(chan error, 1)
	s.mu.Unlock()
	go func() { s.fallDone <- s.fallback.Serve(s.handed) }()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.shutting.Load() {
				return nil
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				// As net/http: out of file descriptors and the like pass; back off and go on.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logf("http: Accept error: %v; retrying in %v", err, backoff)
				time.Sleep(backoff)
				continue
			}
			_ = s.handed.Close()
			return err
		}
		backoff = 0
		c := s.newConn(nc)
		if !s.track(c) {
			_ = nc.Close()
			continue
		}
		go c.serve()
	}
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting.Load() {
		return false
	}
	s.conns[c] = connState{since: time.Now()}
	return true
}

// connState is where a connection is: new (no request yet), busy with one, or idle between two.
type connState struct {
	busy, idle bool
	since      time.Time
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// setState records where c is (see connState); false when shutting down, when the connection
// is to close instead.
func (s *Server) setState(c *conn, st connState) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting.Load() {
		return false
	}
	s.conns[c] = st
	return true
}

func (s *Server) shuttingDown() bool { return s.shutting.Load() }

// handOff passes c to net/http; false when the server is closing (the caller closes it). The
// connection counts as this server's until net/http has it, so Shutdown waits for it.
func (s *Server) handOff(c *conn, rc net.Conn) bool {
	select {
	case s.handed.conns <- rc:
		return true
	case <-s.handed.done:
		return false
	}
}

// Shutdown stops accepting, closes idle connections, lets the others finish their request, then
// does the same for the connections net/http serves (a request being read when the drain began
// may still be handed to it); it returns when all are gone or ctx is done (with ctx's error).
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutting.Store(true)
	// net/http's idle connections close now and its answers from here on say Connection: close,
	// while its listener stays open for connections still being handed off.
	s.fallback.SetKeepAlivesEnabled(false)
	s.mu.Lock()
	if s.ln != nil {
		_ = s.ln.Close()
	}
	s.mu.Unlock()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !s.closeIdle() {
		select {
		case <-ctx.Done():
			_ = s.fallback.Shutdown(ctx)
			return ctx.Err()
		case <-tick.C:
		}
	}
	return s.fallback.Shutdown(ctx)
}

// closeIdle closes the connections waiting for a request and reports whether none is left. A new
// connection counts as idle once it has been silent for 5 s, as in net/http: one accepted just
// before the drain gets to send its request.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c, st := range s.conns {
		if st.idle || !st.busy && time.Since(st.since) > 5*time.Second {
			_ = c.nc.Close()
		}
	}
	return len(s.conns) == 0
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error {
	s.shutting.Store(true)
	s.mu.Lock()
	if s.ln != nil {
		_ = s.ln.Close()
	}
	for c := range s.conns {
		_ = c.nc.Close()
	}
	s.mu.Unlock()
	return s.fallback.Close()
}

// handOffListener is the listener net/http serves: it yields the connections handed off.
type handOffListener struct {
	addr  net.Addr
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func (l *handOffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handOffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handOffListener) Addr() net.Addr { return l.addr }
