package cache

import (
	"context"
	"errors"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portico-gw/portico/internal/httpfield"
)

// tee is the leader's ResponseWriter on a miss: it streams the upstream's answer to the
// leader's client while capturing up to max_body_bytes of it for the store. Its header map is
// its own, so headers that outer policies set on the client's writer (rate-limit counters,
// CORS for this origin) never end up in an entry served to someone else.
type tee struct {
	p          *Policy
	w          http.ResponseWriter
	client     *http.Request // the leader's request, for its conditional headers
	header     http.Header
	label      string // X-Cache-Status when the answer is storable: Miss or Refresh
	clientBody bool   // false for a HEAD client and for a 304 answer
	flight     *flight
	// cancel ends the upstream call's context, once nobody needs the rest of its body.
	cancel context.CancelCauseFunc

	wroteHeader bool
	cut         bool // the tee stopped the upstream call: nobody reads the rest of the body
	status      int
	storable    bool
	ttl         time.Duration
	stored      time.Time
	buf         []byte
}

func (t *tee) Header() http.Header { return t.header }

func (t *tee) WriteHeader(code int) {
	if t.wroteHeader {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		// Interim answers (103 Early Hints) go straight through. net/http sends a 1xx from the
		// header map and keeps it, so the map is put back: the hints' fields must not stay on
		// the final answer.
		h := t.w.Header()
		saved := h.Clone()
		copyHeader(h, t.header)
		t.w.WriteHeader(code)
		clear(h)
		maps.Copy(h, saved)
		return
	}
	t.wroteHeader = true
	t.status = code
	t.storable = t.decide(code)
	out := t.w.Header()
	if t.storable {
		out[headerStatus] = statusValues[t.label]
		t.p.countFetch(t.label)
	} else {
		out[headerStatus] = statusValues[statusBypass]
		t.p.metrics.bypass.Inc()
		t.notShared()
	}
	// Only an answer the cache could have served is answered as the cache would: a personal one
	// goes through whole, since the upstream never saw the conditional and its Set-Cookie and
	// other fields belong to this client (a 304 carries only the validators).
	if t.storable && code == http.StatusOK && notModified(t.client, t.header) {
		for _, k := range notModifiedHeaders {
			if v, ok := t.header[k]; ok {
				setHeader(out, k, v)
			}
		}
		t.clientBody = false
		t.w.WriteHeader(http.StatusNotModified)
		return
	}
	copyHeader(out, t.header)
	t.w.WriteHeader(code)
}

// errBodyNotNeeded is what Write returns, and the upstream call's context is cancelled with,
// once neither the client nor the store wants the rest of the body.
var errBodyNotNeeded = errors.New("cache: the rest of the upstream answer is not needed")

func (t *tee) Write(b []byte) (int, error) {
	if !t.wroteHeader {
		t.WriteHeader(http.StatusOK)
	}
	if t.storable {
		if int64(len(t.buf)+len(b)) > t.p.maxBody {
			// Too big to keep: the rest streams through and nothing is stored.
			t.storable, t.buf = false, nil
			t.notShared()
		} else {
			t.buf = append(t.buf, b...)
		}
	}
	if t.cut {
		return 0, errBodyNotNeeded
	}
	if !t.clientBody {
		return len(b), nil
	}
	return t.w.Write(b)
}

// notShared is called once the answer is known not storable: the waiting requests go to the
// upstream themselves, and when the client takes no body either (HEAD, or a 304 already sent)
// the upstream call stops. A HEAD miss is fetched as GET so that the entry serves both; without
// this every HEAD of a large or personal resource would download its whole body.
func (t *tee) notShared() {
	if t.flight != nil {
		t.flight.release(outcome{personal: true})
	}
	if !t.clientBody && t.cancel != nil {
		t.cut = true
		t.cancel(errBodyNotNeeded)
	}
}

// serve runs next with t as its writer. When the tee cut the upstream call, a proxy that finds
// its copy failing aborts with http.ErrAbortHandler, since for it the answer is truncated; for
// the client it is complete (a HEAD's headers, or a 304), so that abort ends here.
func (t *tee) serve(next http.Handler, up *http.Request) {
	defer func() {
		if !t.cut {
			return
		}
		if v := recover(); v != nil && v != http.ErrAbortHandler {
			panic(v)
		}
	}()
	next.ServeHTTP(t, up)
}

