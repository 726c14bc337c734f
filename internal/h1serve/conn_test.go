package h1serve

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests run a Server on 127.0.0.1 and talk raw HTTP/1.1 to it. Every handler marks its
// answer with X-Served-By, "h1serve" when its ResponseWriter is this package's *response and
// "net/http" otherwise, so that the client can tell which server answered each request.

const servedByKey = "X-Served-By"

func servedBy(w http.ResponseWriter) string {
	if _, ok := w.(*response); ok {
		return "h1serve"
	}
	return "net/http"
}

func mark(w http.ResponseWriter) { w.Header().Set(servedByKey, servedBy(w)) }

// echo answers "METHOD PATH BODY big=N", N being the length of the X-Big request field.
func echo(w http.ResponseWriter, r *http.Request) {
	mark(w)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "%s %s %s big=%d", r.Method, r.URL.Path, body, len(r.Header.Get("X-Big")))
}

// lockedBuffer is the fallback's error log.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type ctServer struct {
	s        *Server
	addr     string
	log      *lockedBuffer
	serveErr chan error
	once     sync.Once
	res      error
}

// wait returns what Serve returned (an error if it did not return within 5 s).
func (c *ctServer) wait() error {
	c.once.Do(func() {
		select {
		case c.res = <-c.serveErr:
		case <-time.After(5 * time.Second):
			c.res = errors.New("Serve did not return within 5s")
		}
	})
	return c.res
}

// startCT serves h on a new 127.0.0.1 listener; cfg may change the fallback server first.
func startCT(t *testing.T, h http.HandlerFunc, cfg func(*http.Server)) *ctServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cs := &ctServer{addr: ln.Addr().String(), log: &lockedBuffer{}, serveErr: make(chan error, 1)}
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       5 * time.Second,
		ErrorLog:          log.New(cs.log, "", 0),
	}
	if cfg != nil {
		cfg(hs)
	}
	cs.s = New(hs)
	go func() { cs.serveErr <- cs.s.Serve(ln) }()
	t.Cleanup(func() {
		_ = cs.s.Close()
		if err := cs.wait(); err != nil {
			t.Errorf("Serve returned %v, want nil", err)
		}
	})
	return cs
}

type ctClient struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dialCT(t *testing.T, addr string) *ctClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &ctClient{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (c *ctClient) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// readResp reads one response (for a request with method) and its whole body.
func readResp(br *bufio.Reader, method string) (*http.Response, string, error) {
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		return nil, "", err
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", fmt.Errorf("reading body: %w", err)
	}
	return resp, string(body), nil
}

func (c *ctClient) read(method string) (*http.Response, string) {
	c.t.Helper()
	resp, body, err := readResp(c.br, method)
	if err != nil {
		c.t.Fatalf("reading response: %v", err)
	}
	return resp, body
}

// expect reads a response and checks its status, body and the server that answered.
func (c *ctClient) expect(method string, status int, body, by string) *http.Response {
	c.t.Helper()
	resp, got := c.read(method)
	if resp.StatusCode != status || got != body || resp.Header.Get(servedByKey) != by {
		c.t.Fatalf("got %d %q served by %q, want %d %q served by %q",
			resp.StatusCode, got, resp.Header.Get(servedByKey), status, body, by)
	}
	return resp
}

// closedErr reports whether err means the peer ended the connection.
func closedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed)
}

// expectClosed checks that the server closes the connection within d, sending nothing more.
func (c *ctClient) expectClosed(d time.Duration) {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(d))
	b, err := c.br.ReadByte()
	if err == nil {
		rest, _ := c.br.Peek(c.br.Buffered())
		c.t.Fatalf("got data %q, want the connection closed", append([]byte{b}, rest...))
	}
	if !closedErr(err) {
		c.t.Fatalf("read: %v, want the connection closed within %v", err, d)
	}
}

