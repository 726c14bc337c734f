package gateway

import (
	"bufio"
	"context"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/portico-gw/portico/internal/apierror"
	"github.com/portico-gw/portico/internal/listener"
	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/upstreams"
	"go.opentelemetry.io/otel/propagation"
)

// proxyClaim reports a header (canonical key) in which a proxy tells the next hop about the
// client or the original request: believed only from trusted proxies, dropped from anyone else
// before routing. It is the whole X-Forwarded- family, not the four Portico sets: Rack trusts
// X-Forwarded-Ssl and -Scheme over -Proto, Spring builds redirects from -Prefix, Envoy's
// X-Forwarded-Client-Cert names a client certificate; the others name a client address, or
// (X-Original-Url, X-Rewrite-Url: IIS, Symfony) replace the path the router matched.
func proxyClaim(k string) bool {
	if strings.HasPrefix(k, "X-Forwarded-") {
		return true
	}
	switch k {
	case "Forwarded", "X-Real-Ip", "X-Client-Ip", "True-Client-Ip", "Cf-Connecting-Ip", "X-Cluster-Client-Ip",
		// Rails' request.ip and PHP's usual "real IP" code read Client-Ip first.
		"Client-Ip", "Fastly-Client-Ip", "X-Originating-Ip", "X-Remote-Ip", "X-Remote-Addr", "X-Proxyuser-Ip",
		"X-Original-Url", "X-Rewrite-Url", "X-Original-Host", "X-Host", "X-Url-Scheme", "Front-End-Https":
		return true
	}
	return false
}

type edgeState struct {
	info reqctx.Info
	rec  recorder
}

// ServeHTTP is the edge every client request passes first: it assigns the request ID, settles the
// client address, records the outcome for metrics and the access log, and hands the request to
// the current snapshot's router. The snapshot is read once, so a reload in the middle of a request
// never mixes two configurations.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	snap := g.current.Load()
	// The request's Info and its recorder share one allocation: this runs for every request.
	st := &edgeState{info: reqctx.Info{Start: time.Now()}, rec: recorder{ResponseWriter: w}}
	info, rec := &st.info, &st.rec
	var in string
	if v := r.Header[reqctx.RequestIDKey]; len(v) > 0 {
		in = v[0]
	}
	info.ID = requestID(in)
	// One slice for both headers: at length and capacity 1, an Add on either copies it first.
	id := []string{info.ID}
	r.Header[reqctx.RequestIDKey] = id
	w.Header()[reqctx.RequestIDKey] = id

	peer := peerAddr(r.RemoteAddr)
	if snap.trusts(peer) {
		peer = snap.clientFromForwarded(r.Header, peer)
	} else {
		for k := range r.Header {
			// X_Forwarded_Ssl too: CGI-style backends (PHP, WSGI, Rack) read '_' as '-'.
			if proxyClaim(k) || (strings.IndexByte(k, '_') >= 0 && proxyClaim(http.CanonicalHeaderKey(strings.ReplaceAll(k, "_", "-")))) {
				delete(r.Header, k)
			}
		}
	}
	info.ClientIP = peer.String()

	ctx := reqctx.With(r.Context(), info)
	if _, ok := r.Header["Traceparent"]; ok {
		// The propagator upstreams.Client injects with, so resolver calls continue this trace.
		ctx = upstreams.TraceContext.Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	if _, ok := r.Header["Upgrade"]; ok {
		// A session that may outlive the request: the drain waits for it and, when its time is
		// up, cuts it through the context (ReverseProxy closes a tunnel whose request is done).
		g.sessions.Add(1)
		defer g.sessions.Done()
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(g.cutSessions, cancel)
		defer stop()
	}
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		// A client that stalls mid-body held an upstream call until the server's read timeout
		// (60 s), past the upstream's total timeout: the upstream layer ends the body's reads at
		// the call's deadline through this, never later than the read timeout it replaces.
		rt := time.Duration(g.readTimeout.Load())
		if rt == 0 { // not started by Serve (tests): the config's
			rt = snap.File.Server.ReadTimeout.Or(listener.DefaultReadTimeout)
		}
		limit := info.Start.Add(rt)
		rc := http.NewResponseController(rec)
		ctx = upstreams.WithBodyDeadline(ctx, func(t time.Time) error {
			if t.After(limit) {
				t = limit
			}
			return rc.SetReadDeadline(t)
		})
	}
	r = r.WithContext(ctx)
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				// A bug must cost one request, not the process; the stack goes to the log,
				// never to the client.
				g.logger.Error("panic serving request", "request_id", info.ID, "panic", p, "stack", string(debug.Stack()))
			}
			if p == http.ErrAbortHandler || rec.wroteHeader {
				// Part of an answer is out: a clean end would pass it off as complete (and
				// cacheable), so the connection is cut instead.
				g.finish(snap, r, rec, info)
				panic(http.ErrAbortHandler)
			}
			apierror.Write(rec, r, apierror.New(http.StatusInternalServerError, "INTERNAL", "internal error"))
		}
		g.finish(snap, r, rec, info)
	}()
	if r.ProtoMajor == 2 && strings.IndexByte(r.RequestURI, ' ') >= 0 {
		// An HTTP/2 :path may hold a space, which no HTTP/1.1 request-target may: passed on, it
		// would split the upstream's request line, and a lenient backend would read another
		// target than the one routed and judged here. HTTP/1 clients cannot send one at all.
		apierror.Write(rec, r, apierror.New(http.StatusBadRequest, "BAD_REQUEST", "malformed request target"))
		return
	}
	snap.handler.ServeHTTP(rec, r)
}

