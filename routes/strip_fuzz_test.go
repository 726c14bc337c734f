package routes

import (
	"net/url"
	"strings"
	"testing"
)

// strip_prefix strips exactly when the router took the path under the prefix: stripParamPrefix
// succeeds on a path whose routingPath starts with the prefix (on a segment boundary), and what
// it leaves is the rest of that routingPath.
func FuzzStripParamPrefix(f *testing.F) {
	f.Add("/api", "/api;jsessionid=1/orders")
	f.Add("/café", "/caf%c3%a9;x/orders;y")
	f.Add("/api/", "/api/;x=1/v1/o")
	f.Add("/a/b", "/a;x//b;y/c")
	f.Add("/api", "/%61pi;x=1/orders")
	f.Fuzz(func(t *testing.T, prefix, rawPath string) {
		if !strings.HasPrefix(prefix, "/") || strings.Contains(prefix, "//") || strings.ContainsAny(prefix, ";%") ||
			strings.ContainsAny(prefix, "\x00\r\n") || prefix != strings.TrimSpace(prefix) {
			return
		}
		u, err := url.Parse(rawPath)
		if err != nil || u.Path == "" || u.Path[0] != '/' || u.RawQuery != "" || u.Fragment != "" || u.Host != "" || u.Opaque != "" {
			return
		}
		raw := u.EscapedPath()
		if strings.IndexByte(raw, ';') < 0 || strings.Contains(raw, "//") {
			return // Router.ServeHTTP merges runs of slashes before anything reads the path
		}
		routed := routingPath(u)
		rest, ok := stripParamPrefix(prefix, raw)
		if want := prefixMatches(prefix, routed); ok != want {
			t.Fatalf("stripParamPrefix(%q, %q) ok = %v, but the router reads %q (under the prefix: %v)", prefix, raw, ok, routed, want)
		}
		if !ok {
			return
		}
		left := routingPath(&url.URL{Path: mustUnescape(t, rest), RawPath: rest})
		if rest == "" {
			left = ""
		}
		left = mergeSlashes(left)
		if want := routed[len(strings.TrimSuffix(prefix, "/")):]; strings.TrimSuffix(left, "/") != strings.TrimSuffix(want, "/") && !(left == "/" && want == "") {
			t.Fatalf("stripParamPrefix(%q, %q) left %q (read %q), want what follows the prefix in %q: %q", prefix, raw, rest, left, routed, want)
		}
	})
}

func mustUnescape(t *testing.T, s string) string {
	d, err := url.PathUnescape(s)
	if err != nil {
		t.Fatalf("unescaping %q: %v", s, err)
	}
	return d
}