func reqGET(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: example.test\r\n\r\n" }

// reqPOST is a POST net/http serves: a chunked body hands the connection off.
func reqPOST(path, body string) string {
	return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", path, len(body), body)
}

// 1. Hand-off.

func TestHandOffMidConnection(t *testing.T) {
	cs := startCT(t, echo, nil)
	c := dialCT(t, cs.addr)
	c.send(reqGET("/one"))
	c.expect("GET", 200, "GET /one  big=0", "h1serve")
	c.send(reqPOST("/two", "hello"))
	c.expect("POST", 200, "POST /two hello big=0", "net/http")
	c.send(reqGET("/three"))
	c.expect("GET", 200, "GET /three  big=0", "net/http")
}

func TestHandOffOddRequests(t *testing.T) {
	big := strings.Repeat("b", 5000)
	for _, tc := range []struct {
		name, raw, body, by string
	}{
		{"plain GET (control)", reqGET("/x"), "GET /x  big=0", "h1serve"},
		{"HTTP/1.0", "GET /x HTTP/1.0\r\nHost: example.test\r\n\r\n", "GET /x  big=0", "net/http"},
		{"bare LF", "GET /x HTTP/1.1\nHost: example.test\n\n", "GET /x  big=0", "net/http"},
		{"bare LF in one line", "GET /x HTTP/1.1\r\nHost: example.test\nAccept: */*\r\n\r\n", "GET /x  big=0", "net/http"},
		{"head over 4 KiB", "GET /x HTTP/1.1\r\nHost: example.test\r\nX-Big: " + big + "\r\n\r\n", "GET /x  big=5000", "net/http"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := startCT(t, echo, nil)
			c := dialCT(t, cs.addr)
			c.send(tc.raw)
			c.expect("GET", 200, tc.body, tc.by)
		})
	}
}

func TestHandOffExpectContinue(t *testing.T) {
	cs := startCT(t, echo, nil)
	c := dialCT(t, cs.addr)
	c.send("POST /e HTTP/1.1\r\nHost: example.test\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	resp, _ := c.read("POST")
	if resp.StatusCode != http.StatusContinue {
		t.Fatalf("got %d before the body was sent, want 100", resp.StatusCode)
	}
	c.send("hello")
	c.expect("POST", 200, "POST /e hello big=0", "net/http")
}

// 2. Pipelining.

func TestPipelinedGETs(t *testing.T) {
	cs := startCT(t, echo, nil)
	c := dialCT(t, cs.addr)
	c.send(reqGET("/a") + reqGET("/b"))
	c.expect("GET", 200, "GET /a  big=0", "h1serve")
	c.expect("GET", 200, "GET /b  big=0", "h1serve")
}

func TestPipelinedGETThenPOST(t *testing.T) {
	cs := startCT(t, echo, nil)
	c := dialCT(t, cs.addr)
	c.send(reqGET("/a") + reqPOST("/b", "xyz") + reqGET("/c"))
	c.expect("GET", 200, "GET /a  big=0", "h1serve")
	c.expect("POST", 200, "POST /b xyz big=0", "net/http")
	c.expect("GET", 200, "GET /c  big=0", "net/http")
}

// 3. Watcher.

func TestWatcherCancelsWhenClientGoes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		pause time.Duration // between the handler's start and the client's close
	}{
		{"closed before watching starts", 0},
		{"closed while watching", 2 * watchAfter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			started := make(chan string, 1)
			result := make(chan string, 1)
			cs := startCT(t, func(w http.ResponseWriter, r *http.Request) {
				started <- servedBy(w)
				select {
				case <-r.Context().Done():
					result <- "cancelled"
				case <-time.After(5 * time.Second):
					result <- "not cancelled"
				}
			}, nil)
			c := dialCT(t, cs.addr)
			c.send(reqGET("/wait"))
			select {
			case by := <-started:
				if by != "h1serve" {
					t.Fatalf("served by %s, want h1serve", by)
				}
			case <-time.After(3 * time.Second):
				t.Fatal("handler did not start")
			}
			time.Sleep(tc.pause)
			_ = c.nc.Close()
			select {
			case r := <-result:
				if r != "cancelled" {
					t.Fatalf("handler: %s", r)
				}
			case <-time.After(3 * time.Second):
				t.Fatal("request context not cancelled within 3s of the client closing")
			}
		})
	}
}

