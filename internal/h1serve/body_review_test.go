package h1serve

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// startBoth serves h with the same configuration by net/http alone ("net/http") and by h1serve
// ("h1serve"), and returns the two addresses.
func startBoth(t *testing.T, h http.HandlerFunc, cfg func(*http.Server)) map[string]string {
	t.Helper()
	out := map[string]string{}
	// net/http.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h, ErrorLog: discardLog(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second}
	if cfg != nil {
		cfg(hs)
	}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	out["net/http"] = ln.Addr().String()
	// h1serve.
	cs := startCT(t, h, func(s *http.Server) {
		s.ErrorLog = discardLog()
		if cfg != nil {
			cfg(s)
		}
	})
	out["h1serve"] = cs.addr
	return out
}

// An old client sends a CRLF after a POST body; net/http skips it (conn.readRequest's "RFC 7230
// section 3 tolerance", c.lastMethod == "POST") and serves the next request, and so must h1serve
// (taken for the start of a head, it would hand the connection off to a net/http that never saw
// the POST, which answers 400).
func TestBodyCRLFAfterPOSTBody(t *testing.T) {
	addrs := startBoth(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, b)
	}, nil)
	for _, name := range []string{"net/http", "h1serve"} {
		t.Run(name, func(t *testing.T) {
			c := dialCT(t, addrs[name])
			c.send(reqPOSTLength("/a", "hello") + "\r\n" + reqGET("/b"))
			_, body := c.read("POST")
			if body != "POST /a hello" {
				t.Fatalf("first answer %q", body)
			}
			resp, body := c.read("GET")
			if resp.StatusCode != 200 || body != "GET /b " {
				t.Fatalf("second answer: %d %q, want 200 %q (as net/http)", resp.StatusCode, body, "GET /b ")
			}
		})
	}
}

// http.ResponseController.SetReadDeadline is how a handler cuts short a body read that another
// goroutine is blocked in (net/http: c.rwc.SetReadDeadline, no lock); it must not wait for the
// body's read lock, which the blocked reader holds.
func TestBodySetReadDeadlineUnblocksBlockedBodyRead(t *testing.T) {
	type result struct {
		setTook time.Duration
		readErr error
	}
	results := make(chan result, 2)
	addrs := startBoth(t, func(w http.ResponseWriter, r *http.Request) {
		readErr := make(chan error, 1)
		go func() {
			_, err := io.ReadAll(r.Body)
			readErr <- err
		}()
		time.Sleep(200 * time.Millisecond) // the reader is blocked waiting for the rest
		start := time.Now()
		_ = http.NewResponseController(w).SetReadDeadline(time.Now())
		took := time.Since(start)
		var err error
		select {
		case err = <-readErr:
		case <-time.After(3 * time.Second):
			err = errors.New("body read still blocked 3s after SetReadDeadline")
		}
		results <- result{took, err}
		w.WriteHeader(http.StatusRequestTimeout)
	}, nil)
	for _, name := range []string{"net/http", "h1serve"} {
		t.Run(name, func(t *testing.T) {
			c := dialCT(t, addrs[name])
			c.send("POST /up HTTP/1.1\r\nHost: example.test\r\nContent-Length: 100\r\n\r\nonly part")
			select {
			case r := <-results:
				var ne net.Error
				if r.setTook > time.Second || !errors.As(r.readErr, &ne) || !ne.Timeout() {
					t.Fatalf("SetReadDeadline took %v; body read ended with %v; want at once and a timeout (as net/http)", r.setTook, r.readErr)
				}
			case <-time.After(4 * time.Second):
				// Let the server go: the client sends the rest, which unblocks the reader.
				c.send(string(make([]byte, 91)))
				r := <-results
				t.Fatalf("SetReadDeadline blocked until the client sent the rest of the body (took %v, read err %v); net/http returns at once", r.setTook, r.readErr)
			}
		})
	}
}

// ReadTimeout bounds the whole request, head and body, from when its reading starts (net/http's
// wholeReqDeadline = t0 + ReadTimeout, t0 before the head): restarted after the head, a client
// that drips the head and then the body would get up to twice read_timeout.
func TestBodyReadTimeoutCoversHeadAndBody(t *testing.T) {
	got := make(chan string, 2)
	addrs := startBoth(t, func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		got <- fmt.Sprintf("%q %v", b, err)
	}, func(s *http.Server) {
		s.ReadHeaderTimeout = 0
		s.ReadTimeout = 800 * time.Millisecond
	})
	for _, name := range []string{"net/http", "h1serve"} {
		t.Run(name, func(t *testing.T) {
			c := dialCT(t, addrs[name])
			c.send("POST /drip HTTP/1.1\r\nHost: example.test\r\n")
			time.Sleep(500 * time.Millisecond)
			c.send("Content-Length: 4\r\n\r\nab")
			time.Sleep(600 * time.Millisecond) // 1.1 s after the request began
			c.send("cd")
			select {
			case r := <-got:
				if r == `"abcd" <nil>` {
					t.Fatalf("body read succeeded 1.1s into the request with read_timeout 800ms; net/http's fails")
				}
			case <-time.After(3 * time.Second):
				t.Fatal("no handler result")
			}
		})
	}
}

