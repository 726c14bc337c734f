package transform

import (
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/internal/reqctx"
)

// varKind names a template variable; parsing turns "$(name)" into one of these once, at build
// time, so rendering is a switch and an append.
type varKind uint8

const (
	segLiteral varKind = iota
	varUUID
	varClientIP
	varConsumer
	varLatencyMS
	varRequestID
	varRoute
	varHeader
)

var varNames = map[string]varKind{
	"uuid":       varUUID,
	"client_ip":  varClientIP,
	"consumer":   varConsumer,
	"latency_ms": varLatencyMS,
	"request_id": varRequestID,
	"route":      varRoute,
}

type segment struct {
	kind varKind
	// text is the literal for segLiteral and the canonical header name for varHeader.
	text string
}

// template is a parsed value. Static values (no variables) render to lit without allocating.
type template struct {
	segs   []segment
	static bool
	lit    string
	// numeric marks a value that is exactly $(latency_ms), written as a JSON number in meta.
	numeric bool
}

// parseTemplate parses "$(var)" references. "$$(" is a literal "$(". latency_ms is only known
// once the answer exists, so it is allowed in response transforms only.
func parseTemplate(s string, response bool) (template, error) {
	var t template
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.segs = append(t.segs, segment{kind: segLiteral, text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "$$(") {
			lit.WriteString("$(")
			i += 3
			continue
		}
		if !strings.HasPrefix(s[i:], "$(") {
			lit.WriteByte(s[i])
			i++
			continue
		}
		end := strings.IndexByte(s[i:], ')')
		if end < 0 {
			return template{}, fmt.Errorf("unclosed %q in %q (write $$( for a literal $()", "$(", s)
		}
		name := s[i+2 : i+end]
		seg, err := parseVar(name, response)
		if err != nil {
			return template{}, err
		}
		flush()
		t.segs = append(t.segs, seg)
		i += end + 1
	}
	flush()
	switch {
	case len(t.segs) == 0:
		t.static = true
	case len(t.segs) == 1 && t.segs[0].kind == segLiteral:
		t.static, t.lit = true, t.segs[0].text
	case len(t.segs) == 1 && t.segs[0].kind == varLatencyMS:
		t.numeric = true
	}
	if strings.ContainsAny(s, "\r\n\x00") {
		return template{}, fmt.Errorf("value %q contains a line break or NUL", s)
	}
	return t, nil
}

func parseVar(name string, response bool) (segment, error) {
	if h, ok := strings.CutPrefix(name, "header."); ok {
		if !confval.IsToken(h) {
			return segment{}, fmt.Errorf("$(%s): %q is not a valid header name", name, h)
		}
		return segment{kind: varHeader, text: http.CanonicalHeaderKey(h)}, nil
	}
	k, ok := varNames[name]
	if !ok {
		return segment{}, fmt.Errorf("unknown template variable $(%s) (known: $(uuid), $(client_ip), $(consumer), $(latency_ms), $(request_id), $(route), $(header.Name))", name)
	}
	if k == varLatencyMS && !response {
		return segment{}, fmt.Errorf("$(latency_ms) is only available in response-transform")
	}
	return segment{kind: k}, nil
}

// env is what templates read from: the request as this policy received it, its Info, and the
// time the policy saw it (used for latency when the edge set no Info, as in unit tests).
type env struct {
	r     *http.Request
	info  *reqctx.Info
	start time.Time
	// hdr, when set, is read instead of r.Header: the headers a response transform's templates
	// use, copied when the policy received the request, since inner policies (request-transform)
	// edit r.Header in place before the answer is rendered.
	hdr http.Header
	// forKey renders for a cache key (Request.EditForKey): $(uuid) and $(request_id),
	// unique to each request, render empty.
	forKey bool
}

// header is the first value of the request header name (canonical), as the policy received it.
func (e *env) header(name string) string {
	h := e.r.Header
	if e.hdr != nil {
		h = e.hdr
	}
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// headerNames appends the canonical request headers ts read (X-Request-ID for $(request_id),
// its fallback without Info), without duplicates.
func headerNames(names []string, ts ...*template) []string {
	add := func(n string) []string {
		for _, have := range names {
			if have == n {
				return names
			}
		}
		return append(names, n)
	}
	for _, t := range ts {
		for _, s := range t.segs {
			switch s.kind {
			case varHeader:
				names = add(s.text)
			case varRequestID:
				names = add(reqctx.RequestIDKey)
			}
		}
	}
	return names
}

// snapshotHeaders copies the first value of each of names from h: the only values templates
// read, so the copy stays small whatever the request carries.
func snapshotHeaders(h http.Header, names []string) http.Header {
	s := make(http.Header, len(names))
	for _, n := range names {
		if v := h[n]; len(v) > 0 {
			s[n] = []string{v[0]}
		}
	}
	return s
}

func (t *template) render(e *env) string {
	if t.static {
		return t.lit
	}
	if len(t.segs) == 1 && t.segs[0].kind != segLiteral {
		return e.value(t.segs[0])
	}
	var b []byte
	for _, s := range t.segs {
		if s.kind == segLiteral {
			b = append(b, s.text...)
		} else {
			b = append(b, e.value(s)...)
		}
	}
	return string(b)
}

func (e *env) value(s segment) string {
	if e.forKey && (s.kind == varUUID || s.kind == varRequestID) {
		return ""
	}
	switch s.kind {
	case varUUID:
		return newUUID()
	case varClientIP:
		if e.info != nil && e.info.ClientIP != "" {
			return e.info.ClientIP
		}
		return remoteIP(e.r.RemoteAddr)
	case varConsumer:
		if e.info != nil && e.info.Identity != nil {
			return e.info.Identity.Consumer
		}
		return ""
	case varLatencyMS:
		start := e.start
		if e.info != nil && !e.info.Start.IsZero() {
			start = e.info.Start
		}
		return strconv.FormatInt(time.Since(start).Milliseconds(), 10)
	case varRequestID:
		if e.info != nil && e.info.ID != "" {
			return e.info.ID
		}
		return e.header(reqctx.RequestIDKey)
	case varRoute:
		if e.info != nil {
			return e.info.Route
		}
		return ""
	case varHeader:
		return e.header(s.text)
	}
	return s.text
}

func remoteIP(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var u [16]byte
	_, _ = rand.Read(u[:]) // crypto/rand.Read never fails (Go 1.24+)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	const hex = "0123456789abcdef"
	var out [36]byte
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out[j] = '-'
			j++
		}
		out[j], out[j+1] = hex[c>>4], hex[c&0x0f]
		j += 2
	}
	return string(out[:])
}