// A pipelined request whose first byte the watcher reads while a slow handler runs must be
// served intact, after the slow one.
func TestWatcherKeepsPipelinedRequest(t *testing.T) {
	cs := startCT(t, func(w http.ResponseWriter, r *http.Request) {
		mark(w)
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/slow" {
			time.Sleep(250 * time.Millisecond)
		}
		fmt.Fprintf(w, "%s %s ctx=%v", r.Method, r.URL.Path, r.Context().Err())
	}, nil)
	const iterations, parallel = 20, 5
	for round := 0; round < iterations/parallel; round++ {
		var wg sync.WaitGroup
		for i := 0; i < parallel; i++ {
			n := round*parallel + i
			// The second request is sent 110..190 ms after the first: after the watcher
			// started reading (100 ms), before the slow handler returns (250 ms).
			delay := 110*time.Millisecond + time.Duration(n%5)*20*time.Millisecond
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := pipelineAfter(cs.addr, delay, n); err != nil {
					t.Errorf("iteration %d (second request after %v): %v", n, delay, err)
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			return
		}
	}
}

func pipelineAfter(addr string, delay time.Duration, n int) error {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(nc, reqGET("/slow")); err != nil {
		return err
	}
	time.Sleep(delay)
	// Odd iterations pipeline a POST, which is handed off with the byte the watcher read.
	next, method, by := fmt.Sprintf("/next%d", n), "GET", "h1serve"
	raw := reqGET(next)
	if n%2 == 1 {
		method, by = "POST", "net/http"
		raw = reqPOST(next, "body")
	}
	if _, err := io.WriteString(nc, raw); err != nil {
		return err
	}
	br := bufio.NewReader(nc)
	for _, want := range []struct{ method, body, by string }{
		{"GET", "GET /slow ctx=<nil>", "h1serve"},
		{method, method + " " + next + " ctx=<nil>", by},
	} {
		resp, body, err := readResp(br, want.method)
		if err != nil {
			return fmt.Errorf("reading the answer to %q: %w", want.body, err)
		}
		if resp.StatusCode != 200 || body != want.body || resp.Header.Get(servedByKey) != want.by {
			return fmt.Errorf("got %d %q by %s, want 200 %q by %s", resp.StatusCode, body, resp.Header.Get(servedByKey), want.body, want.by)
		}
	}
	return nil
}

// 4. Shutdown and Close.

