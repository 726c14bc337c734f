package upstreams

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"

	"github.com/portico-gw/portico/internal/confval"
)

// maxSimpleHead bounds the header block readSimpleResponse parses itself: the bufio.Reader's
// size, since it only looks at what is already buffered.
const maxSimpleHead = 4 << 10

// readSimpleResponse parses the common answer itself: HTTP/1.1, a final status, one valid
// Content-Length, no Transfer-Encoding, Trailer or Pragma, a header block that is already in
// br's buffer. It builds the same *http.Response as http.ReadResponse in a fraction of the
// allocations (one string holds every value; common keys are interned) and reports ok=false,
// having consumed nothing, for everything else, which then goes to http.ReadResponse. The
// caller has peeked at least one byte.
func readSimpleResponse(br *bufio.Reader, req *http.Request) (*http.Response, bool) {
	if req.Method == http.MethodHead {
		return nil, false
	}
	buf, _ := br.Peek(min(br.Buffered(), maxSimpleHead))
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		return nil, false
	}
	head := buf[:end+2] // every line ends in CRLF
	if bytes.Count(head, []byte("\n")) != bytes.Count(head, []byte("\r\n")) {
		// A bare LF ends a line for net/http's reader but not for this one: the head would end
		// somewhere else than the backend meant, and the body be misframed.
		return nil, false
	}
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	if len(line) < len("HTTP/1.1 200") || string(line[:9]) != "HTTP/1.1 " || (len(line) > 12 && line[12] != ' ') ||
		!validValueBytes(line[9:]) {
		return nil, false
	}
	code := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return nil, false
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || code == http.StatusNoContent || code == http.StatusNotModified {
		return nil, false
	}

	// First pass: check every field and count them, so that the map is made at its size.
	fields := 0
	for r := rest; len(r) > 0; fields++ {
		var l []byte
		l, r, _ = bytes.Cut(r, []byte("\r\n"))
		colon := bytes.IndexByte(l, ':')
		if colon <= 0 || !confval.IsTokenBytes(l[:colon]) || !validValueBytes(l[colon+1:]) {
			return nil, false
		}
	}
	// One string for the status text and every value; they are substrings of it.
	s := string(head)
	resp := &http.Response{
		Status:        s[9:len(line)],
		StatusCode:    code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        make(http.Header, fields),
		ContentLength: -1,
		Request:       req,
	}
	var canon [64]byte
	// One backing array for the value slices, as net/http's reader does; a repeated key's append
	// copies out of it, since each slice is capped at its length.
	vals := make([]string, fields)
	off := len(line) + 2
	for off < len(s) {
		eol := off + bytes.Index(head[off:], []byte("\r\n"))
		colon := off + bytes.IndexByte(head[off:eol], ':')
		key, ok := canonicalKey(head[off:colon], canon[:0])
		if !ok {
			return nil, false
		}
		v := trimOWS(s[colon+1 : eol])
		switch key {
		case "Transfer-Encoding", "Trailer", "Pragma":
			return nil, false
		case "Content-Length":
			n, ok := parseLength(v)
			if !ok || resp.ContentLength >= 0 {
				// A second Content-Length, even an equal one, is left to net/http's checks.
				return nil, false
			}
			resp.ContentLength = n
		case "Connection":
			if tokenListHas(v, "close") {
				resp.Close = true
			}
		}
		if prev, ok := resp.Header[key]; ok {
			resp.Header[key] = append(prev, v)
		} else {
			vals[0] = v
			resp.Header[key] = vals[:1:1]
			vals = vals[1:]
		}
		off = eol + 2
	}
	if resp.ContentLength < 0 {
		return nil, false
	}
	if resp.Close {
		// As net/http does: the close is reported as Close, not passed on as a field.
		delete(resp.Header, "Connection")
	}
	_, _ = br.Discard(end + 4)
	if resp.ContentLength == 0 {
		resp.Body = http.NoBody
	} else {
		resp.Body = &fixedBody{br: br, left: resp.ContentLength}
	}
	return resp, true
}

// fixedBody reads a Content-Length body; like net/http's, it reports io.EOF with the last bytes
// and io.ErrUnexpectedEOF when the connection ends early.
type fixedBody struct {
	br   *bufio.Reader
	left int64
}

func (b *fixedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.br.Read(p)
	b.left -= int64(n)
	if b.left <= 0 {
		return n, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// Close leaves the connection to h1Body, which closes it when the body was not read to the end.
func (b *fixedBody) Close() error { return nil }

// canonicalKey returns k in canonical form (Content-Type), interned for the common keys so that
// those cost no allocation. ok is false for a key net/http would not canonicalize.
func canonicalKey(k []byte, buf []byte) (string, bool) {
	if len(k) > 64 {
		return "", false
	}
	upper := true
	for _, c := range k {
		if c == ' ' || c >= 0x80 {
			return "", false
		}
		switch {
		case upper && 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case !upper && 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		buf = append(buf, c)
		upper = c == '-'
	}
	if v, ok := internedKeys[string(buf)]; ok {
		return v, true
	}
	return string(buf), true
}

// internedKeys are the answer fields backends send most; the lookup by string(buf) does not
// allocate.
var internedKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"Accept-Ranges", "Access-Control-Allow-Origin", "Age", "Cache-Control",
		"Connection", "Content-Encoding", "Content-Language", "Content-Length", "Content-Type", "Date",
		"Etag", "Expires", "Keep-Alive", "Last-Modified", "Location", "Server", "Set-Cookie",
		"Strict-Transport-Security", "Vary", "Via", "X-Content-Type-Options", "X-Powered-By", "X-Request-Id"} {
		m[k] = k
	}
	return m
}()

// validValueBytes allows what net/http's reader allows: visible characters, space, tab and
// obs-text; no other control bytes.
func validValueBytes(v []byte) bool {
	for _, c := range v {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// parseLength accepts what net/http accepts for one Content-Length: decimal digits only.
func parseLength(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func tokenListHas(v, token string) bool {
	for tok := range strings.SplitSeq(v, ",") {
		if strings.EqualFold(trimOWS(tok), token) {
			return true
		}
	}
	return false
}
