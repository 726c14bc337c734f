package h1serve

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

// net/http's readRequest applies fixPragmaCacheControl: "Pragma: no-cache" without a
// Cache-Control field yields "Cache-Control: no-cache"; a head parseHead takes must read the same.
func TestPragmaNoCacheReadsAsNetHTTP(t *testing.T) {
	head := []byte("GET /x HTTP/1.1\r\nHost: a\r\nPragma: no-cache\r\n\r\n")
	got, _, _, ok := parseHead(head, "192.0.2.1:1234")
	if !ok {
		t.Skip("not taken here: net/http's")
	}
	sameAsNetHTTP(t, head, got)
}

// net/http ends a connection after an answer with Connection: close at once (closeWriteAndWait
// and its 500 ms pause are only for an unread request body), rather than holding the
// connection, its goroutine and (Shutdown) the drain for rstAvoidanceDelay.
func TestConnectionCloseDoesNotLinger(t *testing.T) {
	cs := startCT(t, echo, nil)
	c := dialCT(t, cs.addr)
	c.send("GET /x HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n")
	c.expect("GET", 200, "GET /x  big=0", "h1serve")
	if d := untilReleased(t, cs); d > 150*time.Millisecond {
		t.Errorf("server held the connection %v after a Connection: close answer; net/http closes at once", d.Round(time.Millisecond))
	}
}

// untilReleased waits until the server has let go of every connection and says how long that took.
func untilReleased(t *testing.T, cs *ctServer) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		cs.s.mu.Lock()
		n := len(cs.s.conns)
		cs.s.mu.Unlock()
		if n == 0 {
			return time.Since(start)
		}
		if time.Since(start) > 2*time.Second {
			t.Fatal("connection never released")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// http.Server.Shutdown closes idle keep-alive connections at once and answers nothing more on
// them; a connection handed off to net/http earlier must not stay idle-but-open, served with
// keep-alive, for as long as any h1serve request is in flight.
func TestShutdownClosesHandedOffIdleConns(t *testing.T) {
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	cs := startCT(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			started <- struct{}{}
			<-release
		}
		echo(w, r)
	}, nil)
	defer close(release)

	handed := dialCT(t, cs.addr)
	handed.send(reqPOST("/up", "body"))
	handed.expect("POST", 200, "POST /up body big=0", "net/http")

	busy := dialCT(t, cs.addr)
	busy.send(reqGET("/block"))
	<-started

	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = cs.s.Shutdown(ctx)
	}()
	time.Sleep(200 * time.Millisecond) // net/http would have closed an idle connection by now

	handed.send(reqGET("/during-drain"))
	_ = handed.nc.SetReadDeadline(time.Now().Add(time.Second))
	resp, body, err := readResp(handed.br, "GET")
	if err == nil {
		t.Fatalf("idle handed-off connection still served during the drain: %d %q (Connection: close = %v)", resp.StatusCode, body, resp.Close)
	}
}

// When a handler panics (http.ErrAbortHandler: forward.go after the status line) net/http's
// conn.close runs finalFlush, so what passed its chunkWriter (status line, header, first chunk)
// reaches the client, which sees a truncated answer. Dropping it instead would show the client a
// connection closed with no answer at all, which clients take for a stale keep-alive connection
// and retry (Go's Transport re-sends idempotent requests).
func TestAbortAfterHeaderSendsWhatNetHTTPSends(t *testing.T) {
	handler := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(strings.Repeat("x", 3000)))
		panic(http.ErrAbortHandler)
	}
	run := func(addr string) string {
		c := dialCT(t, addr)
		c.send(reqGET("/x"))
		resp, err := http.ReadResponse(bufio.NewReader(c.nc), &http.Request{Method: "GET"})
		if err != nil {
			return "no answer: " + err.Error()
		}
		_, err = io.ReadAll(resp.Body)
		return fmt.Sprintf("status %d, body error %v", resp.StatusCode, err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(handler))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	defer srv.Close()
	want := run(srv.Listener.Addr().String())
	got := run(startCT(t, handler, nil).addr)
	if got != want {
		t.Errorf("h1serve: %s; net/http: %s", got, want)
	}
}