// net/http's writeHeader leaves the request body alone once a handler called
// ResponseController.EnableFullDuplex (a streaming echo: read a piece, write and flush a piece).
// h1serve's writer must offer the same, or the first flush would settle (discard) the body the
// handler is still reading.
func TestBodyEnableFullDuplex(t *testing.T) {
	addrs := startBoth(t, func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if err := rc.EnableFullDuplex(); err != nil {
			http.Error(w, "full duplex: "+err.Error(), http.StatusInternalServerError)
			return
		}
		buf := make([]byte, 5)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				_, _ = w.Write(buf[:n])
				_ = rc.Flush()
			}
			if err != nil {
				if err != io.EOF {
					fmt.Fprintf(w, "[%v]", err)
				}
				return
			}
		}
	}, nil)
	for _, name := range []string{"net/http", "h1serve"} {
		t.Run(name, func(t *testing.T) {
			c := dialCT(t, addrs[name])
			c.send("POST /echo HTTP/1.1\r\nHost: example.test\r\nContent-Length: 10\r\n\r\nhello")
			_ = c.nc.SetReadDeadline(time.Now().Add(2 * time.Second))
			resp, err := http.ReadResponse(c.br, &http.Request{Method: "POST"})
			if err != nil {
				t.Fatalf("no answer: %v (net/http echoes the first piece at once)", err)
			}
			if resp.StatusCode != 200 {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("got %d %q; net/http streams the echo", resp.StatusCode, b)
			}
			first := make([]byte, 5)
			if _, err := io.ReadFull(resp.Body, first); err != nil {
				t.Fatalf("first echo: %v", err)
			}
			c.send("world")
			rest, err := io.ReadAll(resp.Body)
			if string(first)+string(rest) != "helloworld" || err != nil {
				t.Fatalf("echo %q%q, %v; want %q", first, rest, err, "helloworld")
			}
		})
	}
}

// A handler that answers "Connection: close" (or a server shutting down) ends the connection:
// net/http does not read the unread body before the header then (closeAfterReply is set before
// chunkWriter.writeHeader's discard), so the answer goes out at once, without waiting for the
// client to send the whole body.
func TestBodyConnectionCloseAnswerDoesNotWaitForBody(t *testing.T) {
	addrs := startBoth(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusUnauthorized)
		_ = http.NewResponseController(w).Flush()
	}, nil)
	for _, name := range []string{"net/http", "h1serve"} {
		t.Run(name, func(t *testing.T) {
			c := dialCT(t, addrs[name])
			c.send("POST /up HTTP/1.1\r\nHost: example.test\r\nContent-Length: 100000\r\n\r\nfirst part")
			_ = c.nc.SetReadDeadline(time.Now().Add(time.Second))
			resp, err := http.ReadResponse(c.br, &http.Request{Method: "POST"})
			if err != nil {
				t.Fatalf("no answer within 1s while the body is incomplete: %v (net/http answers at once)", err)
			}
			if resp.StatusCode != 401 {
				t.Fatalf("status %d", resp.StatusCode)
			}
		})
	}
}

// A goroutine the handler leaves reading the body (a transport's writer) cannot
// read past the body once the connection moved on: it gets ErrBodyReadAfterClose, and the
// pipelined request after the body is read whole by the server.
func TestBodyLeftoverReaderAfterHandler(t *testing.T) {
	late := make(chan error, 1)
	cs := startCT(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/up" {
			echo(w, r)
			return
		}
		buf := make([]byte, 3)
		_, _ = io.ReadFull(r.Body, buf)
		go func() {
			time.Sleep(300 * time.Millisecond)
			_, err := r.Body.Read(make([]byte, 64))
			late <- err
		}()
		mark(w)
		fmt.Fprint(w, "early")
	}, nil)
	c := dialCT(t, cs.addr)
	c.send(reqPOSTLength("/up", "abcGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"))
	c.expect("POST", 200, "early", "h1serve")
	time.Sleep(100 * time.Millisecond)
	c.send(reqPOSTLength("/next", "0123456789"))
	c.expect("POST", 200, "POST /next 0123456789 big=0", "h1serve")
	if err := <-late; !errors.Is(err, http.ErrBodyReadAfterClose) {
		t.Fatalf("late read: %v", err)
	}
	c.send(reqGET("/after"))
	c.expect("GET", 200, "GET /after  big=0", "h1serve")
}

// A read deadline the handler set for the body does not outlive the body: the
// watcher does not take the client for gone, and the next request on the connection is read.
func TestBodyHandlerReadDeadlineEndsWithBody(t *testing.T) {
	cs := startCT(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/up" {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(150 * time.Millisecond))
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			select {
			case <-r.Context().Done():
				http.Error(w, "cancelled", 500)
				return
			case <-time.After(400 * time.Millisecond):
			}
			mark(w)
			fmt.Fprintf(w, "%s", b)
			return
		}
		echo(w, r)
	}, func(s *http.Server) {
		s.ReadTimeout = 200 * time.Millisecond
		s.ReadHeaderTimeout = 0
		s.IdleTimeout = 5 * time.Second
	})
	c := dialCT(t, cs.addr)
	c.send(reqPOSTLength("/up", "body"))
	c.expect("POST", 200, "body", "h1serve")
	time.Sleep(300 * time.Millisecond)
	c.send(reqGET("/next"))
	c.expect("GET", 200, "GET /next  big=0", "h1serve")
}

// A request that says Connection: close, with a large body left unread: net/http's body.Close
// reads nothing (b.closing) and closes the connection at once (no closeWriteAndWait: neither
// requestBodyLimitHit nor earlyClose), rather than holding it (its goroutine, and a Shutdown
// drain) for rstAvoidanceDelay.
func TestBodyCloseRequestUnreadBodyDoesNotLinger(t *testing.T) {
	cs := startCT(t, func(w http.ResponseWriter, r *http.Request) { mark(w); fmt.Fprint(w, "no") }, nil)
	c := dialCT(t, cs.addr)
	c.send("POST /up HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\nContent-Length: 10000000\r\n\r\npartial")
	c.expect("POST", 200, "no", "h1serve")
	if d := untilReleased(t, cs); d > 150*time.Millisecond {
		t.Errorf("server held the connection %v after answering a Connection: close request; net/http closes at once", d.Round(time.Millisecond))
	}
}
