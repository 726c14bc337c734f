//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package upstreams

import "net"

// canPeek says a peeker looks at the socket on this platform.
const canPeek = false

// peeker cannot look at a socket on this platform without reading from it: a connection the
// target closed while idle is then found out when a request fails on it, and a request that may
// be sent twice is resent on a new connection.
type peeker struct{}

func newPeeker(net.Conn) *peeker { return nil }

func (*peeker) closed() bool { return false }

func (*peeker) unusableFD(uintptr) bool { return false }
