package routes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/portico-gw/portico/internal/apierror"
	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/upstreams"
)

// Deps is what Build needs from the rest of the gateway. Routes never import the upstream package:
// they consume one http.RoundTripper per upstream name.
//
// Contract for the RoundTripper: it chooses a target and sets the outbound URL's scheme and host;
// it leaves a non-empty req.Host alone (preserve_host and the mirror's "-shadow" host rely on it)
// and otherwise sends the target's host; it returns errors that carry StatusCode() (502/503/504);
// and for a 101 answer it returns the body as an io.ReadWriteCloser, as http.Transport does, so
// that WebSocket upgrades pass through.
type Deps struct {
	// Upstream looks up an upstream's RoundTripper by name.
	Upstream func(name string) (http.RoundTripper, bool)
	// Logger receives proxy and mirror errors (nil: slog.Default()).
	Logger *slog.Logger
	// Metrics counts mirror traffic (nil: not counted).
	Metrics *Metrics
	// MaxBodyBytes is the server-wide request body cap for routes that set none (0: 10 MiB).
	MaxBodyBytes int64
	// Wrap, when set, wraps each route's handler once at build time: the gateway puts the
	// route's policy chain around the pass-through handler here.
	Wrap func(route string, h http.Handler) (http.Handler, error)
}

var errNoUpstreamLookup = errors.New("deps.Upstream is nil")

// DefaultMaxBodyBytes is the request body cap when neither the route nor the server sets one.
const DefaultMaxBodyBytes = 10 << 20

// Build returns a Router with one pass-through handler per route, in the order given. It fails on
// what would break at runtime (unknown upstreams, a split without positive weight, a rewrite or
// path regex that does not compile); config validation reports the rest with file and line.
func Build(cfgs []Config, deps Deps) (*Router, error) {
	if deps.Upstream == nil {
		return nil, errNoUpstreamLookup
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.MaxBodyBytes <= 0 {
		deps.MaxBodyBytes = DefaultMaxBodyBytes
	}
	r := NewRouter()
	for i, c := range cfgs {
		h, err := newPassThrough(c, deps)
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("routes[%d] %q: %w", i, c.Name, err)
		}
		var handler http.Handler = h
		if deps.Wrap != nil {
			if handler, err = deps.Wrap(c.Name, h); err != nil {
				h.close(time.Now())
				r.Close()
				return nil, fmt.Errorf("routes[%d] %q: %w", i, c.Name, err)
			}
		}
		if err := r.Handle(c.Name, c.Match, handler); err != nil {
			h.close(time.Now())
			r.Close()
			return nil, fmt.Errorf("routes[%d]: %w", i, err)
		}
		if h.mirror != nil {
			r.closers = append(r.closers, h.close)
		}
	}
	return r, nil
}

// passThrough proxies one route's requests to its upstream (or one side of its split).
type passThrough struct {
	name     string
	maxBody  int64
	backends []backend
	total    int
	// stickyHeader (canonical) or stickyCookie pins a client to one side of a split.
	stickyHeader, stickyCookie string
	rw                         *rewriter
	mirror                     *mirror
	logger                     *slog.Logger
}

type backend struct {
	upstream string
	weight   int
	proxy    *forwarder
}

