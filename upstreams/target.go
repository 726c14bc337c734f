package upstreams

import (
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// target is one backend instance and its live state. The state is atomics only: it is read on
// every pick and written by requests, probes and timers concurrently.
type target struct {
	url    string // scheme://host[:port], as the metrics label and in Status
	scheme string
	host   string
	weight int
	// bit marks the target in a call's set of tried targets. Upstreams with more than 64 targets
	// share bits, which only makes a retry's choice of "another target" less strict.
	bit uint64

	// healthy is the active checks' verdict; always true without active checks.
	healthy atomic.Bool
	// ejectedUntil is when passive ejection ends, as monoAt reads it; 0 when not ejected.
	ejectedUntil atomic.Int64
	// fails counts consecutive failed calls for passive health.
	fails atomic.Int32
	// inRotation is healthy, not ejected and weight > 0, as of the last rebuild.
	inRotation atomic.Bool
	// active counts attempts in flight, from sending until the response body is closed.
	active atomic.Int64

	m targetMetrics
}

// parseTarget checks a target URL: http or https, a host, nothing else.
func parseTarget(raw string) (scheme, host string, err error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", "", fmt.Errorf("invalid target url %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", "", fmt.Errorf("invalid target url %q: scheme must be http or https", raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", "", fmt.Errorf("invalid target url %q: missing host", raw)
	}
	if u.User != nil {
		return "", "", fmt.Errorf("invalid target url for host %q: a user or password is not allowed", u.Host)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("invalid target url %q: only scheme, host and port are allowed", raw)
	}
	if p := u.Port(); p == "" && strings.HasSuffix(u.Host, ":") {
		return "", "", fmt.Errorf("invalid target url %q: empty port", raw)
	}
	return u.Scheme, u.Host, nil
}

// monoBase anchors the instants in ejectedUntil. They are read on the monotonic clock: on the wall
// clock, one stepped back (NTP at boot, a migrated VM) would keep an ejected target out for the
// size of the step, the re-admitting timer (monotonic) finding it still "ejected".
var monoBase = time.Now()

// monoAt is t as nanoseconds since monoBase on the monotonic clock (t from time.Now). It is
// positive for any t taken after package initialisation.
func monoAt(t time.Time) int64 { return int64(t.Sub(monoBase)) }
