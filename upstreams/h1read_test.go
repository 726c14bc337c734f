package upstreams

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// TestReadSimpleResponseMatchesReadResponse holds the short parser to http.ReadResponse: where it
// takes an answer, every field the proxy uses and the body are the same; where it declines, it
// has consumed nothing.
func TestReadSimpleResponseMatchesReadResponse(t *testing.T) {
	tests := []struct {
		name   string
		raw    string
		method string
		simple bool
	}{
		{name: "plain", simple: true, raw: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\nhello"},
		{name: "more bytes than framed", simple: true, raw: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPWNED!"},
		{name: "no reason phrase", simple: true, raw: "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n"},
		{name: "long reason", simple: true, raw: "HTTP/1.1 503 Service Temporarily Unavailable\r\nContent-Length: 2\r\n\r\nno"},
		{name: "keys canonicalized and repeated", simple: true,
			raw: "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nset-cookie: a=1\r\nSet-Cookie: b=2\r\nx-custom_key: v\r\nCONTENT-LENGTH: 1\r\n\r\nx"},
		{name: "whitespace around values", simple: true, raw: "HTTP/1.1 200 OK\r\nX-A:   spaced \t\r\nX-Empty:\r\nContent-Length:  3 \r\n\r\nabc"},
		{name: "obs-text value", simple: true, raw: "HTTP/1.1 200 OK\r\nX-Name: caf\xc3\xa9\r\nContent-Length: 0\r\n\r\n"},
		{name: "connection close", simple: true, raw: "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 1\r\n\r\nx"},
		{name: "leading zeros in length", simple: true, raw: "HTTP/1.1 200 OK\r\nContent-Length: 007\r\n\r\n1234567"},
		{name: "long unknown key", simple: true, raw: "HTTP/1.1 200 OK\r\nX-" + strings.Repeat("a", 60) + ": 1\r\nContent-Length: 0\r\n\r\n"},

		{name: "chunked", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
		{name: "trailer announced", raw: "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nContent-Length: 1\r\n\r\nx"},
		{name: "no length", raw: "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close"},
		{name: "two lengths", raw: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx"},
		{name: "bad length", raw: "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx"},
		{name: "head", method: http.MethodHead, raw: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"},
		{name: "no content", raw: "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"},
		{name: "not modified", raw: "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"},
		{name: "informational", raw: "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
		{name: "pragma", raw: "HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n"},
		{name: "http/1.0", raw: "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx"},
		{name: "obs-fold", raw: "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n"},
		{name: "space before colon", raw: "HTTP/1.1 200 OK\r\nX-A : a\r\nContent-Length: 0\r\n\r\n"},
		{name: "control byte in value", raw: "HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 0\r\n\r\n"},
		{name: "bare LF", raw: "HTTP/1.1 200 OK\nContent-Length: 0\n\n"},
		// A head with bare LFs whose body holds CRLFs: taking the first CRLFCRLF as the head's end
		// would frame the answer by the body's bytes.
		{name: "bare LF head, CRLF in body", raw: "HTTP/1.1 200 OK\nContent-Length: 50\n\na\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPWNED!"},
		{name: "LF inside a value", raw: "HTTP/1.1 200 OK\r\nX-A: a\nb\r\nContent-Length: 0\r\n\r\n"},
		{name: "control byte in reason", raw: "HTTP/1.1 200 O\x00K\r\nContent-Length: 0\r\n\r\n"},
		{name: "malformed status", raw: "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n"},
		{name: "key too long to intern on the stack", raw: "HTTP/1.1 200 OK\r\nX-" + strings.Repeat("a", 70) + ": 1\r\nContent-Length: 0\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			req, _ := http.NewRequest(method, "http://b/", nil)
			wantBR := bufio.NewReader(strings.NewReader(tt.raw))
			want, wantErr := http.ReadResponse(wantBR, req)

			br := bufio.NewReaderSize(strings.NewReader(tt.raw), 4<<10)
			_, _ = br.Peek(1)
			got, simple := readSimpleResponse(br, req)
			if simple != tt.simple {
				t.Fatalf("took the short way: %v, want %v", simple, tt.simple)
			}
			if !simple {
				if br.Buffered() != len(tt.raw) {
					t.Fatalf("declined after consuming %d bytes", len(tt.raw)-br.Buffered())
				}
				return
			}
			if wantErr != nil {
				t.Fatalf("ReadResponse refused what the short way took: %v", wantErr)
			}
			sameResponseHead(t, got, want)
			gb, gerr := io.ReadAll(got.Body)
			wb, werr := io.ReadAll(want.Body)
			if g, w := rest(br), rest(wantBR); g != w {
				t.Errorf("left after the answer: %q, want %q", g, w)
			}
			if string(gb) != string(wb) || (gerr == nil) != (werr == nil) {
				t.Errorf("body %q (%v), want %q (%v)", gb, gerr, wb, werr)
			}
			if (got.Body == http.NoBody) != (want.Body == http.NoBody) {
				t.Errorf("NoBody: %v, want %v", got.Body == http.NoBody, want.Body == http.NoBody)
			}
		})
	}
}

// TestReadSimpleResponseWaitsForWholeHead declines a head that is not all buffered yet, rather
// than blocking or parsing half of it.
func TestReadSimpleResponseWaitsForWholeHead(t *testing.T) {
	r, w := io.Pipe()
	go func() {
		_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Le")
	}()
	br := bufio.NewReaderSize(r, 4<<10)
	_, _ = br.Peek(1)
	req, _ := http.NewRequest(http.MethodGet, "http://b/", nil)
	if _, simple := readSimpleResponse(br, req); simple {
		t.Fatal("parsed a partial head")
	}
	_ = w.Close()
}

func TestFixedBodyCutShort(t *testing.T) {
	br := bufio.NewReader(strings.NewReader("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"))
	_, _ = br.Peek(1)
	req, _ := http.NewRequest(http.MethodGet, "http://b/", nil)
	resp, simple := readSimpleResponse(br, req)
	if !simple {
		t.Fatal("declined")
	}
	b, err := io.ReadAll(resp.Body)
	if string(b) != "abc" || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read %q, %v; want abc and io.ErrUnexpectedEOF", b, err)
	}
}

// rest is what a reader still holds once an answer has been read.
func rest(br *bufio.Reader) string {
	b, _ := io.ReadAll(br)
	return string(b)
}

// sameResponseHead reports every field of the answer's head in which readSimpleResponse's got
// differs from http.ReadResponse's want.
func sameResponseHead(t *testing.T, got, want *http.Response) {
	t.Helper()
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"Status", got.Status, want.Status},
		{"StatusCode", got.StatusCode, want.StatusCode},
		{"Proto", got.Proto, want.Proto},
		{"ProtoMajor", got.ProtoMajor, want.ProtoMajor},
		{"ProtoMinor", got.ProtoMinor, want.ProtoMinor},
		{"Header", got.Header, want.Header},
		{"ContentLength", got.ContentLength, want.ContentLength},
		{"Close", got.Close, want.Close},
		{"TransferEncoding", got.TransferEncoding, want.TransferEncoding},
		{"Trailer", got.Trailer, want.Trailer},
		{"Uncompressed", got.Uncompressed, want.Uncompressed},
		{"Request", got.Request, want.Request},
	} {
		if !reflect.DeepEqual(f.got, f.want) {
			t.Errorf("%s = %#v, want %#v", f.name, f.got, f.want)
		}
	}
}
