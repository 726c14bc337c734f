package h1serve

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FuzzConnectionMatchesNetHTTP sends one raw byte stream, as one client connection, to a net/http
// server and to an h1serve server running the same handler, then half-closes the connection and
// reads everything each server sends back until it closes (or streamDeadline passes). The two
// transcripts (every answer's status, header without Date and X-Served-By, body, and how the
// connection ended) must be the same: a client cannot tell the servers apart, whatever it sends,
// however it pipelines, and wherever one of its requests makes h1serve hand the connection off.
//
// The handler (streamEcho) echoes what it saw of the request; a path starting with /noread does
// not read the body, one starting with /stream answers with more than bufferBeforeHead bytes.
func FuzzConnectionMatchesNetHTTP(f *testing.F) {
	for _, s := range streamSeeds {
		f.Add([]byte(s))
	}
	std, lean := startStreamServers(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		var ts [2]streamTranscript
		var wg sync.WaitGroup
		for i, addr := range []string{std, lean} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ts[i] = streamExchange(addr, in)
			}()
		}
		wg.Wait()
		if ts[0].String() != ts[1].String() {
			t.Fatalf("net/http and h1serve differ on %s\nnet/http: %s\n  raw %s\nh1serve:  %s\n  raw %s",
				quoteShort(in), ts[0], quoteShort(ts[0].raw), ts[1], quoteShort(ts[1].raw))
		}
	})
}

// streamDeadline bounds one exchange: every stream ends with the client's half-close, so a server
// that still has the connection open by then waits for nothing the client can send.
const streamDeadline = 2 * time.Second

func streamReq(method, path, hdr, body string) string {
	if body != "" || strings.HasPrefix(method, "POST") {
		hdr += "Content-Length: " + strconv.Itoa(len(body)) + "\r\n"
	}
	return method + " " + path + " HTTP/1.1\r\nHost: example.test\r\n" + hdr + "\r\n" + body
}

