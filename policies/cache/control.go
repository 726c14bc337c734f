package cache

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// requestControl is what a client's Cache-Control asks of the cache.
type requestControl struct {
	noCache      bool // fetch from the upstream and store again (Refresh)
	noStore      bool // neither serve from nor store into the cache (Bypass)
	onlyIfCached bool // answer from the cache or 504
	maxAge       int  // oldest acceptable entry in seconds; -1 when unset
}

func parseRequestControl(h http.Header) requestControl {
	rc := requestControl{maxAge: -1}
	lines := h["Cache-Control"]
	if len(lines) == 0 {
		// HTTP/1.0 clients say Pragma: no-cache (RFC 9111 §5.4).
		for _, v := range h["Pragma"] {
			if hasToken(v, "no-cache") {
				rc.noCache = true
			}
		}
		return rc
	}
	for _, line := range lines {
		eachDirective(line, func(name, arg string) {
			switch {
			case strings.EqualFold(name, "no-cache"):
				rc.noCache = true
			case strings.EqualFold(name, "no-store"):
				rc.noStore = true
			case strings.EqualFold(name, "only-if-cached"):
				rc.onlyIfCached = true
			case strings.EqualFold(name, "max-age"):
				if n, ok := seconds(arg); ok {
					rc.maxAge = n
				}
			}
		})
	}
	return rc
}

// responseControl is what an upstream's Cache-Control allows.
type responseControl struct {
	noStore  bool // no-store, private or no-cache: never stored
	maxAge   int  // -1 when unset
	sMaxAge  int  // -1 when unset
	hasMaxes bool
	// badMaxAge and badSMaxAge mark a directive whose argument is not delta-seconds
	// (max-age=-1, max-age=soon): invalid freshness information, which RFC 9111 §4.2.1 has
	// caches treat as stale rather than fall back to a default lifetime.
	badMaxAge, badSMaxAge bool
}

func parseResponseControl(h http.Header) responseControl {
	rc := responseControl{maxAge: -1, sMaxAge: -1}
	for _, line := range h["Cache-Control"] {
		eachDirective(line, func(name, arg string) {
			switch {
			// A qualified private="Set-Cookie" or no-cache="X" is treated like the bare
			// directive: a shared cache that cannot strip exactly those fields must not store.
			case strings.EqualFold(name, "no-store"), strings.EqualFold(name, "private"),
				strings.EqualFold(name, "no-cache"):
				rc.noStore = true
			case strings.EqualFold(name, "max-age"):
				if n, ok := seconds(arg); ok {
					rc.maxAge, rc.hasMaxes = n, true
				} else {
					rc.badMaxAge = true
				}
			case strings.EqualFold(name, "s-maxage"):
				if n, ok := seconds(arg); ok {
					rc.sMaxAge, rc.hasMaxes = n, true
				} else {
					rc.badSMaxAge = true
				}
			}
		})
	}
	return rc
}

// lifetime is how long a response stays fresh from when it was generated: s-maxage, else
// max-age, else Expires - Date, else def (RFC 9111 §4.2.1, shared cache). An invalid s-maxage,
// or an invalid max-age without a valid s-maxage, makes the answer stale at once (0).
func (rc responseControl) lifetime(h http.Header, now time.Time, def time.Duration) time.Duration {
	switch {
	case rc.badSMaxAge:
		return 0
	case rc.sMaxAge >= 0:
		return time.Duration(rc.sMaxAge) * time.Second
	case rc.badMaxAge:
		return 0
	case rc.maxAge >= 0:
		return time.Duration(rc.maxAge) * time.Second
	}
	if exp := h.Get("Expires"); exp != "" {
		t, err := http.ParseTime(exp)
		if err != nil {
			return 0 // an invalid Expires means "already expired" (RFC 9111 §5.3)
		}
		base := now
		if d, err := http.ParseTime(h.Get("Date")); err == nil {
			base = d
		}
		return t.Sub(base)
	}
	return def
}

// eachDirective calls fn for every directive of a Cache-Control line, with its argument
// unquoted. It does not allocate.
func eachDirective(line string, fn func(name, arg string)) {
	for line != "" {
		var d string
		d, line, _ = strings.Cut(line, ",")
		d = strings.TrimSpace(d)
		if d == "" {
			continue
		}
		name, arg, _ := strings.Cut(d, "=")
		arg = strings.Trim(strings.TrimSpace(arg), `"`)
		fn(strings.TrimSpace(name), arg)
	}
}

// maxDeltaSeconds is what a delta-seconds value too large to represent counts as
// (RFC 9111 §1.2.2), about 68 years, so max-age stays fresh and Age makes stale. The RFC says
// 2^31; one second less keeps it an int on 32-bit builds.
const maxDeltaSeconds = math.MaxInt32

// seconds parses delta-seconds (RFC 9111 §1.2.2): one or more digits, nothing else, so "-1",
// "+5" and "" are refused. A value too large for an int saturates at maxDeltaSeconds instead of
// failing: an overflowing Age must make an answer stale, not be ignored as if it were 0.
func seconds(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > maxDeltaSeconds {
		return maxDeltaSeconds, true // only a range error gets here: every byte is a digit
	}
	return n, true
}

func hasToken(line, tok string) bool {
	found := false
	eachDirective(line, func(name, _ string) {
		if strings.EqualFold(name, tok) {
			found = true
		}
	})
	return found
}

// etagMatches reports whether an If-None-Match value matches etag by the weak comparison
// (RFC 9110 §13.1.2): W/ prefixes are ignored.
func etagMatches(ifNoneMatch, etag string) bool {
	if etag == "" {
		return false
	}
	etag = strings.TrimPrefix(etag, "W/")
	for ifNoneMatch != "" {
		var t string
		t, ifNoneMatch, _ = strings.Cut(ifNoneMatch, ",")
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// notModified evaluates the client's conditional headers against a stored response: If-None-Match
// first and, only without it, If-Modified-Since (RFC 9110 §13.2.2).
func notModified(r *http.Request, h http.Header) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		return etagMatches(inm, h.Get("Etag"))
	}
	ims := r.Header.Get("If-Modified-Since")
	if ims == "" {
		return false
	}
	lm := h.Get("Last-Modified")
	if lm == "" {
		return false
	}
	imsT, err1 := http.ParseTime(ims)
	lmT, err2 := http.ParseTime(lm)
	return err1 == nil && err2 == nil && !lmT.After(imsT)
}
