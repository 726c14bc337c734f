package routes

import (
	"cmp"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/portico-gw/portico/internal/confval"
)

// Validate records every problem with the route under path ("routes[2]"). References to upstreams
// are checked by the config loader, which knows them all.
func (c *Config) Validate(path string, p *confval.Problems) {
	if strings.TrimSpace(c.Name) == "" {
		p.Addf(confval.Join(path, "name"), "name is required")
	} else if msg := confval.NameProblem(c.Name); msg != "" {
		p.Addf(confval.Join(path, "name"), "%s", msg)
	}
	c.Match.validate(confval.Join(path, "match"), p)

	switch {
	case c.Upstream == "" && len(c.Split) == 0:
		p.Addf(confval.Join(path, "upstream"), "set upstream, or split to spread requests across several")
	case c.Upstream != "" && len(c.Split) > 0:
		p.Addf(confval.Join(path, "split"), "set either upstream or split, not both")
	}
	seen := map[string]int{}
	for i, s := range c.Split {
		spath := confval.Index(confval.Join(path, "split"), i)
		if s.Upstream == "" {
			p.Addf(confval.Join(spath, "upstream"), "upstream is required")
		} else if j, dup := seen[s.Upstream]; dup {
			p.Addf(confval.Join(spath, "upstream"), "upstream %q is already split[%d]", s.Upstream, j)
		} else {
			seen[s.Upstream] = i
		}
		switch {
		case s.Weight <= 0:
			p.Addf(confval.Join(spath, "weight"), "weight must be greater than 0 (remove the entry to send it nothing)")
		case s.Weight > MaxSplitWeight:
			p.Addf(confval.Join(spath, "weight"), "weight %d is too large: weights are ratios from 1 to %d", s.Weight, MaxSplitWeight)
		}
		checkPrefixes(spath, s.StripPrefix, s.AddPrefix, p)
	}
	if c.Sticky != nil {
		spath := confval.Join(path, "sticky")
		if len(c.Split) == 0 {
			p.Addf(spath, "sticky applies only to a split")
		}
		switch {
		case c.Sticky.Header == "" && c.Sticky.Cookie == "":
			p.Addf(spath, "set header or cookie, the request value that pins a client to one side")
		case c.Sticky.Header != "" && c.Sticky.Cookie != "":
			p.Addf(spath, "set either header or cookie, not both")
		case c.Sticky.Header != "" && !confval.IsToken(c.Sticky.Header):
			p.Addf(confval.Join(spath, "header"), "invalid header name %q", c.Sticky.Header)
		case c.Sticky.Cookie != "" && !confval.IsToken(c.Sticky.Cookie):
			p.Addf(confval.Join(spath, "cookie"), "invalid cookie name %q", c.Sticky.Cookie)
		}
	}
	if c.Mirror != nil {
		c.Mirror.validate(confval.Join(path, "mirror"), p)
	}
	checkPrefixes(path, c.StripPrefix, c.AddPrefix, p)
	for i, s := range c.Split {
		if why := c.Match.neverStripped(s.StripPrefix); why != "" {
			p.Addf(confval.Join(confval.Index(confval.Join(path, "split"), i), "strip_prefix"), "%s", why)
		}
	}
	if why := c.Match.neverStripped(c.StripPrefix); why != "" {
		p.Addf(confval.Join(path, "strip_prefix"), "%s", why)
	}
	if c.Rewrite != nil {
		rpath := confval.Join(path, "rewrite")
		if c.Rewrite.Regex == "" {
			p.Addf(confval.Join(rpath, "regex"), "regex is required")
		} else if re, err := regexp.Compile(c.Rewrite.Regex); err != nil {
			p.Addf(confval.Join(rpath, "regex"), "invalid regular expression: %v", err)
		} else if ref := unknownGroup(re, c.Rewrite.Replacement); ref != "" {
			// regexp.Expand writes nothing for such a reference: "/z/$5" made "/z/".
			p.Addf(confval.Join(rpath, "replacement"), "replacement refers to %s, which the regex does not have (groups: %d%s)",
				ref, re.NumSubexp(), namedGroups(re))
		}
	}
	c.RequestHeaders.validate(confval.Join(path, "request_headers"), p)
	if c.MaxBodyBytes < 0 {
		p.Addf(confval.Join(path, "max_body_bytes"), "must not be negative (0 means the server-wide limit)")
	}
}