var streamSeeds = []string{
	// Pipelined GETs.
	streamReq("GET", "/a", "", "") + streamReq("GET", "/b?q=1&r=%20", "Accept: */*\r\nX-Multi: 1\r\nX-Multi: 2\r\n", ""),
	// GET, HEAD, POST with a body, GET.
	streamReq("GET", "/a", "", "") + streamReq("HEAD", "/h", "", "") + streamReq("POST", "/p", "Content-Type: text/plain\r\n", "hello") + streamReq("GET", "/c", "", ""),
	// Connection: close in the middle: nothing after it is answered.
	streamReq("GET", "/a", "", "") + streamReq("POST", "/p", "Connection: close\r\n", "bye") + streamReq("GET", "/never", "", ""),
	// Connection: close on a body nobody reads.
	streamReq("POST", "/noread", "Connection: close\r\n", "unread body") + streamReq("GET", "/never", "", ""),
	// A body that looks like a request, read and not read.
	streamReq("POST", "/p", "", streamReq("GET", "/smuggled", "", "")) + streamReq("GET", "/after", "", ""),
	streamReq("PUT", "/noread", "", streamReq("GET", "/smuggled", "", "")) + streamReq("GET", "/after", "", ""),
	// Content-Length: 0.
	streamReq("POST", "/p", "", "") + streamReq("GET", "/after", "Content-Length: 0\r\n", ""),
	// A chunked POST in the middle hands the connection off.
	streamReq("GET", "/a", "", "") + "POST /chunked HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + streamReq("GET", "/after", "", ""),
	// Stray CRLF after a POST body (old clients), and too many of them.
	streamReq("POST", "/p", "", "abc") + "\r\n" + streamReq("GET", "/after", "", ""),
	streamReq("POST", "/p", "", "abc") + "\r\n\r\n\r\n\r\n" + streamReq("GET", "/after", "", ""),
	// HTTP/1.0, with and without keep-alive.
	"GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + streamReq("GET", "/after", "", ""),
	streamReq("GET", "/a", "", "") + "GET /old HTTP/1.0\r\n\r\n" + streamReq("GET", "/never", "", ""),
	// A bare-LF line.
	streamReq("GET", "/a", "", "") + "GET /lf HTTP/1.1\nHost: example.test\r\n\r\n" + streamReq("GET", "/after", "", ""),
	// Duplicate Content-Length, equal and not.
	"POST /p HTTP/1.1\r\nHost: example.test\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc" + streamReq("GET", "/after", "", ""),
	"POST /p HTTP/1.1\r\nHost: example.test\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd" + streamReq("GET", "/after", "", ""),
	// obs-fold.
	"GET /fold HTTP/1.1\r\nHost: example.test\r\nX-Folded: a\r\n  b\r\n\r\n" + streamReq("GET", "/after", "", ""),
	// A huge Content-Length and a short body, read and not read.
	"POST /p HTTP/1.1\r\nHost: example.test\r\nContent-Length: 999999999\r\n\r\nshort",
	"POST /noread HTTP/1.1\r\nHost: example.test\r\nContent-Length: 999999999\r\n\r\nshort",
	"POST /noread HTTP/1.1\r\nHost: example.test\r\nContent-Length: 10\r\n\r\nshort",
	// A request head cut short by the end of the stream.
	streamReq("GET", "/a", "", "") + "GET /b HTTP/1.1\r\nHo",
	// Garbage.
	"\x00\x01\x02garbage\r\n\r\n",
	streamReq("GET", "/a", "", "") + "NOT A REQUEST\r\n\r\n",
	// Streamed answers and HEAD.
	streamReq("GET", "/stream", "", "") + streamReq("HEAD", "/stream", "", "") + streamReq("POST", "/stream", "", "body") + streamReq("GET", "/a", "", ""),
	// HEAD with a body, a body left unread then a pipelined request.
	streamReq("HEAD", "/h", "", "xyz") + streamReq("POST", "/noread", "", "unread") + streamReq("GET", "/after", "", ""),
	// Expect: 100-continue, an upgrade, absolute form, a missing and an empty Host.
	streamReq("POST", "/p", "Expect: 100-continue\r\n", "abc") + streamReq("GET", "/after", "", ""),
	streamReq("GET", "/ws", "Connection: Upgrade\r\nUpgrade: websocket\r\n", "") + streamReq("GET", "/after", "", ""),
	"GET http://example.test/abs HTTP/1.1\r\nHost: example.test\r\n\r\n" + streamReq("GET", "/after", "", ""),
	streamReq("GET", "/a", "", "") + "GET /nohost HTTP/1.1\r\n\r\n",
	"GET /empty HTTP/1.1\r\nHost:\r\n\r\n" + streamReq("GET", "/after", "", ""),
	// Pragma, Connection tokens, odd case and spacing.
	"GET /p HTTP/1.1\r\nhost: example.test\r\npragma: no-cache\r\nconnection: Keep-Alive, \r\nx-odd_key:  v \t\r\n\r\n" + streamReq("GET", "/after", "", ""),
	// Divergences found (both fail against dd94384):
	//
	// A head cut short by the client's half-close: net/http reads it as a malformed request
	// (readRequest turns the EOF into io.ErrUnexpectedEOF, not a "common" read error) and answers
	// 400 before closing; h1serve's readHead closed without an answer. Also after a POST's stray
	// CRLF, which net/http skips only up to four bytes of.
	"\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\n",
	streamReq("POST", "/p", "", "abc") + "\r\n\r\n\r\n",
	// ... but not for a later request of fewer than four bytes: net/http's idle wait, Peek(4),
	// fails and it closes without an answer (these pass against dd94384; they keep a fix of the
	// above from answering them).
	"0 / HTTP/1.1\r\nHost:\r\n\r\n0",
	streamReq("POST", "/p", "", "abc") + "\r\nG",
	// A body cut short by the client's half-close, after the handler read it: net/http's body
	// sets sawEOF with the io.ErrUnexpectedEOF, so the unread rest is nothing and the answer does
	// not say Connection: close (the connection ends at the next read); h1serve's kept the error
	// in b.err, settle failed, and the answer said Connection: close. With a rest of 256 KiB or
	// more, both say Connection: close (net/http's tooBig looks at the rest, not at EOF).
	"0 / HTTP/1.1\r\nHost:\r\nContent-Length:1\r\n\r\n",
	"POST /p HTTP/1.1\r\nHost: example.test\r\nContent-Length: 10\r\n\r\nshort",
	// A Connection token ending (or starting) with U+00A0 or U+0085: h1serve trimmed it with
	// bytes.TrimSpace and read "close"; net/http trims only SP and HTAB and keeps the connection.
	streamReq("GET", "/a", "Connection: close\xc2\xa0\r\n", "") + streamReq("GET", "/b", "", ""),
	streamReq("GET", "/a", "Connection: \xc2\x85close\r\n", "") + streamReq("GET", "/b", "", ""),
}

// startStreamServers starts, once per fuzz target (per fuzzing process), a net/http server and an
// h1serve server with the same handler and short timeouts.
func startStreamServers(f *testing.F) (std, lean string) {
	cfg := func() *http.Server {
		return &http.Server{Handler: http.HandlerFunc(streamEcho), ErrorLog: discardLog(),
			ReadHeaderTimeout: time.Second, IdleTimeout: time.Second}
	}
	ln1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	hs := cfg()
	go func() { _ = hs.Serve(ln1) }()
	f.Cleanup(func() { _ = hs.Close() })

	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	s := New(cfg())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln2) }()
	f.Cleanup(func() {
		_ = s.Close()
		<-done
	})
	return ln1.Addr().String(), ln2.Addr().String()
}

