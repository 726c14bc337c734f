package routes

import (
	"maps"
	"math"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/confval"
)

func validationFloat(f float64) *float64 { return &f }

func TestConfigValidate(t *testing.T) {
	prefix := MatchConfig{PathPrefix: "/"}
	tests := []struct {
		name string
		cfg  Config
		want []string // "path: message substring"; none for a valid route
	}{
		{name: "minimal", cfg: Config{Name: "r", Match: prefix, Upstream: "u"}},
		{name: "full", cfg: Config{
			Name: "r",
			Match: MatchConfig{
				Hosts: []string{"api.example.com", "*.example.com", "localhost:8080"}, PathRegex: "^/users/[0-9]+$",
				Methods: []string{"GET", "POST", "PURGE"}, Headers: map[string]string{"X-Client": "mobile", "X-Any": "*"},
			},
			Split:       []SplitConfig{{Upstream: "a", Weight: 90}, {Upstream: "b", Weight: 10}},
			Sticky:      &StickyConfig{Cookie: "session"},
			Mirror:      &MirrorConfig{Upstream: "shadow", Percent: validationFloat(100), MaxBodyBytes: 1 << 20, MaxConcurrent: 64},
			StripPrefix: "/api", AddPrefix: "/v2",
			Rewrite:        &RewriteConfig{Regex: "^/users/([0-9]+)$", Replacement: "/u/$1"},
			RequestHeaders: HeaderOps{Remove: []string{"X-Debug"}, Set: map[string]string{"X-A": "1"}, Add: map[string]string{"X-B": "2"}},
		}},
		{name: "no name", cfg: Config{Match: prefix, Upstream: "u"}, want: []string{"r.name: name is required"}},
		{name: "blank name", cfg: Config{Name: "  ", Match: prefix, Upstream: "u"}, want: []string{"r.name: name is required"}},
		{name: "no path", cfg: Config{Name: "r", Upstream: "u", Match: MatchConfig{Hosts: []string{"a.example.com"}}},
			want: []string{"r.match: set exactly one of path, path_prefix and path_regex"}},
		{name: "two paths", cfg: Config{Name: "r", Upstream: "u", Match: MatchConfig{Path: "/a", PathRegex: "/a"}},
			want: []string{"r.match: set exactly one"}},
		{name: "relative paths", cfg: Config{Name: "r", Upstream: "u", Match: MatchConfig{Path: "a", PathPrefix: "b"}},
			want: []string{"r.match: set exactly one", "r.match.path: \"a\" must start with \"/\"", "r.match.path_prefix: \"b\" must start with \"/\""}},
		{name: "bad regex", cfg: Config{Name: "r", Upstream: "u", Match: MatchConfig{PathRegex: "(a"}},
			want: []string{"r.match.path_regex: invalid regular expression"}},
		{name: "methods", cfg: Config{Name: "r", Upstream: "u", Match: MatchConfig{Path: "/", Methods: []string{"get", "GE T", "", "GET", "GET"}}},
			want: []string{
				"r.match.methods[0]: method \"get\" must be upper case (methods are case-sensitive): write \"GET\"",
				"r.match.methods[1]: invalid method \"GE T\"", "r.match.methods[2]: invalid method \"\"", "r.match.methods[4]: listed twice",
			}},
		{name: "hosts", cfg: Config{Name: "r", Upstream: "u", Match: MatchConfig{Path: "/", Hosts: []string{"", "https://a.com", "a.com/x", "a.*.com", "*"}}},
			want: []string{
				"r.match.hosts[0]: must not be empty", "r.match.hosts[1]: without scheme or path", "r.match.hosts[2]: without scheme or path",
				"r.match.hosts[3]: a wildcard is allowed only as a leading", "r.match.hosts[4]: a wildcard is allowed only",
			}},
		{name: "header names", cfg: Config{Name: "r", Upstream: "u", Match: MatchConfig{Path: "/", Headers: map[string]string{"Bad Name": "x", "X.Dotted": "ok", "": "x"}}},
			want: []string{`r.match.headers."": invalid header name ""`, `r.match.headers."Bad Name": invalid header name`}},
		{name: "neither upstream nor split", cfg: Config{Name: "r", Match: prefix}, want: []string{"r.upstream: set upstream, or split"}},
		{name: "both upstream and split", cfg: Config{Name: "r", Match: prefix, Upstream: "u", Split: []SplitConfig{{Upstream: "a", Weight: 1}}},
			want: []string{"r.split: set either upstream or split, not both"}},
		{name: "split entries", cfg: Config{Name: "r", Match: prefix, Split: []SplitConfig{{Upstream: "a", Weight: 0}, {Weight: 5}, {Upstream: "a", Weight: -1}, {Upstream: "b", Weight: math.MaxInt}}},
			want: []string{
				"r.split[0].weight: greater than 0", "r.split[1].upstream: upstream is required",
				"r.split[2].upstream: \"a\" is already split[0]", "r.split[2].weight: greater than 0",
				"r.split[3].weight: weight 9223372036854775807 is too large: weights are ratios from 1 to 65535",
			}},
		{name: "sticky without split", cfg: Config{Name: "r", Match: prefix, Upstream: "u", Sticky: &StickyConfig{Header: "X-User"}},
			want: []string{"r.sticky: sticky applies only to a split"}},
		{name: "sticky needs one key", cfg: Config{Name: "r", Match: prefix, Split: []SplitConfig{{Upstream: "a", Weight: 1}}, Sticky: &StickyConfig{}},
			want: []string{"r.sticky: set header or cookie"}},
		{name: "sticky both keys", cfg: Config{Name: "r", Match: prefix, Split: []SplitConfig{{Upstream: "a", Weight: 1}}, Sticky: &StickyConfig{Header: "X-User", Cookie: "s"}},
			want: []string{"r.sticky: set either header or cookie, not both"}},
		{name: "sticky bad header", cfg: Config{Name: "r", Match: prefix, Split: []SplitConfig{{Upstream: "a", Weight: 1}}, Sticky: &StickyConfig{Header: "X User"}},
			want: []string{"r.sticky.header: invalid header name"}},
		{name: "sticky bad cookie", cfg: Config{Name: "r", Match: prefix, Split: []SplitConfig{{Upstream: "a", Weight: 1}}, Sticky: &StickyConfig{Cookie: "a;b"}},
			want: []string{"r.sticky.cookie: invalid cookie name"}},
		{name: "mirror", cfg: Config{Name: "r", Match: prefix, Upstream: "u", Mirror: &MirrorConfig{Percent: validationFloat(0), MaxBodyBytes: -1, MaxConcurrent: -1, Timeout: -1}},
			want: []string{
				"r.mirror.upstream: upstream is required", "r.mirror.percent: greater than 0 and at most 100",
				"r.mirror.max_body_bytes: must not be negative", "r.mirror.max_concurrent: must not be negative", "r.mirror.timeout: must not be negative",
			}},
		{name: "mirror percent above 100", cfg: Config{Name: "r", Match: prefix, Upstream: "u", Mirror: &MirrorConfig{Upstream: "s", Percent: validationFloat(100.5)}},
			want: []string{"r.mirror.percent: at most 100"}},
		{name: "mirror percent NaN", cfg: Config{Name: "r", Match: prefix, Upstream: "u", Mirror: &MirrorConfig{Upstream: "s", Percent: validationFloat(math.NaN())}},
			want: []string{"r.mirror.percent: at most 100"}},
		{name: "mirror small percent", cfg: Config{Name: "r", Match: prefix, Upstream: "u", Mirror: &MirrorConfig{Upstream: "s", Percent: validationFloat(0.5)}}},
		{name: "prefixes", cfg: Config{Name: "r", Match: prefix, Upstream: "u", StripPrefix: "api", AddPrefix: "v2"},
			want: []string{"r.strip_prefix: \"api\" must start with \"/\"", "r.add_prefix: \"v2\" must start with \"/\""}},
		{name: "split and mirror prefixes", cfg: Config{Name: "r", Match: prefix,
			Split:  []SplitConfig{{Upstream: "a", Weight: 1, StripPrefix: "/api/v1", AddPrefix: "/v2"}, {Upstream: "b", Weight: 1, StripPrefix: "api", AddPrefix: "v2"}},
			Mirror: &MirrorConfig{Upstream: "s", StripPrefix: "x", AddPrefix: "/ok"},
		}, want: []string{
			"r.split[1].strip_prefix: \"api\" must start with \"/\"", "r.split[1].add_prefix: \"v2\" must start with \"/\"",
			"r.mirror.strip_prefix: \"x\" must start with \"/\"",
		}},
		{name: "a ? in a path matches a decoded %3F", cfg: Config{Name: "r", Match: MatchConfig{Path: "/what?"}, Upstream: "u"}},
		{name: "prefix with dot segments", cfg: Config{Name: "r", Match: MatchConfig{PathPrefix: "/r/../admin"}, Upstream: "u"},
			want: []string{"r.match.path_prefix: can never match: a path with dot segments is refused"}},
		{name: "prefix with a dot segment the router sees behind ;", cfg: Config{Name: "r", Match: MatchConfig{PathPrefix: "/public/..;/admin"}, Upstream: "u"},
			want: []string{"r.match.path_prefix: can never match: a path with dot segments is refused"}},
		{name: "prefix with repeated slashes", cfg: Config{Name: "r", Match: MatchConfig{PathPrefix: "/a//b"}, Upstream: "u"},
			want: []string{"r.match.path_prefix: can never match: repeated slashes"}},
		{name: "dots inside a segment are fine", cfg: Config{Name: "r", Match: MatchConfig{PathPrefix: "/v1.2/..x/"}, Upstream: "u"}},
		{name: "strip_prefix off the route's prefix", cfg: Config{Name: "r", Match: MatchConfig{PathPrefix: "/api"}, Upstream: "u", StripPrefix: "/other"},
			want: []string{`r.strip_prefix: strip_prefix "/other" would never apply: the route's path_prefix "/api" does not start with its segments`}},
		{name: "strip_prefix off a segment boundary", cfg: Config{Name: "r", Match: MatchConfig{PathPrefix: "/api"}, Upstream: "u", StripPrefix: "/ap"},
			want: []string{`r.strip_prefix: strip_prefix "/ap" would never apply`}},
		{name: "strip_prefix past an exact path", cfg: Config{Name: "r", Match: MatchConfig{Path: "/a"}, Upstream: "u", StripPrefix: "/a/b"},
			want: []string{`r.strip_prefix: strip_prefix "/a/b" would never apply`}},
		{name: "strip_prefix along the route's prefix", cfg: Config{Name: "r", Match: MatchConfig{PathPrefix: "/api/v1"}, Upstream: "u", StripPrefix: "/api"}},
		{name: "strip_prefix past the route's prefix", cfg: Config{Name: "r", Match: MatchConfig{PathPrefix: "/api"}, Upstream: "u", StripPrefix: "/api/v1"}},
		{name: "split strip_prefix off the route's path", cfg: Config{Name: "r", Match: MatchConfig{Path: "/x"},
			Split: []SplitConfig{{Upstream: "a", Weight: 1, StripPrefix: "/y"}, {Upstream: "b", Weight: 1}}},
			want: []string{`r.split[0].strip_prefix: strip_prefix "/y" would never apply: the route's path "/x"`}},
		{name: "rewrite to a group the regex lacks", cfg: Config{Name: "r", Match: prefix, Upstream: "u", Rewrite: &RewriteConfig{Regex: "^/y/(.*)$", Replacement: "/z/$5"}},
			want: []string{"r.rewrite.replacement: replacement refers to $5, which the regex does not have (groups: 1)"}},
		{name: "rewrite to a name the regex lacks", cfg: Config{Name: "r", Match: prefix, Upstream: "u", Rewrite: &RewriteConfig{Regex: "^/y/(?P<id>.*)$", Replacement: "/z/${di}"}},
			want: []string{"r.rewrite.replacement: replacement refers to ${di}, which the regex does not have (groups: 1; named: id)"}},
		{name: "rewrite: $1x is a name", cfg: Config{Name: "r", Match: prefix, Upstream: "u", Rewrite: &RewriteConfig{Regex: "^/y/(.*)$", Replacement: "/z/$1x"}},
			want: []string{"r.rewrite.replacement: replacement refers to ${1x}"}},
		{name: "rewrite with groups it has and a literal $", cfg: Config{Name: "r", Match: prefix, Upstream: "u",
			Rewrite: &RewriteConfig{Regex: "^/y/(?P<id>[0-9]+)/(.*)$", Replacement: "/z/${id}/$2/${1}x/$$5/${x-y}/$-/$"}}},
		{name: "rewrite: a leading zero makes a name", cfg: Config{Name: "r", Match: prefix, Upstream: "u", Rewrite: &RewriteConfig{Regex: "^/y/(.*)$", Replacement: "/z/$01"}},
			want: []string{"r.rewrite.replacement: replacement refers to ${01}"}},
		{name: "rewrite: a name runs on through letters", cfg: Config{Name: "r", Match: prefix, Upstream: "u", Rewrite: &RewriteConfig{Regex: "^/y/(?P<caf>.*)$", Replacement: "/z/$café"}},
			want: []string{"r.rewrite.replacement: replacement refers to ${café}"}},
		{name: "rewrite", cfg: Config{Name: "r", Match: prefix, Upstream: "u", Rewrite: &RewriteConfig{Regex: "[a"}},
			want: []string{"r.rewrite.regex: invalid regular expression"}},
		{name: "rewrite without regex", cfg: Config{Name: "r", Match: prefix, Upstream: "u", Rewrite: &RewriteConfig{Replacement: "/x"}},
			want: []string{"r.rewrite.regex: regex is required"}},
		{name: "request headers", cfg: Config{Name: "r", Match: prefix, Upstream: "u", RequestHeaders: HeaderOps{
			Remove: []string{"X Bad"}, Set: map[string]string{"X-Ok": "a\r\nInjected: 1", "Bad:": "x"}, Add: map[string]string{"(x)": "y"},
		}}, want: []string{
			"r.request_headers.remove[0]: invalid header name", `r.request_headers.set."Bad:": invalid header name`,
			"r.request_headers.set.X-Ok: must not contain line breaks", `r.request_headers.add."(x)": invalid header name`,
		}},
		{name: "negative body size", cfg: Config{Name: "r", Match: prefix, Upstream: "u", MaxBodyBytes: -1},
			want: []string{"r.max_body_bytes: must not be negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p confval.Problems
			tt.cfg.Validate("r", &p)
			if len(p) != len(tt.want) {
				var b strings.Builder
				for _, q := range p {
					b.WriteString("  " + q.Path + ": " + q.Message + "\n")
				}
				t.Fatalf("got %d problems, want %d:\n%s", len(p), len(tt.want), b.String())
			}
			for i, w := range tt.want {
				path, msg, _ := strings.Cut(w, ": ")
				if p[i].Path != path || !strings.Contains(p[i].Message, msg) {
					t.Errorf("problem %d = %s: %s; want %s: …%s…", i, p[i].Path, p[i].Message, path, msg)
				}
			}
		})
	}
}

