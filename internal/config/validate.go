package config

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/portico-gw/portico/policies/builtin"
	"github.com/portico-gw/portico/routes"

	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/internal/listener"
)

// validate checks every section with its owner's Validate, then what only the whole file knows:
// names that must be unique and references between sections.
func (f *File) validate() confval.Problems {
	var p confval.Problems
	f.validateListeners(&p)
	f.Server.Validate("server", &p)

	for i, tp := range f.TrustedProxies {
		if !validProxy(tp) {
			p.Addf(indexPath("trusted_proxies", i), "invalid trusted proxy %q: use a CIDR (10.0.0.0/8) or an IP address", tp)
		}
	}
	f.validateAccessLog(&p)

	names := f.upstreamNames()
	for _, name := range names {
		u := f.Upstreams[name]
		if msg := confval.NameProblem(name); msg != "" {
			p.Addf(keyPath("upstreams", name), "upstream %s", msg)
		}
		u.Validate(keyPath("upstreams", name), &p)
	}

	display := make([]string, len(names))
	for i, n := range names {
		display[i] = n
		if !plainKey(n) {
			display[i] = strconv.Quote(n)
		}
	}
	known := strings.Join(display, ", ")
	if known == "" {
		known = "none declared"
	}
	checkRef := func(path, name string) {
		if _, ok := f.Upstreams[name]; name != "" && !ok {
			p.Addf(path, "unknown upstream %q (known: %s)", name, known)
		}
	}
	routeAt := map[string]int{}
	for i := range f.Routes {
		r := &f.Routes[i]
		rpath := indexPath("routes", i)
		r.Validate(rpath, &p)
		if j, dup := routeAt[r.Name]; dup && r.Name != "" {
			p.Addf(confval.Join(rpath, "name"), "duplicate route name %q (also routes[%d])", r.Name, j)
		} else {
			routeAt[r.Name] = i
		}
		checkRef(confval.Join(rpath, "upstream"), r.Upstream)
		for j, s := range r.Split {
			checkRef(confval.Join(indexPath(confval.Join(rpath, "split"), j), "upstream"), s.Upstream)
		}
		if r.Mirror != nil {
			checkRef(confval.Join(rpath, "mirror.upstream"), r.Mirror.Upstream)
		}
	}
	for i, j := range routes.ShadowedRegexRoutes(f.Routes) {
		by := f.Routes[j]
		p.Addf(confval.Join(indexPath("routes", i), "match.path_regex"),
			"route %q can never match: route %q (path_prefix %q) takes every request it would, as prefixes come before regexes; match it by path or path_prefix, or narrow %q with hosts, methods or headers",
			f.Routes[i].Name, by.Name, cmp.Or(by.Match.PathPrefix, "/"), by.Name)
	}
	for i, j := range routes.DuplicateMatches(f.Routes) {
		p.Addf(confval.Join(indexPath("routes", i), "match"), "route %q can never match: routes[%d] (%q) has the same match and comes first; merge them, or narrow one with hosts, methods or headers",
			f.Routes[i].Name, j, f.Routes[j].Name)
	}
	f.validateBFFs(routeAt, &p)
	f.validatePolicies(&p)
	if f.Store.Redis != "" {
		if msg := redisURLProblem(f.Store.Redis); msg != "" {
			p.Addf("store.redis", "%s (use redis://host:6379/0 or rediss:// for TLS)", msg)
		}
	}
	return p
}

