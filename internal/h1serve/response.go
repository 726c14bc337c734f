package h1serve

import (
	"bufio"
	"fmt"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// response is the http.ResponseWriter of one request, with net/http's HTTP/1.1 rules. The status
// line and the handler's header are serialised when the status is written (net/http snapshots
// the header then too); what depends on the body (an implicit Content-Length, chunking, a sniffed
// Content-Type) is decided when the body starts to go out, after up to bufferBeforeHead bytes
// were held back, or when the handler returns.
type response struct {
	c   *conn
	req *http.Request
	// body is the request's, nil when it has none.
	body *body

	handlerHeader http.Header
	status        int
	wroteHeader   bool
	// headOut: the header is on the wire (in the connection's buffer); body bytes follow it.
	headOut bool
	// dead: the handler returned (or panicked); a goroutine it left behind gets an error.
	dead bool

	contentLength int64 // declared, or -1
	// fullDuplex: the handler reads its body while it answers (http.ResponseController).
	fullDuplex bool
	written    int64
	chunking   bool
	closeAfter bool

	// Facts taken from the header when the status was written.
	snap struct {
		trailers    []string // declared in Trailer (those allowed as trailers)
		declared    bool     // a Trailer field was set at all
		prefixed    bool     // a TrailerPrefix key was set
		te          string
		contentType bool
		encoded     bool // a non-empty Content-Encoding
		date        bool
		connection  string
		hasCL       bool
		clValues    []string
		teValues    []string
		connValues  []string
		ctValues    []string
		protoSwitch bool
	}
}

// bufferBeforeHead is how much of a body is held back before the header goes out, so that a
// short answer gets a Content-Length instead of chunks (net/http's bufferBeforeChunkingSize).
const bufferBeforeHead = 2048

func (w *response) Header() http.Header { return w.handlerHeader }

func (w *response) WriteHeader(code int) {
	if w.dead {
		return
	}
	if w.wroteHeader {
		w.c.s.logf("http: superfluous response.WriteHeader call")
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		// An informational answer goes out at once with the current header, which stays for the
		// final one (RFC 8297).
		bw := w.c.bw
		writeStatusLine(bw, code)
		w.writeFields(bw, w.handlerHeader, excludeNoBody)
		_, _ = bw.WriteString("\r\n")
		_ = bw.Flush()
		return
	}
	w.wroteHeader = true
	w.status = code
	h := w.handlerHeader
	// Snapshot what the header's completion depends on, and serialise the rest now: changes the
	// handler makes to the map from here on are not sent (trailers aside), as with net/http, which
	// clones the map here. The kept values are copies: a handler may change a value in place.
	sn := &w.snap
	for _, v := range h["Trailer"] {
		for _, k := range strings.Split(v, ",") {
			if k = textproto.TrimString(k); k != "" {
				if k = http.CanonicalHeaderKey(k); httpguts.ValidTrailerHeader(k) {
					sn.trailers = append(sn.trailers, k)
				}
			}
		}
	}
	sn.declared = len(h["Trailer"]) > 0
	sn.te = get(h, "Transfer-Encoding")
	sn.teValues = slices.Clone(h["Transfer-Encoding"])
	_, sn.contentType = h["Content-Type"]
	sn.ctValues = slices.Clone(h["Content-Type"])
	sn.encoded = h.Get("Content-Encoding") != ""
	_, sn.date = h["Date"]
	sn.connection = get(h, "Connection")
	sn.connValues = slices.Clone(h["Connection"])
	_, sn.hasCL = h["Content-Length"]
	sn.clValues = slices.Clone(h["Content-Length"])
	if cl := get(h, "Content-Length"); cl != "" {
		// After the snapshot, as in net/http: an invalid value is dropped from the handler's map
		// but the answer's framing still sees the field (and drops it when it chunks).
		v, err := strconv.ParseInt(cl, 10, 64)
		if err == nil && v >= 0 {
			w.contentLength = v
		} else {
			w.c.s.logf("http: invalid Content-Length of %q", cl)
			h.Del("Content-Length")
		}
	}
	sn.protoSwitch = code == http.StatusSwitchingProtocols && h.Get("Upgrade") != ""
	b := w.c.head[:0]
	b = appendStatusLine(b, code)
	w.c.head = b
	w.c.keys = w.c.keys[:0]
	for k := range h {
		switch {
		case strings.HasPrefix(k, http.TrailerPrefix):
			sn.prefixed = true
		case k == "Content-Length" || k == "Transfer-Encoding" || k == "Connection" || k == "Content-Type":
			// Written, or not, when the body starts.
		default:
			w.c.keys = append(w.c.keys, k)
		}
	}
	slices.Sort(w.c.keys)
	for _, k := range w.c.keys {
		w.c.head = appendField(w.c.head, k, h[k])
	}
}

func (w *response) Write(p []byte) (int, error) {
	if w.dead {
		return 0, http.ErrHandlerTimeout
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowedForStatus(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.written += int64(len(p))
	if w.contentLength != -1 && w.written > w.contentLength {
		return 0, http.ErrContentLength
	}
	if !w.headOut {
		if len(w.c.pending)+len(p) <= bufferBeforeHead {
			w.c.pending = append(w.c.pending, p...)
			return len(p), nil
		}
		if err := w.sendHeld(false, p); err != nil {
			return 0, err
		}
	}
	if err := w.writeBody(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *response) WriteString(s string) (int, error) {
	// Through Write: the rules are the same; io.WriteString callers get no copy saved.
	return w.Write([]byte(s))
}

func (w *response) writeBody(p []byte) error {
	if len(p) == 0 || w.req.Method == http.MethodHead {
		return nil
	}
	bw := w.c.bw
	if w.chunking {
		_, _ = bw.WriteString(strconv.FormatInt(int64(len(p)), 16))
		_, _ = bw.WriteString("\r\n")
		_, _ = bw.Write(p)
		_, err := bw.WriteString("\r\n")
		return err
	}
	_, err := bw.Write(p)
	return err
}

// Flush sends the header and what is buffered; http.ResponseController finds FlushError.
func (w *response) Flush() { _ = w.FlushError() }

func (w *response) FlushError() error {
	if w.dead {
		return http.ErrHandlerTimeout
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headOut {
		if err := w.sendHeld(false, nil); err != nil {
			return err
		}
	}
	return w.c.bw.Flush()
}

// EnableFullDuplex lets the handler go on reading the body after the answer has begun, as with
// net/http's writer: the unread body is then not read off when the header goes out.
func (w *response) EnableFullDuplex() error {
	w.fullDuplex = true
	return nil
}

// SetWriteDeadline and SetReadDeadline are what http.ResponseController uses.
func (w *response) SetWriteDeadline(t time.Time) error {
	if w.dead {
		return http.ErrHandlerTimeout
	}
	w.c.writeDeadline = true
	return w.c.nc.SetWriteDeadline(t)
}

func (w *response) SetReadDeadline(t time.Time) error {
	if w.dead {
		return http.ErrHandlerTimeout
	}
	// It bounds reading the request body; once that is in, only the watcher reads the
	// connection, and a deadline would turn its read into a lost client.
	if w.body != nil {
		return w.body.setReadDeadline(t)
	}
	return nil
}

// finish completes the answer after the handler returned and sends it.
func (w *response) finish() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headOut {
		if err := w.sendHeld(true, nil); err != nil {
			return err
		}
	}
	w.dead = true
	bw := w.c.bw
	if w.chunking {
		_, _ = bw.WriteString("0\r\n")
		if t := w.finalTrailers(); len(t) > 0 {
			w.writeFields(bw, t, nil)
		}
		_, _ = bw.WriteString("\r\n")
	}
	if w.req.Method != http.MethodHead && w.contentLength != -1 && bodyAllowedForStatus(w.status) && w.contentLength != w.written {
		// Fewer bytes than declared: the client would wait for the rest, or read the next
		// answer as this one's end. net/http closes the connection; so does this.
		w.closeAfter = true
	}
	return bw.Flush()
}

func (w *response) finalTrailers() http.Header {
	var t http.Header
	for k, vv := range w.handlerHeader {
		if kk, found := strings.CutPrefix(k, http.TrailerPrefix); found {
			if t == nil {
				t = make(http.Header)
			}
			t[kk] = vv
		}
	}
	for _, k := range w.snap.trailers {
		for _, v := range w.handlerHeader[k] {
			if t == nil {
				t = make(http.Header)
			}
			t.Add(k, v)
		}
	}
	return t
}

// sendHeld sends the header and the body bytes held back for it; next is the write that did not
// fit (sniffed with them), done that the handler returned.
func (w *response) sendHeld(done bool, next []byte) error {
	w.sendHead(done, next)
	err := w.writeBody(w.c.pending)
	w.c.pending = w.c.pending[:0]
	return err
}

// sendHead completes the header by net/http's rules (chunkWriter.writeHeader, for an HTTP/1.1
// request) and puts it in the connection's buffer. done: the handler returned, and pending is the
// whole body.
func (w *response) sendHead(done bool, next []byte) {
	w.headOut = true
	sn := &w.snap
	p := w.c.pending
	isHEAD := w.req.Method == http.MethodHead
	trailers := sn.prefixed || sn.declared
	hasTE := sn.te != ""
	code := w.status
	var setCL, setCT, setConn, setTE string
	keepCL, keepTE, keepConn, keepCT := true, true, true, true
	if sn.connection == "close" || w.c.s.shuttingDown() {
		w.closeAfter = true
	}
	// An unread body is settled only for a connection that goes on (and not in full duplex): one
	// that ends after this answer reads nothing more, as in net/http.
	tooBig := false
	if w.body != nil && !w.closeAfter && !w.fullDuplex {
		var reusable bool
		if reusable, tooBig = w.body.settle(); !reusable {
			w.closeAfter = true
		}
	}

	if done && !trailers && !hasTE && bodyAllowedForStatus(code) && !sn.hasCL && (!isHEAD || len(p) > 0) {
		w.contentLength = int64(len(p))
		setCL = strconv.Itoa(len(p))
	}
	hasCL := w.contentLength != -1
	if bodyAllowedForStatus(code) {
		if !sn.encoded && !sn.contentType && !hasTE && len(p)+len(next) > 0 {
			setCT = http.DetectContentType(sniffable(p, next))
		}
	} else {
		// net/http's suppressedHeaders.
		keepCL, keepTE = false, false
		if code == http.StatusNotModified {
			keepCT = false
		}
	}
	if hasCL && hasTE && sn.te != "identity" {
		w.c.s.logf("http: WriteHeader called with both Transfer-Encoding of %q and a Content-Length of %d", sn.te, w.contentLength)
		keepCL, hasCL = false, false
	}
	switch {
	case isHEAD || !bodyAllowedForStatus(code) || code == http.StatusNoContent:
		keepTE = false
	case hasCL:
		keepTE = false
	case hasTE && sn.te == "identity":
		w.chunking = false
		w.closeAfter = true
		keepTE = false
	default:
		w.chunking = true
		setTE = "chunked"
		if hasTE && sn.te == "chunked" {
			keepTE = false
		}
	}
	if w.chunking {
		keepCL = false
	}
	if tooBig || w.closeAfter && !hasToken(sn.connection, "close") && !sn.protoSwitch {
		keepConn = false
		setConn = "close"
	}

	bw := w.c.bw
	_, _ = bw.Write(w.c.head)
	if keepCT {
		_, _ = bw.Write(appendField(w.c.head[:0], "Content-Type", sn.ctValues))
	}
	if keepCL && sn.hasCL {
		_, _ = bw.Write(appendField(w.c.head[:0], "Content-Length", sn.clValues))
	}
	if keepTE {
		_, _ = bw.Write(appendField(w.c.head[:0], "Transfer-Encoding", sn.teValues))
	}
	if keepConn {
		_, _ = bw.Write(appendField(w.c.head[:0], "Connection", sn.connValues))
	}
	if !sn.date {
		_, _ = bw.Write(appendDate(w.c.head[:0]))
	}
	for _, f := range [...]struct{ k, v string }{{"Content-Length", setCL}, {"Content-Type", setCT}, {"Connection", setConn}, {"Transfer-Encoding", setTE}} {
		if f.v != "" {
			_, _ = bw.WriteString(f.k)
			_, _ = bw.WriteString(": ")
			_, _ = bw.WriteString(f.v)
			_, _ = bw.WriteString("\r\n")
		}
	}
	_, _ = bw.WriteString("\r\n")
}

// sniffable is the start of a body made of held-back bytes and the write that overflowed them:
// what net/http's buffer held when it sniffed.
func sniffable(held, next []byte) []byte {
	const sniffLen = 512
	if len(held) >= sniffLen || len(next) == 0 {
		return held
	}
	if len(held) == 0 {
		return next
	}
	b := make([]byte, 0, sniffLen)
	b = append(b, held...)
	return append(b, next[:min(len(next), sniffLen-len(b))]...)
}

// excludeNoBody is what an informational answer leaves out (net/http's excludedHeadersNoBody).
var excludeNoBody = map[string]bool{"Content-Length": true, "Transfer-Encoding": true}

func (w *response) writeFields(bw *bufio.Writer, h http.Header, exclude map[string]bool) {
	keys := make([]string, 0, len(h))
	for k := range h {
		if !exclude[k] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var b []byte
	for _, k := range keys {
		b = appendField(b, k, h[k])
	}
	_, _ = bw.Write(b)
}

// appendField writes a header field as net/http's Header.Write does: a name that is not a token
// is dropped, CR and LF in a value become spaces, and values are trimmed.
func appendField(b []byte, k string, vv []string) []byte {
	if !httpguts.ValidHeaderFieldName(k) {
		return b
	}
	for _, v := range vv {
		if strings.ContainsAny(v, "\r\n") {
			v = newlineToSpace.Replace(v)
		}
		v = textproto.TrimString(v)
		b = append(b, k...)
		b = append(b, ": "...)
		b = append(b, v...)
		b = append(b, "\r\n"...)
	}
	return b
}

var newlineToSpace = strings.NewReplacer("\n", " ", "\r", " ")

func appendStatusLine(b []byte, code int) []byte {
	b = append(b, "HTTP/1.1 "...)
	if text := http.StatusText(code); text != "" {
		b = strconv.AppendInt(b, int64(code), 10)
		b = append(b, ' ')
		b = append(b, text...)
		return append(b, "\r\n"...)
	}
	return fmt.Appendf(b, "%03d status code %d\r\n", code, code)
}

func writeStatusLine(bw *bufio.Writer, code int) {
	_, _ = bw.Write(appendStatusLine(nil, code))
}

// appendDate appends a Date field.
func appendDate(b []byte) []byte {
	b = append(b, "Date: "...)
	b = time.Now().UTC().AppendFormat(b, http.TimeFormat)
	return append(b, "\r\n"...)
}

func bodyAllowedForStatus(status int) bool {
	switch {
	case status >= 100 && status <= 199, status == http.StatusNoContent, status == http.StatusNotModified:
		return false
	}
	return true
}

// get is Header.Get for a key already canonical (net/http's header.get).
func get(h http.Header, k string) string {
	if v := h[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func hasToken(v, token string) bool {
	for _, t := range strings.Split(v, ",") {
		if strings.EqualFold(strings.TrimSpace(t), token) {
			return true
		}
	}
	return false
}