func (m *MatchConfig) validate(path string, p *confval.Problems) {
	set := 0
	for _, s := range []string{m.Path, m.PathPrefix, m.PathRegex} {
		if s != "" {
			set++
		}
	}
	if set != 1 {
		p.Addf(path, "set exactly one of path, path_prefix and path_regex")
	}
	for _, f := range []struct{ name, v string }{{"path", m.Path}, {"path_prefix", m.PathPrefix}} {
		if f.v != "" && !strings.HasPrefix(f.v, "/") {
			p.Addf(confval.Join(path, f.name), "%s %q must start with \"/\"", f.name, f.v)
		} else if why := unmatchablePath(f.v); why != "" {
			p.Addf(confval.Join(path, f.name), "%s %q can never match: %s", f.name, f.v, why)
		}
	}
	if m.PathRegex != "" {
		if _, err := regexp.Compile(m.PathRegex); err != nil {
			p.Addf(confval.Join(path, "path_regex"), "invalid regular expression: %v", err)
		}
	}
	for i, h := range m.Hosts {
		if msg := checkHost(h); msg != "" {
			p.Addf(confval.Index(confval.Join(path, "hosts"), i), "%s", msg)
		}
	}
	for i, meth := range m.Methods {
		mpath := confval.Index(confval.Join(path, "methods"), i)
		switch {
		case !confval.IsToken(meth):
			p.Addf(mpath, "invalid method %q", meth)
		case meth != strings.ToUpper(meth):
			// Methods are case-sensitive (RFC 9110): "get" would never match a GET request.
			p.Addf(mpath, "method %q must be upper case (methods are case-sensitive): write %q", meth, strings.ToUpper(meth))
		case slices.Contains(m.Methods[:i], meth):
			p.Addf(mpath, "method %q is listed twice", meth)
		}
	}
	for _, name := range sortedKeys(m.Headers) {
		if !confval.IsToken(name) {
			p.Addf(headerPath(confval.Join(path, "headers"), name), "invalid header name %q", name)
		}
	}
}

// unmatchablePath says why a route's path or path_prefix can never match a request, or "": the
// router merges repeated slashes before routing, and answers 400 to a path with dot segments. (A
// "?" or "#" can match: the router sees the decoded path, in which %3F is a "?".)
func unmatchablePath(v string) string {
	switch {
	case v == "":
		return ""
	case strings.Contains(v, "//"):
		return "repeated slashes in a request's path are merged before routing"
	case hasDotSegment(v): // the router's own rule ("..;" and "\.." included)
		return "a path with dot segments is refused (400) before routing"
	}
	return ""
}

// neverStripped says why strip_prefix would never apply to what the route matches, or "": the
// prefix is stripped segment by segment (proxy.go, stripParamPrefix), so it must lie along the
// route's own path or path_prefix, segment by segment (either may be the longer for a prefix
// route). "/ap" never strips "/api". A regex route is not judged.
func (m *MatchConfig) neverStripped(strip string) string {
	own := cmp.Or(m.Path, m.PathPrefix)
	if !strings.HasPrefix(strip, "/") || own == "" || m.PathRegex != "" {
		return ""
	}
	s, o := segments(strip), segments(own)
	if hasSegmentPrefix(o, s) || m.PathPrefix != "" && hasSegmentPrefix(s, o) {
		return ""
	}
	kind := "path_prefix"
	if m.Path != "" {
		kind = "path"
	}
	return fmt.Sprintf("strip_prefix %q would never apply: the route's %s %q does not start with its segments", strip, kind, own)
}

func segments(p string) []string {
	if t := strings.Trim(p, "/"); t != "" {
		return strings.Split(t, "/")
	}
	return nil
}

func hasSegmentPrefix(s, prefix []string) bool {
	return len(prefix) <= len(s) && slices.Equal(s[:len(prefix)], prefix)
}

