package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// LineProblem is one problem in a config file, placed at a line and column of it. Path is the
// field in the document ("routes[2].upstream", `upstreams."my.svc".targets[0].url`); Line and
// Column are 1-based, or 0 when the problem has no place in the file (an empty document).
type LineProblem struct {
	Line    int
	Column  int
	Path    string
	Message string
}

// format writes the problem as "file:line:col: path: message", leaving out what is unknown.
func (p LineProblem) format(file string) string {
	var b strings.Builder
	b.WriteString(file)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", p.Line, p.Column)
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Error is every problem found in one config file. Its message has one line per problem, sorted by
// line, so a user fixes them all in one pass:
//
//	portico.yaml:14:5: routes[2].upstream: unknown upstream "order" (known: orders, users)
type Error struct {
	// File is the name the config was loaded or parsed under.
	File string
	// Problems are sorted by line and column.
	Problems []LineProblem
}

// Error prints one line per problem, sorted by line.
func (e *Error) Error() string {
	ps := slices.Clone(e.Problems)
	sortProblems(ps)
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.format(e.File)
	}
	return strings.Join(lines, "\n")
}

// sortProblems orders by line then column; problems without a line go last. The sort is stable
// so problems at one place keep the order in which they were found.
func sortProblems(ps []LineProblem) {
	slices.SortStableFunc(ps, func(a, b LineProblem) int {
		if (a.Line == 0) != (b.Line == 0) {
			if a.Line == 0 {
				return 1
			}
			return -1
		}
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
}

// keyPath is the path of a map entry. Keys that are not plain identifiers are double-quoted so the
// path stays unambiguous: keyPath("upstreams", "my.svc") is `upstreams."my.svc"`.
func keyPath(parent, key string) string {
	if !plainKey(key) {
		key = strconv.Quote(key)
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func plainKey(key string) bool {
	if key == "" {
		return false
	}
	for _, r := range key {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// segment is one step of a problem path: a map key or a sequence index.
type segment struct {
	key   string
	index int
	isIdx bool
}

// splitPath parses a problem path ("routes[2].match.path", `upstreams."my.svc".tls`) into
// segments. A malformed path yields the segments that parsed, so the problem is still placed at the
// nearest known node.
func splitPath(path string) []segment {
	var segs []segment
	for i := 0; i < len(path); {
		switch c := path[i]; {
		case c == '.':
			i++
		case c == '[':
			end := strings.IndexByte(path[i:], ']')
			if end < 0 {
				return segs
			}
			n, err := strconv.Atoi(path[i+1 : i+end])
			if err != nil {
				return segs
			}
			segs = append(segs, segment{index: n, isIdx: true})
			i += end + 1
		case c == '"':
			q, err := strconv.QuotedPrefix(path[i:])
			if err != nil {
				return segs
			}
			k, _ := strconv.Unquote(q)
			segs = append(segs, segment{key: k})
			i += len(q)
		default:
			end := strings.IndexAny(path[i:], ".[")
			if end < 0 {
				end = len(path) - i
			}
			segs = append(segs, segment{key: path[i : i+end]})
			i += end
		}
	}
	return segs
}
