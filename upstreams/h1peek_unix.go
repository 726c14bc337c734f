//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package upstreams

import (
	"net"
	"syscall"
)

// canPeek says peerClosed looks at the socket on this platform.
const canPeek = true

// peerClosed reports whether an idle connection is unusable: the target closed it (a pending
// end of stream), reset it, or sent bytes nobody asked for. It is one non-blocking peek and
// never waits. http.Transport learns the same from the reader goroutine it keeps on every
// connection; h1Transport has none, so it asks the socket when it matters.
func peerClosed(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	unusable := false
	var b [1]byte
	if err := rc.Control(func(fd uintptr) {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch err {
		case syscall.EAGAIN, syscall.EINTR: // nothing to read: alive (EWOULDBLOCK is EAGAIN here)
		default: // nil: a byte or the end of stream; anything else: reset or broken
			unusable = true
		}
	}); err != nil {
		return true
	}
	return unusable
}
