package h1serve

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkServe is one keep-alive request and its 1 KiB answer over loopback, served by h1serve
// and by net/http with the same handler: the server's share of a pass-through request (the
// client's share is the same in both). Run with -cpu 1 for stable figures.
func BenchmarkServe(b *testing.B) {
	body := []byte(strings.Repeat("x", 1024))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Header().Set("X-Request-Id", "0123456789abcdef")
		_, _ = w.Write(body)
	})
	for _, srv := range []struct {
		name  string
		start func(*testing.B, http.Handler) string
	}{
		{"h1serve", func(b *testing.B, h http.Handler) string {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			s := New(&http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute})
			go func() { _ = s.Serve(ln) }()
			b.Cleanup(func() { _ = s.Close() })
			return ln.Addr().String()
		}},
		{"net-http", func(b *testing.B, h http.Handler) string {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			s := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
			go func() { _ = s.Serve(ln) }()
			b.Cleanup(func() { _ = s.Close() })
			return ln.Addr().String()
		}},
	} {
		b.Run(srv.name, func(b *testing.B) {
			conn, err := net.Dial("tcp", srv.start(b, h))
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			br := bufio.NewReader(conn)
			req := []byte("GET /items HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := conn.Write(req); err != nil {
					b.Fatal(err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, resp.Body); err != nil || n != int64(len(body)) {
					b.Fatalf("body: %d bytes, %v", n, err)
				}
			}
		})
	}
}
