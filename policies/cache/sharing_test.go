package cache

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/policies"
)

// TestSchemeIsInTheKey: the forwarder tells the upstream the scheme (X-Forwarded-Proto and
// Forwarded proto= come from in.TLS), so an http→https redirect (301, cacheable by default)
// fetched over the plain listener must not be replayed to clients on the TLS listener.
func TestSchemeIsInTheKey(t *testing.T) {
	p := newPolicy(t, Config{}, policies.Deps{Logger: quietLogger})
	// What a typical backend does with the X-Forwarded-Proto the forwarder sets from in.TLS.
	h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			w.Header().Set("Location", "https://api.example.com"+r.URL.Path)
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusMovedPermanently)
			io.WriteString(w, "use https")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	serve := func(tlsOn bool) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "http://api.example.com/catalog", nil)
		if tlsOn {
			req.TLS = &tls.ConnectionState{HandshakeComplete: true}
		}
		info := &reqctx.Info{ID: "r", Route: "catalog"}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req.WithContext(reqctx.With(req.Context(), info)))
		return rec
	}
	if a := serve(false); a.Code != 301 {
		t.Fatalf("plain request: %d", a.Code)
	}
	b := serve(true)
	if b.Code != 200 {
		t.Fatalf("https client got %d %s (X-Cache-Status %s, Location %s): the plain listener's redirect was "+
			"replayed to TLS clients, a redirect loop", b.Code, b.Body.String(), b.Header().Get(headerStatus), b.Header().Get("Location"))
	}
}