func newPassThrough(c Config, deps Deps) (*passThrough, error) {
	p := &passThrough{
		name:    c.Name,
		maxBody: c.MaxBodyBytes.Or(deps.MaxBodyBytes),
		logger:  deps.Logger.With("route", c.Name),
	}
	rw, err := newRewriter(c)
	if err != nil {
		return nil, err
	}
	p.rw = rw
	// rewriteFor gives a destination that overrides the route's prefixes its own rewriter; the
	// others share the route's.
	rewriteFor := func(strip, add string) (*rewriter, error) {
		if strip == "" && add == "" {
			return p.rw, nil
		}
		own := c
		own.StripPrefix, own.AddPrefix = strip, add
		return newRewriter(own)
	}

	sides := c.Split
	switch {
	case c.Upstream != "" && len(sides) > 0:
		return nil, errors.New("set either upstream or split, not both")
	case c.Upstream != "":
		sides = []SplitConfig{{Upstream: c.Upstream, Weight: 1}}
	case len(sides) == 0:
		return nil, errors.New("no upstream: set upstream or split")
	}
	for _, s := range sides {
		if s.Weight < 0 || s.Weight > MaxSplitWeight {
			return nil, fmt.Errorf("split upstream %q: weight %d outside 0 to %d", s.Upstream, s.Weight, MaxSplitWeight)
		}
		if s.Weight == 0 {
			// A zero weight takes a side out of rotation (a canary at 0%), like a target's weight.
			continue
		}
		rt, ok := deps.Upstream(s.Upstream)
		if !ok || rt == nil {
			return nil, fmt.Errorf("unknown upstream %q", s.Upstream)
		}
		rewrite, err := rewriteFor(s.StripPrefix, s.AddPrefix)
		if err != nil {
			return nil, fmt.Errorf("split upstream %q: %w", s.Upstream, err)
		}
		p.backends = append(p.backends, backend{upstream: s.Upstream, weight: s.Weight, proxy: p.newProxy(s.Upstream, rt, rewrite)})
		p.total += s.Weight
	}
	if p.total == 0 {
		return nil, errors.New("split has no side with a positive weight")
	}
	if st := c.Sticky; st != nil {
		if (st.Header == "") == (st.Cookie == "") {
			return nil, errors.New("sticky: set exactly one of header and cookie")
		}
		p.stickyHeader = http.CanonicalHeaderKey(st.Header)
		p.stickyCookie = st.Cookie
	}
	if c.Mirror != nil {
		rewrite, err := rewriteFor(c.Mirror.StripPrefix, c.Mirror.AddPrefix)
		if err != nil {
			return nil, fmt.Errorf("mirror: %w", err)
		}
		m, err := newMirror(c.Name, *c.Mirror, deps, rewrite.rewrite)
		if err != nil {
			return nil, fmt.Errorf("mirror: %w", err)
		}
		p.mirror = m
		if m.compare {
			for i := range p.backends {
				p.backends[i].proxy.tee = recordPrimary
			}
		}
	}
	return p, nil
}

func (p *passThrough) close(deadline time.Time) {
	if p.mirror != nil {
		p.mirror.close(deadline)
	}
}

func (p *passThrough) newProxy(upstream string, rt http.RoundTripper, rw *rewriter) *forwarder {
	logger := p.logger.With("upstream", upstream)
	onError := func(w http.ResponseWriter, r *http.Request, err error) { p.proxyError(w, r, err, logger) }
	f := &forwarder{
		rt:      rt,
		rw:      rw,
		onError: onError,
		logger:  logger,
	}
	f.upgrade = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// What outboundHeader does for every other request (ReverseProxy has already
			// taken out hop-by-hop and forwarding fields).
			dropProtectedSpellings(pr.Out.Header)
			rw.rewrite(pr)
		},
		ModifyResponse: func(res *http.Response) error {
			res.Header.Del(reqctx.RequestIDKey) // the edge's is on the answer already
			// The mirror's recorder, when the route compares, runs in addition: set as the
			// whole ModifyResponse, it let the backend's X-Request-Id through on upgrades.
			if f.tee != nil {
				return f.tee(res)
			}
			return nil
		},
		Transport:    rt,
		BufferPool:   proxyBuffers,
		ErrorLog:     slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) { onError(w, r, badGateway(err)) },
	}
	return f
}

// proxyError is the one place a failed upstream call becomes an answer.
func (p *passThrough) proxyError(w http.ResponseWriter, r *http.Request, err error, logger *slog.Logger) {
	if job := jobFrom(r.Context()); job != nil {
		job.primaryFailed(err)
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		apierror.Write(w, r, &apierror.Error{Status: http.StatusRequestEntityTooLarge, Code: "REQUEST_TOO_LARGE",
			Message: fmt.Sprintf("request body exceeds %d bytes", tooLarge.Limit), Err: err})
		return
	}
	var body *upstreams.ClientBodyError
	isBody := errors.As(err, &body)
	var timeout interface{ Timeout() bool }
	if isBody && errors.As(body.Err, &timeout) && timeout.Timeout() {
		// The server's read timeout ended a body that came too slowly; net/http has cancelled
		// the request's context, but the client is still there to read why (RFC 9110 408).
		apierror.Write(w, r, &apierror.Error{Status: http.StatusRequestTimeout, Code: "REQUEST_TIMEOUT",
			Message: "the request body did not arrive in time", Err: err})
		return
	}
	if errors.Is(r.Context().Err(), context.Canceled) {
		// The client left; the transport's own error may not say so.
		logger.Info("client closed request", "status", apierror.StatusClientClosedRequest)
		apierror.Write(w, r, fmt.Errorf("proxy: %w", context.Canceled))
		return
	}
	if isBody {
		// Malformed chunked encoding and the like: the client's request, not the backend.
		apierror.Write(w, r, &apierror.Error{Status: http.StatusBadRequest, Code: "BAD_REQUEST",
			Message: "the request body could not be read", Err: err})
		return
	}
	logger.Warn("upstream call failed", "error", err)
	apierror.Write(w, r, err)
}