// Prefix routes come before regex routes, so a regex route whose requests an unconditional
// prefix route takes can never match; the shipped example had one behind its catch-all "/".
func TestShadowedRegexRoutes(t *testing.T) {
	re := func(name, pattern string, methods ...string) Config {
		return Config{Name: name, Upstream: "u", Match: MatchConfig{PathRegex: pattern, Methods: methods}}
	}
	prefix := func(name, p string, m MatchConfig) Config {
		m.PathPrefix = p
		return Config{Name: name, Upstream: "u", Match: m}
	}
	tests := []struct {
		name string
		cfgs []Config
		want map[int]int
	}{
		{"catch-all before a regex", []Config{re("r", "^/users/[0-9]+/profile$", "GET"), prefix("legacy", "/", MatchConfig{})}, map[int]int{0: 1}},
		{"a match without a path is a catch-all", []Config{re("r", "/x/.*"), {Name: "all", Upstream: "u"}}, map[int]int{0: 1}},
		{"prefix covering the regex's literal", []Config{prefix("users", "/users", MatchConfig{}), re("r", "/users/[0-9]+")}, map[int]int{1: 0}},
		{"prefix ending in a slash", []Config{prefix("users", "/users/", MatchConfig{}), re("r", "/users/[0-9]+")}, map[int]int{1: 0}},
		{"literal off a segment boundary", []Config{prefix("users", "/users", MatchConfig{}), re("r", "/users[0-9]+")}, nil},
		{"literal shorter than the prefix", []Config{prefix("users", "/users/admin", MatchConfig{}), re("r", "/users/.*")}, nil},
		{"catch-all with hosts", []Config{re("r", "/x"), prefix("legacy", "/", MatchConfig{Hosts: []string{"www.example.com"}})}, nil},
		{"catch-all with a header", []Config{re("r", "/x"), prefix("legacy", "/", MatchConfig{Headers: map[string]string{"X-Legacy": "*"}})}, nil},
		{"catch-all for fewer methods", []Config{re("r", "/x", "GET", "POST"), prefix("legacy", "/", MatchConfig{Methods: []string{"GET"}})}, nil},
		{"catch-all for every method the regex takes", []Config{re("r", "/x", "get"), prefix("legacy", "/", MatchConfig{Methods: []string{"GET", "HEAD"}})}, map[int]int{0: 1}},
		{"regex for any method, catch-all for some", []Config{re("r", "/x"), prefix("legacy", "/", MatchConfig{Methods: []string{"GET"}})}, nil},
		{"case-insensitive regex has no literal", []Config{prefix("users", "/users", MatchConfig{}), re("r", "(?i)/users/x")}, nil},
		{"exact route is no shadow", []Config{{Name: "e", Upstream: "u", Match: MatchConfig{Path: "/"}}, re("r", "/x")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ShadowedRegexRoutes(tt.cfgs)
			if len(got) != len(tt.want) {
				t.Fatalf("ShadowedRegexRoutes = %v, want %v", got, tt.want)
			}
			for i, j := range tt.want {
				if got[i] != j {
					t.Fatalf("ShadowedRegexRoutes = %v, want %v", got, tt.want)
				}
			}
		})
	}
}