// More differential cases: the answer must read the same from both servers.
func TestMoreResponsesMatchNetHTTP(t *testing.T) {
	cases := []struct {
		name    string
		method  string
		handler func(w http.ResponseWriter, r *http.Request, errs func(error))
	}{
		{name: "length value changed in place after WriteHeader", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			w.Header().Set("Content-Length", "3")
			w.WriteHeader(http.StatusOK)
			w.Header()["Content-Length"][0] = "5"
			_, err := w.Write([]byte("abc"))
			errs(err)
		}},
		{name: "HEAD invalid length", method: "HEAD", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			w.Header().Set("Content-Length", "abc")
		}},
		{name: "trailer prefix before WriteHeader", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			w.Header().Set(http.TrailerPrefix+"X-T", "1")
			_, err := w.Write([]byte("abc"))
			errs(err)
		}},
		{name: "connection close token among others", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			w.Header().Set("Connection", "foo, close")
			_, err := w.Write([]byte("abc"))
			errs(err)
		}},
		{name: "flush nothing then 204", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			w.WriteHeader(http.StatusNoContent)
			w.(http.Flusher).Flush()
		}},
		{name: "exactly 2048 then 1", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			_, err := w.Write([]byte(strings.Repeat("a", 2048)))
			errs(err)
			_, err = w.Write([]byte("b"))
			errs(err)
		}},
		{name: "103 then 1xx header kept", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			w.Header().Set("Link", "</a>")
			w.Header().Set("Content-Length", "2")
			w.WriteHeader(103)
			w.WriteHeader(100)
			_, err := w.Write([]byte("ok"))
			errs(err)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "GET"
			}
			raw := method + " /x?q=1 HTTP/1.1\r\nHost: example.test\r\n\r\n"
			std := exchange(t, startStd, tc.handler, raw, method)
			lean := exchange(t, startLean, tc.handler, raw, method)
			lean.ServedBy, std.ServedBy = "", ""
			if !reflect.DeepEqual(std, lean) {
				t.Errorf("net/http and h1serve differ\nnet/http: %s\nh1serve:  %s", std, lean)
			}
		})
	}
}

// Handlers that end just as the watcher fires (timer reuse, stale fire), with the next
// request pipelined or sent after; run under -race.
func TestWatcherBoundary(t *testing.T) {
	cs := startCT(t, func(w http.ResponseWriter, r *http.Request) {
		d := time.Duration(95+len(r.URL.Path)%11) * time.Millisecond
		time.Sleep(d)
		echo(w, r)
	}, nil)
	c := dialCT(t, cs.addr)
	for i := 0; i < 30; i++ {
		p := "/" + strings.Repeat("p", i)
		if i%2 == 0 {
			c.send(reqGET(p) + reqGET(p+"q"))
			c.expect("GET", 200, "GET "+p+"  big=0", "h1serve")
			c.expect("GET", 200, "GET "+p+"q  big=0", "h1serve")
		} else {
			c.send(reqGET(p))
			c.expect("GET", 200, "GET "+p+"  big=0", "h1serve")
		}
	}
}

// The watcher takes the first byte of the next request; that request is then handed off.
func TestWatcherByteThenHandOff(t *testing.T) {
	cs := startCT(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "GET" {
			time.Sleep(250 * time.Millisecond)
		}
		echo(w, r)
	}, nil)
	c := dialCT(t, cs.addr)
	c.send(reqGET("/slow"))
	time.Sleep(150 * time.Millisecond)
	c.send(reqPOST("/up", "hello"))
	c.expect("GET", 200, "GET /slow  big=0", "h1serve")
	c.expect("POST", 200, "POST /up hello big=0", "net/http")
	c.send(reqGET("/after"))
	c.expect("GET", 200, "GET /after  big=0", "net/http")
}