func TestShutdownGraceful(t *testing.T) {
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	cs := startCT(t, func(w http.ResponseWriter, r *http.Request) {
		mark(w)
		if r.URL.Path == "/block" {
			started <- struct{}{}
			select {
			case <-release:
			case <-time.After(5 * time.Second):
			}
		}
		fmt.Fprint(w, r.URL.Path)
	}, nil)
	idle := dialCT(t, cs.addr)
	idle.send(reqGET("/idle"))
	idle.expect("GET", 200, "/idle", "h1serve")

	busy := dialCT(t, cs.addr)
	busy.send(reqGET("/block"))
	select {
	case <-started:
	case <-time.After(3 * time.Second):
		t.Fatal("handler did not start")
	}

	shutErr := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shutErr <- cs.s.Shutdown(ctx)
	}()

	idle.expectClosed(3 * time.Second)
	select {
	case err := <-shutErr:
		t.Fatalf("Shutdown returned %v while a request was in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	resp := busy.expect("GET", 200, "/block", "h1serve")
	if !resp.Close { // http.ReadResponse moves "Connection: close" into Close
		t.Errorf("in-flight answer does not carry Connection: close")
	}
	busy.expectClosed(3 * time.Second)
	select {
	case err := <-shutErr:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	if err := cs.wait(); err != nil {
		t.Fatalf("Serve returned %v, want nil", err)
	}
	if _, err := net.DialTimeout("tcp", cs.addr, time.Second); err == nil {
		t.Error("listener still accepts after Shutdown")
	}
}

func TestCloseCutsInFlight(t *testing.T) {
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	cs := startCT(t, func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
	}, nil)
	t.Cleanup(func() { close(release) })
	c := dialCT(t, cs.addr)
	c.send(reqGET("/block"))
	select {
	case <-started:
	case <-time.After(3 * time.Second):
		t.Fatal("handler did not start")
	}
	if err := cs.s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	c.expectClosed(3 * time.Second)
	if err := cs.wait(); err != nil {
		t.Fatalf("Serve returned %v, want nil", err)
	}
}

// A request whose head is still arriving when Shutdown begins is one net/http answers (its
// connection is new, or active); here a body-less one is, and so must be one that is handed off.
func TestShutdownAnswersRequestBeingRead(t *testing.T) {
	for _, tc := range []struct {
		name, first, rest, method, body, by string
	}{
		{"GET (served here)", "GET /g HTTP/1.1\r\n", "Host: example.test\r\n\r\n", "GET", "GET /g  big=0", "h1serve"},
		{"POST (handed off)", "POST /p HTTP/1.1\r\n", "Host: example.test\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", "POST", "POST /p hi big=0", "net/http"},
		{"POST with a length (served here)", "POST /p HTTP/1.1\r\n", "Host: example.test\r\nContent-Length: 2\r\n\r\nhi", "POST", "POST /p hi big=0", "h1serve"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := startCT(t, echo, nil)
			c := dialCT(t, cs.addr)
			c.send(tc.first)
			// Wait until the server is reading the request (the connection is active).
			waitFor(t, "connection active", func() bool {
				cs.s.mu.Lock()
				defer cs.s.mu.Unlock()
				for _, st := range cs.s.conns {
					if st.busy {
						return true
					}
				}
				return false
			})
			shutErr := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				shutErr <- cs.s.Shutdown(ctx)
			}()
			waitFor(t, "shutting down", cs.s.shutting.Load)
			time.Sleep(50 * time.Millisecond)
			c.send(tc.rest)
			resp, body, err := readResp(c.br, tc.method)
			if err != nil {
				t.Fatalf("request in progress when Shutdown began got no answer: %v", err)
			}
			if resp.StatusCode != 200 || body != tc.body || resp.Header.Get(servedByKey) != tc.by {
				t.Fatalf("got %d %q by %s, want 200 %q by %s", resp.StatusCode, body, resp.Header.Get(servedByKey), tc.body, tc.by)
			}
			if err := <-shutErr; err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
		})
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(3 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// 5. Timeouts.

func TestReadHeaderTimeout(t *testing.T) {
	cs := startCT(t, echo, func(hs *http.Server) { hs.ReadHeaderTimeout = 300 * time.Millisecond })
	for _, tc := range []struct{ name, before string }{
		{"first request", ""},
		{"after a request", reqGET("/first")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialCT(t, cs.addr)
			if tc.before != "" {
				c.send(tc.before)
				c.expect("GET", 200, "GET /first  big=0", "h1serve")
			}
			c.send("GET /x HTTP/1.1\r\nHost: exa")
			c.expectClosed(3 * time.Second)
		})
	}
}

func TestIdleTimeout(t *testing.T) {
	cs := startCT(t, echo, func(hs *http.Server) { hs.IdleTimeout = 300 * time.Millisecond })
	c := dialCT(t, cs.addr)
	c.send(reqGET("/x"))
	c.expect("GET", 200, "GET /x  big=0", "h1serve")
	start := time.Now()
	c.expectClosed(3 * time.Second)
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("idle connection closed after %v, before the idle timeout", d)
	}
}

// 6. Panics.

func TestHandlerPanicClosesConnection(t *testing.T) {
	cs := startCT(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("boom-h1serve-test")
		}
		echo(w, r)
	}, nil)
	c := dialCT(t, cs.addr)
	c.send(reqGET("/panic"))
	c.expectClosed(3 * time.Second)

	other := dialCT(t, cs.addr)
	other.send(reqGET("/ok"))
	other.expect("GET", 200, "GET /ok  big=0", "h1serve")

	waitFor(t, "the panic in the error log", func() bool {
		l := cs.log.String()
		return strings.Contains(l, "panic serving") && strings.Contains(l, "boom-h1serve-test")
	})
}

// 7. Write deadlines.