// A route whose match equals an earlier route's never gets a request: the router takes the first.
func TestDuplicateMatches(t *testing.T) {
	cfgs := []Config{
		{Name: "a", Match: MatchConfig{Path: "/x"}},
		{Name: "b", Match: MatchConfig{Path: "/x"}},
		{Name: "c", Match: MatchConfig{PathPrefix: "/p", Methods: []string{"GET", "POST"}, Hosts: []string{"A.example"}, Headers: map[string]string{"x-v": "1"}}},
		{Name: "d", Match: MatchConfig{PathPrefix: "/p", Methods: []string{"POST", "GET"}, Hosts: []string{"a.example"}, Headers: map[string]string{"X-V": "1"}}},
		{Name: "e", Match: MatchConfig{PathPrefix: "/p", Methods: []string{"GET"}}},
		{Name: "f", Match: MatchConfig{PathPrefix: "/p", Headers: map[string]string{"X-V": "2"}}},
		{Name: "g", Match: MatchConfig{}},
		{Name: "h", Match: MatchConfig{PathPrefix: "/"}},
		{Name: "i", Match: MatchConfig{PathRegex: "/r/.*"}},
		{Name: "j", Match: MatchConfig{PathRegex: "/r/.*"}},
		{Name: "k", Match: MatchConfig{PathRegex: "/r/.+"}},
	}
	got := DuplicateMatches(cfgs)
	want := map[int]int{1: 0, 3: 2, 7: 6, 9: 8}
	if !maps.Equal(got, want) {
		t.Errorf("DuplicateMatches = %v, want %v", got, want)
	}
}
