package config

import (
	"encoding"
	"fmt"
	"net/url"
	"reflect"
	"strings"
)

// RedactedText replaces every hidden value in Redacted's output.
const RedactedText = "[redacted]"

// sensitiveWords mark a field or header name whose value is hidden in the /config view.
var sensitiveWords = []string{"key", "secret", "password", "token"}

// sensitiveHeaderWords also mark header names (in header maps) and URL query parameters whose
// values are hidden: "auth" covers Authorization and the X-Upstream-Auth kind of custom field;
// "passwd", "pwd", "session" and "bearer" the other ways such fields are commonly named.
var sensitiveHeaderWords = append([]string{"auth", "cookie", "sig", "credential", "passwd", "pwd", "session", "bearer"}, sensitiveWords...)

// notSensitive are field names that contain a sensitive word but hold no secret: the key-auth
// policy's settings, the header names it reads keys from, the path of a key file.
var notSensitive = map[string]bool{"key-auth": true, "key_names": true, "keys_file": true}

var textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()

// Redacted returns a copy of f for the admin /config view, made of maps keyed by YAML names,
// lists and scalars, ready for encoding/json. Unset (zero) fields are left out. It shows
// RedactedText instead of:
//   - any value that took text from ${ENV} interpolation (that is what interpolation is for);
//   - any field whose YAML name contains key, secret, password or token, and anything under it;
//   - header values whose name contains one of those words, authorization or cookie;
//   - the password of a URL with user info, and URL query values named like a credential
//     (a JWKS URL's ?access_token=).
func Redacted(f *File) any {
	r := redactor{interpolated: f.interpolated}
	out := r.value(reflect.ValueOf(f).Elem(), "", false, true)
	if out == nil {
		return map[string]any{}
	}
	return out
}

type redactor struct {
	interpolated map[string]bool
}

// value renders v at path; sensitive hides scalars, keep renders zero values instead of leaving
// them out (list elements and map values keep their place). A nil result means "leave out".
func (r redactor) value(v reflect.Value, path string, sensitive, keep bool) any {
	if (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && v.IsNil() {
		return nil
	}
	if !keep && v.IsZero() {
		return nil
	}
	if v.Type().Implements(textMarshalerType) {
		if sensitive {
			return RedactedText
		}
		b, err := v.Interface().(encoding.TextMarshaler).MarshalText()
		if err != nil {
			return fmt.Sprintf("<%v>", err)
		}
		return string(b)
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		return r.value(v.Elem(), path, sensitive, keep)
	case reflect.Struct:
		m := map[string]any{}
		for _, f := range fieldsOf(v.Type()).byName {
			hide := sensitive || containsAny(f.name, sensitiveWords) && !notSensitive[f.name]
			if c := r.value(v.FieldByIndex(f.index), keyPath(path, f.name), hide, false); c != nil {
				m[f.name] = c
			}
		}
		if len(m) == 0 && !keep {
			return nil
		}
		return m
	case reflect.Slice, reflect.Array:
		l := make([]any, v.Len())
		for i := range v.Len() {
			l[i] = r.value(v.Index(i), indexPath(path, i), sensitive, true)
		}
		return l
	case reflect.Map:
		m := map[string]any{}
		scalar := v.Type().Elem().Kind() == reflect.String
		iter := v.MapRange()
		for iter.Next() {
			k := fmt.Sprint(iter.Key().Interface())
			// Only scalar maps are headers; an upstream named "token-service" is not a secret.
			hide := sensitive || scalar && containsAny(k, sensitiveHeaderWords)
			m[k] = r.value(iter.Value(), keyPath(path, k), hide, true)
		}
		return m
	case reflect.String:
		s := v.String()
		if s != "" && (sensitive || r.interpolated[path]) {
			return RedactedText
		}
		return redactURL(s)
	case reflect.Bool:
		return v.Interface() // a yes or no is no secret (hide_credentials was shown redacted)
	default:
		if sensitive {
			return RedactedText
		}
		return v.Interface()
	}
}

func containsAny(name string, words []string) bool {
	name = strings.ToLower(name)
	for _, w := range words {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// redactURL hides the password in "scheme://user:pass@host" and the values of query parameters
// named like a credential, and leaves other text alone.
func redactURL(s string) string {
	if !strings.Contains(s, "://") || !strings.ContainsAny(s, "@?") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	// url would escape the brackets of the marker; put it in after formatting.
	const placeholder = "PORTICOREDACTED"
	changed := false
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), placeholder)
			changed = true
		}
	}
	if u.RawQuery != "" {
		pairs := strings.Split(u.RawQuery, "&")
		for i, pair := range pairs {
			k, _, hasValue := strings.Cut(pair, "=")
			if name, err := url.QueryUnescape(k); hasValue && (err != nil || containsAny(name, sensitiveHeaderWords)) {
				pairs[i] = k + "=" + placeholder
				changed = true
			}
		}
		u.RawQuery = strings.Join(pairs, "&")
	}
	if !changed {
		return s
	}
	return strings.ReplaceAll(u.String(), placeholder, RedactedText)
}