// badGateway marks an error the proxy itself found in the backend's answer (a protocol switch
// nobody asked for, or to another protocol than asked): 502, as ReverseProxy answers it, where
// an unclassified error would be a 500.
func badGateway(err error) error {
	var sc apierror.StatusCoder
	if errors.As(err, &sc) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &apierror.Error{Status: http.StatusBadGateway, Code: "BAD_GATEWAY", Message: http.StatusText(http.StatusBadGateway), Err: err}
}

// ServeHTTP enforces the body cap, picks a side of the split, starts the mirror and proxies.
func (p *passThrough) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > p.maxBody {
		apierror.Write(w, r, apierror.New(http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE",
			fmt.Sprintf("request body exceeds %d bytes", p.maxBody)))
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, p.maxBody)
	}
	info := reqctx.From(r.Context())
	if info != nil && info.PreflightAllow != "" {
		// Routed as a preflight, and no cors policy answered it: the route does not take OPTIONS.
		apierror.Write(w, r, &apierror.Error{Status: http.StatusMethodNotAllowed, Code: "METHOD_NOT_ALLOWED",
			Message: "method OPTIONS not allowed here", Header: http.Header{"Allow": {info.PreflightAllow}}})
		return
	}
	b := &p.backends[p.pick(r)]
	if info != nil {
		info.Upstream = b.upstream
	}
	if p.mirror != nil {
		r = p.mirror.start(r)
	}
	b.proxy.ServeHTTP(w, r)
}

// pick chooses a split side: by the sticky value's hash when there is one, else at random by
// weight.
func (p *passThrough) pick(r *http.Request) int {
	if len(p.backends) == 1 {
		return 0
	}
	var n int
	if v, ok := p.stickyValue(r); ok {
		n = int(fnv1a(v) % uint64(p.total))
	} else {
		n = rand.IntN(p.total)
	}
	for i := range p.backends {
		n -= p.backends[i].weight
		if n < 0 {
			return i
		}
	}
	return len(p.backends) - 1
}

func (p *passThrough) stickyValue(r *http.Request) (string, bool) {
	if p.stickyHeader != "" {
		if v := r.Header[p.stickyHeader]; len(v) > 0 && v[0] != "" {
			return v[0], true
		}
		return "", false
	}
	if p.stickyCookie != "" {
		return cookieValue(r.Header["Cookie"], p.stickyCookie)
	}
	return "", false
}

// cookieValue finds one cookie without r.Cookie, which parses and allocates every cookie.
func cookieValue(lines []string, name string) (string, bool) {
	for _, line := range lines {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			k, v, ok := strings.Cut(part, "=")
			if !ok || k != name {
				continue
			}
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if v == "" {
				return "", false
			}
			return v, true
		}
	}
	return "", false
}

// fnv1a is 64-bit FNV-1a over a string, inline so that hashing a sticky value allocates nothing.
func fnv1a(s string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime
	}
	return h
}

// rewriter holds a route's precompiled request rewriting.
type rewriter struct {
	strip, add   string
	re           *regexp.Regexp
	replacement  string
	preserveHost bool
	remove       []string
	set          []headerValue
	add2         []headerValue
	setHost      string
}

type headerValue struct {
	key string
	val []string
}

func newRewriter(c Config) (*rewriter, error) {
	rw := &rewriter{strip: c.StripPrefix, add: c.AddPrefix, preserveHost: c.PreserveHost}
	if rw.strip != "" && !strings.HasPrefix(rw.strip, "/") {
		return nil, fmt.Errorf("strip_prefix %q must start with \"/\"", rw.strip)
	}
	if rw.add != "" && !strings.HasPrefix(rw.add, "/") {
		return nil, fmt.Errorf("add_prefix %q must start with \"/\"", rw.add)
	}
	rw.add = strings.TrimSuffix(rw.add, "/")
	if c.Rewrite != nil && c.Rewrite.Regex != "" {
		re, err := regexp.Compile(c.Rewrite.Regex)
		if err != nil {
			return nil, fmt.Errorf("rewrite.regex: %w", err)
		}
		rw.re, rw.replacement = re, c.Rewrite.Replacement
	}
	for _, k := range c.RequestHeaders.Remove {
		rw.remove = append(rw.remove, http.CanonicalHeaderKey(k))
	}
	for k, v := range c.RequestHeaders.Set {
		k = http.CanonicalHeaderKey(k)
		if k == "Host" {
			// Go sends req.Host, not a Host entry in the header map.
			rw.setHost = v
			continue
		}
		// Full slice expression: a later Add on the outbound header must copy, never write into
		// this shared slice.
		rw.set = append(rw.set, headerValue{key: k, val: []string{v}[:1:1]})
	}
	for k, v := range c.RequestHeaders.Add {
		rw.add2 = append(rw.add2, headerValue{key: http.CanonicalHeaderKey(k), val: []string{v}})
	}
	return rw, nil
}