// redisURLProblem says what is wrong with a Redis URL, or "". The URL parser quotes the URL and
// the part it choked on, and an unescaped "/", "?", "#" or "@" in a password is what makes it
// choke: its message is not repeated, since a message ends up in logs and a rejected reload's
// answer. go-redis takes a port past 65535 and fails at every dial later, while rate limits fail
// open.
func redisURLProblem(raw string) string {
	opts, err := redis.ParseURL(raw)
	var urlErr *url.Error
	switch {
	case errors.As(err, &urlErr):
		return "not a valid URL (percent-encode / ? # @ and : in a user name or password)"
	case err != nil && strings.Contains(raw, "@"):
		// go-redis quotes the part it refused, and with an unescaped "/" in the password that
		// part is the password's tail and the host ("word@127.0.0.1:6379"): where the password
		// ends cannot be told, so none of the URL is shown.
		return "not a valid Redis URL (redis://[user:password@]host:port/db; percent-encode / ? # @ and : in a user name or password)"
	case err != nil:
		return redactForms(err.Error(), spellings(urlPassword(raw)))
	}
	if _, port, err := net.SplitHostPort(opts.Addr); err == nil {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("port %q is out of range (1-65535)", port)
		}
	}
	return ""
}

// urlPassword is the password in a URL's userinfo: what lies between "://" and the last "@", after
// the first ":". It may over-reach (an "@" in the path); a redaction that does errs safe.
func urlPassword(raw string) string {
	_, rest, ok := strings.Cut(raw, "://")
	at := strings.LastIndexByte(rest, '@')
	if !ok || at < 0 {
		return ""
	}
	_, pw, _ := strings.Cut(rest[:at], ":")
	return pw
}

// validateBFFs checks each profile and that names and mount paths do not collide: a BFF's name
// labels metrics like a route's, and two profiles on one path would shadow each other.
func (f *File) validateBFFs(routeAt map[string]int, p *confval.Problems) {
	names := make([]string, 0, len(f.BFFs))
	for name := range f.BFFs {
		names = append(names, name)
	}
	sort.Strings(names)
	pathAt := map[string]string{}
	for _, name := range names {
		b := f.BFFs[name]
		bpath := keyPath("bffs", name)
		if msg := confval.NameProblem(name); msg != "" {
			p.Addf(bpath, "BFF %s", msg)
		}
		b.Validate(bpath, p)
		if i, dup := routeAt[name]; dup {
			p.Addf(bpath, "BFF name %q is also the name of routes[%d]; names label metrics and must be unique", name, i)
		}
		for i, r := range f.Routes {
			if b.Path != "" && (r.Match.PathPrefix == b.Path || r.Match.PathPrefix == b.Path+"/" ||
				r.Match.Path == b.Path || strings.HasPrefix(r.Match.Path, b.Path+"/")) {
				p.Addf(confval.Join(indexPath("routes", i), "match"), "route %q would take requests for BFF %q's path %q; move one of them", r.Name, name, b.Path)
			}
		}
		if other, dup := pathAt[b.Path]; dup && b.Path != "" {
			p.Addf(confval.Join(bpath, "path"), "path %q is already used by BFF %q", b.Path, other)
		} else {
			pathAt[b.Path] = name
		}
	}
	// A BFF under another's path (/web/sub under /web) takes part of its space: /web/sub/graphql
	// is no longer the outer BFF's to serve, and its REST routes under /sub go dark.
	for _, inner := range names {
		for _, outer := range names {
			ip, op := f.BFFs[inner].Path, f.BFFs[outer].Path
			if inner != outer && op != "" && strings.HasPrefix(ip, op+"/") {
				p.Addf(confval.Join(keyPath("bffs", inner), "path"), "path %q is under BFF %q's path %q; mount BFFs side by side", ip, outer, op)
			}
		}
	}
}

