package routes

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/reqctx"
)

// received is what a fake backend saw.
type received struct {
	Method, Path, RawPath, RawQuery, Host string
	Header                                http.Header
	Body                                  string
}

// recordingBackend answers 200 "ok" and sends what it received on the returned channel.
func recordingBackend(t *testing.T) (*httptest.Server, <-chan received) {
	t.Helper()
	ch := make(chan received, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- received{r.Method, r.URL.Path, r.URL.RawPath, r.URL.RawQuery, r.Host, r.Header.Clone(), string(b)}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

func TestProxyRequestShape(t *testing.T) {
	backend, got := recordingBackend(t)
	gw, _ := gateway(t, []Config{{
		Name:        "orders",
		Match:       MatchConfig{PathPrefix: "/api/v1/orders"},
		Upstream:    "orders",
		StripPrefix: "/api/v1",
		AddPrefix:   "/v2",
		RequestHeaders: HeaderOps{
			Remove: []string{"x-remove"},
			Set:    map[string]string{"X-Set": "new"},
			Add:    map[string]string{"X-Add": "extra"},
		},
	}}, Deps{Upstream: lookup(map[string]http.RoundTripper{"orders": toServer(t, backend)})})

	req, _ := http.NewRequest("POST", gw.URL+"/api/v1/orders/7?x=1&y=two%20words", strings.NewReader(`{"qty":3}`))
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "secret")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("TE", "gzip")
	req.Header.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
	req.Header.Set("X-Remove", "gone")
	req.Header.Set("X-Set", "old")
	req.Header.Set("X-Add", "first")
	req.Header.Set("X-Consumer-Name", "forged")
	// The edge keeps only trusted forwarding headers; what reaches the router is extended.
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("Forwarded", "for=203.0.113.9;proto=https")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("response %d %q", resp.StatusCode, body)
	}

	r := recv(t, got, "backend request")
	gwHost := strings.TrimPrefix(gw.URL, "http://")
	backendHost := strings.TrimPrefix(backend.URL, "http://")
	checks := []struct{ name, got, want string }{
		{"method", r.Method, "POST"},
		{"path", r.Path, "/v2/orders/7"},
		{"query", r.RawQuery, "x=1&y=two%20words"},
		{"host", r.Host, backendHost},
		{"body", r.Body, `{"qty":3}`},
		{"X-Forwarded-For", r.Header.Get("X-Forwarded-For"), "203.0.113.9, 127.0.0.1"},
		{"X-Forwarded-Host", r.Header.Get("X-Forwarded-Host"), gwHost},
		{"X-Forwarded-Proto", r.Header.Get("X-Forwarded-Proto"), "http"},
		{"Forwarded", r.Header.Get("Forwarded"), `for=203.0.113.9;proto=https, for=127.0.0.1;host="` + gwHost + `";proto=http`},
		{"X-Set", strings.Join(r.Header.Values("X-Set"), ","), "new"},
		{"X-Add", strings.Join(r.Header.Values("X-Add"), ","), "first,extra"},
		{"X-Consumer-Name", r.Header.Get("X-Consumer-Name"), "web-app"},
		{"X-Consumer-Groups", r.Header.Get("X-Consumer-Groups"), "first-party,beta"},
		{"X-Request-ID", r.Header.Get("X-Request-ID"), "req-123"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	for _, h := range []string{"Connection", "X-Hop", "Keep-Alive", "Te", "Proxy-Authorization", "Upgrade", "X-Remove"} {
		if v, ok := r.Header[h]; ok {
			t.Errorf("backend got %s: %q, want it removed", h, v)
		}
	}
}

func TestPreserveHost(t *testing.T) {
	tests := []struct {
		name     string
		preserve bool
		setHost  string
		want     string // "" means the backend's own host
	}{
		{"target host by default", false, "", ""},
		{"client host with preserve_host", true, "", "shop.example.com"},
		{"request_headers.set Host wins", true, "internal.example.com", "internal.example.com"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			backend, got := recordingBackend(t)
			cfg := Config{Name: "r", Upstream: "u", PreserveHost: tc.preserve}
			if tc.setHost != "" {
				cfg.RequestHeaders.Set = map[string]string{"host": tc.setHost}
			}
			gw, _ := gateway(t, []Config{cfg}, Deps{Upstream: lookup(map[string]http.RoundTripper{"u": toServer(t, backend)})})
			req, _ := http.NewRequest("GET", gw.URL+"/x", nil)
			req.Host = "shop.example.com"
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := tc.want
			if want == "" {
				want = strings.TrimPrefix(backend.URL, "http://")
			}
			if r := recv(t, got, "backend request"); r.Host != want {
				t.Errorf("Host = %q, want %q", r.Host, want)
			}
		})
	}
}

func TestRewritePath(t *testing.T) {
	tests := []struct {
		name                string
		cfg                 Config
		in                  string
		wantPath, wantRawOK string // wantRawOK: expected EscapedPath
	}{
		{"strip", Config{StripPrefix: "/api/v1"}, "/api/v1/orders", "/orders", "/orders"},
		{"strip the whole path", Config{StripPrefix: "/api/v1"}, "/api/v1", "/", "/"},
		{"strip with trailing slash keeps one", Config{StripPrefix: "/api/"}, "/api/x", "/x", "/x"},
		{"strip only on a segment boundary", Config{StripPrefix: "/api"}, "/apix/y", "/apix/y", "/apix/y"},
		{"strip then add", Config{StripPrefix: "/api/v1", AddPrefix: "/v2/"}, "/api/v1/orders", "/v2/orders", "/v2/orders"},
		{"strip all then add has no trailing slash", Config{StripPrefix: "/api/v1", AddPrefix: "/v2"}, "/api/v1", "/v2", "/v2"},
		{"regex after prefixes", Config{StripPrefix: "/api", Rewrite: &RewriteConfig{Regex: `^/users/(\d+)$`, Replacement: "/people/$1/profile"}}, "/api/users/42", "/people/42/profile", "/people/42/profile"},
		{"regex result gets a leading slash", Config{Rewrite: &RewriteConfig{Regex: `^/old/`, Replacement: ""}}, "/old/x", "/x", "/x"},
		{"escaped slash survives a strip", Config{StripPrefix: "/api"}, "/api/files/a%2Fb", "/files/a/b", "/files/a%2Fb"},
		{"escaped slash survives add", Config{AddPrefix: "/v2"}, "/files/a%2Fb", "/v2/files/a/b", "/v2/files/a%2Fb"},
		// The router matches a path without its ;parameters, so strip_prefix does too; a
		// stripped segment's parameters go with it, later ones stay.
		{"strip a prefix holding parameters", Config{StripPrefix: "/api/v1"}, "/api/v1;jsessionid=1/orders", "/orders", "/orders"},
		{"strip keeps later parameters", Config{StripPrefix: "/api/v1"}, "/api;a=1/v1/orders;jsessionid=2", "/orders;jsessionid=2", "/orders;jsessionid=2"},
		{"strip a whole path with parameters", Config{StripPrefix: "/api"}, "/api;x=1", "/", "/"},
		{"strip with parameters then add", Config{StripPrefix: "/api/", AddPrefix: "/v2"}, "/api;x=1/orders", "/v2/orders", "/v2/orders"},
		{"a segment of parameters only is no segment", Config{StripPrefix: "/api/v1"}, "/api/;x=1/v1/o", "/o", "/o"},
		{"parameters do not join segments", Config{StripPrefix: "/api"}, "/apix;a=1/y", "/apix;a=1/y", "/apix;a=1/y"},
		{"an encoded semicolon is no parameter", Config{StripPrefix: "/api"}, "/api%3Bx/y", "/api;x/y", "/api%3Bx/y"},
		{"escaping after the stripped parameters is kept", Config{StripPrefix: "/api"}, "/api;x=1/a%2Fb", "/a/b", "/a%2Fb"},
		// The client escapes what Go would not, or not what Go would: compared decoded.
		{"parameters after a prefix escaped otherwise", Config{StripPrefix: "/café"}, "/caf%c3%a9/orders;jsessionid=1", "/orders;jsessionid=1", "/orders;jsessionid=1"},
		{"parameters after a prefix Go would escape", Config{StripPrefix: "/api(v1)"}, "/api(v1)/orders;jsessionid=1", "/orders;jsessionid=1", "/orders;jsessionid=1"},
		{"parameters after a needlessly escaped prefix", Config{StripPrefix: "/api"}, "/%61pi/orders;jsessionid=1", "/orders;jsessionid=1", "/orders;jsessionid=1"},
		{"parameters in a needlessly escaped prefix", Config{StripPrefix: "/api"}, "/%61pi;x=1/orders", "/orders", "/orders"},
		{"a prefix requiring a sub-path, with parameters", Config{StripPrefix: "/api/"}, "/api;x=1/x", "/x", "/x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rw, err := newRewriter(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			rw.rewritePath(u)
			if u.Path != tc.wantPath || u.EscapedPath() != tc.wantRawOK {
				t.Errorf("got Path %q EscapedPath %q, want %q %q", u.Path, u.EscapedPath(), tc.wantPath, tc.wantRawOK)
			}
		})
	}
}