// rewrite is apply in ReverseProxy's terms, for the mirror and for upgrades.
func (rw *rewriter) rewrite(pr *httputil.ProxyRequest) { rw.apply(pr.In, pr.Out) }

// rewritesPath reports whether apply changes the URL (which must then be the outbound request's
// own copy).
func (rw *rewriter) rewritesPath() bool { return rw.strip != "" || rw.add != "" || rw.re != nil }

// apply builds the outbound request out from in: path, host, forwarding fields, header rules and
// identity. It reads in and writes only out; out.Header must carry no forwarding fields yet.
func (rw *rewriter) apply(in, out *http.Request) {
	// Request trailers are not forwarded, as nginx forwards none: they would arrive after every
	// header rule and identity field had been applied, and could carry X-Consumer-Name or
	// X-Forwarded-For to the backend unchecked.
	out.Trailer = nil
	rw.rewritePath(out.URL)
	if rw.preserveHost {
		out.Host = in.Host
	} else {
		// Empty: the upstream RoundTripper sends the chosen target's host.
		out.Host = ""
	}

	// The edge has already dropped forwarding headers from untrusted peers, so what is left is a
	// trusted chain to extend, not replace. One array holds the four values (one allocation).
	fwd := make([]string, 4)
	clientIP, _, err := net.SplitHostPort(in.RemoteAddr)
	if err == nil {
		if prior := in.Header["X-Forwarded-For"]; len(prior) > 0 {
			clientIP = strings.Join(prior, ", ") + ", " + clientIP
		}
		fwd[0] = clientIP
		out.Header["X-Forwarded-For"] = fwd[0:1:1]
	} else {
		delete(out.Header, "X-Forwarded-For")
	}
	if v := in.Header["X-Forwarded-Host"]; len(v) > 0 {
		out.Header["X-Forwarded-Host"] = v[:len(v):len(v)]
	} else {
		fwd[1] = in.Host
		out.Header["X-Forwarded-Host"] = fwd[1:2:2]
	}
	if v := in.Header["X-Forwarded-Proto"]; len(v) > 0 {
		out.Header["X-Forwarded-Proto"] = v[:len(v):len(v)]
	} else {
		fwd[2] = "http"
		if in.TLS != nil {
			fwd[2] = "https"
		}
		out.Header["X-Forwarded-Proto"] = fwd[2:3:3]
	}
	fwd[3] = forwarded(in)
	out.Header["Forwarded"] = fwd[3:4:4]

	for _, k := range rw.remove {
		delete(out.Header, k)
	}
	for _, hv := range rw.set {
		out.Header[hv.key] = hv.val
	}
	if rw.setHost != "" {
		out.Host = rw.setHost
	}
	for _, hv := range rw.add2 {
		out.Header[hv.key] = append(out.Header[hv.key], hv.val...)
	}
	// Last, so neither the client nor a header rule can claim an identity.
	reqctx.SetUpstreamHeaders(in.Context(), out.Header)
}

// forwarded appends this hop to the inbound RFC 7239 Forwarded header, in one allocation.
func forwarded(in *http.Request) string {
	prior := in.Header["Forwarded"]
	ip, _, err := net.SplitHostPort(in.RemoteAddr)
	n := len(ip) + len(in.Host) + 40
	for _, v := range prior {
		n += len(v) + 2
	}
	var b strings.Builder
	b.Grow(n)
	for _, v := range prior {
		b.WriteString(v)
		b.WriteString(", ")
	}
	if err == nil {
		b.WriteString("for=")
		if strings.IndexByte(ip, ':') >= 0 {
			// IPv6 addresses are quoted and bracketed (RFC 7239 section 6).
			b.WriteString(`"[`)
			b.WriteString(ip)
			b.WriteString(`]"`)
		} else {
			b.WriteString(ip)
		}
		b.WriteByte(';')
	}
	if in.Host != "" {
		b.WriteString("host=")
		writeForwardedValue(&b, in.Host)
		b.WriteByte(';')
	}
	b.WriteString("proto=")
	if in.TLS != nil {
		b.WriteString("https")
	} else {
		b.WriteString("http")
	}
	return b.String()
}

