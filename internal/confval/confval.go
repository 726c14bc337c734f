// Package confval holds the value types and the problem list shared by every package that owns a
// piece of Portico's configuration. It imports nothing of Portico, so any package may use it.
package confval

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Duration is a time.Duration written in config as a Go duration string ("250ms", "5s", "1m").
type Duration time.Duration

// UnmarshalText parses a Go duration string; a bare number is rejected because its unit would be a
// guess.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("invalid duration %q (use a number with a unit: 250ms, 5s, 1m)", string(b))
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration back in Go notation, for the redacted /config view.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Std returns the value as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Or returns d, or def when d is zero (unset).
func (d Duration) Or(def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return time.Duration(d)
}

// ByteSize is a size in bytes written as a plain number or with a unit: "512", "64KiB", "1MiB",
// "10MB". Binary (KiB, MiB, GiB) and decimal (KB, MB, GB) units are both accepted.
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1},
}

// UnmarshalText parses a size with an optional unit.
func (s *ByteSize) UnmarshalText(b []byte) error {
	str := strings.TrimSpace(string(b))
	mult := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(str, u.suffix) {
			str, mult = strings.TrimSpace(strings.TrimSuffix(str, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(str, 10, 64)
	if errors.Is(err, strconv.ErrRange) && n > 0 {
		return fmt.Errorf("size %q is too large (at most %d bytes)", string(b), int64(math.MaxInt64))
	}
	if err != nil || n < 0 {
		return fmt.Errorf("invalid size %q (use a whole number of bytes or a unit: 64KiB, 1MiB, 10MB)", string(b))
	}
	// n*mult would wrap silently: 16EiB written as 17179869184GiB would become 0, "unset".
	if n > math.MaxInt64/mult {
		return fmt.Errorf("size %q is too large (at most %d bytes)", string(b), int64(math.MaxInt64))
	}
	*s = ByteSize(n * mult)
	return nil
}

// MarshalText writes the size as a plain number of bytes.
func (s ByteSize) MarshalText() ([]byte, error) { return []byte(strconv.FormatInt(int64(s), 10)), nil }

// Or returns s, or def when s is zero (unset).
func (s ByteSize) Or(def int64) int64 {
	if s == 0 {
		return def
	}
	return int64(s)
}

// Problem is one thing wrong with a config, at a path in the document such as
// "routes[2].upstream". The loader turns the path into a file and line.
type Problem struct {
	Path    string
	Message string
}

// Problems collects every problem in a config so that a user sees them all at once, not the
// first only.
type Problems []Problem

// Addf records a problem at path.
func (p *Problems) Addf(path, format string, args ...any) {
	*p = append(*p, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

// Join builds a child path: Join("routes[2]", "match") is "routes[2].match".
func Join(parent, child string) string {
	if parent == "" {
		return child
	}
	return parent + "." + child
}

// Index builds an element path: Index("routes", 2) is "routes[2]".
func Index(parent string, i int) string { return parent + "[" + strconv.Itoa(i) + "]" }

// Key builds a map-entry path: Key("upstreams", "users") is "upstreams.users".
func Key(parent, key string) string { return Join(parent, key) }

// IsToken reports whether s is an HTTP token (RFC 9110 section 5.6.2): the syntax of methods,
// header names and auth schemes. A table lookup per byte: the upstream client checks every
// outbound header name with it.
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenByte[s[i]] {
			return false
		}
	}
	return true
}

// IsTokenBytes is IsToken for a byte slice, without converting it.
func IsTokenBytes(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenByte[c] {
			return false
		}
	}
	return true
}

var tokenByte = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		t[c] = 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
	}
	return t
}()

// IsQuotable reports whether s can go inside a quoted-string parameter (a realm in
// WWW-Authenticate) without escaping: no control characters, quotes or backslashes.
func IsQuotable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// RequireFile records a problem at path unless file exists and is a regular file of at most
// MaxFileBytes (see ReadFile), and reports whether it is.
func (p *Problems) RequireFile(path, file string) bool {
	st, err := os.Stat(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		p.Addf(path, "file %q does not exist", file)
		return false
	case err != nil:
		p.Addf(path, "cannot read %q: %v", file, err)
		return false
	}
	if err := readable(file, st); err != nil {
		p.Addf(path, "%v", err)
		return false
	}
	return true
}

// Err returns nil when there are no problems, else one error naming what (a policy, say) and
// listing every problem, so a constructor that re-validates its config reports them all.
func (p Problems) Err(what string) error {
	if len(p) == 0 {
		return nil
	}
	msgs := make([]string, len(p))
	for i, pr := range p {
		msgs[i] = pr.Message
		if pr.Path != "" {
			msgs[i] = pr.Path + ": " + pr.Message
		}
	}
	return fmt.Errorf("%s: %s", what, strings.Join(msgs, "; "))
}

// NameProblem says what is wrong with the name of a route, upstream, BFF, policy or consumer, or
// "": names label metrics and log lines and are how the file refers to the thing, so a name must
// have something other than spaces in it, and be UTF-8 without control characters, which would
// break a log line or a metrics series apart. (The YAML decoder already reads bytes that are not
// UTF-8 as U+FFFD; a name built otherwise may not be.)
func NameProblem(name string) string {
	switch {
	case strings.TrimSpace(name) == "":
		return "name must not be empty"
	case !utf8.ValidString(name):
		return fmt.Sprintf("name %q is not valid UTF-8", name)
	case strings.ContainsFunc(name, unicode.IsControl):
		return fmt.Sprintf("name %q has a control character", name)
	}
	return ""
}
