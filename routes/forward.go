package routes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/portico-gw/portico/internal/httpfield"
	"github.com/portico-gw/portico/internal/reqctx"
)

// forwarder proxies a route's requests to one upstream: the pass-through hot path. It does what
// httputil.ReverseProxy does with a Rewrite hook (hop-by-hop fields both ways, X-Forwarded-* and
// Forwarded, query cleaning, 1xx answers, trailers, streaming flushes, aborting a truncated
// answer) in fewer steps: the outbound header is built in one pass instead of cloned and then
// pruned field by field, and the answer's fields are moved without re-canonicalizing each key.
// That was a sixth of Portico's CPU per pass-through request. Connection upgrades, rare and
// long-lived, still go through ReverseProxy, which owns the hijacking.
type forwarder struct {
	rt      http.RoundTripper
	rw      *rewriter
	upgrade *httputil.ReverseProxy
	// tee records the primary's answer for the mirror's comparison (nil when not comparing); the
	// upgrade proxy's ModifyResponse calls it too.
	tee     func(*http.Response) error
	onError func(http.ResponseWriter, *http.Request, error)
	logger  *slog.Logger
}

func (f *forwarder) ServeHTTP(w http.ResponseWriter, in *http.Request) {
	upType := upgradeType(in.Header)
	if upType != "" {
		f.upgrade.ServeHTTP(w, in)
		return
	}
	ctx := in.Context()
	var hints *earlyHints
	if in.ProtoAtLeast(1, 1) {
		// RFC 9110 15.2: no 1xx to an HTTP/1.0 client, which takes the first status line for
		// the answer (behind a 1.0 keep-alive hop, the next user would get this one's answer).
		// Without the trace, both transports swallow 1xx answers themselves.
		hints = &earlyHints{w: w}
		hints.trace.Got1xxResponse = hints.got1xx
		ctx = httptrace.WithClientTrace(ctx, &hints.trace)
	}
	out := in.WithContext(ctx)
	out.RequestURI = ""
	out.Close = false
	if in.ContentLength == 0 {
		// No body to send (net/http gives body-less requests NoBody); the transport may then
		// take its body-less path.
		out.Body = nil
	}
	if out.Body != nil {
		defer out.Body.Close()
	}
	if f.rw.rewritesPath() {
		u := *in.URL
		out.URL = &u
	}
	out.URL = withCleanQuery(out.URL)
	out.Header = outboundHeader(in.Header)
	if !in.ProtoAtLeast(1, 1) {
		// RFC 9110 10.1.1: a 1.0 request's 100-continue expectation is ignored, not passed on.
		delete(out.Header, "Expect")
	}
	f.rw.apply(in, out)
	if _, ok := out.Header["User-Agent"]; !ok {
		// An empty entry keeps the transport from adding its own User-Agent (after the header
		// rules, so that removing the client's does not bring Go's in).
		out.Header["User-Agent"] = []string{""}
	}

	res, err := f.rt.RoundTrip(out)
	if hints != nil {
		hints.finish()
	}
	if err != nil {
		f.onError(w, in, err)
		return
	}
	if res.StatusCode < 100 || res.StatusCode > 599 {
		// net/http's parsers take any three digits; RFC 9110 (15) defines 100 to 599 only, and
		// a ResponseWriter panics below 100. The backend's answer is broken: 502, like any other
		// broken answer (nginx says "upstream sent invalid status" and does the same).
		_ = res.Body.Close()
		f.onError(w, in, badGateway(fmt.Errorf("backend answered with status code %d", res.StatusCode)))
		return
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		// No upgrade was asked for: a 101 is the backend's error, as ReverseProxy sees it.
		_ = res.Body.Close()
		f.onError(w, in, badGateway(errors.New("backend switched protocols without being asked to")))
		return
	}
	if f.tee != nil {
		_ = f.tee(res)
	}
	dst := w.Header()
	dropped := connectionTokens(res.Header)
	for k, vv := range res.Header {
		// The edge has set the answer's X-Request-Id; a backend's echo of it would make two.
		if hopByHopKey(k) || k == reqctx.RequestIDKey || (dropped != nil && dropped[k]) {
			continue
		}
		// Keys from the response parser are canonical already. The values are shared when the
		// field is new here, behind a full slice expression so that a later Add on it copies
		// instead of writing into the parser's shared array.
		if prev, ok := dst[k]; ok {
			dst[k] = append(prev, vv...)
		} else {
			dst[k] = vv[:len(vv):len(vv)]
		}
	}
	if res.StatusCode == http.StatusNoContent {
		// RFC 9110 8.6: no Content-Length on a 204. net/http's HTTP/1.1 server drops a backend's,
		// but its HTTP/2 server sends it, and clients fail the stream (PROTOCOL_ERROR).
		delete(dst, "Content-Length")
	}
	announced := len(res.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		dst.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(res.StatusCode)

	if err := f.copyBody(w, res); err != nil {
		_ = res.Body.Close()
		if info := reqctx.From(in.Context()); info != nil {
			// The access log shows the status that went out; this says the answer was cut.
			info.ErrorCode = "UPSTREAM_ANSWER_CUT"
			if in.Context().Err() != nil {
				info.ErrorCode = "CLIENT_CLOSED_REQUEST"
			}
		}
		if in.Context().Value(http.ServerContextKey) != nil {
			// The status line is out: a clean end would pass a truncated answer off as
			// complete (and cacheable), so the connection is cut instead, as ReverseProxy does.
			panic(http.ErrAbortHandler)
		}
		f.logger.Warn("copying the upstream answer failed", "error", err)
		return
	}
	_ = res.Body.Close()
	if len(res.Trailer) > 0 {
		// Chunked encoding is what carries trailers; flushing forces it for short answers too.
		_ = http.NewResponseController(w).Flush()
		if len(res.Trailer) == announced {
			for k, vv := range res.Trailer {
				dst[k] = append(dst[k], vv...)
			}
			return
		}
		// Trailers the backend did not announce (in a chunked answer they may appear anyway).
		for k, vv := range res.Trailer {
			for _, v := range vv {
				dst.Add(http.TrailerPrefix+k, v)
			}
		}
	}
}

// copyBody streams the answer to the client; event streams and answers of unknown length are
// flushed after every read, as ReverseProxy does, the rest is left to the server's buffering.
func (f *forwarder) copyBody(w http.ResponseWriter, res *http.Response) error {
	flush := res.ContentLength == -1
	if !flush {
		ct, _, _ := strings.Cut(res.Header.Get("Content-Type"), ";")
		flush = strings.EqualFold(strings.TrimSpace(ct), "text/event-stream")
	}
	var rc *http.ResponseController
	if flush {
		rc = http.NewResponseController(w)
	}
	buf := proxyBuffers.Get()
	defer proxyBuffers.Put(buf)
	for {
		n, rerr := res.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if rc != nil {
				if err := rc.Flush(); err != nil {
					return err
				}
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			if errors.Is(rerr, context.Canceled) {
				return rerr
			}
			return fmt.Errorf("reading upstream answer: %w", rerr)
		}
	}
}

// earlyHints relays 1xx answers (103 Early Hints) to the client, as ReverseProxy does, and like
// it stops once RoundTrip has returned: http.Transport's reader can still report a 1xx after an
// error was returned, and writing the header then would race the error answer
// (golang/go#65123).
type earlyHints struct {
	trace httptrace.ClientTrace
	w     http.ResponseWriter
	mu    sync.Mutex
	done  bool
}

func (e *earlyHints) finish() {
	e.mu.Lock()
	e.done = true
	e.mu.Unlock()
}

func (e *earlyHints) got1xx(code int, header textproto.MIMEHeader) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.done {
		return nil
	}
	h := e.w.Header()
	saved := make(map[string][]string, len(header))
	for k, vv := range header {
		saved[k] = h[k]
		h[k] = append(h[k][:len(h[k]):len(h[k])], vv...)
	}
	e.w.WriteHeader(code)
	// The 1xx fields must not end up on the final answer; what was set before them stays
	// (ReverseProxy clears the whole header here, request ID included).
	for k, vv := range saved {
		if vv == nil {
			delete(h, k)
		} else {
			h[k] = vv
		}
	}
	return nil
}

