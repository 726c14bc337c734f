package upstreams

// h1Transport against http.Transport where a production gateway meets misbehaving or unusual
// targets: each test states what http.Transport does, which h1Transport must match.

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// h1ForTest is an h1Transport as the registry builds it, with the given idle timeout.
func h1ForTest(t *testing.T, idleTimeout time.Duration) *h1Transport {
	t.Helper()
	base := &http.Transport{}
	h := &h1Transport{fallback: base, dial: (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		idleTimeout: idleTimeout, maxIdle: 4}
	t.Cleanup(h.CloseIdleConnections)
	return h
}

// rawBackend accepts connections on loopback and runs serve on each; everything stops at cleanup.
func rawBackend(t *testing.T, serve func(c net.Conn, br *bufio.Reader, n int)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c, bufio.NewReader(c), n)
			}()
		}
	}()
	return ln.Addr().String()
}

func getVia(t *testing.T, rt http.RoundTripper, url string) (*http.Response, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	return resp, string(b), err
}

// TestH1UnsolicitedBytesOnIdleConnection: bytes a target sends on a connection while it sits
// idle in the pool are not an answer to anything. http.Transport's per-connection reader sees
// them (readLoopPeekFailLocked): a "408 Request Timeout" means the server closed the idle
// connection (errServerClosedIdle), anything else is logged as "Unsolicited response received
// on idle HTTP channel"; either way the connection is closed and the next request goes out on a
// fresh one. Read as the next request's answer they would be a 408 the client never caused, or —
// response desynchronisation — another request's answer.
func TestH1UnsolicitedBytesOnIdleConnection(t *testing.T) {
	if !canPeek {
		t.Skip("the peeker cannot look at sockets on this platform")
	}
	t.Run("408 before closing", func(t *testing.T) {
		// What nginx/Apache-style servers do when their keep-alive timer fires with a
		// request half-read, and what Go's client has special-cased since golang/go#32310. The
		// server half-closes and keeps reading, so the test does not depend on RST timing.
		addr := rawBackend(t, func(c net.Conn, br *bufio.Reader, n int) {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_ = req.Body.Close()
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			if n > 0 {
				return
			}
			time.Sleep(30 * time.Millisecond)
			_, _ = io.WriteString(c, "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
			_ = c.(*net.TCPConn).CloseWrite()
			_, _ = io.Copy(io.Discard, c)
		})
		h := h1ForTest(t, time.Minute)
		if _, body, err := getVia(t, h, "http://"+addr+"/a"); err != nil || body != "ok" {
			t.Fatalf("first call: %q, %v", body, err)
		}
		time.Sleep(150 * time.Millisecond)
		resp, body, err := getVia(t, h, "http://"+addr+"/b")
		if err != nil {
			t.Fatalf("second call: %v (http.Transport retries on a fresh connection)", err)
		}
		if resp.StatusCode != 200 || body != "ok" {
			t.Errorf("second call got %d %q: the 408 the server sent while the connection was idle was passed off as the answer", resp.StatusCode, body)
		}
	})
	t.Run("stray answer", func(t *testing.T) {
		addr := rawBackend(t, func(c net.Conn, br *bufio.Reader, n int) {
			for i := 0; ; i++ {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				_ = req.Body.Close()
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				if i == 0 {
					// A second segment, after the answer's end: not in the buffer at release.
					time.Sleep(30 * time.Millisecond)
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPWNED!")
				}
			}
		})
		h := h1ForTest(t, time.Minute)
		if _, body, err := getVia(t, h, "http://"+addr+"/a"); err != nil || body != "ok" {
			t.Fatalf("first call: %q, %v", body, err)
		}
		time.Sleep(150 * time.Millisecond)
		_, body, err := getVia(t, h, "http://"+addr+"/b")
		if err != nil {
			t.Fatalf("second call: %v", err)
		}
		if body != "ok" {
			t.Errorf("second call got %q: bytes that arrived while the connection was idle were read as its answer", body)
		}
	})
}

// TestH1ResponseHeaderSizeLimit: http.Transport stops reading an answer's head after
// MaxResponseHeaderBytes (default 10 MiB) and fails the call with "net/http: server response
// headers exceeded 10485760 bytes; aborted". Without the limit a broken or hostile backend
// streaming header lines would make the gateway buffer them all, in memory, per request.
func TestH1ResponseHeaderSizeLimit(t *testing.T) {
	const limit = 10 << 20
	addr := rawBackend(t, func(c net.Conn, br *bufio.Reader, n int) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		bw := bufio.NewWriterSize(c, 64<<10)
		_, _ = bw.WriteString("HTTP/1.1 200 OK\r\n")
		line := "X-Pad: " + strings.Repeat("a", 1017) + "\r\n" // 1 KiB a line
		for i := 0; i < (limit>>10)+512; i++ {
			if _, err := bw.WriteString(line); err != nil {
				return
			}
		}
		_, _ = bw.WriteString("Content-Length: 2\r\n\r\nok")
		_ = bw.Flush()
	})
	h := h1ForTest(t, time.Minute)
	resp, _, err := getVia(t, h, "http://"+addr+"/")
	if err == nil {
		t.Errorf("an answer with %d bytes of header was accepted (%d fields); http.Transport fails it past %d bytes",
			limit+512<<10, len(resp.Header["X-Pad"]), limit)
	}
}

