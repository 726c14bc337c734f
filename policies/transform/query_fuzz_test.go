package transform

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/confval"
)

// queryNames lists the parameter names a backend reads in q: strict is net/url's reading ('&'
// only, a pair with ';' or a bad escape skipped), lenient is that of parsers that also split on
// ';' and keep what does not decode (older Python, Go before 1.17, many frameworks).
func queryNames(q string, lenient bool) map[string][]string {
	out := map[string][]string{}
	seps := "&"
	if lenient {
		seps = "&;"
	}
	for _, pair := range strings.FieldsFunc(q, func(r rune) bool { return strings.ContainsRune(seps, r) }) {
		k, v, _ := strings.Cut(pair, "=")
		if lenient {
			out[lenientUnescape(k)] = append(out[lenientUnescape(k)], lenientUnescape(v))
			continue
		}
		if strings.IndexByte(pair, ';') >= 0 {
			continue
		}
		dk, err1 := url.QueryUnescape(k)
		dv, err2 := url.QueryUnescape(v)
		if err1 == nil && err2 == nil {
			out[dk] = append(out[dk], dv)
		}
	}
	return out
}

// FuzzEditQuery runs a query transform (remove "token" and a fuzzed name, rename q to search) on
// arbitrary client query strings. Unless editQuery refuses the query, no backend reading of the
// result, strict or ';'-splitting, finds a removed name or the rename's source; and every other
// parameter reaches a strict backend with the values it sent.
func FuzzEditQuery(f *testing.F) {
	f.Add("token=secret&q=shoes&page=2&sort=asc", "debug")
	f.Add("a=1;token=2&q=%zz", "x")
	f.Add("to%6ben=1&q=a+b&%=bad", "%")
	f.Add("debug=1&debug=2&b=%41", "debug")
	f.Add("x=1&&&y", "y")
	// The name before a pair's first ';' was not checked when the pair's '=' came later, so
	// "token;x=1" reached a ';'-splitting backend as token="".
	f.Add("token;x=1", "debug")
	f.Fuzz(func(t *testing.T, rawQuery, removed string) {
		ops := Operations{Remove: []string{"token"}, Rename: map[string]string{"q": "search"}}
		if removed != "" && removed != "q" && removed != "search" {
			ops.Remove = append(ops.Remove, removed)
		}
		var p confval.Problems
		s := ops.compile("query", false, false, &p)
		if len(p) > 0 {
			return
		}
		out, err := editQuery(&s, rawQuery, nil)
		if err != nil {
			return
		}
		gone := append(slices.Clone(ops.Remove), "q")
		for _, lenient := range []bool{false, true} {
			names := queryNames(out, lenient)
			for _, n := range gone {
				if vs, ok := names[n]; ok {
					t.Fatalf("editQuery(%q) = %q: a backend (lenient %v) still reads %q = %q", rawQuery, out, lenient, n, vs)
				}
			}
		}
		in, got := queryNames(rawQuery, false), queryNames(out, false)
		for k, vs := range in {
			if slices.Contains(gone, k) || k == "search" {
				continue
			}
			if !slices.Equal(vs, got[k]) {
				t.Fatalf("editQuery(%q) = %q: %q has %q, sent %q", rawQuery, out, k, got[k], vs)
			}
		}
	})
}