// unknownGroup returns the first reference in a regexp.Expand template to a group re does not
// have ("$5", "${name}", "$01"), or "": Expand writes nothing for one. It reads the template as
// Expand does (regexp's extract): a name is letters, digits and "_", "$1x" names "1x", a number
// with a leading zero is a name, and a malformed reference ("${x-y}", "$-") is literal text.
func unknownGroup(re *regexp.Regexp, template string) string {
	for len(template) > 0 {
		_, after, ok := strings.Cut(template, "$")
		if !ok {
			break
		}
		if strings.HasPrefix(after, "$") {
			template = after[1:] // "$$" is a literal "$"
			continue
		}
		name, num, rest, ok := extractGroup(after)
		template = rest
		if !ok {
			continue
		}
		if num >= 0 {
			if num > re.NumSubexp() {
				return "$" + name
			}
			continue
		}
		if re.SubexpIndex(name) < 0 {
			return "${" + name + "}"
		}
	}
	return ""
}

// extractGroup is regexp's extract: the name or number of the reference at the start of str,
// and what follows it; ok false when there is none (the "$" is then literal).
func extractGroup(str string) (name string, num int, rest string, ok bool) {
	if str == "" {
		return "", 0, str, false
	}
	brace := false
	if str[0] == '{' {
		brace = true
		str = str[1:]
	}
	i := 0
	for i < len(str) {
		r, size := utf8.DecodeRuneInString(str[i:])
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' {
			break
		}
		i += size
	}
	if i == 0 {
		return "", 0, str, false
	}
	name = str[:i]
	if brace {
		if i >= len(str) || str[i] != '}' {
			return "", 0, str, false
		}
		i++
	}
	num = 0
	for j := 0; j < len(name); j++ {
		if name[j] < '0' || '9' < name[j] || num >= 1e8 {
			num = -1
			break
		}
		num = num*10 + int(name[j]) - '0'
	}
	if name[0] == '0' && len(name) > 1 {
		num = -1
	}
	return name, num, str[i:], true
}

