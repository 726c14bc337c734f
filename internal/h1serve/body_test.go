package h1serve

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

func reqPOSTLength(path, body string) string {
	return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: example.test\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
}

// Bodies of declared length are served here, and end exactly where declared: pipelined requests
// after them, with and without bodies, read as sent, whether or not the handler read the body.
func TestBodiesKeepRequestBoundaries(t *testing.T) {
	cs := startCT(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ignore" {
			mark(w)
			fmt.Fprint(w, "ignored")
			return
		}
		echo(w, r)
	}, nil)
	c := dialCT(t, cs.addr)
	c.send(reqPOSTLength("/a", "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n") + reqPOSTLength("/ignore", "GET /also HTTP/1.1\r\n\r\n") +
		reqGET("/b") + reqPOSTLength("/c", "xyz"))
	c.expect("POST", 200, "POST /a GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n big=0", "h1serve")
	c.expect("POST", 200, "ignored", "h1serve")
	c.expect("GET", 200, "GET /b  big=0", "h1serve")
	c.expect("POST", 200, "POST /c xyz big=0", "h1serve")
}

// read_timeout bounds reading the body: a client that stops halfway gives the handler an error
// rather than holding it.
func TestBodyReadTimeout(t *testing.T) {
	got := make(chan error, 1)
	cs := startCT(t, func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		got <- err
	}, func(s *http.Server) { s.ReadTimeout = 300 * time.Millisecond })
	c := dialCT(t, cs.addr)
	c.send("POST /slow HTTP/1.1\r\nHost: example.test\r\nContent-Length: 10\r\n\r\nhalf")
	select {
	case err := <-got:
		if err == nil {
			t.Fatal("the body read succeeded with half the body")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the body read was not cut by read_timeout")
	}
	// As net/http: the (empty) answer goes out, and the connection, whose stream position is
	// lost, ends with it.
	if resp, _ := c.read("POST"); !resp.Close {
		t.Fatal("the answer after a failed body read does not close the connection")
	}
	c.expectClosed(2 * time.Second)
}

// Once the body is in, the client is watched as for a body-less request: closing the connection
// cancels the handler's context. Before the body is in, no watch can take its bytes.
func TestWatchStartsAfterBody(t *testing.T) {
	result := make(chan string, 1)
	cs := startCT(t, func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil || string(b) != "0123456789" {
			result <- fmt.Sprintf("body %q, %v", b, err)
			return
		}
		select {
		case <-r.Context().Done():
			result <- "cancelled"
		case <-time.After(5 * time.Second):
			result <- "not cancelled"
		}
	}, nil)
	c := dialCT(t, cs.addr)
	// The body arrives in two parts, the second after the watch would have started for a
	// body-less request.
	c.send("POST /w HTTP/1.1\r\nHost: example.test\r\nContent-Length: 10\r\n\r\n01234")
	time.Sleep(250 * time.Millisecond)
	c.send("56789")
	time.Sleep(250 * time.Millisecond)
	_ = c.nc.Close()
	select {
	case r := <-result:
		if r != "cancelled" {
			t.Fatal(r)
		}
	case <-time.After(6 * time.Second):
		t.Fatal("handler did not finish")
	}
}
