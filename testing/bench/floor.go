package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
)

// floor is the pass-through yardstick with everything a gateway does taken away: no net/http, no
// header maps, no pool, no timeouts, no routing. Each client connection gets one backend
// connection of its own; a request head is copied across with its Host replaced and the answer
// (Content-Length bodies only, which is what the bench backend sends) is copied back. It is what
// a Go process can forward on this machine at the moment it runs, so the distance between it and
// nginx is the kernel and the machine's, and the distance between it and Portico is Portico's:
// the request and header model of net/http, its background read and the gateway's own work.
// It is a measuring stick, not a proxy: a request with a body, a chunked answer or anything it
// cannot read closes the connection.
type floor struct {
	backend string // host:port
	ln      net.Listener
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
}

func newFloor(backend string) (*floor, error) {
	if _, _, err := net.SplitHostPort(backend); err != nil {
		return nil, fmt.Errorf("floor target %q: want host:port", backend)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &floor{backend: backend, ln: ln, conns: make(map[net.Conn]struct{})}
	f.wg.Go(f.accept)
	return f, nil
}

func (f *floor) URL() string { return "http://" + f.ln.Addr().String() }

// Close stops accepting, cuts every connection and waits for their goroutines.
func (f *floor) Close() {
	_ = f.ln.Close()
	f.mu.Lock()
	for c := range f.conns {
		_ = c.Close()
	}
	f.conns = nil
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *floor) accept() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		if !f.track(c, true) {
			_ = c.Close()
			return
		}
		f.wg.Go(func() {
			defer f.track(c, false)
			defer c.Close()
			_ = f.serve(c)
		})
	}
}

// track adds or removes c; adding fails once the listener is closed, so that Close never misses
// a connection accepted while it ran.
func (f *floor) track(c net.Conn, add bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !add {
		delete(f.conns, c)
		return true
	}
	if f.conns == nil {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

var errFloorUnsupported = errors.New("floor: only body-less requests and Content-Length answers")

func (f *floor) serve(c net.Conn) error {
	var up net.Conn
	defer func() {
		if up != nil {
			_ = up.Close()
		}
	}()
	cr := bufio.NewReaderSize(c, 4096)
	var ur *bufio.Reader
	buf := make([]byte, 0, 4096)
	host := []byte("Host: " + f.backend + "\r\n")
	for {
		buf = buf[:0]
		// The request head: every line but Host is copied; a body is not supported.
		for first := true; ; first = false {
			line, err := cr.ReadSlice('\n')
			if err != nil {
				return err
			}
			if len(line) <= 2 {
				break
			}
			if !first && hasFieldPrefix(line, "host:") {
				continue
			}
			if !first && (hasFieldPrefix(line, "content-length:") || hasFieldPrefix(line, "transfer-encoding:")) {
				return errFloorUnsupported
			}
			buf = append(buf, line...)
		}
		buf = append(buf, host...)
		buf = append(buf, "\r\n"...)
		if up == nil {
			var err error
			if up, err = net.Dial("tcp", f.backend); err != nil {
				return err
			}
			ur = bufio.NewReaderSize(up, 8192)
		}
		if _, err := up.Write(buf); err != nil {
			return err
		}
		// The answer: the head as it came, then Content-Length bytes of body.
		buf = buf[:0]
		length := -1
		for {
			line, err := ur.ReadSlice('\n')
			if err != nil {
				return err
			}
			buf = append(buf, line...)
			if len(line) <= 2 {
				break
			}
			if hasFieldPrefix(line, "content-length:") {
				if length, err = strconv.Atoi(string(bytes.TrimSpace(line[len("content-length:"):]))); err != nil {
					return err
				}
			}
			if hasFieldPrefix(line, "transfer-encoding:") {
				return errFloorUnsupported
			}
		}
		if length < 0 {
			return errFloorUnsupported
		}
		head := len(buf)
		buf = slices.Grow(buf, length)[:head+length]
		if _, err := io.ReadFull(ur, buf[head:]); err != nil {
			return err
		}
		if _, err := c.Write(buf); err != nil {
			return err
		}
	}
}

func hasFieldPrefix(line []byte, lower string) bool {
	return len(line) >= len(lower) && bytes.EqualFold(line[:len(lower)], []byte(lower))
}
