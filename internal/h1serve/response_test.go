package h1serve

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// answer is what a client sees of one response, and what the handler saw of its writes.
type answer struct {
	Status   int
	Header   http.Header
	Body     string
	Trailer  http.Header
	Chunked  bool
	Closed   bool // the connection ended after it
	ReadErr  string
	Handler  string // errors the handler's writes returned, in order
	ServedBy string
}

// differential runs handler behind net/http and behind h1serve, sends both the same raw request
// and compares what came back, byte semantics rather than header order (and the Date value).
func TestResponsesMatchNetHTTP(t *testing.T) {
	long := strings.Repeat("x", 10<<10)
	cases := []struct {
		name   string
		method string
		reqHdr string
		body   string
		// limitKeepsAlive: net/http ends the connection after http.MaxBytesReader's limit was hit
		// (through a hook only its own writer can have); h1serve reads off the rest of a body
		// of up to 256 KiB, as after any unread body, and keeps the connection.
		limitKeepsAlive bool
		handler         func(w http.ResponseWriter, r *http.Request, errs func(error))
	}{
		{name: "body read", method: "POST", body: "hello", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			b, err := io.ReadAll(r.Body)
			errs(err)
			_, err = w.Write(b)
			errs(err)
		}},
		{name: "body read in small pieces", method: "PUT", body: long, handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			buf := make([]byte, 7)
			n := 0
			for {
				m, err := r.Body.Read(buf)
				n += m
				if err != nil {
					if err != io.EOF {
						errs(err)
					}
					break
				}
			}
			_, err := fmt.Fprint(w, n, r.ContentLength)
			errs(err)
		}},
		{name: "body left unread", method: "POST", body: "unread", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			_, err := w.Write([]byte("ignored your body"))
			errs(err)
		}},
		{name: "large body left unread", method: "POST", body: strings.Repeat("u", 300<<10), handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			_, err := w.Write([]byte("ignored your body"))
			errs(err)
		}},
		{name: "large body half read", method: "POST", body: strings.Repeat("u", 600<<10), handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			_, err := io.CopyN(io.Discard, r.Body, 300<<10)
			errs(err)
			_, err = w.Write([]byte("half"))
			errs(err)
		}},
		{name: "answer streamed before the body is read", method: "POST", body: "later", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			_, err := w.Write([]byte(long))
			errs(err)
			b, err := io.ReadAll(r.Body)
			errs(err)
			_, err = w.Write(b)
			errs(err)
		}},
		{name: "body closed unread", method: "POST", body: "closed", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			errs(r.Body.Close())
			_, err := r.Body.Read(make([]byte, 4))
			errs(err)
		}},
		{name: "body past a max bytes reader", method: "POST", body: "0123456789abcdef", limitKeepsAlive: true, handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			_, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 8))
			errs(err)
			w.WriteHeader(http.StatusRequestEntityTooLarge)
		}},
		{name: "empty declared body", method: "POST", reqHdr: "Content-Length: 0\r\n", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			_, err := fmt.Fprint(w, r.ContentLength, r.Body == http.NoBody)
			errs(err)
		}},
		{name: "nothing written", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {}},
		{name: "short body sniffed", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			_, err := w.Write([]byte("<html><body>hi</body></html>"))
			errs(err)
		}},
		{name: "short body typed", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			w.Header().Set("Content-Type", "application/json")
			_, err := io.WriteString(w, `{"a":1}`)
			errs(err)
		}},
		{name: "encoded body not sniffed", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			w.Header().Set("Content-Encoding", "gzip")
			_, err := w.Write([]byte("\x1f\x8b rest"))
			errs(err)
		}},
		{name: "long body chunked", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			_, err := w.Write([]byte(long))
			errs(err)
		}},
		{name: "long body in small writes", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			for i := 0; i < 100; i++ {
				_, err := w.Write([]byte(long[:100]))
				errs(err)
			}
		}},
		{name: "long body with length", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			w.Header().Set("Content-Length", fmt.Sprint(len(long)))
			_, err := w.Write([]byte(long))
			errs(err)
		}},
		{name: "declared length longer than body", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			w.Header().Set("Content-Length", "10")
			_, err := w.Write([]byte("abc"))
			errs(err)
		}},
		{name: "write past declared length", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			w.Header().Set("Content-Length", "3")
			_, err := w.Write([]byte("abc"))
			errs(err)
			_, err = w.Write([]byte("def"))
			errs(err)
		}},
		{name: "invalid declared length", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			w.Header().Set("Content-Length", "-5")
			_, err := w.Write([]byte("abc"))
			errs(err)
		}},
		{name: "204 with a body and framing fields", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			w.Header().Set("Content-Length", "3")
			w.Header().Set("Transfer-Encoding", "chunked")
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusNoContent)
			_, err := w.Write([]byte("abc"))
			errs(err)
		}},
		{name: "304 keeps no content type", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Etag", `"x"`)
			w.WriteHeader(http.StatusNotModified)
		}},
		{name: "HEAD with body written", method: "HEAD", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			_, err := w.Write([]byte("hello"))
			errs(err)
		}},
		{name: "HEAD with nothing written", method: "HEAD", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {}},
		{name: "HEAD with declared length", method: "HEAD", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			w.Header().Set("Content-Length", "1234")
		}},
		{name: "flush then write", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.(http.Flusher).Flush()
			_, err := w.Write([]byte("data: 1\n\n"))
			errs(err)
			errs(http.NewResponseController(w).Flush())
		}},
		{name: "declared trailers", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			w.Header().Set("Trailer", "X-Sum, Content-Length")
			w.WriteHeader(http.StatusOK)
			_, err := w.Write([]byte("body"))
			errs(err)
			w.Header().Set("X-Sum", "42")
		}},
		{name: "undeclared trailer after flush", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			_, err := w.Write([]byte("body"))
			errs(err)
			w.(http.Flusher).Flush()
			w.Header().Set(http.TrailerPrefix+"X-Late", "yes")
		}},
		{name: "undeclared trailer without flush", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			_, err := w.Write([]byte("body"))
			errs(err)
			w.Header().Set(http.TrailerPrefix+"X-Late", "yes")
		}},
		{name: "early hints then answer", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Set("Content-Type", "text/plain")
			_, err := w.Write([]byte("ok"))
			errs(err)
		}},
		{name: "header changed after WriteHeader", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			w.Header().Set("X-Before", "1")
			w.WriteHeader(http.StatusAccepted)
			w.Header().Set("X-After", "1")
			w.Header().Set("Content-Type", "text/x-late")
			_, err := w.Write([]byte("abc"))
			errs(err)
		}},
		{name: "second WriteHeader ignored", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			w.WriteHeader(http.StatusCreated)
			w.WriteHeader(http.StatusTeapot)
		}},
		{name: "client asks to close", reqHdr: "Connection: close\r\n", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			_, err := w.Write([]byte("bye"))
			errs(err)
		}},
		{name: "handler closes", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			w.Header().Set("Connection", "close")
			_, err := w.Write([]byte("bye"))
			errs(err)
		}},
		{name: "identity transfer encoding", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			w.Header().Set("Transfer-Encoding", "identity")
			_, err := w.Write([]byte("until close"))
			errs(err)
		}},
		{name: "handler asks for chunked", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			w.Header().Set("Transfer-Encoding", "chunked")
			_, err := w.Write([]byte("abc"))
			errs(err)
		}},
		{name: "length and chunked together", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			w.Header().Set("Transfer-Encoding", "chunked")
			w.Header().Set("Content-Length", "3")
			_, err := w.Write([]byte("abc"))
			errs(err)
		}},
		{name: "values with newlines and bad names", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			w.Header()["X-Split"] = []string{"a\r\nInjected: 1", "  padded  "}
			w.Header()["Bad Name"] = []string{"x"}
			w.Header()["X-Multi"] = []string{"1", "2"}
		}},
		{name: "status without text", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			w.WriteHeader(599)
		}},
		{name: "handler sets its own date", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			w.Header().Set("Date", "Mon, 01 Jan 2024 00:00:00 GMT")
		}},
		{name: "abort", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			_, err := w.Write([]byte("partial"))
			errs(err)
			panic(http.ErrAbortHandler)
		}},
		{name: "abort after flush", handler: func(w http.ResponseWriter, r *http.Request, errs func(error)) {
			w.Header().Set("Content-Length", "100")
			_, err := w.Write([]byte("partial"))
			errs(err)
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			method := tc.method
			if method == "" {
				method = "GET"
			}
			hdr := tc.reqHdr
			if tc.body != "" {
				hdr += fmt.Sprintf("Content-Length: %d\r\n", len(tc.body))
			}
			raw := method + " /x?q=1 HTTP/1.1\r\nHost: example.test\r\n" + hdr + "\r\n" + tc.body
			var std, lean answer
			var wg sync.WaitGroup
			wg.Go(func() { std = exchange(t, startStd, tc.handler, raw, method) })
			lean = exchange(t, startLean, tc.handler, raw, method)
			wg.Wait()
			if lean.ServedBy != "h1serve" {
				t.Fatalf("the request was not served by h1serve but %q", lean.ServedBy)
			}
			lean.ServedBy, std.ServedBy = "", ""
			if tc.limitKeepsAlive && std.Closed && !lean.Closed {
				std.Closed = false
			}
			if !reflect.DeepEqual(std, lean) {
				t.Errorf("net/http and h1serve differ\nnet/http: %s\nh1serve:  %s", std, lean)
			}
		})
	}
}

