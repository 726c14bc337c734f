package routes

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// backendView is the path a Tomcat- or Spring-like backend maps a forwarded request-target to:
// each segment's ";parameters" cut from the escaped path, then percent-decoded, then runs of
// slashes merged. ok is false when it does not decode (such a backend answers 400). It is written
// segment by segment, unlike the router's scan, so that it checks that scan rather than repeats it.
func backendView(escaped string) (string, bool) {
	segs := strings.Split(escaped, "/")
	for i, seg := range segs {
		segs[i], _, _ = strings.Cut(seg, ";")
	}
	p, err := url.PathUnescape(strings.Join(segs, "/"))
	if err != nil {
		return "", false
	}
	return mergeSlashes(p), true
}

// FuzzRouterMatch routes arbitrary request-targets, parsed as net/http's server parses them,
// through a router with a protected "/admin" prefix, a catch-all and a fuzzed extra prefix.
// Properties: no panic; the route taken is the one the documented precedence gives for
// routingPath (exact, then the longest prefix on a segment boundary, by a linear scan rather
// than the router's walk); routingPath starts with "/" and holds no "//"; and whatever a
// parameter-stripping, decoding backend would read as under /admin is routed to the admin route
// (or refused), never to the catch-all.
func FuzzRouterMatch(f *testing.F) {
	for _, s := range []struct{ target, prefix string }{
		{"/admin/users", "/api"},
		{"/admin;x/users", "/api/"},
		{"/;x/admin", "/ad"},
		{"//admin//x", "/admin/x"},
		{"/public/..;/admin", "/public"},
		{"/adm%69n/x", "/"},
		{"/admin%2Fx;y/z", "/admin%2F"},
		{"/x%3B/admin|;a", "/x;"},
		{"/api/v1;a=b/c?q=1", "/api/v1"},
	} {
		f.Add(s.target, s.prefix)
	}
	f.Fuzz(func(t *testing.T, target, prefix string) {
		r := NewRouter()
		prefixes := []string{"/admin", "/", "/public"}
		names := map[string]string{"/admin": "admin", "/": "all", "/public": "public"}
		for _, p := range prefixes {
			if err := r.Handle(names[p], MatchConfig{PathPrefix: p}, named(names[p])); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.Handle("exact", MatchConfig{Path: "/admin/login"}, named("exact")); err != nil {
			t.Fatal(err)
		}
		if _, dup := names[prefix]; !dup && strings.HasPrefix(prefix, "/") {
			if err := r.Handle("fuzzed", MatchConfig{PathPrefix: prefix}, named("fuzzed")); err != nil {
				t.Fatal(err)
			}
			prefixes = append(prefixes, prefix)
			names[prefix] = "fuzzed"
		}

		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: gw\r\n\r\n")))
		if err != nil || !strings.HasPrefix(req.URL.Path, "/") {
			return
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req.WithContext(req.Context()))
		route := w.Header().Get("X-Route")
		if route == "" {
			if w.Code != http.StatusBadRequest {
				t.Fatalf("%q: no route took it, status %d", target, w.Code)
			}
			return
		}
		// The handler saw the request as ServeHTTP passed it on (slashes merged); rebuild that.
		seen := req
		if strings.Contains(req.URL.Path, "//") {
			u := *req.URL
			u.Path = mergeSlashes(u.Path)
			if u.RawPath != "" {
				u.RawPath = mergeSlashes(u.RawPath)
			}
			seen = &http.Request{URL: &u}
		}
		rp := routingPath(seen.URL)
		if !strings.HasPrefix(rp, "/") || strings.Contains(rp, "//") {
			t.Errorf("routingPath(%q) = %q", seen.URL.EscapedPath(), rp)
		}
		want, best := "", -1
		if rp == "/admin/login" {
			want = "exact"
		} else {
			for _, p := range prefixes {
				if prefixMatches(p, rp) && len(p) > best {
					want, best = names[p], len(p)
				}
			}
		}
		if route != want {
			t.Errorf("%q (routing path %q) went to %q, want %q", target, rp, route, want)
		}
		underAdmin := route == "admin" || route == "exact" || route == "fuzzed" && prefixMatches("/admin", prefix)
		if view, ok := backendView(seen.URL.EscapedPath()); ok && prefixMatches("/admin", view) && !underAdmin {
			t.Errorf("%q: a backend reads %q, but the request went to route %q, not admin", target, view, route)
		}
	})
}
