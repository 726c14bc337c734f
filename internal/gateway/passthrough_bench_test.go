package gateway

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkPassThrough is one pass-through request as the server hands it to Portico: edge,
// router, proxy and upstream call over a real loopback connection to a backend that answers a
// fixed ~1 KiB JSON body with no work of its own. Its CPU and allocations per request are
// Portico's share of the vs-nginx benchmark, without the load generator's and the kernel's
// noise; run it with -cpu 1 for stable figures.
func BenchmarkPassThrough(b *testing.B) {
	backend := rawBackend(b)
	g := benchGateway(b, cfg("http://"+backend, "access_log: {enabled: false}"))
	in := http.Header{
		"User-Agent": {"wrk"},
		"Accept":     {"*/*"},
	}
	w := &discardWriter{h: make(http.Header, 8)}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r := &http.Request{Method: "GET", URL: &url.URL{Path: "/"}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: in.Clone(), Host: "127.0.0.1:18080", RemoteAddr: "127.0.0.1:40000", RequestURI: "/", Body: http.NoBody}
		clear(w.h)
		w.status, w.n = 0, 0
		g.ServeHTTP(w, r)
		if w.status != http.StatusOK || w.n != len(benchBody) {
			b.Fatalf("status %d, %d bytes", w.status, w.n)
		}
	}
}

var benchBody = []byte(`{"source":"backend","status":"ok","items":[` + strings.Repeat(`{"id":1,"title":"item-01","desc":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},`, 10) + `{}]}`)

// rawBackend answers every request on a connection with the same response, parsing only enough
// to find the end of each request head: its cost stays out of the benchmark's figures.
func rawBackend(b *testing.B) string {
	b.Helper()
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Thu, 26 Nov 2026 11:00:00 GMT\r\nContent-Length: " +
		strconv.Itoa(len(benchBody)) + "\r\n\r\n" + string(benchBody))
	return serveRaw(b, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			// A body-less request ends at the first empty line.
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(bytes.TrimSpace(line)) == 0 {
					break
				}
			}
			if _, err := c.Write(resp); err != nil {
				return
			}
		}
	})
}

// discardWriter is the cheapest http.ResponseWriter: what it costs is not Portico's.
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += len(p)
	return len(p), nil
}
