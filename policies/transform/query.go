package transform

import (
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/portico-gw/portico/internal/apierror"
)

// errHiddenQueryName refuses a query whose ';' pair hides a name the policy removes, renames or
// replaces: backends that split on ';' as well as '&' would read the name the policy cannot edit.
var errHiddenQueryName = apierror.New(http.StatusBadRequest, "BAD_REQUEST",
	"Query string has a ';' parameter this route cannot forward")

// queryValue is one query value: the decoded value, or for a pair url.ParseQuery rejects (a bad
// escape, a ';') the bytes the client sent, forwarded verbatim so no client data is dropped.
type queryValue struct {
	v string
	// raw is set for a pair kept verbatim: its name and value as sent (rawKey, rawVal) and
	// whether it had an '='.
	raw            bool
	rawKey, rawVal string
	eq             bool
}

func decodedValue(v string) queryValue { return queryValue{v: v} }

// editQuery applies s to rawQuery and re-encodes it sorted by name. Pairs url.ParseQuery would
// drop are kept: a bad escape in the value keeps the value's bytes and is still found by its
// name; a bad escape in the name is found by the name read leniently (valid escapes decoded, the
// rest as written); a pair with ';' is found by the name before its first '=' and is refused if
// a later part hides a name s removes, renames or replaces.
func editQuery(s *opSet, rawQuery string, vals []string) (string, error) {
	m := make(map[string][]queryValue)
	for rest := rawQuery; rest != ""; {
		var seg string
		seg, rest, _ = strings.Cut(rest, "&")
		if seg == "" {
			continue
		}
		rawKey, rawVal, eq := strings.Cut(seg, "=")
		if strings.IndexByte(seg, ';') >= 0 {
			for i, part := range strings.Split(seg, ";") {
				// The first part's name is the pair's own unless ';' comes before the '='
				// ("token;x=1" is stored as "token;x"; a ';'-splitting backend reads "token").
				k, _, _ := strings.Cut(part, "=")
				if (i > 0 || k != rawKey) && s.edits(lenientUnescape(k)) {
					return "", errHiddenQueryName
				}
			}
			m[lenientUnescape(rawKey)] = append(m[lenientUnescape(rawKey)], queryValue{raw: true, rawKey: rawKey, rawVal: rawVal, eq: eq})
			continue
		}
		k, kerr := url.QueryUnescape(rawKey)
		v, verr := url.QueryUnescape(rawVal)
		if kerr != nil || verr != nil {
			k = lenientUnescape(rawKey)
			m[k] = append(m[k], queryValue{raw: true, rawKey: rawKey, rawVal: rawVal, eq: eq})
			continue
		}
		m[k] = append(m[k], queryValue{v: v})
	}
	applyOps(s, m, vals, decodedValue)
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		ek := url.QueryEscape(k)
		for _, v := range m[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			if !v.raw {
				b.WriteString(ek)
				b.WriteByte('=')
				b.WriteString(url.QueryEscape(v.v))
				continue
			}
			if lenientUnescape(v.rawKey) == k {
				b.WriteString(v.rawKey) // not renamed: exactly as sent
			} else {
				b.WriteString(ek)
			}
			if v.eq {
				b.WriteByte('=')
				b.WriteString(v.rawVal)
			}
		}
	}
	return b.String(), nil
}

// edits reports whether name is removed, renamed or replaced by s.
func (s *opSet) edits(name string) bool {
	for _, n := range s.remove {
		if n == name {
			return true
		}
	}
	for _, rn := range s.rename {
		if rn[0] == name {
			return true
		}
	}
	for i := range s.replace {
		if s.replace[i].name == name {
			return true
		}
	}
	return false
}

// lenientUnescape decodes a query name as lenient parsers (PHP, most frameworks) do: '+' is a
// space, valid %XX escapes are decoded and anything else is kept as written.
func lenientUnescape(s string) string {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s) && ishex(s[i+1]) && ishex(s[i+2]):
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
