//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package upstreams

import (
	"net"
	"syscall"
)

// canPeek says a peeker looks at the socket on this platform.
const canPeek = true

// peeker looks at an idle connection's socket without reading from it. It is made once per
// connection, so that a look allocates nothing.
type peeker struct {
	raw      syscall.RawConn
	look     func(fd uintptr)
	unusable bool
	buf      [1]byte
}

func newPeeker(c net.Conn) *peeker {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &peeker{raw: raw}
	p.look = func(fd uintptr) {
		err := recvPeek(fd, p.buf[:])
		for err == syscall.EINTR {
			err = recvPeek(fd, p.buf[:])
		}
		switch err {
		case syscall.EAGAIN: // nothing to read: alive (EWOULDBLOCK is EAGAIN here)
			p.unusable = false
		default: // nil: a byte or the end of stream; anything else: reset or broken
			p.unusable = true
		}
	}
	return p
}

// closed reports whether the connection is unusable: the target closed it (a pending end of
// stream), reset it, or sent bytes nobody asked for. One non-blocking peek; it never waits.
// http.Transport learns the same from the reader goroutine it keeps on every connection;
// h1Transport has none, so it asks the socket.
func (p *peeker) closed() bool {
	if p == nil {
		return false
	}
	if err := p.raw.Control(p.look); err != nil {
		return true
	}
	return p.unusable
}

// unusableFD is closed for a caller that already holds the descriptor (inside RawConn.Read).
func (p *peeker) unusableFD(fd uintptr) bool {
	p.look(fd)
	return p.unusable
}
