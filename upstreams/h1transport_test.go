package upstreams

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"sync/atomic"
	"testing"
	"time"
)

// countingServer counts the connections the backend accepts.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func TestH1TransportReusesConnections(t *testing.T) {
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/path" {
			t.Errorf("backend got %s %s", r.Method, r.URL)
		}
		_, _ = io.WriteString(w, `{"ok":true}`)
	})
	_, u := newTestRegistry(t, Config{Targets: targetsOf(srv.URL)})
	if _, ok := u.transport.(*h1Transport); !ok {
		t.Fatalf("transport is %T, want the synchronous HTTP/1.1 path for a plain target", u.transport)
	}
	for i := 0; i < 5; i++ {
		resp, err := get(t, u, "1")
		if err != nil {
			t.Fatal(err)
		}
		if body := readAll(t, resp); body != `{"ok":true}` {
			t.Fatalf("body = %q", body)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("5 sequential calls read to the end opened %d connections, want 1", n)
	}
	// A body closed before its end leaves the connection in an unknown state: it is not reused.
	resp, err := get(t, u, "2")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	resp, err = get(t, u, "3")
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if n := conns.Load(); n != 2 {
		t.Errorf("after an early close: %d connections, want 2", n)
	}
}

// oneShotBackend answers one request per connection and then closes it without saying so, as a
// server whose idle timeout fires does: the pooled connection is dead at the next call. closed
// receives a value after each close.
func oneShotBackend(t *testing.T) (addr string, accepted, served *atomic.Int32, closed <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	accepted, served = new(atomic.Int32), new(atomic.Int32)
	done := make(chan struct{}, 64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			req, err := http.ReadRequest(bufio.NewReader(c))
			if err == nil {
				served.Add(1)
				_ = req.Body.Close()
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}
			_ = c.Close()
			select {
			case done <- struct{}{}:
			default:
			}
		}
	}()
	return "http://" + ln.Addr().String(), accepted, served, done
}

func TestH1TransportRetriesStalePooledConnection(t *testing.T) {
	addr, accepted, _, _ := oneShotBackend(t)
	_, u := newTestRegistry(t, Config{Targets: targetsOf(addr), Retries: RetryConfig{Attempts: intp(0)}})
	for i := 0; i < 3; i++ {
		resp, err := get(t, u, "1")
		if err != nil {
			t.Fatalf("call %d on a connection the backend closed: %v", i, err)
		}
		if body := readAll(t, resp); body != "ok" {
			t.Fatalf("body = %q", body)
		}
	}
	if n := accepted.Load(); n != 3 {
		t.Errorf("accepted %d connections, want 3 (one per call)", n)
	}
}

func TestH1TransportSkipsClosedConnectionForRequestsSentOnce(t *testing.T) {
	if !canPeek {
		t.Skip("the peeker cannot look at sockets on this platform")
	}
	// DELETE, and POST or PUT without a body, may not be sent twice, so the retry above does not
	// cover them: a pooled connection the backend closed while idle (Node and Python servers
	// close idle keep-alive connections after about 5 s) must be noticed before the request is
	// written on it, as http.Transport's per-connection reader notices it.
	addr, accepted, served, closed := oneShotBackend(t)
	_, u := newTestRegistry(t, Config{Targets: targetsOf(addr), Retries: RetryConfig{Attempts: intp(0)}})
	for i, method := range []string{http.MethodDelete, http.MethodPost, http.MethodPut, http.MethodDelete} {
		req := httptest.NewRequest(method, "http://client.example/items/1", nil)
		resp, err := u.RoundTrip(req)
		if err != nil {
			t.Fatalf("call %d (%s) after the backend closed the pooled connection: %v", i, method, err)
		}
		if body := readAll(t, resp); body != "ok" {
			t.Fatalf("body = %q", body)
		}
		<-closed // the backend has closed this connection; it is idle in the pool, dead
	}
	if a, s := accepted.Load(), served.Load(); a != 4 || s != 4 {
		t.Errorf("accepted %d connections and served %d requests, want 4 and 4: a dead connection got a request", a, s)
	}
}

func TestH1TransportReportsInformationalAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		_, _ = io.WriteString(w, "done")
	}))
	defer srv.Close()
	_, u := newTestRegistry(t, Config{Targets: targetsOf(srv.URL)})
	var got []int
	var link string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		got, link = append(got, code), h.Get("Link")
		return nil
	}}
	req := httptest.NewRequest(http.MethodGet, "http://client.example/", nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	resp, err := u.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != 200 || body != "done" {
		t.Errorf("answer %d %q, want 200 done", resp.StatusCode, body)
	}
	if len(got) != 1 || got[0] != http.StatusEarlyHints || link == "" {
		t.Errorf("1xx seen = %v (Link %q), want one 103 with its Link header", got, link)
	}
}