// TestForwardedHostIsInTheKey: behind a trusted proxy the edge keeps X-Forwarded-Host and the
// forwarder passes it upstream unchanged, where frameworks build absolute URLs from it. The key
// holds only r.Host, so one request can store links to an attacker's host for everyone.
func TestForwardedHostIsInTheKey(t *testing.T) {
	p := newPolicy(t, Config{}, policies.Deps{Logger: quietLogger})
	h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Header.Get("X-Forwarded-Host")
		if host == "" {
			host = r.Host
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"next":"https://`+host+`/page/2"}`)
	}))
	serve := func(xfh string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "http://api.example.com/list", nil)
		if xfh != "" {
			req.Header.Set("X-Forwarded-Host", xfh)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req.WithContext(reqctx.With(req.Context(), &reqctx.Info{ID: "r", Route: "list"})))
		return rec
	}
	serve("evil.example")
	if b := serve(""); b.Body.String() != `{"next":"https://api.example.com/page/2"}` {
		t.Fatalf("victim got %s (X-Cache-Status %s): poisoned through unkeyed X-Forwarded-Host", b.Body.String(), b.Header().Get(headerStatus))
	}
}

// TestAnonymousFlagIsInTheKey: the upstream sees X-Anonymous-Consumer: true for the anonymous
// fallback consumer, but the key leaves the flag out, so when the fallback consumer is also a
// real consumer (CheckAnonymous only requires it to be declared) an authenticated answer is
// replayed to anonymous clients.
func TestAnonymousFlagIsInTheKey(t *testing.T) {
	p := newPolicy(t, Config{}, policies.Deps{Logger: quietLogger})
	h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := http.Header{}
		reqctx.SetUpstreamHeaders(r.Context(), h) // what the upstream receives
		w.Header().Set("Content-Type", "application/json")
		if h.Get("X-Anonymous-Consumer") == "true" {
			io.WriteString(w, `{"plan":"public"}`)
			return
		}
		io.WriteString(w, `{"plan":"members","secret":"s3"}`)
	}))
	serve := func(anon bool) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "http://api.example.com/plans", nil)
		info := &reqctx.Info{ID: "r", Route: "plans",
			Identity: &reqctx.Identity{Consumer: "web-app", Groups: []string{"first-party"}, Anonymous: anon}}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req.WithContext(reqctx.With(req.Context(), info)))
		return rec
	}
	serve(false) // authenticated with web-app's key (key-auth, no Authorization header)
	if b := serve(true); b.Body.String() != `{"plan":"public"}` {
		t.Fatalf("anonymous client got %s (X-Cache-Status %s)", b.Body.String(), b.Header().Get(headerStatus))
	}
}

// TestFollowersLeaveOnceTheAnswerCannotBeShared: an answer that cannot be shared (an event stream, not a
// cacheable content type) is known at its header; the waiting clients should go to the upstream
// then, not wait for the leader's whole stream to end.
func TestFollowersLeaveOnceTheAnswerCannotBeShared(t *testing.T) {
	// The first client's stream stays open until the test ends, so the second client's headers
	// can only arrive while it is open if it was not held behind it: no time bound to exceed
	// on a loaded machine (the old one, 750ms, was all that told "released" from "held").
	release := make(chan struct{})
	defer close(release) // before the servers' Cleanups, which wait for their handlers
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		io.WriteString(w, "data: tick\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	p := newPolicy(t, Config{}, policies.Deps{Logger: quietLogger})
	g := newGateway(t, p, be)

	go func() {
		resp, err := g.Client().Get(g.URL + "/events")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	waitFor(t, func() bool { return be.calls.Load() == 1 })
	getsHeadersWhileOpen(t, g.Client(), g.URL+"/events", "the first client's event stream")
}

// TestConditionalOnUnstoredAnswerKeepsSetCookie: an answer that is not stored (Set-Cookie) is still turned
// into a 304 for a client whose If-None-Match matches; the 304 keeps only the validator headers,
// so the cookie the upstream set (it never saw the conditional) is lost.
func TestConditionalOnUnstoredAnswerKeepsSetCookie(t *testing.T) {
	be := newBackend(t, jsonHandler(func(h http.Header) {
		h.Set("ETag", `"v1"`)
		h.Set("Set-Cookie", "session=rotated; Path=/; HttpOnly")
	}))
	p := newPolicy(t, Config{}, policies.Deps{Logger: quietLogger})
	g := newGateway(t, p, be)
	a := g.do(t, "GET", "/me", "If-None-Match", `"v1"`)
	if a.header.Get("Set-Cookie") == "" {
		t.Fatalf("got %d %s with no Set-Cookie: the upstream's cookie was dropped", a.status, a.cache())
	}
}

// TestOuterVaryIsMerged: cors (policies/cors/cors.go:241) puts Vary: Origin on the writer
// before the inner chain runs, and the forwarder appends the backend's fields to it. Through the
// cache, the upstream's Vary replaces it (tee.WriteHeader's copyHeader on a miss, serveEntry's
// h[k] = v on a hit), so browsers and CDNs downstream are told the answer, whose
// Access-Control-Allow-Origin names one origin, does not vary by Origin.
func TestOuterVaryIsMerged(t *testing.T) {
	be := newBackend(t, jsonHandler(func(h http.Header) { h.Set("Vary", "Accept-Language") }))
	p := newPolicy(t, Config{VaryHeaders: []string{"Accept-Language"}}, policies.Deps{Logger: quietLogger})
	inner := p.Wrap(proxyTo(t, be))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Vary"] = []string{"Origin"} // what cors does before calling next
		inner.ServeHTTP(w, r.WithContext(reqctx.With(r.Context(), &reqctx.Info{ID: "r", Route: "v"})))
	})
	for _, want := range []string{"Miss", "Hit"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/v", nil)
		req.Header.Set("Accept-Language", "en")
		h.ServeHTTP(rec, req)
		if rec.Header().Get(headerStatus) != want {
			t.Fatalf("X-Cache-Status %s, want %s", rec.Header().Get(headerStatus), want)
		}
		vary := strings.Join(rec.Header().Values("Vary"), ", ")
		if !strings.Contains(vary, "Origin") || !strings.Contains(vary, "Accept-Language") {
			t.Errorf("%s: Vary = %q, want both Origin and Accept-Language", want, vary)
		}
	}
}

// TestHeadStopsDownloadingUnstorableBodies: a HEAD miss is sent upstream as GET so the
// entry can serve both; when the answer turns out not storable (here: larger than max_body_bytes,
// known from Content-Length at the header) the HEAD client gets only headers, yet the gateway
// still pulls the whole body from the upstream. Every HEAD of a large resource becomes a full
// download: a cheap request for the client, an expensive one for the backend and the link.
func TestHeadStopsDownloadingUnstorableBodies(t *testing.T) {
	const size = 64 << 20
	var sent atomic.Int64
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(size))
		if r.Method == http.MethodHead {
			return
		}
		chunk := make([]byte, 32<<10)
		for n := 0; n < size; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			sent.Add(int64(len(chunk)))
		}
	})
	p := newPolicy(t, Config{}, policies.Deps{Logger: quietLogger})
	g := newGateway(t, p, be)
	a := g.do(t, "HEAD", "/big.json")
	if a.status != 200 || a.cache() != "Bypass" {
		t.Fatalf("HEAD: %d %s", a.status, a.cache())
	}
	if got := sent.Load(); got > maxInFlight {
		t.Fatalf("one HEAD made the upstream send %d MiB of body nobody reads", got>>20)
	}
}

// TestForwardingFieldsInTheKey: every host and scheme the forwarder tells the upstream
// (routes/proxy.go: X-Forwarded-Host/-Proto/-Port a trusted proxy sent, Forwarded host= and
// proto=, and this hop's scheme from r.TLS) is part of the key; client addresses are not, or
// nothing would be shared behind a proxy.
func TestForwardingFieldsInTheKey(t *testing.T) {
	p := newPolicy(t, Config{}, policies.Deps{Logger: quietLogger})
	keyOf := func(tlsOn bool, hdr ...string) string {
		req := httptest.NewRequest("GET", "http://api.example.com/list", nil)
		if tlsOn {
			req.TLS = &tls.ConnectionState{}
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Add(hdr[i], hdr[i+1])
		}
		return p.key(req, &reqctx.Info{Route: "list"}, "GET", nil)
	}
	base := keyOf(false)
	tests := []struct {
		name  string
		tls   bool
		hdr   []string
		apart bool // whether the key must differ from base
	}{
		{name: "TLS listener", tls: true, apart: true},
		{name: "X-Forwarded-Proto", hdr: []string{"X-Forwarded-Proto", "https"}, apart: true},
		{name: "X-Forwarded-Host", hdr: []string{"X-Forwarded-Host", "evil.example"}, apart: true},
		{name: "X-Forwarded-Port", hdr: []string{"X-Forwarded-Port", "8443"}, apart: true},
		{name: "Forwarded host", hdr: []string{"Forwarded", "for=192.0.2.1;host=evil.example"}, apart: true},
		{name: "Forwarded quoted host", hdr: []string{"Forwarded", `for=192.0.2.1;host="evil.example:8443"`}, apart: true},
		{name: "Forwarded proto", hdr: []string{"Forwarded", "for=192.0.2.1;proto=https"}, apart: true},
		{name: "Forwarded PROTO (names are case-insensitive)", hdr: []string{"Forwarded", "Proto=https"}, apart: true},
		{name: "X-Forwarded-For", hdr: []string{"X-Forwarded-For", "192.0.2.1"}},
		{name: "X-Real-Ip", hdr: []string{"X-Real-Ip", "192.0.2.1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := keyOf(tc.tls, tc.hdr...) != base; got != tc.apart {
				t.Fatalf("key differs from a plain request: %v, want %v", got, tc.apart)
			}
		})
	}
	// Two clients behind the same proxy share entries.
	if keyOf(false, "Forwarded", `for=192.0.2.1;proto=https`) != keyOf(false, "Forwarded", `for="[2001:db8::1]";proto=https`) {
		t.Fatal("Forwarded for= is in the key: nothing is shared behind a proxy")
	}
	// Which element a host= is in, and which parameter carries a value, are told apart.
	a := keyOf(false, "Forwarded", "host=a.example, proto=https")
	b := keyOf(false, "Forwarded", "host=a.example;proto=https")
	c := keyOf(false, "Forwarded", "proto=a.example;host=https")
	if a == b || b == c || a == c {
		t.Fatalf("Forwarded projections collide: %s %s %s", a, b, c)
	}
}

// TestResolverKeyHoldsAnonymous: the resolver cache's key shares appendIdentity, and the
// upstream client forwards X-Anonymous-Consumer the same way.
func TestResolverKeyHoldsAnonymous(t *testing.T) {
	id := reqctx.Identity{Consumer: "web-app", Groups: []string{"first-party"}}
	anon := id
	anon.Anonymous = true
	if backendKey("users", "/users/42", &reqctx.Info{Identity: &id}) == backendKey("users", "/users/42", &reqctx.Info{Identity: &anon}) {
		t.Fatal("an anonymous caller shares the resolver key of the consumer it falls back to")
	}
}

// TestFollowersLeaveWhenTheBodyOverflows: a streamed answer found too big for max_body_bytes
// only while it is copied releases the waiting clients at that byte, not at its end.
func TestFollowersLeaveWhenTheBodyOverflows(t *testing.T) {
	// The answer's first chunk already overflows 512 bytes; the rest never comes until the test
	// ends, so the second client's headers can only arrive if it was released at the overflow,
	// not at the end: no time bound to exceed on a loaded machine.
	release := make(chan struct{})
	defer close(release) // before the servers' Cleanups, which wait for their handlers
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, strings.Repeat("x", 1024))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	p := newPolicy(t, Config{MaxBodyBytes: 512}, policies.Deps{Logger: quietLogger})
	g := newGateway(t, p, be)
	go func() {
		resp, err := g.Client().Get(g.URL + "/big")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	waitFor(t, func() bool { return be.calls.Load() == 1 })
	getsHeadersWhileOpen(t, g.Client(), g.URL+"/big", "the oversize answer")
}

// TestHeadStopsDownloadingOnOverflow: a HEAD miss whose streamed (chunked) GET answer overflows
// max_body_bytes stops the download there, and its client still gets a clean answer.
func TestHeadStopsDownloadingOnOverflow(t *testing.T) {
	const size = 64 << 20
	var sent atomic.Int64
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		chunk := make([]byte, 32<<10)
		for n := 0; n < size; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush() // no Content-Length: found too big only while copying
			sent.Add(int64(len(chunk)))
		}
	})
	p := newPolicy(t, Config{}, policies.Deps{Logger: quietLogger})
	g := newGateway(t, p, be)
	a := g.do(t, "HEAD", "/stream.json")
	if a.status != 200 || a.cache() != "Miss" {
		t.Fatalf("HEAD: %d %s", a.status, a.cache())
	}
	if got := sent.Load(); got > maxInFlight {
		t.Fatalf("one HEAD made the upstream send %d MiB of body nobody reads", got>>20)
	}
}

// TestConditionalOnStoredAnswerIsAnswered: an answer the cache stores is still turned into a
// 304 for the fetching client whose validators match, as a hit would be.
func TestConditionalOnStoredAnswerIsAnswered(t *testing.T) {
	be := newBackend(t, jsonHandler(func(h http.Header) { h.Set("ETag", `"v1"`) }))
	p := newPolicy(t, Config{}, policies.Deps{Logger: quietLogger})
	g := newGateway(t, p, be)
	for _, want := range []string{"Miss", "Hit"} {
		if a := g.do(t, "GET", "/c", "If-None-Match", `"v1"`); a.status != 304 || a.cache() != want {
			t.Fatalf("got %d %s, want 304 %s", a.status, a.cache(), want)
		}
	}
}

// TestVaryIsMergedWithoutDuplicates: field names both sides name appear once, whatever their
// case, and the stored entry's Vary is not written into by the merge.
func TestVaryIsMergedWithoutDuplicates(t *testing.T) {
	tests := []struct {
		name         string
		outer, inner []string
		want         []string
	}{
		{name: "no outer", inner: []string{"Accept-Language"}, want: []string{"Accept-Language"}},
		{name: "no inner", outer: []string{"Origin"}, want: []string{"Origin"}},
		{name: "disjoint", outer: []string{"Origin"}, inner: []string{"Accept-Language"}, want: []string{"Origin", "Accept-Language"}},
		{name: "overlap in another case", outer: []string{"Origin"}, inner: []string{"origin, Accept-Language", "ORIGIN"},
			want: []string{"Origin", "Accept-Language"}},
		{name: "all named already", outer: []string{"Origin, Accept-Language"}, inner: []string{"accept-language"},
			want: []string{"Origin, Accept-Language"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inner := append([]string(nil), tc.inner...)
			if got := mergeVary(tc.outer, tc.inner); strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("mergeVary(%q, %q) = %q, want %q", tc.outer, tc.inner, got, tc.want)
			}
			if strings.Join(inner, "|") != strings.Join(tc.inner, "|") {
				t.Fatalf("inner changed to %q", tc.inner)
			}
		})
	}
}

// TestFollowersRetryAfterTheLeaderPanics: a leader whose handler panics releases the waiting
// clients, which call the upstream again rather than wait forever or share the panic.
func TestFollowersRetryAfterTheLeaderPanics(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int64
	p := newPolicy(t, Config{}, policies.Deps{Logger: quietLogger})
	h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			<-release
			panic(http.ErrAbortHandler)
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{}`)
	}))
	leaderDone := make(chan any)
	go func() {
		defer func() { leaderDone <- recover() }()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
	}()
	waitFor(t, func() bool { return calls.Load() == 1 })
	followerDone := make(chan *httptest.ResponseRecorder)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
		followerDone <- rec
	}()
	time.Sleep(20 * time.Millisecond)
	close(release)
	if v := <-leaderDone; v != http.ErrAbortHandler {
		t.Fatalf("leader recovered %v, want http.ErrAbortHandler", v)
	}
	select {
	case rec := <-followerDone:
		if rec.Code != 200 || rec.Header().Get(headerStatus) != "Miss" {
			t.Fatalf("follower %d %s", rec.Code, rec.Header().Get(headerStatus))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follower still waiting on a leader that panicked")
	}
}