// A prefix route takes a path whose segments carry ;parameters (Tomcat's jsessionid), and its
// strip_prefix strips what the router matched: the backend got the path unstripped.
func TestStripPrefixOfPathWithParameters(t *testing.T) {
	backend, got := recordingBackend(t)
	gw, _ := gateway(t, []Config{{
		Name: "orders", Match: MatchConfig{PathPrefix: "/api/v1"}, Upstream: "orders", StripPrefix: "/api/v1",
	}}, Deps{Upstream: lookup(map[string]http.RoundTripper{"orders": toServer(t, backend)})})
	for in, want := range map[string]string{
		"/api/v1/orders":               "/orders",
		"/api/v1;jsessionid=1/orders":  "/orders",
		"/api/v1/orders;jsessionid=1":  "/orders;jsessionid=1",
		"/api;a=b/v1;c=d/orders;e=f/x": "/orders;e=f/x",
	} {
		resp, err := http.Get(gw.URL + in)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", in, resp.StatusCode)
		}
		if r := recv(t, got, "backend request"); r.Path != want {
			t.Errorf("%s reached the backend as %q, want %q", in, r.Path, want)
		}
	}
}

// An SSE event reaches the client while the backend is still streaming: ReverseProxy's default
// flushing of text/event-stream is kept.
func TestStreamingFlushesEachEvent(t *testing.T) {
	release := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "data: two\n\n")
	}))
	t.Cleanup(backend.Close)
	gw, _ := gateway(t, []Config{{Name: "events", Upstream: "u"}},
		Deps{Upstream: lookup(map[string]http.RoundTripper{"u": toServer(t, backend)})})

	resp, err := http.Get(gw.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// The backend is blocked until the first event is read: if the proxy buffered, this would hang.
	if l := recv(t, lines, "first event"); l != "data: one" {
		t.Fatalf("first line %q", l)
	}
	close(release)
	var rest []string
	for l := range lines {
		rest = append(rest, l)
	}
	if !slices.Contains(rest, "data: two") {
		t.Errorf("second event missing: %q", rest)
	}
}