func (f *File) validateListeners(p *confval.Problems) {
	if f.Listen != "" && len(f.Listeners) > 0 {
		p.Addf("listen", "set either listen (one plain listener) or listeners, not both")
	}
	if f.Listen != "" {
		if err := listener.CheckAddress(f.Listen); err != nil {
			p.Addf("listen", "%v", err)
		}
	}
	var taken []claimedAddr
	// claim records addr for by (how later messages name it); what names addr in this one, and
	// hint ends it.
	claim := func(path, what, addr, by, hint string) {
		if _, port, err := net.SplitHostPort(addr); err != nil || strings.Trim(port, "0") == "" {
			return // port 0 asks the kernel for a free port, so two never collide; a bad address has its own problem
		}
		for _, t := range taken {
			switch {
			case addr == t.addr:
				p.Addf(path, "%s %q is already used by %s%s", what, addr, t.by, hint)
				return
			case addrsOverlap(addr, t.addr):
				p.Addf(path, "%s %q overlaps %q of %s: both would bind the same port, and the second fails to start%s", what, addr, t.addr, t.by, hint)
				return
			}
		}
		taken = append(taken, claimedAddr{addr, by})
	}
	switch {
	case f.Listen != "":
		claim("listen", "address", f.Listen, "listen", "")
	case len(f.Listeners) == 0:
		claim("listen", "the default listen address", DefaultListen, "the default listen address", "")
	}
	for i := range f.Listeners {
		l := &f.Listeners[i]
		lpath := indexPath("listeners", i)
		l.Validate(lpath, p)
		if l.Address != "" {
			claim(confval.Join(lpath, "address"), "address", l.Address, lpath, "")
		}
	}
	switch f.Admin {
	case "off":
	case "":
		claim("admin", "the default admin address", DefaultAdmin, "admin", ` (set admin to another address or "off")`)
	default:
		if err := listener.CheckAddress(f.Admin); err != nil {
			p.Addf("admin", "%v (or \"off\" to disable the admin listener)", err)
		} else {
			claim("admin", "address", f.Admin, "admin", "")
		}
	}
}

type claimedAddr struct{ addr, by string }

// addrsOverlap reports whether listening on a and on b would collide: the same port (not 0,
// which asks the kernel for a free one) on the same host, or on an unspecified host, which
// covers every address: Go listens on "", "0.0.0.0" and "::" alike, on both IPv4 and IPv6
// (golang/go#17615). "localhost" binds 127.0.0.1. Comparing the strings alone let ":8080" and
// "0.0.0.0:8080" pass validation and fail at start with "address already in use".
func addrsOverlap(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil {
		return false
	}
	na, errA := strconv.Atoi(pa)
	nb, errB := strconv.Atoi(pb)
	if errA != nil || errB != nil || na != nb || na == 0 {
		return false // a named port ("http") is left to the start
	}
	norm := func(h string) string {
		if h == "localhost" {
			return "127.0.0.1"
		}
		if ip := net.ParseIP(h); ip != nil {
			if ip.IsUnspecified() {
				return ""
			}
			return ip.String()
		}
		return h
	}
	ha, hb = norm(ha), norm(hb)
	return ha == hb || ha == "" || hb == ""
}

func (f *File) validateAccessLog(p *confval.Problems) {
	out := f.AccessLog.Output
	if out == "" || out == "stdout" || out == "stderr" {
		return
	}
	// The file itself may not exist yet; its directory must, or nothing could be logged.
	if st, err := os.Stat(out); err == nil && st.IsDir() {
		p.Addf("access_log.output", "%q is a directory; use stdout, stderr or a file path", out)
		return
	}
	dir := filepath.Dir(out)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		p.Addf("access_log.output", "directory %q does not exist (output is stdout, stderr or a file path)", dir)
	case err != nil:
		p.Addf("access_log.output", "cannot use %q: %v", out, err)
	case !st.IsDir():
		p.Addf("access_log.output", "%q is not a directory", dir)
	}
}