func (g *Gateway) finish(snap *Snapshot, r *http.Request, rec *recorder, info *reqctx.Info) {
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	elapsed := time.Since(info.Start)
	g.metrics.observe(info.Route, info.Upstream, status, elapsed)
	if snap.accessLog != nil {
		snap.accessLog.LogAttrs(context.Background(), slog.LevelInfo, "request",
			slog.String("request_id", info.ID),
			slog.String("client_ip", info.ClientIP),
			slog.String("method", r.Method),
			slog.String("host", r.Host),
			slog.String("path", r.URL.Path),
			slog.String("proto", r.Proto),
			slog.Int("status", status),
			slog.Int64("bytes", rec.bytes),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
			slog.String("route", info.Route),
			slog.String("upstream", info.Upstream),
			slog.String("error_code", info.ErrorCode),
			slog.String("user_agent", r.UserAgent()),
		)
	}
}

// requestID keeps a client's ID when it is short and printable, so one ID can follow a request
// across systems; anything else is replaced, so logs cannot be injected into.
func requestID(in string) string {
	if in != "" && len(in) <= 128 {
		ok := true
		for i := 0; i < len(in); i++ {
			c := in[i]
			if c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
				ok = false
				break
			}
		}
		if ok {
			return in
		}
	}
	var b [16]byte
	lo, hi := rand.Uint64(), rand.Uint64()
	for i := 0; i < 8; i++ {
		b[i], b[8+i] = byte(lo>>(8*i)), byte(hi>>(8*i))
	}
	var out [32]byte
	hex.Encode(out[:], b[:])
	return string(out[:])
}

func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(remote); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

func (s *Snapshot) trusts(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range s.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientFromForwarded walks X-Forwarded-For from the right, skipping trusted proxies: the first
// address not ours is the client. Entries further left were written by the client and prove
// nothing.
func (s *Snapshot) clientFromForwarded(h http.Header, peer netip.Addr) netip.Addr {
	hops := forwardedHops(h)
	for j := len(hops) - 1; j >= 0; j-- {
		a, err := parseForwardedAddr(hops[j])
		if err != nil {
			return peer
		}
		a = a.Unmap()
		if !s.trusts(a) {
			return a
		}
		peer = a
	}
	return peer
}

// forwardedHops lists the addresses a trusted proxy reports, client first: X-Forwarded-For's, or,
// from a proxy that sends only RFC 7239's Forwarded, its for= values (quotes and an IPv6
// address's brackets taken off; "unknown" and obfuscated names stay, and stop the walk).
func forwardedHops(h http.Header) []string {
	var hops []string
	if xff := h.Values("X-Forwarded-For"); len(xff) > 0 {
		for _, line := range xff {
			for part := range strings.SplitSeq(line, ",") {
				hops = append(hops, strings.TrimSpace(part))
			}
		}
		return hops
	}
	for _, line := range h.Values("Forwarded") {
		for elem := range strings.SplitSeq(line, ",") {
			for pair := range strings.SplitSeq(elem, ";") {
				k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if !ok || !strings.EqualFold(k, "for") {
					continue
				}
				v = strings.Trim(v, `"`)
				if rest, ok := strings.CutPrefix(v, "["); ok {
					if end := strings.IndexByte(rest, ']'); end >= 0 {
						v = rest[:end] // the port after "]:" says nothing of the client
					}
				}
				hops = append(hops, v)
			}
		}
	}
	return hops
}

// parseForwardedAddr accepts the forms proxies write into X-Forwarded-For: an address, or an
// address with a port ("203.0.113.7:4711", "[2001:db8::1]:4711").
func parseForwardedAddr(s string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a, nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.Addr{}, err
	}
	return ap.Addr(), nil
}

// recorder notes the status and size of the answer for the access log and metrics. Unwrap lets
// http.ResponseController reach Flush and Hijack on the real writer (streaming, WebSocket).
type recorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader {
		if code >= 200 || code == http.StatusSwitchingProtocols {
			r.status, r.wroteHeader = code, true
		}
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = http.StatusOK, true
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		if !r.wroteHeader {
			// A flush sends the header, 200 unless set: a panic after it must cut the
			// connection, not append a JSON 500 to an answer already under way.
			r.status, r.wroteHeader = http.StatusOK, true
		}
		f.Flush()
	}
}

// Hijack is used by WebSocket pass-through; the 101 is recorded as the status.
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = http.StatusSwitchingProtocols, true
	}
	return http.NewResponseController(r.ResponseWriter).Hijack()
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