func TestWriteDeadlineNotLeftOnConnection(t *testing.T) {
	for _, tc := range []struct {
		name, next, method, body, by string
	}{
		{"next request served here", reqGET("/next"), "GET", "GET /next  big=0", "h1serve"},
		{"next request handed off", reqPOST("/next", "body"), "POST", "POST /next body big=0", "net/http"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := startCT(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/deadline" {
					if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
						t.Errorf("SetWriteDeadline: %v", err)
					}
				}
				echo(w, r)
			}, nil)
			c := dialCT(t, cs.addr)
			c.send(reqGET("/deadline"))
			c.expect("GET", 200, "GET /deadline  big=0", "h1serve")
			time.Sleep(300 * time.Millisecond)
			c.send(tc.next)
			c.expect(tc.method, 200, tc.body, tc.by)
		})
	}
}

// A handed-off connection must still let net/http half-close it: when net/http ends a
// connection after an answer while the client may still be sending (a body it did not read), it
// sends a FIN at once (CloseWrite) and only closes after its rstAvoidanceDelay (500 ms), so the client learns
// at once that the answer is complete. The control runs the same exchange on plain net/http.
func TestHandOffKeepsCloseWrite(t *testing.T) {
	handler := func(w http.ResponseWriter, r *http.Request) {
		mark(w)
		fmt.Fprint(w, "not reading your body")
	}
	for _, tc := range []struct {
		name string
		addr func(t *testing.T) string
		by   string
	}{
		{"net/http", func(t *testing.T) string {
			srv := httptest.NewUnstartedServer(http.HandlerFunc(handler))
			srv.Config.ErrorLog = log.New(io.Discard, "", 0)
			srv.Start()
			t.Cleanup(srv.Close)
			return srv.Listener.Addr().String()
		}, "net/http"},
		{"h1serve", func(t *testing.T) string { return startCT(t, handler, nil).addr }, "h1serve"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialCT(t, tc.addr(t))
			// A body far larger than net/http drains after the handler (256 KiB), mostly unsent.
			c.send("POST /up HTTP/1.1\r\nHost: example.test\r\nContent-Length: 10000000\r\n\r\npartial")
			resp := c.expect("POST", 200, "not reading your body", tc.by)
			if !resp.Close {
				t.Fatalf("answer does not close the connection")
			}
			// The FIN comes with the answer; the full close only rstAvoidanceDelay (500 ms) later.
			c.expectClosed(250 * time.Millisecond) // half of net/http's rstAvoidanceDelay
		})
	}
}

// A request's read deadlines (header, idle, body) stay on the connection after it is read, since
// only the watcher reads it afterwards and clearing them each time is a timer change. A handler
// that outlives them must not be taken for one whose client went away.
func TestSlowHandlerOutlivesReadDeadlines(t *testing.T) {
	cs := startCT(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
			_, _ = io.WriteString(w, "cancelled")
		case <-time.After(6 * watchAfter):
			_, _ = io.WriteString(w, "done")
		}
	}, func(hs *http.Server) {
		hs.ReadHeaderTimeout = 2 * watchAfter
		hs.ReadTimeout = 2 * watchAfter
		hs.IdleTimeout = 4 * watchAfter
	})
	c := dialCT(t, cs.addr)
	c.send(reqGET("/first")) // the header deadline passes while the handler runs
	c.expect("GET", 200, "done", "")
	time.Sleep(5 * watchAfter / 2) // the idle deadline passes while the next handler runs
	c.send(reqGET("/second"))
	c.expect("GET", 200, "done", "")
	c.send("POST /body HTTP/1.1\r\nHost: example.test\r\nContent-Length: 2\r\n\r\nhi")
	c.expect("POST", 200, "done", "") // so does the body's
}

// Without a header timeout a later request's head may take its time, as in net/http: the idle
// deadline it began under must not cut it (found in review).
func TestSlowLaterHeadWithoutHeaderTimeout(t *testing.T) {
	cs := startCT(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}, func(hs *http.Server) {
		hs.ReadHeaderTimeout = 0
		hs.ReadTimeout = 0
		hs.IdleTimeout = 300 * time.Millisecond
	})
	c := dialCT(t, cs.addr)
	c.send(reqGET("/first"))
	c.expect("GET", 200, "ok", "")
	c.send("GET /second HTTP/1.1\r\n")
	time.Sleep(500 * time.Millisecond) // the idle deadline passes while the head is incomplete
	c.send("Host: example.test\r\n\r\n")
	c.expect("GET", 200, "ok", "")
}
