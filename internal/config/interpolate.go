package config

import (
	"fmt"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/portico-gw/portico/internal/confval"
)

// interpolate rewrites every string in v (a pointer to the decoded File) and returns the paths of
// the values that took any text from the environment, for redaction.
//
// goccy decodes every use of a YAML alias into the same pointer, slice or map. The walk copies each
// of them before descending, so the File becomes a tree: an expanded value is never expanded a
// second time through another alias, each path is recorded, and no two paths share memory.
func interpolate(v any, p *confval.Problems) map[string]bool {
	done := map[string]bool{}
	interpolateValue(reflect.ValueOf(v).Elem(), "", p, done)
	return done
}

func interpolateValue(v reflect.Value, path string, p *confval.Problems, done map[string]bool) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return
		}
		c := reflect.New(v.Type().Elem())
		c.Elem().Set(v.Elem())
		v.Set(c)
		interpolateValue(c.Elem(), path, p, done)
	case reflect.Struct:
		t := v.Type()
		if reflect.PointerTo(t).Implements(textUnmarshalerType) {
			return
		}
		for _, f := range fieldsOf(t).byName {
			interpolateValue(v.FieldByIndex(f.index), keyPath(path, f.name), p, done)
		}
	case reflect.Slice:
		if v.IsNil() {
			return
		}
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(c, v)
		v.Set(c)
		for i := range c.Len() {
			interpolateValue(c.Index(i), indexPath(path, i), p, done)
		}
	case reflect.Map:
		if v.IsNil() {
			return
		}
		c := reflect.MakeMapWithSize(v.Type(), v.Len())
		iter := v.MapRange()
		for iter.Next() {
			// Map values are not addressable: rewrite a copy and store that.
			elem := reflect.New(v.Type().Elem()).Elem()
			elem.Set(iter.Value())
			interpolateValue(elem, keyPath(path, fmt.Sprint(iter.Key().Interface())), p, done)
			c.SetMapIndex(iter.Key(), elem)
		}
		v.Set(c)
	case reflect.String:
		out, fromEnv, err := expand(v.String())
		if err != nil {
			p.Addf(path, "%v", err)
			return
		}
		if fromEnv {
			done[path] = true
		}
		v.SetString(out)
	}
}

// expand interpolates one string. fromEnv reports whether any text came from a variable (a default
// alone does not count, since it is written in the file).
func expand(s string) (out string, fromEnv bool, err error) {
	if !strings.Contains(s, "${") {
		return s, false, nil
	}
	var b strings.Builder
	var missing []string
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return "", false, fmt.Errorf("unterminated %q: close it with \"}\" or write \"$${\" for a literal \"${\"", s[i:])
			}
			expr := s[i+2 : i+end]
			name, def, hasDef := strings.Cut(expr, ":-")
			if !validEnvName(name) {
				return "", false, fmt.Errorf("invalid variable reference \"${%s}\": use ${NAME} or ${NAME:-default}", expr)
			}
			val, ok := os.LookupEnv(name)
			switch {
			case ok && (val != "" || !hasDef):
				b.WriteString(val)
				fromEnv = true
			case hasDef:
				b.WriteString(def)
			default:
				missing = append(missing, name)
			}
			i += end + 1
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	if len(missing) == 1 {
		return "", false, fmt.Errorf("environment variable %s is not set (use ${%s:-default} for a default)", missing[0], missing[0])
	}
	if len(missing) > 1 {
		return "", false, fmt.Errorf("environment variables %s are not set", strings.Join(missing, ", "))
	}
	return b.String(), fromEnv, nil
}

func validEnvName(name string) bool {
	if name == "" || name[0] >= '0' && name[0] <= '9' {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// redactEnv replaces, in a problem message about the value at path, the text that value took
// from the environment: the value is quoted in the message ("url \"http://u:s3cret@h/x\" must
// not have a path"), and what came from the environment is what /config redacts too, secrets
// above all. Error messages end up in logs and in a rejected reload's answer.
//
// Every form of every value is replaced in one pass, so that a value cannot match inside a
// "[redacted]" another one left ("e" made "[r[redacted]dact…"). A value shorter than minRedacted
// is redacted only as part of the whole value it went into, and a whole value that short only
// where the message quotes it: on its own it would match all over the message (PORT=1 made
// "127.0.0.1" read "[redacted]27.0.0.[redacted]"), and a secret that short is no secret.
func (d *document) redactEnv(path, msg string) string {
	raw, ok := scalarText(d.find(splitPath(path)))
	if !ok {
		return msg
	}
	var forms []string
	fromEnv := false
	for i := 0; i < len(raw); {
		start := strings.Index(raw[i:], "${")
		if start < 0 {
			break
		}
		start += i
		end := strings.IndexByte(raw[start:], '}')
		if end < 0 {
			break
		}
		name, _, _ := strings.Cut(raw[start+2:start+end], ":-")
		if val, set := os.LookupEnv(name); set && val != "" {
			fromEnv = true
			if len(val) >= minRedacted {
				forms = append(forms, spellings(val)...)
			}
		}
		i = start + end + 1
	}
	if !fromEnv {
		return msg
	}
	if whole, _, err := expand(raw); err == nil && whole != "" {
		if len(whole) >= minRedacted {
			forms = append(forms, spellings(whole)...)
		} else {
			// Only where it is quoted: `min_version "1"` shows, unquoted, in "1.2" too.
			forms = append(forms, strconv.Quote(whole), strconv.QuoteToASCII(whole))
		}
	}
	return redactForms(msg, forms)
}

// minRedacted is the shortest environment value redacted wherever it appears in a message.
const minRedacted = 4

// spellings are the forms a message may spell val in: as is, escaped inside a %q or %+q
// quotation (which is how problems and url.Parse errors quote a value: `pa"ss` shows as
// `pa\"ss`), and URL-escaped as a path, a query value or a URL's user or password.
func spellings(val string) []string {
	return []string{
		val,
		unquoted(strconv.Quote(val)),
		unquoted(strconv.QuoteToASCII(val)),
		url.PathEscape(val),
		url.QueryEscape(val),
		url.User(val).String(),
		strings.TrimPrefix(url.UserPassword("", val).String(), ":"),
	}
}

// redactForms replaces every form in msg with "[redacted]" in one pass, the longest first where
// two start at one place, so that a form containing a shorter one is replaced whole.
func redactForms(msg string, forms []string) string {
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) })
	forms = slices.Compact(forms)
	pairs := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		if f != "" {
			pairs = append(pairs, f, "[redacted]")
		}
	}
	if len(pairs) == 0 {
		return msg
	}
	return strings.NewReplacer(pairs...).Replace(msg)
}

func unquoted(q string) string { return q[1 : len(q)-1] }