func TestH1TransportLeavesBodiesAndConnectionCapsToNetHTTP(t *testing.T) {
	_, capped := newTestRegistry(t, Config{Targets: targetsOf("http://127.0.0.1:9"), MaxConnsPerTarget: 4})
	if _, ok := capped.transport.(*http.Transport); !ok {
		t.Errorf("with max_conns_per_target the transport is %T, want *http.Transport", capped.transport)
	}
	h := &h1Transport{}
	post := httptest.NewRequest(http.MethodPost, "http://x/", io.NopCloser(nil))
	post.Body = io.NopCloser(nil)
	upgrade := httptest.NewRequest(http.MethodGet, "http://x/", nil)
	upgrade.Header.Set("Upgrade", "websocket")
	tls := httptest.NewRequest(http.MethodGet, "https://x/", nil)
	for name, req := range map[string]*http.Request{"body": post, "upgrade": upgrade, "https": tls} {
		if h.fastPath(req) {
			t.Errorf("%s request takes the synchronous path", name)
		}
	}
}

// TestH1TransportDropsConnectionWithUnframedBytes: a backend that sends more than its answer's
// Content-Length leaves bytes that the next call on that connection would read as its answer.
// The connection must be closed, not pooled.
func TestH1TransportDropsConnectionWithUnframedBytes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_ = req.Body.Close()
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"+
						"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPWNED!")
				}
			}()
		}
	}()
	_, u := newTestRegistry(t, Config{Targets: targetsOf("http://" + ln.Addr().String())})
	for i := 0; i < 3; i++ {
		resp, err := get(t, u, "x")
		if err != nil {
			t.Fatal(err)
		}
		if body := readAll(t, resp); body != "hello" {
			t.Fatalf("call %d got %q: bytes past an answer's end were read as the next answer", i, body)
		}
	}
}

func TestPeekerClosed(t *testing.T) {
	// A connected pair over loopback; the test acts as the target on the server side.
	pair := func(t *testing.T) (client, server net.Conn) {
		t.Helper()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, _ := ln.Accept()
			accepted <- c
		}()
		client, err = net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		server = <-accepted
		t.Cleanup(func() { _ = client.Close(); _ = server.Close() })
		return client, server
	}
	settle := func(t *testing.T, c net.Conn, want bool) {
		t.Helper()
		if !canPeek {
			t.Skip("the peeker cannot look at sockets on this platform")
		}
		// What the target did reaches the client's socket asynchronously; on loopback at once,
		// but the test does not rely on it.
		for i := 0; i < 100 && newPeeker(c).closed() != want; i++ {
			time.Sleep(time.Millisecond)
		}
		if got := newPeeker(c).closed(); got != want {
			t.Errorf("closed = %v, want %v", got, want)
		}
	}
	t.Run("idle and open", func(t *testing.T) {
		c, _ := pair(t)
		if newPeeker(c).closed() {
			t.Error("an open idle connection reported closed")
		}
	})
	t.Run("closed by the target", func(t *testing.T) {
		c, s := pair(t)
		_ = s.Close()
		settle(t, c, true)
	})
	t.Run("unsolicited bytes", func(t *testing.T) {
		c, s := pair(t)
		_, _ = s.Write([]byte("HTTP/1.1 408 Request Timeout\r\n\r\n"))
		settle(t, c, true)
		// The peek leaves the bytes where they were.
		b := make([]byte, 8)
		if n, _ := c.Read(b); string(b[:n]) != "HTTP/1.1" {
			t.Errorf("after the peek the connection reads %q", b[:n])
		}
	})
	t.Run("not a socket", func(t *testing.T) {
		c, _ := net.Pipe()
		defer c.Close()
		if newPeeker(c).closed() {
			t.Error("a connection without a socket reported closed")
		}
	})
}

// TestH1TransportReadsBytesThatCameBeforeTheRequest: the transport waits for an answer with the
// socket's readiness reset first (send), and a wake-up that came before the reset is forgotten.
// Bytes the target sent before the request went out (a server that answers 503 on accept, or
// answers a long head before reading all of it) must still be read, not waited for until the
// response-header timeout. The dialer here holds the new connection until those bytes are in
// and the runtime has had time to take their wake-up, which is the order that loses it.
func TestH1TransportReadsBytesThatCameBeforeTheRequest(t *testing.T) {
	if !canPeek {
		t.Skip("no look at the socket on this platform; answers are read the plain way")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	spoke := make(chan struct{}, 1)
	stopped := make(chan struct{})
	var held []net.Conn
	go func() {
		defer close(stopped)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy")
			spoke <- struct{}{}
			// Read the request, then hold the connection open: its end of stream would be a
			// wake-up of its own.
			_, _ = http.ReadRequest(bufio.NewReader(c))
			held = append(held, c)
		}
	}()
	defer func() {
		_ = ln.Close()
		<-stopped
		for _, c := range held {
			_ = c.Close()
		}
	}()
	var d net.Dialer
	tr := &h1Transport{
		fallback:   &http.Transport{},
		respHeader: 5 * time.Second,
		maxIdle:    4,
		dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err == nil {
				<-spoke
				time.Sleep(20 * time.Millisecond) // parked: the runtime polls the network
			}
			return c, err
		},
	}
	defer tr.CloseIdleConnections()
	for i := 0; i < 3; i++ {
		req := httptest.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("call %d: %v (the answer already on the socket was waited for)", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || string(body) != "busy" {
			t.Fatalf("call %d: %d %q, want 503 busy", i, resp.StatusCode, body)
		}
	}
}