func namedGroups(re *regexp.Regexp) string {
	var names []string
	for _, n := range re.SubexpNames() {
		if n != "" {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return "; named: " + strings.Join(names, ", ")
}

// checkHost accepts a host name or a "*." wildcard for one or more leading labels.
func checkHost(h string) string {
	name := strings.TrimPrefix(h, "*.")
	switch {
	case h == "":
		return "host must not be empty"
	case strings.Contains(h, "://") || strings.ContainsAny(h, "/ "):
		return "host " + strconv.Quote(h) + " must be a host name only, without scheme or path"
	case strings.Contains(name, "*"):
		return "host " + strconv.Quote(h) + ": a wildcard is allowed only as a leading \"*.\""
	}
	return ""
}

func (m *MirrorConfig) validate(path string, p *confval.Problems) {
	if m.Upstream == "" {
		p.Addf(confval.Join(path, "upstream"), "upstream is required")
	}
	if m.Percent != nil && (math.IsNaN(*m.Percent) || *m.Percent <= 0 || *m.Percent > 100) {
		p.Addf(confval.Join(path, "percent"), "percent must be greater than 0 and at most 100")
	}
	if m.MaxBodyBytes < 0 {
		p.Addf(confval.Join(path, "max_body_bytes"), "must not be negative (0 means the default)")
	}
	if m.MaxConcurrent < 0 {
		p.Addf(confval.Join(path, "max_concurrent"), "must not be negative (0 means the default)")
	}
	if m.Timeout < 0 {
		p.Addf(confval.Join(path, "timeout"), "must not be negative (0 means the default)")
	}
	checkPrefixes(path, m.StripPrefix, m.AddPrefix, p)
}

// checkPrefixes validates the strip_prefix and add_prefix of a route, a split side or a mirror.
func checkPrefixes(path, strip, add string, p *confval.Problems) {
	if strip != "" && !strings.HasPrefix(strip, "/") {
		p.Addf(confval.Join(path, "strip_prefix"), "strip_prefix %q must start with \"/\"", strip)
	}
	if add != "" && !strings.HasPrefix(add, "/") {
		p.Addf(confval.Join(path, "add_prefix"), "add_prefix %q must start with \"/\"", add)
	}
}

func (h *HeaderOps) validate(path string, p *confval.Problems) {
	for i, name := range h.Remove {
		if !confval.IsToken(name) {
			p.Addf(confval.Index(confval.Join(path, "remove"), i), "invalid header name %q", name)
		}
	}
	for _, op := range []struct {
		name string
		m    map[string]string
	}{{"set", h.Set}, {"add", h.Add}} {
		for _, name := range sortedKeys(op.m) {
			hpath := headerPath(confval.Join(path, op.name), name)
			if !confval.IsToken(name) {
				p.Addf(hpath, "invalid header name %q", name)
			} else if strings.ContainsAny(op.m[name], "\r\n") {
				p.Addf(hpath, "header value must not contain line breaks")
			}
		}
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// headerPath is the problem path of a header-map entry; names that are not plain identifiers are
// quoted (`headers."X.Trace"`) so the config loader can still find the line.
func headerPath(parent, name string) string {
	if name == "" {
		return confval.Join(parent, `""`)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return confval.Join(parent, strconv.Quote(name))
		}
	}
	return confval.Join(parent, name)
}

// DuplicateMatches finds routes whose match is the same as an earlier route's (the same path,
// prefix or regex, hosts, methods and headers, in any order): the earlier one takes every request,
// so the later one never gets any. It returns the earlier route's index by the later one's.
func DuplicateMatches(cfgs []Config) map[int]int {
	var out map[int]int
	first := map[string]int{}
	for i, c := range cfgs {
		key := c.Match.key()
		if j, dup := first[key]; dup {
			if out == nil {
				out = map[int]int{}
			}
			out[i] = j
			continue
		}
		first[key] = i
	}
	return out
}

// key is the match in one canonical string.
func (m *MatchConfig) key() string {
	sorted := func(vs []string, canon func(string) string) []string {
		out := make([]string, len(vs))
		for i, v := range vs {
			out[i] = canon(v)
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	prefix := m.PathPrefix
	if m.Path == "" && m.PathRegex == "" && prefix == "" {
		prefix = "/" // no path condition: every path, as prefix "/"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%q %q %q %q %q", m.Path, prefix, m.PathRegex,
		sorted(m.Hosts, strings.ToLower), sorted(m.Methods, strings.ToUpper))
	headers := make([]string, 0, len(m.Headers))
	for name, v := range m.Headers {
		headers = append(headers, fmt.Sprintf("%q=%q", http.CanonicalHeaderKey(name), v))
	}
	slices.Sort(headers)
	b.WriteString(strings.Join(headers, " "))
	return b.String()
}

// ShadowedRegexRoutes finds the regex routes no request can reach. Every prefix route is tried
// before any regex route, so a regex route whose paths all lie under an unconditional prefix
// route (no hosts, no headers, and every method the regex route takes) never gets a request: a
// catch-all "/" in front of a monolith silences every regex route. It returns the index of the
// prefix route that takes their requests, by the regex route's index in cfgs.
func ShadowedRegexRoutes(cfgs []Config) map[int]int {
	var out map[int]int
	for i, c := range cfgs {
		if c.Match.PathRegex == "" {
			continue
		}
		// A leading '^' is redundant inside the router's own anchors, and hides the literal
		// prefix from LiteralPrefix.
		re, err := regexp.Compile(`^(?s:` + strings.TrimPrefix(c.Match.PathRegex, "^") + `)$`)
		if err != nil {
			continue // Validate reports it
		}
		lit, _ := re.LiteralPrefix()
		for j, pc := range cfgs {
			m := pc.Match
			if m.Path != "" || m.PathRegex != "" || len(m.Hosts) > 0 || len(m.Headers) > 0 {
				continue
			}
			if !coversLiteral(m.PathPrefix, lit) || !methodsCover(m.Methods, c.Match.Methods) {
				continue
			}
			if out == nil {
				out = map[int]int{}
			}
			out[i] = j
			break
		}
	}
	return out
}

// coversLiteral reports whether every path starting with lit lies under prefix ("" is "/", which
// every path does).
func coversLiteral(prefix, lit string) bool {
	if prefix == "" || prefix == "/" {
		return true
	}
	if !strings.HasPrefix(lit, prefix) {
		return false
	}
	return prefix[len(prefix)-1] == '/' || (len(lit) > len(prefix) && lit[len(prefix)] == '/')
}

// methodsCover reports whether a route taking methods takes every request of a route taking
// want (empty: every method).
func methodsCover(methods, want []string) bool {
	if len(methods) == 0 {
		return true
	}
	if len(want) == 0 {
		return false
	}
	for _, w := range want {
		if !slices.ContainsFunc(methods, func(m string) bool { return strings.EqualFold(m, w) }) {
			return false
		}
	}
	return true
}
