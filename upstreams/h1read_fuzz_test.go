package upstreams

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"
)

// FuzzReadSimpleResponse holds readSimpleResponse to http.ReadResponse on arbitrary backend
// bytes: when it declines it has consumed nothing; when it takes an answer, ReadResponse must take
// it too, with the same status, header, framing and body, leaving the same bytes behind.
func FuzzReadSimpleResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPWNED!",
		"HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nset-cookie: a=1\r\nSet-Cookie: b=2\r\nx-custom_key: v\r\nCONTENT-LENGTH: 1\r\n\r\nx",
		"HTTP/1.1 200 OK\r\nX-A:   spaced \t\r\nX-Empty:\r\nContent-Length:  3 \r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 200 OK\nContent-Length: 50\n\na\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPWNED!",
		"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
	} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"), true)
	f.Fuzz(func(t *testing.T, raw []byte, head bool) {
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		req, _ := http.NewRequest(method, "http://b/", nil)
		br := bufio.NewReaderSize(bytes.NewReader(raw), 4<<10)
		if _, err := br.Peek(1); err != nil {
			return
		}
		buffered := br.Buffered()
		got, simple := readSimpleResponse(br, req)
		if !simple {
			if got != nil {
				t.Fatal("declined but returned a response")
			}
			if br.Buffered() != buffered {
				t.Fatalf("declined after consuming %d bytes", buffered-br.Buffered())
			}
			return
		}
		wantBR := bufio.NewReader(bytes.NewReader(raw))
		want, err := http.ReadResponse(wantBR, req)
		if err != nil {
			t.Fatalf("ReadResponse refused what the short way took: %v", err)
		}
		sameResponseHead(t, got, want)
		gb, gerr := io.ReadAll(got.Body)
		wb, werr := io.ReadAll(want.Body)
		if !bytes.Equal(gb, wb) || (gerr == nil) != (werr == nil) {
			t.Errorf("body %q (%v), want %q (%v)", gb, gerr, wb, werr)
		}
		if (got.Body == http.NoBody) != (want.Body == http.NoBody) {
			t.Errorf("NoBody: %v, want %v", got.Body == http.NoBody, want.Body == http.NoBody)
		}
		g, _ := io.ReadAll(br)
		w, _ := io.ReadAll(wantBR)
		if !bytes.Equal(g, w) {
			t.Errorf("left after the answer: %q, want %q", g, w)
		}
	})
}