// A WebSocket-style upgrade passes through, and bytes flow both ways on the hijacked connection.
func TestUpgradePassesThrough(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" || !strings.EqualFold(r.Header.Get("Connection"), "upgrade") {
			http.Error(w, "want upgrade, got Upgrade="+r.Header.Get("Upgrade"), http.StatusBadRequest)
			return
		}
		conn, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		// Echo lines until the client hangs up.
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			_, _ = brw.WriteString("echo: " + line)
			_ = brw.Flush()
		}
	}))
	t.Cleanup(backend.Close)
	gw, _ := gateway(t, []Config{{Name: "ws", Upstream: "u"}},
		Deps{Upstream: lookup(map[string]http.RoundTripper{"u": toServer(t, backend)})})

	conn, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: chat.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != "websocket" {
		t.Fatalf("status %d Upgrade %q, want 101 websocket", resp.StatusCode, resp.Header.Get("Upgrade"))
	}
	for _, msg := range []string{"hello", "again"} {
		_, _ = io.WriteString(conn, msg+"\n")
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line != "echo: "+msg+"\n" {
			t.Errorf("got %q", line)
		}
	}
}

// An upgrade's answer never carries the backend's X-Request-Id (the edge's is on it already),
// also on a route whose mirror compares, where the recorder of the primary's answer runs too.
func TestUpgradeAnswerDropsBackendRequestID(t *testing.T) {
	for _, compare := range []bool{false, true} {
		t.Run(fmt.Sprintf("compare=%v", compare), func(t *testing.T) {
			backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Request-Id", "backend-echo")
				w.WriteHeader(http.StatusBadRequest) // e.g. a bad Sec-WebSocket-Key
			}))
			t.Cleanup(backend.Close)
			gw, _ := gateway(t, []Config{{Name: "ws", Upstream: "primary",
				Mirror: &MirrorConfig{Upstream: "shadow", Compare: compare}}},
				Deps{Upstream: lookup(map[string]http.RoundTripper{"primary": toServer(t, backend), "shadow": staticUpstream(200, "")})})
			req, _ := http.NewRequest("GET", gw.URL+"/ws", nil)
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want the backend's 400", resp.StatusCode)
			}
			if got := resp.Header.Values("X-Request-Id"); len(got) != 0 {
				t.Errorf("backend's X-Request-Id reached the client: %q", got)
			}
		})
	}
}

