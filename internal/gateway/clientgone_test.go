package gateway

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// A client that goes away while its request waits on the backend cancels the upstream call, over
// the real listener: a body-less GET and a POST with a declared length (served by h1serve, which
// watches the client once the request is in and its handler has run a while), and a chunked POST
// (handed to net/http).
func TestClientGoneCancelsUpstreamCall(t *testing.T) {
	cancelled := make(chan string, 4)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The body is read, as backends do: net/http watches a client only once its request body
		// has been read to the end, and the transport reads the end only when the backend takes it.
		_, _ = io.ReadAll(r.Body)
		select {
		case <-r.Context().Done():
			cancelled <- r.Method
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(backend.Close)
	g, _ := newGateway(t, `admin: "off"
access_log: {enabled: false}
listeners: [{address: "127.0.0.1:0"}]
upstreams:
  app: {targets: [{url: "`+backend.URL+`"}], timeouts: {total: 20s}}
routes:
  - {name: app, match: {path_prefix: /}, upstream: app}
`)
	addrs, _, _ := serveGateway(t, g, 1)
	for _, req := range []struct{ method, raw string }{
		{"GET", "GET /wait HTTP/1.1\r\nHost: portico.test\r\n\r\n"},
		{"POST", "POST /wait HTTP/1.1\r\nHost: portico.test\r\nContent-Length: 2\r\n\r\nhi"},
		{"PUT", "PUT /wait HTTP/1.1\r\nHost: portico.test\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"},
	} {
		conn, err := net.Dial("tcp", addrs[0])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(conn, req.raw); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // the call is at the backend
		_ = conn.Close()
		select {
		case m := <-cancelled:
			if m != req.method {
				t.Fatalf("cancelled %s, want %s", m, req.method)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the backend call was not cancelled after the client went away", req.method)
		}
	}
}
