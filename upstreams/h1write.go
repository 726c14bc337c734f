package upstreams

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"strings"

	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/internal/reqctx"
)

// defaultUserAgent is what Request.Write sends when the header has no User-Agent entry at all.
const defaultUserAgent = "Go-http-client/1.1"

// writeRequest writes the head of a body-less request as Request.Write would, without
// its per-call work: a transfer writer, a sorted copy of the header, fmt. That work was the
// largest share of an upstream call's own CPU after the syscalls. What the short way cannot
// vouch for (a Host needing punycode or carrying a zone, an opaque URL, CONNECT's authority
// form, control bytes in the URI, a client trace that wants each written field) goes to
// Request.Write itself. Fields go out in the map's order, not sorted: order between different
// fields carries no meaning.
func writeRequest(w *bufio.Writer, req *http.Request) error {
	// First, for every request: Request.Write, which the unusual ones go to, turns CR and LF in
	// a field value into spaces but passes NUL and the other control bytes on (a Host of
	// "api.example~" took a NUL in X-Authenticated-Subject to the backend).
	if err := validFields(req.Header); err != nil {
		return err
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if req.URL.Opaque != "" || req.Method == http.MethodConnect || !simpleHost(host) || tracesWrites(req) {
		return req.Write(w)
	}
	path := req.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	if hasCTL(path) || hasCTL(req.URL.RawQuery) {
		return req.Write(w)
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	w.WriteString(method)
	w.WriteByte(' ')
	w.WriteString(path)
	if req.URL.ForceQuery || req.URL.RawQuery != "" {
		w.WriteByte('?')
		w.WriteString(req.URL.RawQuery)
	}
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(host)
	w.WriteString("\r\n")

	ua := defaultUserAgent
	if v, ok := req.Header["User-Agent"]; ok {
		ua = ""
		if len(v) > 0 {
			ua = cleanValue(v[0])
		}
	}
	if ua != "" {
		writeField(w, "User-Agent", ua)
	}
	if req.Close && !connectionClose(req.Header["Connection"]) {
		w.WriteString("Connection: close\r\n")
	}
	// Request.Write announces an empty body for the methods servers expect one with.
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		w.WriteString("Content-Length: 0\r\n")
	}
	for k, vs := range req.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		if !confval.IsToken(k) {
			// Request.Write drops such a field too: it cannot be sent without breaking framing.
			continue
		}
		for _, v := range vs {
			writeField(w, k, cleanValue(v))
		}
	}
	_, err := w.WriteString("\r\n")
	return err
}

// validFields refuses what http.Transport's validateHeaders refuses, before anything is written:
// a value with a control byte but HTAB. Request.Write would pass a NUL on and turn CR/LF into
// spaces; the Transport that h1Transport stands in for answers an error, and so does this.
// (Invalid names are dropped below, as Request.Write drops them.)
func validFields(h http.Header) error {
	for k, vs := range h {
		for _, v := range vs {
			if !reqctx.SendableValue(v) {
				return fmt.Errorf("net/http: invalid header field value for %q", k)
			}
		}
	}
	return nil
}

// tracesWrites is true when a client trace wants to hear about the written fields, which only
// Request.Write reports; ReverseProxy's own trace asks for 1xx answers only.
func tracesWrites(req *http.Request) bool {
	trace := httptrace.ContextClientTrace(req.Context())
	return trace != nil && (trace.WroteHeaderField != nil || trace.WroteRequest != nil)
}

func writeField(w *bufio.Writer, k, v string) {
	w.WriteString(k)
	w.WriteString(": ")
	w.WriteString(v)
	w.WriteString("\r\n")
}

// cleanValue does what Request.Write does to every value: CR and LF become spaces, so a value
// cannot start a new field, and surrounding whitespace goes.
func cleanValue(v string) string {
	clean := true
	for i := 0; i < len(v); i++ {
		if v[i] == '\r' || v[i] == '\n' {
			clean = false
			break
		}
	}
	if clean && (v == "" || !isSpace(v[0]) && !isSpace(v[len(v)-1])) {
		return v
	}
	b := []byte(v)
	for i, c := range b {
		if c == '\r' || c == '\n' {
			b[i] = ' '
		}
	}
	return strings.Trim(string(b), " \t")
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func connectionClose(vs []string) bool {
	for _, v := range vs {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "close") {
				return true
			}
		}
	}
	return false
}

// simpleHost is a host of letters, digits, '.', '-', ':' and IPv6 brackets: valid as a Host field
// as it stands, with no punycode conversion or zone removal to do.
func simpleHost(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_':
		default:
			return false
		}
	}
	return true
}

func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}