func TestRequestBodyLimit(t *testing.T) {
	readBody := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	t.Cleanup(readBody.Close)
	tests := []struct {
		name    string
		body    io.Reader
		chunked bool
		up      func(t *testing.T) http.RoundTripper
		want    int
	}{
		{"declared length over the cap never reaches upstream", strings.NewReader(strings.Repeat("x", 100)), false, neverCalled, 413},
		{"chunked body over the cap", strings.NewReader(strings.Repeat("x", 100)), true, func(t *testing.T) http.RoundTripper { return toServer(t, readBody) }, 413},
		{"body at the cap passes", strings.NewReader(strings.Repeat("x", 16)), true, func(t *testing.T) http.RoundTripper { return toServer(t, readBody) }, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gw, _ := gateway(t, []Config{{Name: "r", Upstream: "u", MaxBodyBytes: 16}},
				Deps{Upstream: lookup(map[string]http.RoundTripper{"u": tc.up(t)})})
			body := tc.body
			if tc.chunked {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
			req, _ := http.NewRequest("POST", gw.URL+"/upload", body)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, b)
			}
			if tc.want == 413 && !strings.Contains(string(b), `"REQUEST_TOO_LARGE"`) {
				t.Errorf("body %s lacks REQUEST_TOO_LARGE", b)
			}
		})
	}
}

func TestServerWideBodyLimitDefault(t *testing.T) {
	gw, _ := gateway(t, []Config{{Name: "r", Upstream: "u"}},
		Deps{Upstream: lookup(map[string]http.RoundTripper{"u": neverCalled(t)}), MaxBodyBytes: 8})
	resp, err := http.Post(gw.URL+"/", "text/plain", strings.NewReader("123456789"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("status %d, want 413 from Deps.MaxBodyBytes", resp.StatusCode)
	}
}

// A client that goes away cancels the upstream call instead of leaving it running.
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	started, cancelled := make(chan struct{}), make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
		close(cancelled)
	}))
	t.Cleanup(backend.Close)
	logs := &syncBuffer{}
	gw, _ := gateway(t, []Config{{Name: "slow", Upstream: "u"}},
		Deps{Upstream: lookup(map[string]http.RoundTripper{"u": toServer(t, backend)}), Logger: quietLogger(logs)})

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", gw.URL+"/slow", nil)
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	recv(t, started, "backend to start")
	cancel()
	recv(t, cancelled, "backend context to be cancelled")
	if err := recv(t, errc, "client to return"); err == nil {
		t.Error("client got a response after cancelling")
	}
	eventually(t, "499 log line", func() bool { return strings.Contains(logs.String(), "status=499") })
}

// statusErr is an upstream-layer error: it carries its status and an address that must not leak.
type statusErr struct{ status int }

func (e statusErr) Error() string   { return fmt.Sprintf("dial 10.0.0.5:8080: status %d", e.status) }
func (e statusErr) StatusCode() int { return e.status }

func TestUpstreamErrorsBecomeJSON(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"no healthy target", statusErr{503}, 503, "UPSTREAM_UNAVAILABLE"},
		{"bad gateway", statusErr{502}, 502, "BAD_GATEWAY"},
		{"timeout", fmt.Errorf("call: %w", context.DeadlineExceeded), 504, "UPSTREAM_TIMEOUT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			failing := upstreamFunc(func(*http.Request) (*http.Response, error) { return nil, tc.err })
			r, err := Build([]Config{{Name: "r", Upstream: "u"}},
				Deps{Upstream: lookup(map[string]http.RoundTripper{"u": failing}), Logger: quietLogger(nil)})
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			withInfo(r, nil).ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
			assertError(t, rec, tc.status, tc.code)
			if strings.Contains(rec.Body.String(), "10.0.0.5") {
				t.Errorf("backend address leaked: %s", rec.Body)
			}
		})
	}
}