// upstreamNames returns the declared upstream names, sorted, for stable messages.
func (f *File) upstreamNames() []string {
	names := make([]string, 0, len(f.Upstreams))
	for name := range f.Upstreams {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func validProxy(s string) bool {
	if _, err := netip.ParsePrefix(s); err == nil {
		return true
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

// validatePolicies checks each named policy and every reference to one: from routes, BFFs,
// consumers and global_policies (whose exceptions must name routes or BFFs).
func (f *File) validatePolicies(p *confval.Problems) {
	names := make([]string, 0, len(f.Policies))
	for name := range f.Policies {
		names = append(names, name)
	}
	sort.Strings(names)
	askForCertificates := false
	for _, l := range f.Listeners {
		askForCertificates = askForCertificates || l.TLS != nil && l.TLS.ClientCA != ""
	}
	for _, name := range names {
		c := f.Policies[name]
		if msg := confval.NameProblem(name); msg != "" {
			p.Addf(keyPath("policies", name), "policy %s", msg)
		}
		c.Validate(keyPath("policies", name), p)
		if c.MTLSAuth != nil && !askForCertificates {
			// Without a client CA no listener asks for a certificate, so the policy never sees one:
			// it refuses every request it guards, or lets all through as its anonymous consumer.
			p.Addf(confval.Join(keyPath("policies", name), "mtls-auth"), "no listener asks clients for certificates: set tls.client_ca on the listener that serves these requests")
		}
	}
	known := strings.Join(names, ", ")
	if known == "" {
		known = "none declared"
	}
	checkRefs := func(path string, refs []string) {
		at := map[string]int{}
		for i, r := range refs {
			if _, ok := f.Policies[r]; !ok {
				p.Addf(indexPath(path, i), "unknown policy %q (known: %s)", r, known)
			}
			if j, dup := at[r]; dup {
				p.Addf(indexPath(path, i), "policy %q is listed twice (also [%d])", r, j)
			}
			at[r] = i
		}
	}
	scopes := map[string]bool{}
	for i, r := range f.Routes {
		scopes[r.Name] = true
		checkRefs(confval.Join(indexPath("routes", i), "policies"), r.Policies)
	}
	for name, b := range f.BFFs {
		scopes[name] = true
		checkRefs(confval.Join(keyPath("bffs", name), "policies"), b.Policies)
	}
	consumerAt := map[string]int{}
	for i, c := range f.Consumers {
		cpath := indexPath("consumers", i)
		if msg := confval.NameProblem(c.Name); msg != "" {
			p.Addf(confval.Join(cpath, "name"), "consumer %s", msg)
		} else if j, dup := consumerAt[c.Name]; dup {
			p.Addf(confval.Join(cpath, "name"), "duplicate consumer name %q (also consumers[%d])", c.Name, j)
		} else {
			consumerAt[c.Name] = i
		}
		checkRefs(confval.Join(cpath, "policies"), c.Policies)
		for j, r := range c.Policies {
			// A consumer's own policies replace the scope's of the same type once it is
			// authenticated: limits, caching and transforms. Authorization (acl) is the route
			// owner's, never the caller's to loosen; other types run before the consumer is known.
			pc, ok := f.Policies[r]
			if t := pc.Type(); ok && t != "" && !builtin.Overridable[t] {
				p.Addf(indexPath(confval.Join(cpath, "policies"), j), "policy %q has type %s; a consumer's own policies may only be rate-limit, cache, request-transform or response-transform", r, t)
			}
		}
		if c.KeysFile != "" {
			p.RequireFile(confval.Join(cpath, "keys_file"), c.KeysFile)
		}
		if c.BasicAuth != nil && !strings.HasPrefix(c.BasicAuth.PasswordHash, "$2") {
			p.Addf(confval.Join(cpath, "basic_auth.password_hash"), "must be a bcrypt hash ($2a$…, $2b$…), never a plain password")
		}
	}
	for i, g := range f.GlobalPolicies {
		gpath := indexPath("global_policies", i)
		if _, ok := f.Policies[g.Policy]; !ok {
			p.Addf(gpath, "unknown policy %q (known: %s)", g.Policy, known)
		}
		for j, e := range g.Except {
			if !scopes[e] {
				p.Addf(indexPath(confval.Join(gpath, "except"), j), "no route or BFF is named %q", e)
			}
		}
	}
	for i, r := range f.BackendCache {
		bpath := indexPath("backend_cache", i)
		r.Validate(bpath, p)
		if _, ok := f.Upstreams[r.Upstream]; !ok && r.Upstream != "" {
			p.Addf(confval.Join(bpath, "upstream"), "unknown upstream %q", r.Upstream)
		}
	}
}
