//go:build linux && !386

package upstreams

import (
	"syscall"
	"unsafe"
)

// recvPeek is recv(fd, buf, MSG_PEEK|MSG_DONTWAIT). syscall.Recvfrom would do, but it allocates
// room for a source address that a connected socket never fills, on every call.
func recvPeek(fd uintptr, buf []byte) error {
	_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)),
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