func TestRequestInfoNamesRouteAndUpstream(t *testing.T) {
	r, err := Build([]Config{{Name: "orders", Match: MatchConfig{PathPrefix: "/orders"}, Upstream: "orders-svc"}},
		Deps{Upstream: lookup(map[string]http.RoundTripper{"orders-svc": staticUpstream(200, "{}")})})
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan reqctx.Info, 1)
	withInfo(r, seen).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/orders", nil))
	info := <-seen
	if info.Route != "orders" || info.Upstream != "orders-svc" {
		t.Errorf("Info route=%q upstream=%q, want orders orders-svc", info.Route, info.Upstream)
	}
}

func TestBuildRejects(t *testing.T) {
	known := lookup(map[string]http.RoundTripper{"a": staticUpstream(200, ""), "b": staticUpstream(200, "")})
	pct := 150.0
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown upstream", Config{Name: "r", Upstream: "order"}, `unknown upstream "order"`},
		{"unknown split upstream", Config{Name: "r", Split: []SplitConfig{{Upstream: "a", Weight: 50}, {Upstream: "c", Weight: 50}}}, `unknown upstream "c"`},
		{"unknown mirror upstream", Config{Name: "r", Upstream: "a", Mirror: &MirrorConfig{Upstream: "z"}}, `unknown upstream "z"`},
		{"upstream and split", Config{Name: "r", Upstream: "a", Split: []SplitConfig{{Upstream: "b", Weight: 1}}}, "not both"},
		{"neither upstream nor split", Config{Name: "r"}, "no upstream"},
		{"all weights zero", Config{Name: "r", Split: []SplitConfig{{Upstream: "a", Weight: 0}, {Upstream: "b", Weight: 0}}}, "positive weight"},
		{"negative weight", Config{Name: "r", Split: []SplitConfig{{Upstream: "a", Weight: -1}, {Upstream: "b", Weight: 2}}}, "weight -1 outside 0 to 65535"},
		// Summed past the int range, these made every pick panic (rand.IntN of a negative total).
		{"huge weights", Config{Name: "r", Split: []SplitConfig{{Upstream: "a", Weight: math.MaxInt}, {Upstream: "b", Weight: math.MaxInt}}}, "outside 0 to 65535"},
		{"sticky both", Config{Name: "r", Split: []SplitConfig{{Upstream: "a", Weight: 1}, {Upstream: "b", Weight: 1}}, Sticky: &StickyConfig{Header: "X-U", Cookie: "u"}}, "exactly one"},
		{"bad path regex", Config{Name: "r", Upstream: "a", Match: MatchConfig{PathRegex: "("}}, "path_regex"},
		{"bad rewrite regex", Config{Name: "r", Upstream: "a", Rewrite: &RewriteConfig{Regex: "(["}}, "rewrite.regex"},
		{"mirror percent out of range", Config{Name: "r", Upstream: "a", Mirror: &MirrorConfig{Upstream: "b", Percent: &pct}}, "percent"},
		{"relative strip_prefix", Config{Name: "r", Upstream: "a", StripPrefix: "api"}, "strip_prefix"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build([]Config{tc.cfg}, Deps{Upstream: known})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Build error = %v, want containing %q", err, tc.want)
			}
		})
	}
	if _, err := Build(nil, Deps{}); err == nil {
		t.Error("Build without Deps.Upstream succeeded")
	}
}

func TestBufferPoolRecycles(t *testing.T) {
	b := proxyBuffers.Get()
	if len(b) != proxyBufferSize {
		t.Fatalf("len %d, want %d", len(b), proxyBufferSize)
	}
	proxyBuffers.Put(b)
	proxyBuffers.Put(make([]byte, 10)) // foreign buffers are ignored, not a panic
	if !raceEnabled {
		// sync.Pool drops items at random under -race.
		if n := testing.AllocsPerRun(100, func() { proxyBuffers.Put(proxyBuffers.Get()) }); n != 0 {
			t.Errorf("Get/Put allocates %v times", n)
		}
	}
	var _ httputil.BufferPool = proxyBuffers
}

