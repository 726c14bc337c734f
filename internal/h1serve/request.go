package h1serve

import (
	"bytes"
	"net/http"
	"net/textproto"
	"net/url"

	"golang.org/x/net/http/httpguts"
)

// maxHead is the most of a request head this server parses itself: the size of the connection's
// read buffer. A longer head is net/http's, which enforces max_header_bytes (it accepts at least
// this much whatever the limit, so nothing it would refuse is taken here).
const maxHead = 4 << 10

// parseHead reads the request head in head (which ends with the blank line) into a request, or
// reports ok=false when the request is not one this server takes: anything but an HTTP/1.1
// request in origin form with no body or one of declared length, or anything net/http would
// treat specially or refuse. Those go to net/http, which answers them (or refuses them) as it
// always did. length is the body's declared length (0: none).
func parseHead(head []byte, remote string) (req *http.Request, closeAfter bool, length int64, ok bool) {
	line, rest, _ := bytes.Cut(head, crlf)
	method, line, ok1 := bytes.Cut(line, sp)
	target, proto, ok2 := bytes.Cut(line, sp)
	if !ok1 || !ok2 || string(proto) != "HTTP/1.1" || len(target) == 0 || target[0] != '/' || !validMethod(method) {
		return nil, false, 0, false
	}
	req = &http.Request{
		Method:     methodString(method),
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     make(http.Header, 8),
		Body:       http.NoBody,
		RemoteAddr: remote,
		RequestURI: string(target),
	}
	u, err := url.ParseRequestURI(req.RequestURI)
	if err != nil {
		return nil, false, 0, false
	}
	req.URL = u
	hosts := 0
	for {
		var l []byte
		l, rest, _ = bytes.Cut(rest, crlf)
		if len(l) == 0 {
			break
		}
		k, v, found := bytes.Cut(l, colon)
		// No obs-fold, no space before the colon, a token for a name, no control bytes in a value:
		// net/http's reader folds, trims and refuses in its own ways, so all of that is its.
		if !found || !httpguts.ValidHeaderFieldName(string(k)) {
			return nil, false, 0, false
		}
		v = bytes.Trim(v, " \t")
		if !httpguts.ValidHeaderFieldValue(string(v)) {
			return nil, false, 0, false
		}
		key := canonicalKey(k)
		switch key {
		case "Host":
			hosts++
			req.Host = string(v)
			continue
		case "Content-Length":
			// One length, plain digits: anything else (a list, a sign, two fields, even equal
			// ones) is net/http's to accept or refuse.
			if _, seen := req.Header[key]; seen || len(v) == 0 || len(v) > 18 {
				return nil, false, 0, false
			}
			for _, d := range v {
				if d < '0' || d > '9' {
					return nil, false, 0, false
				}
				length = length*10 + int64(d-'0')
			}
		case "Transfer-Encoding", "Expect", "Upgrade", "Http2-Settings", "Trailer":
			// A chunked body, an upgrade or an expectation: net/http's.
			return nil, false, 0, false
		case "Connection":
			for _, t := range bytes.Split(v, comma) {
				switch t = bytes.Trim(t, " \t"); {
				case len(t) == 0:
				case asciiEqualFold(t, "close"):
					closeAfter = true
				case asciiEqualFold(t, "keep-alive"):
				default:
					// Other connection options (an upgrade's, a proxy's) are net/http's to judge.
					return nil, false, 0, false
				}
			}
		}
		req.Header[key] = append(req.Header[key], string(v))
	}
	if hosts != 1 || !httpguts.ValidHostHeader(req.Host) {
		return nil, false, 0, false
	}
	// As net/http's readRequest (RFC 7234, 5.4): an HTTP/1.0 cache directive reads as its 1.1 one.
	if pragma := req.Header["Pragma"]; len(pragma) > 0 && pragma[0] == "no-cache" {
		if _, ok := req.Header["Cache-Control"]; !ok {
			req.Header["Cache-Control"] = []string{"no-cache"}
		}
	}
	req.Close = closeAfter
	req.ContentLength = length
	return req, closeAfter, length, true
}

var (
	crlf  = []byte("\r\n")
	sp    = []byte(" ")
	colon = []byte(":")
	comma = []byte(",")
)

// validMethod is net/http's rule: a token.
func validMethod(m []byte) bool {
	if len(m) == 0 {
		return false
	}
	for _, b := range m {
		if !httpguts.IsTokenRune(rune(b)) {
			return false
		}
	}
	return true
}

var methods = map[string]string{}

func init() {
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodTrace, http.MethodConnect} {
		methods[m] = m
	}
}

// methodString interns the common methods (no allocation for them).
func methodString(m []byte) string {
	if s, ok := methods[string(m)]; ok {
		return s
	}
	return string(m)
}

// commonKeys interns the canonical names most requests carry.
var commonKeys = map[string]string{}

func init() {
	for _, k := range []string{"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Authorization",
		"Cache-Control", "Connection", "Content-Type", "Cookie", "Host", "If-Modified-Since", "If-None-Match",
		"Origin", "Pragma", "Referer", "User-Agent", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
		"X-Request-Id", "X-Api-Key", "Traceparent", "Tracestate", "Forwarded", "Content-Length",
		"Transfer-Encoding", "Expect", "Upgrade", "Http2-Settings", "Trailer", "Te", "Range", "If-Match",
		"If-Range", "If-Unmodified-Since", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-Dest", "Dnt"} {
		commonKeys[k] = k
		commonKeys[lower(k)] = k
	}
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// canonicalKey is textproto's canonical form of k, as net/http's reader gives it.
func canonicalKey(k []byte) string {
	if s, ok := commonKeys[string(k)]; ok {
		return s
	}
	return textproto.CanonicalMIMEHeaderKey(string(k))
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