// An interim answer's fields (103 Early Hints' Link) go to the client with the 103 only: net/http
// keeps the header map it sent them from, so without restoring it they stayed on the final answer
// as well, the forwarder's own earlyHints handling notwithstanding.
func TestEarlyHintFieldsStayOnTheInterimAnswer(t *testing.T) {
	p := newPolicy(t, Config{}, policies.Deps{Logger: quietLogger})
	h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</app.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(reqctx.With(r.Context(), &reqctx.Info{ID: "r", Route: "hints"})))
	}))
	t.Cleanup(srv.Close)
	var hints int
	req, _ := http.NewRequest("GET", srv.URL+"/page", nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			if code == http.StatusEarlyHints && h.Get("Link") != "" {
				hints++
			}
			return nil
		},
	}))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if hints != 1 {
		t.Fatalf("%d early hints with Link, want 1", hints)
	}
	if link := resp.Header.Get("Link"); link != "" {
		t.Fatalf("the final %d answer carries the 103's Link %q", resp.StatusCode, link)
	}
}

// maxInFlight bounds what a cut upstream call may still have sent: the loopback socket buffers
// (several MiB once autotuned) hold what was written before the cut, so the HEAD tests' 64 MiB
// bodies are judged against a third of their size, not against the exact cut.
const maxInFlight = 24 << 20

// getsHeadersWhileOpen fails t unless a GET of url gets its headers while the first client's
// answer (what) is still open: a follower held behind the leader's whole answer never would.
// A wait, not a time bound: the leader's answer stays open until the test ends.
func getsHeadersWhileOpen(t *testing.T, c *http.Client, url, what string) {
	t.Helper()
	second := make(chan *http.Response, 1)
	go func() {
		resp, err := c.Get(url)
		if err != nil {
			t.Error(err)
			second <- nil
			return
		}
		second <- resp
	}()
	select {
	case resp := <-second:
		if resp != nil {
			resp.Body.Close()
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("second client got no headers while %s was open: it was held behind the whole answer", what)
	}
}