// streamEcho answers with what it saw of the request, in a body with a declared length (or, on a
// /stream path, one longer than bufferBeforeHead); on a /noread path it leaves the body unread.
func streamEcho(w http.ResponseWriter, r *http.Request) {
	mark(w)
	w.Header().Set("X-Method", r.Method)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q %s url=%q host=%q cl=%d te=%q close=%v\n",
		r.Method, r.RequestURI, r.Proto, r.URL.String(), r.Host, r.ContentLength, r.TransferEncoding, r.Close)
	for _, k := range slices.Sorted(maps.Keys(r.Header)) {
		fmt.Fprintf(&b, "%s: %q\n", k, r.Header[k])
	}
	if !strings.HasPrefix(r.URL.Path, "/noread") {
		body, err := io.ReadAll(r.Body)
		fmt.Fprintf(&b, "body=%q err=%v trailer=%v\n", body, err, r.Trailer)
	}
	if strings.HasPrefix(r.URL.Path, "/stream") {
		_, _ = io.WriteString(w, b.String())
		_, _ = w.Write(bytes.Repeat([]byte("s"), 3<<10))
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	_, _ = io.WriteString(w, b.String())
}

// streamTranscript is what a client saw on one connection.
type streamTranscript struct {
	Answers []streamAnswer
	// ParseErr: bytes after the last answer that are not one.
	ParseErr string
	// End: "closed" (EOF or reset: which one depends on timing), "open" when the server still
	// held the connection at the deadline, or the read error.
	End string

	raw []byte
}

type streamAnswer struct {
	Status  string
	Header  http.Header
	CL      int64
	TE      []string
	Close   bool
	Body    string
	BodyErr string
	Trailer http.Header
}

func (t streamTranscript) String() string {
	var b strings.Builder
	for i, a := range t.Answers {
		body := a.Body
		if len(body) > 300 {
			body = fmt.Sprintf("%s...(%d bytes)", body[:300], len(body))
		}
		fmt.Fprintf(&b, "\n  #%d %s header=%v cl=%d te=%q close=%v body=%q bodyErr=%q trailer=%v",
			i, a.Status, a.Header, a.CL, a.TE, a.Close, body, a.BodyErr, a.Trailer)
	}
	if t.ParseErr != "" {
		fmt.Fprintf(&b, "\n  unparsable rest: %s", t.ParseErr)
	}
	fmt.Fprintf(&b, "\n  end: %s", t.End)
	return b.String()
}

// streamExchange writes in to addr on a new connection, half-closes it, and reads all that comes
// back.
func streamExchange(addr string, in []byte) streamTranscript {
	var t streamTranscript
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.End = "dial: " + err.Error()
		return t
	}
	// Closed with a reset once all is read: no TIME_WAIT left behind by thousands of executions.
	defer func() {
		_ = nc.(*net.TCPConn).SetLinger(0)
		_ = nc.Close()
	}()
	_ = nc.SetDeadline(time.Now().Add(streamDeadline))
	go func() {
		// Aside: a server may answer, or close, before it has read everything.
		_, _ = nc.Write(in)
		_ = nc.(*net.TCPConn).CloseWrite()
	}()
	raw, err := io.ReadAll(nc)
	var ne net.Error
	switch {
	case err == nil, errors.Is(err, syscall.ECONNRESET):
		t.End = "closed"
	case errors.As(err, &ne) && ne.Timeout():
		t.End = "open"
	default:
		t.End = "read error: " + err.Error()
	}
	t.raw = raw
	t.Answers, t.ParseErr = parseStream(raw)
	return t
}

// parseStream reads the answers in raw. An answer to HEAD (the handler says X-Method: HEAD) has no
// body; the server's own error answers are read as answers to GET.
func parseStream(raw []byte) ([]streamAnswer, string) {
	var as []streamAnswer
	br := bufio.NewReader(bytes.NewReader(raw))
	for {
		if _, err := br.Peek(1); err != nil {
			return as, ""
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
		if err != nil {
			return as, err.Error()
		}
		a := streamAnswer{Status: resp.Status, CL: resp.ContentLength, TE: resp.TransferEncoding, Close: resp.Close}
		if resp.Header.Get("X-Method") != http.MethodHead {
			body, err := io.ReadAll(resp.Body)
			a.Body = string(body)
			if err != nil {
				a.BodyErr = err.Error()
			}
			a.Trailer = resp.Trailer
		}
		resp.Header.Del("Date")
		resp.Header.Del(servedByKey)
		a.Header = resp.Header
		as = append(as, a)
	}
}

func quoteShort(b []byte) string {
	if len(b) > 2048 {
		return fmt.Sprintf("%q...(%d bytes)", b[:2048], len(b))
	}
	return fmt.Sprintf("%q", b)
}
