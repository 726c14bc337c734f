package cache

import (
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
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

	wroteHeader bool
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
		// Interim answers (103 Early Hints) go straight through.
		copyHeader(t.w.Header(), t.header)
		t.w.WriteHeader(code)
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
	}
	if code == http.StatusOK && notModified(t.client, t.header) {
		for _, k := range notModifiedHeaders {
			if v, ok := t.header[k]; ok {
				out[k] = v
			}
		}
		t.clientBody = false
		t.w.WriteHeader(http.StatusNotModified)
		return
	}
	copyHeader(out, t.header)
	t.w.WriteHeader(code)
}

func (t *tee) Write(b []byte) (int, error) {
	if !t.wroteHeader {
		t.WriteHeader(http.StatusOK)
	}
	if t.storable {
		if int64(len(t.buf)+len(b)) > t.p.maxBody {
			// Too big to keep: the rest streams through and nothing is stored.
			t.storable, t.buf = false, nil
		} else {
			t.buf = append(t.buf, b...)
		}
	}
	if !t.clientBody {
		return len(b), nil
	}
	return t.w.Write(b)
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
	var upstreamAge time.Duration
	if a, err := strconv.Atoi(h.Get("Age")); err == nil && a > 0 {
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

func copyHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = v
	}
}
