//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package upstreams

import "net"

// canPeek says peerClosed looks at the socket on this platform.
const canPeek = false

// peerClosed cannot look at the socket on this platform without reading from it; a request that
// may not be sent twice then fails like any request on a connection that died while idle.
func peerClosed(net.Conn) bool { return false }