// outboundHeader copies the client's header for the upstream, without hop-by-hop fields (those
// the Connection field names too) and without the forwarding fields the rewriter sets itself.
func outboundHeader(in http.Header) http.Header {
	out := make(http.Header, len(in)+4)
	dropped := connectionTokens(in)
	for k, vv := range in {
		if hopByHopKey(k) || forwardingKey(k) || (dropped != nil && dropped[k]) {
			continue
		}
		if strings.IndexByte(k, '_') >= 0 && protectedSpelling(k) {
			continue
		}
		// Shared values, read-only: a full slice expression makes a later append copy.
		out[k] = vv[:len(vv):len(vv)]
	}
	if httpfield.ListContains(in["Te"], "trailers") {
		// The one Te value a proxy passes on: it says the client can take trailers.
		out["Te"] = []string{"trailers"}
	}
	return out
}

// protectedSpelling reports a field name with underscores that reads as one of the fields Portico
// sets or removes once '_' is read as '-', as CGI-style backends (PHP, WSGI, Rack) read every
// field: X_Consumer_Name would reach them as X-Consumer-Name (Puma's CVE-2024-45614). nginx drops
// every name with an underscore by default; only these are dropped here.
func protectedSpelling(k string) bool {
	c := reqctx.BackendSpelling(k)
	// X-Forwarded-Port and X-Real-Ip: the edge drops them from untrusted peers.
	return hopByHopKey(c) || forwardingKey(c) || c == "X-Real-Ip" || c == "X-Forwarded-Port" ||
		c == reqctx.RequestIDKey || slices.Contains(reqctx.IdentityHeaders, c) ||
		slices.Contains(reqctx.KongIdentityHeaders, c)
}

