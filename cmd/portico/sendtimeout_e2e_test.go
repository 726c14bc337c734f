package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A client that stops reading an endless answer is cut after server.send_timeout, and the
// backend sees its call end: nothing stays held by a client that went away without closing.
func TestSendTimeoutReleasesTheUpstreamOfAStalledClient(t *testing.T) {
	ended := make(chan error, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		chunk := bytes.Repeat([]byte("x"), 32<<10)
		for n := 0; n < 1<<30; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				ended <- err
				return
			}
		}
		ended <- nil
	}))
	t.Cleanup(backend.Close)
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	writeConfig(t, cfg, fmt.Sprintf(`listen: "127.0.0.1:0"
admin: "127.0.0.1:0"
access_log: {enabled: false}
server: {send_timeout: 300ms}
upstreams:
  stream: {targets: [{url: %q}]}
routes:
  - {name: stream, match: {path_prefix: /}, upstream: stream}
`, backend.URL))
	p := start(t, cfg)

	conn, err := net.Dial("tcp", strings.TrimPrefix(p.proxyURL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	if _, err := conn.Write([]byte("GET /download HTTP/1.1\r\nHost: portico.test\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	// The client reads nothing from here on.
	select {
	case err := <-ended:
		if err == nil {
			t.Fatal("the backend wrote 1 GiB through Portico to a client that reads nothing")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("15s after the client stopped reading, the backend was still writing to Portico")
	}
}