// TestH1ManyInformationalAnswers: since Go 1.24 http.Transport has no count limit on 1xx
// answers: when a ClientTrace takes them (Got1xxResponse, as the forwarder's does) they are the
// caller's to limit, and otherwise they count against MaxResponseHeaderBytes. A backend that sends
// "102 Processing" as a heartbeat during a long operation, or several 103s, is served normally.
func TestH1ManyInformationalAnswers(t *testing.T) {
	const informational = 8
	addr := rawBackend(t, func(c net.Conn, br *bufio.Reader, n int) {
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			for i := 0; i < informational; i++ {
				_, _ = io.WriteString(c, "HTTP/1.1 102 Processing\r\n\r\n")
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	for _, withTrace := range []bool{true, false} {
		h := h1ForTest(t, time.Minute)
		seen := 0
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if withTrace {
			ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
				Got1xxResponse: func(int, textproto.MIMEHeader) error { seen++; return nil }})
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
		resp, err := h.RoundTrip(req)
		if err != nil {
			t.Errorf("trace=%v: %d 1xx answers before the final one failed the call: %v (http.Transport returns the 200)", withTrace, informational, err)
		} else {
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "ok" || (withTrace && seen != informational) {
				t.Errorf("trace=%v: got %d %q after %d 1xx, want 200 ok after %d", withTrace, resp.StatusCode, b, seen, informational)
			}
		}
		cancel()
	}
}

// TestH1IPv6TargetWithoutPort: a target "http://[::1]" (valid for parseTarget) reaches
// h1Transport with URL.Host "[::1]". http.Transport dials canonicalAddr(URL) =
// net.JoinHostPort(URL.Hostname(), "80") = "[::1]:80"; joining the bracketed form would dial
// "[[::1]]:80", which no resolver accepts.
func TestH1IPv6TargetWithoutPort(t *testing.T) {
	errStop := errors.New("stop after dial")
	record := func(got *string) func(context.Context, string, string) (net.Conn, error) {
		return func(_ context.Context, _, addr string) (net.Conn, error) {
			*got = addr
			return nil, errStop
		}
	}
	var want, got string
	ref := &http.Transport{DialContext: record(&want)}
	defer ref.CloseIdleConnections()
	h := &h1Transport{fallback: &http.Transport{}, dial: record(&got), maxIdle: 1}
	for _, rt := range []http.RoundTripper{ref, h} {
		req := httptest.NewRequest(http.MethodGet, "http://[::1]/x", nil)
		req.RequestURI = ""
		_, _ = rt.RoundTrip(req)
	}
	if want != "[::1]:80" {
		t.Fatalf("http.Transport dialed %q", want)
	}
	if got != want {
		t.Errorf("h1Transport dialed %q, http.Transport dials %q", got, want)
	}
}

// TestH1IdleConnectionsClosedAfterIdleTimeout: http.Transport closes a pooled connection once
// it has been idle for IdleConnTimeout (a timer per idle connection), with or without further
// traffic. Dropping expired connections only when get pops them is not enough: with no more
// calls to the target — and, the pool being LIFO, for every connection under the top one even
// with steady traffic — they would stay open for good, holding descriptors (in CLOSE_WAIT once
// the backend gives up on them) and backend resources after a burst.
func TestH1IdleConnectionsClosedAfterIdleTimeout(t *testing.T) {
	closed := make(chan struct{}, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			select {
			case closed <- struct{}{}:
			default:
			}
		}
	}
	srv.Start()
	defer srv.Close()
	h := h1ForTest(t, 100*time.Millisecond)
	if _, body, err := getVia(t, h, srv.URL+"/"); err != nil || body != "ok" {
		t.Fatalf("call: %q, %v", body, err)
	}
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Errorf("the pooled connection is still open 2s after its 100ms idle timeout; http.Transport closes it when the timeout passes")
	}
}

// TestH1NoResendAfterAnswerBegan: http.Transport resends a request on a fresh connection only
// when the pooled one failed before the first byte of any answer (transportReadFromServerError
// from readLoop's Peek, or errServerClosedIdle); a connection that ends after an informational
// answer fails the call with "unexpected EOF" (readResponse's ReadResponse error), because the
// backend evidently received and is processing the request. Resending it would run it twice
// (and the client could see the 1xx twice).
func TestH1NoResendAfterAnswerBegan(t *testing.T) {
	var mu sync.Mutex
	received := 0
	addr := rawBackend(t, func(c net.Conn, br *bufio.Reader, n int) {
		for i := 0; ; i++ {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			mu.Lock()
			received++
			mu.Unlock()
			if n == 0 && i == 1 {
				// The second request on the first connection: begin answering, then die.
				_, _ = io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
				return
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	h := h1ForTest(t, time.Minute)
	if _, body, err := getVia(t, h, "http://"+addr+"/a"); err != nil || body != "ok" {
		t.Fatalf("first call: %q, %v", body, err)
	}
	_, body, err := getVia(t, h, "http://"+addr+"/b")
	mu.Lock()
	defer mu.Unlock()
	if err == nil || received != 2 {
		t.Errorf("second call: %q, %v; backend received %d requests, want an error and 2: a request whose answer had begun was sent again",
			body, err, received)
	}
}