// Flush keeps streaming answers (SSE, chunked) flowing to the leader's client.
func (t *tee) Flush() {
	if !t.wroteHeader {
		t.WriteHeader(http.StatusOK)
	}
	if f, ok := t.w.(http.Flusher); ok && t.clientBody {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the client's writer.
func (t *tee) Unwrap() http.ResponseWriter { return t.w }

// finish completes an answer the handler never wrote anything for (an empty 200).
func (t *tee) finish() {
	if !t.wroteHeader {
		t.WriteHeader(http.StatusOK)
	}
}

// decide says whether the upstream's answer may be stored and for how long.
func (t *tee) decide(code int) bool {
	p, h := t.p, t.header
	if !p.status[code] || !p.contentTypeOK(h.Get("Content-Type")) || len(h["Set-Cookie"]) > 0 {
		return false
	}
	if cl := h.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n > p.maxBody {
			return false
		}
	}
	if !p.varyCovered(h) {
		return false
	}
	now := p.now()
	// seconds saturates, so an Age past any int (RFC 9111 §1.2.2) makes the answer stale
	// instead of being dropped as unreadable and served as just generated. A malformed Age
	// (negative, not a number) is ignored, as before.
	var upstreamAge time.Duration
	if a, ok := seconds(h.Get("Age")); ok {
		upstreamAge = time.Duration(a) * time.Second
	}
	t.stored = now.Add(-upstreamAge)
	t.ttl = p.ttl
	if p.respect {
		rc := parseResponseControl(h)
		if rc.noStore {
			return false
		}
		t.ttl = rc.lifetime(h, now, p.ttl) - upstreamAge
	}
	if t.ttl <= 0 {
		return false
	}
	t.buf = make([]byte, 0, min(p.maxBody, 4096))
	return true
}

// contentTypeOK matches a response media type, parameters ignored, against the allowed ones.
func (p *Policy) contentTypeOK(ct string) bool {
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	for _, want := range p.contentTypes {
		switch {
		case want == "*/*", want == mt:
			return true
		case strings.HasSuffix(want, "/*") && strings.HasPrefix(mt, want[:len(want)-1]):
			return true
		}
	}
	return false
}

// varyCovered reports whether every header the upstream varies on is part of the key; Vary: *
// never is.
func (p *Policy) varyCovered(h http.Header) bool {
	ok := true
	for _, line := range h["Vary"] {
		eachDirective(line, func(name, _ string) {
			if name == "*" || !p.varySet[http.CanonicalHeaderKey(name)] {
				ok = false
			}
		})
	}
	return ok
}

func (p *Policy) countFetch(label string) {
	if label == statusRefresh {
		p.metrics.refresh.Inc()
	} else {
		p.metrics.miss.Inc()
	}
}

// copyHeader sets src's fields on dst, the client's writer, merging Vary (see setHeader).
func copyHeader(dst, src http.Header) {
	for k, v := range src {
		setHeader(dst, k, v)
	}
}

// setHeader sets a field from the upstream's answer on dst, the client's writer. Vary is merged,
// not replaced: an outer policy may have set its own (cors sets Vary: Origin before the chain
// runs), and the answer varies on both, as the forwarder appends them.
func setHeader(dst http.Header, k string, v []string) {
	if k == "Vary" {
		dst[k] = mergeVary(dst[k], v)
		return
	}
	dst[k] = v
}

// mergeVary returns the Vary lines of outer followed by the field names of inner that outer does
// not name already (case-insensitively, as field names compare). Neither slice is written to:
// inner may be a stored entry's, shared by every hit.
func mergeVary(outer, inner []string) []string {
	if len(outer) == 0 {
		return inner
	}
	var add []string
	for _, line := range inner {
		for name := range strings.SplitSeq(line, ",") {
			name = strings.TrimSpace(name)
			if name == "" || httpfield.ListContains(outer, name) || slices.ContainsFunc(add, func(a string) bool { return strings.EqualFold(a, name) }) {
				continue
			}
			add = append(add, name)
		}
	}
	if len(add) == 0 {
		return outer
	}
	merged := make([]string, len(outer), len(outer)+1)
	copy(merged, outer)
	return append(merged, strings.Join(add, ", "))
}