func (a answer) String() string {
	body := a.Body
	if len(body) > 64 {
		body = fmt.Sprintf("%q... (%d bytes)", body[:64], len(body))
	}
	a.Body = body
	type plain answer
	return fmt.Sprintf("%+v", plain(a))
}

type starter func(t *testing.T, h http.Handler) string

func startStd(t *testing.T, h http.Handler) string {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = discardLog()
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func startLean(t *testing.T, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(&http.Server{Handler: h, ErrorLog: discardLog(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second})
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		_ = s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func exchange(t *testing.T, start starter, handler func(http.ResponseWriter, *http.Request, func(error)), raw, method string) answer {
	t.Helper()
	var mu sync.Mutex
	var errs []string
	servedBy := ""
	addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if _, ok := w.(*response); ok {
			servedBy = "h1serve"
		} else {
			servedBy = "net/http"
		}
		mu.Unlock()
		handler(w, r, func(err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err.Error())
			} else {
				errs = append(errs, "nil")
			}
		})
	}))
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	// Written aside: a server may answer (and close) before it has read a large body.
	go func() { _, _ = io.WriteString(conn, raw) }()
	br := bufio.NewReader(conn)
	var a answer
	req := &http.Request{Method: method}
	resp, err := http.ReadResponse(br, req)
	for err == nil && resp.StatusCode >= 100 && resp.StatusCode < 200 {
		a.Header = resp.Header // the informational header, replaced by the final one below
		resp, err = http.ReadResponse(br, req)
	}
	if err != nil {
		a.ReadErr = err.Error()
	} else {
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			a.ReadErr = err.Error()
		}
		a.Status, a.Header, a.Body, a.Trailer = resp.StatusCode, resp.Header, string(body), resp.Trailer
		a.Chunked = len(resp.TransferEncoding) > 0
		a.Header.Del("Date")
	}
	// Closed: the server ends the connection rather than waiting for another request.
	_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, rerr := br.ReadByte()
	var ne net.Error
	a.Closed = !(errors.As(rerr, &ne) && ne.Timeout())
	mu.Lock()
	a.Handler, a.ServedBy = strings.Join(errs, ","), servedBy
	mu.Unlock()
	return a
}

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }
