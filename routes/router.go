// Package routes is Portico's pass-through router: it matches a request on host, path, method and
// headers, and hands it to the route's handler. Pass-through routes (Build) proxy to one upstream or
// a weighted split, optionally mirroring traffic to a shadow; BFF endpoints mount on the same
// Router with Handle.
package routes

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/portico-gw/portico/internal/apierror"
	"github.com/portico-gw/portico/internal/reqctx"
)

// Router dispatches requests to routes. Path precedence: exact > longest prefix > regex in the
// order declared. Among routes with the same path, one with hosts beats one without, more header
// conditions beat fewer, then the first declared wins. A route whose method list excludes the
// request's method does not match; the next candidate is tried, and only when no route matches at
// all but some matched on path, host and headers is the answer 405 with Allow. Paths are matched
// with each segment's ";parameters" removed (routingPath), as Tomcat and Spring map them.
//
// Handle every route before serving: a Router is read without locks on the request path and must
// not change once ServeHTTP may run (a reload builds a new one).
type Router struct {
	exact  map[string]*group
	prefix map[string]*group
	// prefixLen[n] says whether some prefix is n bytes long, so the walk skips map lookups (and
	// string hashing) for lengths no prefix has.
	prefixLen []bool
	regex     []*group
	seq       int
	// closers stop background work (mirrors) when the router is retired.
	closers []func(deadline time.Time)
}

// group holds the routes that share one path condition, most specific first.
type group struct {
	expr   string
	re     *regexp.Regexp
	routes []*route
}

type route struct {
	name    string
	hosts   []hostPattern
	methods []string
	headers []headerCond
	seq     int
	h       http.Handler
	// listsOptions: the route names OPTIONS among its methods, so it answers preflights itself.
	listsOptions bool
	// takesTrace: the route names TRACE among its methods, or is an endpoint (HandleEndpoint); no
	// other route takes it.
	takesTrace bool
}

type hostPattern struct {
	// name is lower case, without port; for a wildcard it is the suffix including the dot
	// (".example.com").
	name     string
	wildcard bool
}

type headerCond struct {
	key   string // canonical
	value string
	any   bool
}

// NewRouter returns an empty Router: every request is a 404 until routes are added.
func NewRouter() *Router {
	return &Router{exact: map[string]*group{}, prefix: map[string]*group{}}
}

// Handle mounts h for requests matching m, under the route name name (logs, metrics, reqctx).
// A MatchConfig without path, path_prefix or path_regex matches every path (prefix "/"). It
// returns an error for a match that cannot work: more than one path kind, a path not starting with
// "/", a regex that does not compile, a malformed host pattern or an empty header name.
func (r *Router) Handle(name string, m MatchConfig, h http.Handler) error {
	return r.handle(name, m, h, false)
}

// HandleEndpoint mounts h as Handle does, for a handler that is an endpoint of its own rather
// than a way to a backend (a BFF): it answers every method itself, TRACE included, with its own
// Allow. TRACE is refused on other routes because a backend echoes what it received, fields the
// route added included; an endpoint echoes nothing, and the router's guess at its methods would
// be wrong.
func (r *Router) HandleEndpoint(name string, m MatchConfig, h http.Handler) error {
	return r.handle(name, m, h, true)
}

func (r *Router) handle(name string, m MatchConfig, h http.Handler, endpoint bool) error {
	if h == nil {
		return fmt.Errorf("route %q: nil handler", name)
	}
	rt := &route{name: name, h: h, seq: r.seq}
	for _, host := range m.Hosts {
		p, err := parseHost(host)
		if err != nil {
			return fmt.Errorf("route %q: %w", name, err)
		}
		rt.hosts = append(rt.hosts, p)
	}
	for _, meth := range m.Methods {
		meth = strings.ToUpper(strings.TrimSpace(meth))
		if meth == "" {
			return fmt.Errorf("route %q: empty method", name)
		}
		if !slices.Contains(rt.methods, meth) {
			rt.methods = append(rt.methods, meth)
		}
	}
	rt.listsOptions = slices.Contains(rt.methods, http.MethodOptions)
	rt.takesTrace = endpoint || slices.Contains(rt.methods, http.MethodTrace)
	if slices.Contains(rt.methods, http.MethodGet) && !slices.Contains(rt.methods, http.MethodHead) {
		// RFC 9110 9.1: a server that answers GET answers HEAD (net/http's ServeMux and nginx's
		// limit_except GET do the same).
		rt.methods = append(rt.methods, http.MethodHead)
	}
	for k, v := range m.Headers {
		if strings.TrimSpace(k) == "" {
			return fmt.Errorf("route %q: empty header name", name)
		}
		rt.headers = append(rt.headers, headerCond{key: http.CanonicalHeaderKey(k), value: v, any: v == "*"})
	}
	// Map iteration order is random; sort so that behaviour is reproducible.
	slices.SortFunc(rt.headers, func(a, b headerCond) int { return strings.Compare(a.key, b.key) })

	kinds := 0
	for _, s := range []string{m.Path, m.PathPrefix, m.PathRegex} {
		if s != "" {
			kinds++
		}
	}
	if kinds > 1 {
		return fmt.Errorf("route %q: set only one of path, path_prefix and path_regex", name)
	}
	var g *group
	switch {
	case m.Path != "":
		if !strings.HasPrefix(m.Path, "/") {
			return fmt.Errorf("route %q: path %q must start with \"/\"", name, m.Path)
		}
		g = r.exact[m.Path]
		if g == nil {
			g = &group{expr: m.Path}
			r.exact[m.Path] = g
		}
	case m.PathRegex != "":
		for _, existing := range r.regex {
			if existing.expr == m.PathRegex {
				g = existing
				break
			}
		}
		if g == nil {
			// (?s): a decoded path may hold a newline (%0A), which "." must match too, or
			// "/admin/%0Asecret" would slip past an "/admin/.*" route to a catch-all.
			re, err := regexp.Compile(`^(?s:` + m.PathRegex + `)$`)
			if err != nil {
				return fmt.Errorf("route %q: path_regex: %w", name, err)
			}
			g = &group{expr: m.PathRegex, re: re}
			r.regex = append(r.regex, g)
		}
	default:
		p := m.PathPrefix
		if p == "" {
			p = "/"
		}
		if !strings.HasPrefix(p, "/") {
			return fmt.Errorf("route %q: path_prefix %q must start with \"/\"", name, p)
		}
		g = r.prefix[p]
		if g == nil {
			g = &group{expr: p}
			r.prefix[p] = g
			if len(p) >= len(r.prefixLen) {
				r.prefixLen = append(r.prefixLen, make([]bool, len(p)+1-len(r.prefixLen))...)
			}
			r.prefixLen[len(p)] = true
		}
	}
	g.routes = append(g.routes, rt)
	slices.SortStableFunc(g.routes, moreSpecific)
	r.seq++
	return nil
}

// moreSpecific orders routes of one path: with hosts first, then more header conditions, then
// declaration order.
func moreSpecific(a, b *route) int {
	ah, bh := len(a.hosts) > 0, len(b.hosts) > 0
	if ah != bh {
		if ah {
			return -1
		}
		return 1
	}
	if len(a.headers) != len(b.headers) {
		return len(b.headers) - len(a.headers)
	}
	return a.seq - b.seq
}

func parseHost(s string) (hostPattern, error) {
	h := strings.ToLower(strings.TrimSpace(s))
	h = stripPort(h)
	h = strings.TrimSuffix(h, ".")
	if h == "" {
		return hostPattern{}, fmt.Errorf("empty host in %q", s)
	}
	if strings.HasPrefix(h, "*.") && len(h) > 2 {
		if strings.Contains(h[1:], "*") {
			return hostPattern{}, fmt.Errorf("host %q: only a leading \"*.\" wildcard is allowed", s)
		}
		return hostPattern{name: h[1:], wildcard: true}, nil
	}
	if strings.Contains(h, "*") {
		return hostPattern{}, fmt.Errorf("host %q: only a leading \"*.\" wildcard is allowed", s)
	}
	return hostPattern{name: h}, nil
}

// stripPort removes a trailing ":port", leaving IPv6 literals ("[::1]") intact.
func stripPort(h string) string {
	i := strings.LastIndexByte(h, ':')
	if i < 0 || strings.IndexByte(h[i:], ']') >= 0 {
		return h
	}
	return h[:i]
}

func (p hostPattern) match(host string) bool {
	if !p.wildcard {
		return strings.EqualFold(host, p.name)
	}
	// "*.example.com" needs at least one label in front: "example.com" itself does not match.
	return len(host) > len(p.name) && strings.EqualFold(host[len(host)-len(p.name):], p.name)
}

// ServeHTTP matches the request and serves it, or answers 404/405 in the JSON error shape.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method == http.MethodConnect {
		// A reverse proxy is no tunnel: forwarded, CONNECT would ask a backend that is also a
		// forward proxy to open one to wherever the client names. nginx answers 405 too; no
		// method is allowed on an authority, hence the empty Allow.
		apierror.Write(w, req, &apierror.Error{Status: http.StatusMethodNotAllowed, Code: "METHOD_NOT_ALLOWED",
			Message: "CONNECT is not supported", Header: http.Header{"Allow": {""}}})
		return
	}
	if strings.Contains(req.URL.Path, "//") {
		// "//admin/x" would miss the route that owns "/admin" and reach a backend that merges
		// slashes (nginx, Tomcat and Spring do) as "/admin/x", skipping that route's policies.
		// Merged before routing, the request is routed and forwarded as what backends take it for.
		u := *req.URL
		u.Path = mergeSlashes(u.Path)
		if u.RawPath != "" {
			u.RawPath = mergeSlashes(u.RawPath)
		}
		req = req.WithContext(req.Context())
		req.URL = &u
	}
	if strings.Count(req.URL.RawQuery, "&") >= maxQueryParams {
		// Go's query parser stops at 10,000 parameters and returns what it parsed with an
		// error: policies reading the query would judge a part of it while the backend got
		// all of it.
		apierror.Write(w, req, apierror.New(http.StatusBadRequest, "BAD_REQUEST",
			fmt.Sprintf("the query has more than %d parameters", maxQueryParams)))
		return
	}
	if strings.IndexByte(req.URL.Path, 0) >= 0 {
		// "/admin%00/x" misses the /admin route (no segment boundary) and reaches a backend
		// written in C or PHP as "/admin", cut at the NUL, past that route's policies.
		apierror.Write(w, req, apierror.New(http.StatusBadRequest, "BAD_REQUEST", "path must not contain a NUL (%00)"))
		return
	}
	if hasDotSegment(req.URL.Path) {
		// "/public/../admin" would match "/public" here and be resolved to "/admin" by the backend,
		// skipping the policies of the route that owns "/admin". Browsers and curl never send dot
		// segments, so refusing them costs legitimate clients nothing.
		apierror.Write(w, req, apierror.New(http.StatusBadRequest, "BAD_REQUEST", "path must not contain \".\" or \"..\" segments"))
		return
	}
	rt, pathMatched := r.match(req)
	if m := preflightMethod(req); m != "" && (rt == nil || !rt.listsOptions) {
		// A CORS preflight asks about the method that will follow, on a route that may list only
		// that method (methods: [GET, POST]); matched as OPTIONS it got 405 before the route's
		// cors policy could answer, and every cross-origin POST failed. A route that lists
		// OPTIONS itself keeps its preflights.
		as := *req
		as.Method = m
		if prt, _ := r.match(&as); prt != nil {
			if info := reqctx.From(req.Context()); info != nil && !prt.matchMethod(http.MethodOptions) {
				info.PreflightAllow = strings.Join(r.allowed(req), ", ")
			}
			rt = prt
		}
	}
	if rt == nil {
		if pathMatched {
			allow := strings.Join(r.allowed(req), ", ")
			apierror.Write(w, req, &apierror.Error{
				Status:  http.StatusMethodNotAllowed,
				Code:    "METHOD_NOT_ALLOWED",
				Message: "method " + req.Method + " not allowed here",
				Header:  http.Header{"Allow": {allow}},
			})
			return
		}
		apierror.Write(w, req, apierror.New(http.StatusNotFound, "ROUTE_NOT_FOUND", "no route matches the request"))
		return
	}
	if req.Method == http.MethodTrace && !rt.takesTrace {
		// A backend answers TRACE with the request as it received it, fields the route adds
		// included (request_headers secrets such as an X-Api-Key, identity headers): nginx
		// refuses TRACE outright. A route that lists TRACE in its methods takes it.
		allow := strings.Join(rt.methods, ", ")
		if allow == "" {
			allow = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
		}
		apierror.Write(w, req, &apierror.Error{Status: http.StatusMethodNotAllowed, Code: "METHOD_NOT_ALLOWED",
			Message: "TRACE is not allowed here", Header: http.Header{"Allow": {allow}}})
		return
	}
	if info := reqctx.From(req.Context()); info != nil {
		info.Route = rt.name
	}
	rt.h.ServeHTTP(w, req)
}

// preflightMethod is the method a CORS preflight asks about (RFC 9110 token), or "" when req is
// not one: OPTIONS with Origin and Access-Control-Request-Method.
func preflightMethod(req *http.Request) string {
	if req.Method != http.MethodOptions || req.Header.Get("Origin") == "" {
		return ""
	}
	m := req.Header.Get("Access-Control-Request-Method")
	if m == "" || m == http.MethodOptions || m == http.MethodConnect {
		return ""
	}
	for i := 0; i < len(m); i++ {
		if c := m[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return ""
		}
	}
	return m
}

// Close retires the router: mirrors stop taking new work, and in-flight shadow calls get a short
// grace period before they are cancelled. Requests already being proxied are not affected.
func (r *Router) Close() {
	deadline := time.Now().Add(closeGrace)
	for _, c := range r.closers {
		c(deadline)
	}
}

// closeGrace bounds how long Close waits for in-flight shadow calls before cancelling them.
const closeGrace = time.Second

// match returns the route for req, or nil and whether some route matched the path, host and
// headers but not the method. It allocates nothing for exact and prefix routes (nor, when the
// path has no ';', for anything but regex routes).
func (r *Router) match(req *http.Request) (*route, bool) {
	host := stripPort(req.Host)
	if len(host) > 0 && host[len(host)-1] == '.' {
		host = host[:len(host)-1]
	}
	path := routingPath(req.URL)
	mismatch := false
	if g := r.exact[path]; g != nil {
		rt, mm := g.pick(req, host)
		if rt != nil {
			return rt, false
		}
		mismatch = mismatch || mm
	}
	if len(r.prefix) > 0 {
		// Walk the path's segment boundaries from the longest candidate down, so the first group
		// found holds the longest matching prefix: O(path depth) map lookups, not O(routes).
		rt, mm := r.pickPrefix(req, host, path)
		if rt != nil {
			return rt, false
		}
		mismatch = mismatch || mm
	}
	for _, g := range r.regex {
		if !g.re.MatchString(path) {
			continue
		}
		rt, mm := g.pick(req, host)
		if rt != nil {
			return rt, false
		}
		mismatch = mismatch || mm
	}
	return nil, mismatch
}

func (r *Router) pickPrefix(req *http.Request, host, path string) (*route, bool) {
	mismatch := false
	try := func(p string) *route {
		if len(p) >= len(r.prefixLen) || !r.prefixLen[len(p)] {
			return nil
		}
		g := r.prefix[p]
		if g == nil {
			return nil
		}
		rt, mm := g.pick(req, host)
		mismatch = mismatch || mm
		return rt
	}
	if rt := try(path); rt != nil {
		return rt, false
	}
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] != '/' {
			continue
		}
		// "/api/" (a prefix that requires a sub-path) is longer than "/api", so it is tried first.
		if i+1 < len(path) {
			if rt := try(path[:i+1]); rt != nil {
				return rt, false
			}
		}
		if i > 0 {
			if rt := try(path[:i]); rt != nil {
				return rt, false
			}
		}
	}
	return nil, mismatch
}

// pick returns the first route of g whose host, headers and method match.
func (g *group) pick(req *http.Request, host string) (*route, bool) {
	mismatch := false
	for _, rt := range g.routes {
		if !rt.matchHostHeaders(req, host) {
			continue
		}
		if !rt.matchMethod(req.Method) {
			mismatch = true
			continue
		}
		return rt, false
	}
	return nil, mismatch
}

func (rt *route) matchHostHeaders(req *http.Request, host string) bool {
	if len(rt.hosts) > 0 {
		ok := false
		for _, p := range rt.hosts {
			if p.match(host) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, c := range rt.headers {
		vals := req.Header[c.key]
		if len(vals) == 0 {
			return false
		}
		if c.any {
			continue
		}
		if !slices.Contains(vals, c.value) {
			return false
		}
	}
	return true
}

func (rt *route) matchMethod(m string) bool {
	return len(rt.methods) == 0 || slices.Contains(rt.methods, m)
}

// allowed lists the methods of every route that matches req on path, host and headers, for the
// Allow header of a 405. Only called on the error path, so it may allocate.
func (r *Router) allowed(req *http.Request) []string {
	host := stripPort(req.Host)
	host = strings.TrimSuffix(host, ".")
	path := routingPath(req.URL)
	var out []string
	collect := func(g *group) {
		if g == nil {
			return
		}
		for _, rt := range g.routes {
			if rt.matchHostHeaders(req, host) {
				out = append(out, rt.methods...)
			}
		}
	}
	collect(r.exact[path])
	for p, g := range r.prefix {
		if prefixMatches(p, path) {
			collect(g)
		}
	}
	for _, g := range r.regex {
		if g.re.MatchString(path) {
			collect(g)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// routingPath is the path routes are matched against: the decoded path with each segment's
// ";parameters" removed, as Tomcat and Spring remove them before they map a request.
// "/admin;x/users" is "/admin/users" to such a backend, so it must meet the /admin route and its
// policies here, not slip past them to a catch-all. Parameters are cut from the escaped path, as
// those backends do before decoding: an encoded ";" (%3B) is data, part of the segment's name. A
// segment that was nothing but parameters ("/;x/admin") leaves "//", merged as ServeHTTP merges
// the client's own. The forwarded path is not changed.
func routingPath(u *url.URL) string {
	p := u.Path
	if p == "" {
		return "/"
	}
	if strings.IndexByte(p, ';') < 0 {
		return p // the common case, without allocating
	}
	raw := u.EscapedPath()
	if strings.IndexByte(raw, ';') < 0 {
		return p // every ';' came encoded
	}
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); i++ {
		if raw[i] == ';' {
			j := strings.IndexByte(raw[i:], '/')
			if j < 0 {
				break
			}
			i += j
		}
		b.WriteByte(raw[i])
	}
	stripped, err := url.PathUnescape(b.String())
	if err != nil {
		// Not reached: EscapedPath is well-formed and a cut ends at a '/', never inside an escape.
		return p
	}
	if strings.Contains(stripped, "//") {
		stripped = mergeSlashes(stripped)
	}
	return stripped
}

// maxQueryParams is net/url's own limit (GODEBUG urlmaxqueryparams, default 10000).
const maxQueryParams = 10000

// mergeSlashes replaces each run of slashes in p with one.
func mergeSlashes(p string) string {
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && i > 0 && p[i-1] == '/' {
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// hasDotSegment reports a "." or ".." path segment (also when the client percent-encoded it, since
// Path is decoded). Segments end at a backslash as well as '/' (IIS and Windows backends read one
// as a separator), and a segment's ";parameters" do not hide it: Tomcat and Spring read
// "/public/..;/admin" as "/admin".
func hasDotSegment(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] != '.' || (i > 0 && p[i-1] != '/' && p[i-1] != '\\') {
			continue
		}
		j := i
		for j < len(p) && p[j] == '.' {
			j++
		}
		if n := j - i; (n == 1 || n == 2) && (j == len(p) || p[j] == '/' || p[j] == '\\' || p[j] == ';') {
			return true
		}
		i = j
	}
	return false
}

// prefixMatches applies the segment-boundary rule: "/api" takes "/api" and "/api/x", not "/apix";
// "/api/" takes "/api/" and below but not "/api".
func prefixMatches(prefix, path string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || prefix[len(prefix)-1] == '/' || path[len(prefix)] == '/'
}