// dropProtectedSpellings removes from h the underscore spellings protectedSpelling names.
func dropProtectedSpellings(h http.Header) {
	for k := range h {
		if strings.IndexByte(k, '_') >= 0 && protectedSpelling(k) {
			delete(h, k)
		}
	}
}

func hopByHopKey(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

func forwardingKey(k string) bool {
	switch k {
	case "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
		return true
	}
	return false
}

// connectionTokens is the set of fields the Connection field declares hop-by-hop, canonical;
// nil (no allocation) when there are none, the common case.
func connectionTokens(h http.Header) map[string]bool {
	var set map[string]bool
	for _, line := range h["Connection"] {
		for tok := range strings.SplitSeq(line, ",") {
			tok = strings.TrimSpace(tok)
			if tok == "" {
				continue
			}
			if set == nil {
				set = make(map[string]bool)
			}
			set[textproto.CanonicalMIMEHeaderKey(tok)] = true
		}
	}
	return set
}

// upgradeType is the protocol a client asks to switch to, as ReverseProxy reads it.
func upgradeType(h http.Header) string {
	if !httpfield.ListContains(h["Connection"], "upgrade") || httpfield.ListContains(h["Upgrade"], "h2c") {
		// h2c is refused as a plain request (Upgrade is hop-by-hop and goes): once a backend
		// switched, the client would speak HTTP/2 straight to it, every later request past
		// routing and policies ("h2c smuggling"). RFC 9113 deprecates the h2c upgrade anyway.
		return ""
	}
	return h.Get("Upgrade")
}

// withCleanQuery drops query parameters that Go's parser would reject (a ';' separator, a bad
// escape) as ReverseProxy does: a backend that splits on ';' would otherwise see parameters the
// gateway's own policies never saw. u is copied before it is changed.
func withCleanQuery(u *url.URL) *url.URL {
	q := u.RawQuery
	for i := 0; i < len(q); {
		switch q[i] {
		case ';':
			return reencodeQuery(u)
		case '%':
			if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
				return reencodeQuery(u)
			}
			i += 3
		default:
			i++
		}
	}
	return u
}

func reencodeQuery(u *url.URL) *url.URL {
	v, _ := url.ParseQuery(u.RawQuery)
	c := *u
	c.RawQuery = v.Encode()
	return &c
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