func TestErrorsBodyIsJSON(t *testing.T) {
	// Guard against a future ErrorHandler writing plain text.
	failing := upstreamFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("boom") })
	r, _ := Build([]Config{{Name: "r", Upstream: "u"}}, Deps{Upstream: lookup(map[string]http.RoundTripper{"u": failing}), Logger: quietLogger(nil)})
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	var v map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || rec.Code != 500 {
		t.Errorf("status %d body %s", rec.Code, rec.Body)
	}
	if strings.Contains(rec.Body.String(), "boom") {
		t.Errorf("internal error text leaked: %s", rec.Body)
	}
}

// Forwarding headers that survived the edge come from a trusted proxy: the original scheme and
// host stay, and this hop is appended.
func TestForwardedKeepsTrustedOrigin(t *testing.T) {
	rw, err := newRewriter(Config{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, remote                   string
		in                             http.Header
		wantXFF, wantXFP, wantXFH, fwd string
	}{
		{"behind a TLS load balancer", "10.0.0.2:5555",
			http.Header{"X-Forwarded-For": {"198.51.100.7"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"shop.example.com"}},
			"198.51.100.7, 10.0.0.2", "https", "shop.example.com", `for=10.0.0.2;host=gw.internal;proto=http`},
		{"direct IPv6 client", "[2001:db8::1]:443", http.Header{},
			"2001:db8::1", "http", "gw.internal", `for="[2001:db8::1]";host=gw.internal;proto=http`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := httptest.NewRequest("GET", "http://gw.internal/x", nil)
			in.RemoteAddr, in.Header = tc.remote, tc.in
			out := in.Clone(in.Context())
			out.Header = http.Header{}
			rw.rewrite(&httputil.ProxyRequest{In: in, Out: out})
			got := []string{out.Header.Get("X-Forwarded-For"), out.Header.Get("X-Forwarded-Proto"), out.Header.Get("X-Forwarded-Host"), out.Header.Get("Forwarded")}
			want := []string{tc.wantXFF, tc.wantXFP, tc.wantXFH, tc.fwd}
			if !slices.Equal(got, want) {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

// BenchmarkPassThrough is the router plus handler with an in-memory upstream, to watch the
// per-request allocations of the proxy path.
func BenchmarkPassThrough(b *testing.B) {
	body := strings.Repeat("x", 1024)
	up := upstreamFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
	})
	r, err := Build([]Config{{Name: "orders", Match: MatchConfig{PathPrefix: "/api/orders"}, Upstream: "u", StripPrefix: "/api"}},
		Deps{Upstream: lookup(map[string]http.RoundTripper{"u": up})})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/api/orders/42?x=1", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
	}
}

func TestForwardedValueQuoting(t *testing.T) {
	tests := []struct{ in, want string }{
		{"example.com", "example.com"},
		{"example.com:8080", `"example.com:8080"`},
		{`odd"host\`, `"odd\"host\\"`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			var b strings.Builder
			writeForwardedValue(&b, tc.in)
			if b.String() != tc.want {
				t.Errorf("got %s, want %s", b.String(), tc.want)
			}
		})
	}
}

// Deps.Wrap puts a handler (the gateway's policy chain) around each route once, and a Wrap error
// fails the build.
func TestBuildWrapsEachRoute(t *testing.T) {
	var wrapped []string
	deps := Deps{
		Upstream: lookup(map[string]http.RoundTripper{"a": staticUpstream(200, "{}")}),
		Wrap: func(route string, h http.Handler) (http.Handler, error) {
			wrapped = append(wrapped, route)
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Wrapped", route)
				h.ServeHTTP(w, r)
			}), nil
		},
	}
	r, err := Build([]Config{{Name: "one", Match: MatchConfig{PathPrefix: "/one"}, Upstream: "a"}, {Name: "two", Match: MatchConfig{PathPrefix: "/two"}, Upstream: "a"}}, deps)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest("GET", "/two/x", nil))
	if w.Code != 200 || w.Header().Get("X-Wrapped") != "two" {
		t.Fatalf("got %d, X-Wrapped %q", w.Code, w.Header().Get("X-Wrapped"))
	}
	if strings.Join(wrapped, ",") != "one,two" {
		t.Errorf("wrapped %v, want each route once", wrapped)
	}
	deps.Wrap = func(string, http.Handler) (http.Handler, error) { return nil, errors.New("bad policy") }
	if _, err := Build([]Config{{Name: "one", Upstream: "a"}}, deps); err == nil || !strings.Contains(err.Error(), "bad policy") {
		t.Errorf("Build with a failing Wrap: %v", err)
	}
}
