package transform

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
)

// render renders every replace, add and append value, in that order. It runs before any edit so
// that $(header.X) sees the request as it arrived (Kong's template environment does the same), not
// a half-transformed one.
func (s *opSet) render(e *env) []string {
	if !s.dynamic {
		return nil
	}
	out := make([]string, 0, len(s.replace)+len(s.add)+len(s.append))
	for _, list := range [3][]namedValue{s.replace, s.add, s.append} {
		for i := range list {
			out = append(out, list[i].value.render(e))
		}
	}
	return out
}

// apply edits m (an http.Header or url.Values) in Kong's order: remove → rename → replace (only
// if present) → add (only if absent) → append (always). vals is render's result, nil when every
// value is static.
func (s *opSet) apply(m map[string][]string, vals []string) {
	applyOps(s, m, vals, func(v string) string { return v })
}

// applyOps is apply for any value type: query editing keeps, beside each value, the bytes the
// client sent (see queryPairs). value makes a V from a rendered template value.
func applyOps[V any](s *opSet, m map[string][]V, vals []string, value func(string) V) {
	for _, n := range s.remove {
		delete(m, n)
	}
	if len(s.spellings) > 0 {
		dropOtherSpellings(s, m)
	}
	for _, rn := range s.rename {
		if v, ok := m[rn[0]]; ok {
			delete(m, rn[0])
			m[rn[1]] = v
		}
	}
	k := 0
	next := func(nv *namedValue) V {
		if vals == nil {
			return value(nv.value.lit)
		}
		v := vals[k]
		k++
		return value(v)
	}
	for i := range s.replace {
		v := next(&s.replace[i])
		if _, ok := m[s.replace[i].name]; ok {
			m[s.replace[i].name] = []V{v}
		}
	}
	for i := range s.add {
		v := next(&s.add[i])
		if _, ok := m[s.add[i].name]; !ok {
			m[s.add[i].name] = []V{v}
		}
	}
	for i := range s.append {
		v := next(&s.append[i])
		m[s.append[i].name] = append(m[s.append[i].name], v)
	}
}

// spelling is a header name some backends cannot tell from others: PHP, WSGI (CGI) and Rack turn
// both X-Internal-Admin and X_Internal_Admin into HTTP_X_INTERNAL_ADMIN. norm is the name with
// underscores read as dashes, canonicalized; keep is the one exact key to leave alone (a rename
// source, moved afterwards), "" for a removed name.
type spelling struct {
	norm, keep string
}

// headerSpelling is the name PHP, WSGI and Rack would read k as, in canonical form.
func headerSpelling(k string) string {
	if strings.IndexByte(k, '_') < 0 {
		return http.CanonicalHeaderKey(k)
	}
	return http.CanonicalHeaderKey(strings.ReplaceAll(k, "_", "-"))
}

// dropOtherSpellings deletes every key that a backend would read as a removed header or a rename
// source, so that a client cannot send a removed header as X_Internal_Admin. Without underscores
// on either side only exact names can match (done by the caller), so the common case is one pass
// over the keys with no allocation. Only header sets have spellings: query names are exact.
func dropOtherSpellings[V any](s *opSet, m map[string][]V) {
	for k := range m {
		if !s.underscoreNames && strings.IndexByte(k, '_') < 0 {
			continue
		}
		norm := headerSpelling(k)
		for _, sp := range s.spellings {
			if norm == sp.norm && k != sp.keep {
				delete(m, k)
				break
			}
		}
	}
}

// isJSON reports whether a Content-Type names JSON: application/json or any +json type.
func isJSON(ct string) bool {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	if strings.EqualFold(ct, "application/json") {
		return true
	}
	return len(ct) > 5 && strings.EqualFold(ct[len(ct)-5:], "+json") && strings.Contains(ct, "/")
}

var errTrailingData = errors.New("data after the JSON value")

// apply returns the edited body, or ok=false when body is not one JSON value (the caller then
// sends the original bytes).
func (b *bodyEdits) apply(body []byte, e *env) (out []byte, ok bool) {
	data := bytes.TrimSpace(body)
	if b.edits() {
		v, err := decode(data)
		if err != nil {
			return nil, false
		}
		for _, p := range b.remove {
			removeField(v, p)
		}
		for _, rn := range b.rename {
			renameField(v, rn.path, rn.to)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		// Bodies are data, not HTML: escaping <, > and & would change strings the client sees.
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return nil, false
		}
		data = bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
	} else if !json.Valid(data) {
		return nil, false
	}
	if !b.wrap {
		return data, true
	}
	w := make([]byte, 0, len(data)+64)
	w = append(w, `{"data":`...)
	w = append(w, data...)
	w = append(w, `,"meta":{`...)
	for i, m := range b.meta {
		if i > 0 {
			w = append(w, ',')
		}
		w = appendJSONString(w, m.name)
		w = append(w, ':')
		v := m.value.render(e)
		if m.value.numeric {
			w = append(w, v...)
		} else {
			w = appendJSONString(w, v)
		}
	}
	w = append(w, "}}"...)
	return w, true
}

func appendJSONString(dst []byte, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // encoding a string cannot fail
	return append(dst, bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})...)
}

// decode reads exactly one JSON value, keeping numbers as written (no float64 rounding of large
// IDs).
func decode(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errTrailingData
	}
	return v, nil
}

// removeField deletes the field at path. Arrays are entered element by element, so a path
// applies to every object of a list.
func removeField(v any, path []string) {
	switch t := v.(type) {
	case map[string]any:
		if len(path) == 1 {
			delete(t, path[0])
			return
		}
		if c, ok := t[path[0]]; ok {
			removeField(c, path[1:])
		}
	case []any:
		for _, el := range t {
			removeField(el, path)
		}
	}
}

// renameField renames the field at path to `to` within the same object, replacing a field
// already called `to`.
func renameField(v any, path []string, to string) {
	switch t := v.(type) {
	case map[string]any:
		if len(path) == 1 {
			if val, ok := t[path[0]]; ok && path[0] != to {
				delete(t, path[0])
				t[to] = val
			}
			return
		}
		if c, ok := t[path[0]]; ok {
			renameField(c, path[1:], to)
		}
	case []any:
		for _, el := range t {
			renameField(el, path, to)
		}
	}
}