// writeForwardedValue writes v as an RFC 7230 token, or quoted when it is not one (a host with a
// port has ':').
func writeForwardedValue(b *strings.Builder, v string) {
	token := true
	for i := 0; i < len(v) && token; i++ {
		c := v[i]
		token = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
	}
	if token {
		b.WriteString(v)
		return
	}
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('"')
}

// rewritePath applies strip_prefix, add_prefix and the rewrite regex, in that order, to the
// decoded path and, when the client sent an escaping Go would not reproduce (RawPath, e.g. %2F),
// to the escaped form too; RawPath is kept only if it still decodes to Path.
func (rw *rewriter) rewritePath(u *url.URL) {
	if rw.strip == "" && rw.add == "" && rw.re == nil {
		return
	}
	strip := rw.strip
	if strip != "" && !prefixMatches(strip, u.Path) {
		if raw := u.EscapedPath(); strings.IndexByte(raw, ';') >= 0 {
			// The router matched this path without its ;parameters (routingPath), so the prefix
			// it matched is stripped the same way, on the escaped form, where a ';' that starts
			// parameters is told from an encoded one.
			if rest, ok := stripParamPrefix(strip, raw); ok {
				if dec, err := url.PathUnescape(rest); err == nil {
					u.Path, u.RawPath = dec, rest
					if (&url.URL{Path: dec}).EscapedPath() == rest {
						u.RawPath = "" // Go writes it so anyway
					}
				}
			}
			strip = ""
		}
	}
	u.Path = rw.applyPath(u.Path, false, strip)
	if u.RawPath == "" {
		return
	}
	raw := rw.applyPath(u.RawPath, true, strip)
	if dec, err := url.PathUnescape(raw); err == nil && dec == u.Path {
		u.RawPath = raw
	} else {
		u.RawPath = ""
	}
}

func (rw *rewriter) applyPath(p string, escaped bool, strip string) string {
	if strip != "" {
		if escaped {
			strip = (&url.URL{Path: strip}).EscapedPath()
		}
		if prefixMatches(strip, p) {
			// A prefix ending in "/" keeps that slash as the new path's first character.
			p = p[len(strings.TrimSuffix(strip, "/")):]
		}
	}
	if rw.add != "" {
		add := rw.add
		if escaped {
			add = (&url.URL{Path: add}).EscapedPath()
		}
		p = add + p
	}
	if rw.re != nil {
		p = rw.re.ReplaceAllString(p, rw.replacement)
	}
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	return p
}

// stripParamPrefix strips prefix (decoded, as configured) from the escaped path raw as the router
// matched it: segment by segment, each without its ;parameters and decoded, runs of slashes as
// one (routingPath). The parameters of a stripped segment go with it
// ("/api;jsessionid=1/orders" less "/api" is "/orders"); those after it stay, as sent. ok is
// false when raw does not start with prefix so read.
func stripParamPrefix(prefix, raw string) (rest string, ok bool) {
	trimmed := strings.Trim(prefix, "/")
	if trimmed == "" {
		return raw, true // "/" strips nothing
	}
	i := 0
	for _, want := range strings.Split(trimmed, "/") {
		var name string
		for {
			if i >= len(raw) || raw[i] != '/' {
				return raw, false
			}
			for i < len(raw) && raw[i] == '/' {
				i++
			}
			j := i
			for j < len(raw) && raw[j] != '/' {
				j++
			}
			name, _, _ = strings.Cut(raw[i:j], ";")
			i = j
			if name != "" || i >= len(raw) {
				break
			}
			// A segment of parameters only ("/api/;x/v1") is no segment: routingPath merges
			// the slashes around it.
		}
		if got, err := url.PathUnescape(name); err != nil || got != want {
			return raw, false
		}
	}
	if strings.HasSuffix(prefix, "/") && i >= len(raw) {
		return raw, false // "/api/" takes only paths below /api
	}
	return raw[i:], true
}

// proxyBuffers recycles ReverseProxy's 32 KiB copy buffers across all routes. Arrays, not slices,
// go in the pool so that Put does not allocate a slice header.
var proxyBuffers = &bufferPool{}

type bufferPool struct{ pool sync.Pool }

const proxyBufferSize = 32 << 10

func (b *bufferPool) Get() []byte {
	if v, ok := b.pool.Get().(*[proxyBufferSize]byte); ok {
		return v[:]
	}
	return new([proxyBufferSize]byte)[:]
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) < proxyBufferSize {
		return
	}
	b.pool.Put((*[proxyBufferSize]byte)(buf[:proxyBufferSize]))
}

var _ httputil.BufferPool = (*bufferPool)(nil)
