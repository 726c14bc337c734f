package gateway

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/listener"
)

// badInputGateway serves yaml on a real loopback listener built the way Serve builds it (same
// server timeouts and header limits), and returns its address.
func badInputGateway(t *testing.T, yaml string) string {
	t.Helper()
	g, _ := newGateway(t, yaml)
	return listen(t, g, listener.Config{Address: "127.0.0.1:0"})
}

// listen serves g on a real loopback listener configured by lc, built as Serve builds it, and
// returns its address.
func listen(t *testing.T, g *Gateway, lc listener.Config) string {
	t.Helper()
	s, err := listener.New(lc, g.Current().File.Server, g)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Close(); <-done })
	return ln.Addr().String()
}

// rawRecorder is a backend that records each request's raw head and body as received and
// answers with answer (a complete response) on every request.
type rawRecorder struct {
	addr string
	mu   sync.Mutex
	reqs []string
}

func (r *rawRecorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.reqs...)
}

func newRawRecorder(t *testing.T, answer string) *rawRecorder {
	t.Helper()
	rec := &rawRecorder{}
	rec.addr = serveRaw(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			var head bytes.Buffer
			tee := io.TeeReader(br, &head)
			req, err := http.ReadRequest(bufio.NewReader(tee))
			if err != nil {
				return
			}
			body, _ := io.ReadAll(req.Body)
			rec.mu.Lock()
			rec.reqs = append(rec.reqs, head.String()+"\n--body--\n"+string(body))
			rec.mu.Unlock()
			if _, err := io.WriteString(c, answer); err != nil {
				return
			}
		}
	})
	return rec
}

// serveRaw accepts loopback connections and runs handle on each (which closes nothing: serveRaw
// closes the connection when handle returns); everything stops at the test's cleanup.
func serveRaw(t testing.TB, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// rawExchange writes raw to addr and returns everything read until the server closes the
// connection or wait passes (a hang guard, not a timing assertion).
func rawExchange(t *testing.T, addr, raw string, wait time.Duration) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	return string(b)
}

// readingBackend reads the whole request body before answering, as an upload handler does, so
// it cannot answer before the gateway has finished (or failed) sending the body.
func readingBackend(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "read %d", n)
	}))
	t.Cleanup(s.Close)
	return s
}

// parseRaw reads the first answer out of a raw exchange.
func parseRaw(t *testing.T, out string) (int, string) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(out)), nil)
	if err != nil {
		t.Fatalf("no HTTP answer (%v): %q", err, out)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func isJSONError(body string) bool {
	var v struct {
		Error struct{ Code, Message, RequestID string } `json:"error"`
	}
	return json.Unmarshal([]byte(body), &v) == nil && v.Error.Code != "" && v.Error.Message != ""
}

// A request body that the client makes too large is the client's fault: it is answered 413 and
// must not count against the backend. Classified as a failed call to the target, the
// transport's body-read failure (MaxBytesError) would feed passive health and the circuit
// breaker: two oversized chunked uploads would eject the only, healthy, target and every client
// would then get 503 for eject_for. nginx answers 413 without ever touching
// the upstream's health (max_fails counts only upstream errors); RFC 9110 15.5.14 makes 413 a
// statement about the request, not the server.
func TestBadInputOversizedChunkedBodyDoesNotEjectTarget(t *testing.T) {
	be := readingBackend(t)
	addr := badInputGateway(t, `admin: "off"
access_log: {enabled: false}
upstreams:
  app: {targets: [{url: "`+be.URL+`"}], health: {passive: {consecutive_failures: 2, eject_for: 1m}}}
routes:
  - {name: app, match: {path_prefix: /}, upstream: app, max_body_bytes: 16}
`)
	big := strings.Repeat("x", 100)
	for i := 0; i < 2; i++ {
		out := rawExchange(t, addr, "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n64\r\n"+big+"\r\n0\r\n\r\n", 10*time.Second)
		if code, body := parseRaw(t, out); code != http.StatusRequestEntityTooLarge || !isJSONError(body) {
			t.Fatalf("oversized chunked body #%d: %d %s, want 413 JSON", i+1, code, body)
		}
	}
	out := rawExchange(t, addr, "GET /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 10*time.Second)
	if code, body := parseRaw(t, out); code != http.StatusOK {
		t.Fatalf("after two client-side 413s a plain GET got %d %s: the healthy target was ejected for the client's oversized bodies", code, body)
	}
}

// A client that sends its body too slowly hits server.read_timeout while Portico streams the body
// upstream. net/http cancels the request's context, but the client is still connected and reads
// the answer, which must be 408 Request Timeout (RFC 9110 15.5.9; nginx's client_body_timeout
// answers 408) in the JSON error shape, not the log-only 499 of a client that went away.
func TestBadInputSlowBodyGets408NotWire499(t *testing.T) {
	be := readingBackend(t)
	addr := badInputGateway(t, `admin: "off"
access_log: {enabled: false}
server: {read_timeout: 200ms}
upstreams:
  app: {targets: [{url: "`+be.URL+`"}]}
routes:
  - {name: app, match: {path_prefix: /}, upstream: app}
`)
	// 10 of 100 declared bytes, then nothing: the read deadline always fires first.
	out := rawExchange(t, addr, "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789", 10*time.Second)
	code, body := parseRaw(t, out)
	if code == 499 || code < 400 || code >= 500 || !isJSONError(body) {
		t.Fatalf("slow body answered %d %q; want 408 (a standard 4xx) with the JSON error body", code, body)
	}
}

// A client that stops sending mid-body fails the call when the upstream's total timeout runs out,
// with 408, not when server.read_timeout does (60 s by default): the transport waits for its body
// writer, which waited on the client. Both HTTP/1.1 servers; the exchange gives up after 10 s,
// long before the 30 s read timeout here.
func TestBadInputStalledBodyEndsAtTheTotalTimeout(t *testing.T) {
	for _, server := range []string{"portico", "net/http"} {
		t.Run(server, func(t *testing.T) {
			be := readingBackend(t)
			addr := badInputGateway(t, `admin: "off"
access_log: {enabled: false}
server: {read_timeout: 30s, http1_server: `+server+`}
upstreams:
  app: {targets: [{url: "`+be.URL+`"}], timeouts: {total: 300ms}}
routes:
  - {name: app, match: {path_prefix: /}, upstream: app}
`)
			out := rawExchange(t, addr, "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789", 10*time.Second)
			if code, body := parseRaw(t, out); code != http.StatusRequestTimeout || !isJSONError(body) {
				t.Fatalf("stalled body answered %d %q; want 408 at the upstream's total timeout", code, body)
			}
		})
	}
}

// The BFF facades read their bodies whole before anything runs; a body that stops coming gets
// the same 408 there, on /graphql (GraphQL-shaped) and on a REST route (the JSON error shape),
// not a 400 that blames the client's JSON.
func TestBadInputSlowBodyGets408OnTheBFFs(t *testing.T) {
	addr := badInputGateway(t, bffConfig(t, `server: {read_timeout: 200ms}`, `{method: POST, path: /orders, operation: PlaceOrder}`))
	for _, tc := range []struct{ path, accept, wantCode string }{
		{"/web/graphql", "application/graphql-response+json", `"code":"REQUEST_TIMEOUT"`},
		{"/web/orders", "application/json", `"code":"REQUEST_TIMEOUT"`},
	} {
		out := rawExchange(t, addr, "POST "+tc.path+" HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nAccept: "+tc.accept+
			"\r\nContent-Length: 100\r\n\r\n{\"query\"", 10*time.Second)
		if code, body := parseRaw(t, out); code != http.StatusRequestTimeout || !strings.Contains(body, tc.wantCode) {
			t.Errorf("POST %s with a stalled body answered %d %q; want 408 REQUEST_TIMEOUT", tc.path, code, body)
		}
	}
}

// bffConfig is a gateway with the web BFF at /web serving the REST routes rest (YAML flow
// mappings), its services on a backend that reads what it gets, and the extra top-level YAML.
func bffConfig(t *testing.T, extra string, rest ...string) string {
	be := readingBackend(t)
	var ups strings.Builder
	for _, name := range []string{"users", "orders", "payments", "notifications"} {
		fmt.Fprintf(&ups, "  %s: {targets: [{url: %q}]}\n", name, be.URL)
	}
	return `admin: "off"
access_log: {enabled: false}
` + extra + `
upstreams:
` + ups.String() + `bffs:
  web:
    path: /web
    rest: [` + strings.Join(rest, ", ") + `]
`
}

// TRACE on a BFF is the BFF's to answer: 405 with the methods that endpoint serves, not the
// router's list for a route without methods (which named PUT, PATCH and DELETE on /graphql).
func TestBadInputTraceOnTheBFFs(t *testing.T) {
	addr := badInputGateway(t, bffConfig(t, "", `{method: GET, path: "/orders/{id}", operation: OrderDetail, result: order}`))
	for path, allow := range map[string]string{"/web/graphql": "GET, POST, OPTIONS", "/web/orders/o1": "GET, HEAD, OPTIONS"} {
		out := rawExchange(t, addr, "TRACE "+path+" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 10*time.Second)
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(out)), nil)
		if err != nil {
			t.Fatalf("TRACE %s: %v in %q", path, err, out)
		}
		if got := resp.Header.Get("Allow"); resp.StatusCode != http.StatusMethodNotAllowed || got != allow {
			t.Errorf("TRACE %s: %d with Allow %q; want 405 with Allow %q", path, resp.StatusCode, got, allow)
		}
	}
}

// A policy that refuses a request to a BFF's /graphql answers a GraphQL response (errors[] with
// extensions.code), in the media type the client accepts, with the policy's status and headers;
// GraphQL clients find no error in {"error": …}. The BFF's REST routes keep the JSON error shape.
func TestPolicyErrorsOnGraphQLAreGraphQLShaped(t *testing.T) {
	cfg := bffConfig(t, `policies:
  key: {key-auth: {key_names: [apikey]}}`, `{method: GET, path: /dashboard, operation: Dashboard}`)
	cfg = strings.Replace(cfg, "    path: /web\n", "    path: /web\n    policies: [key]\n", 1)
	addr := badInputGateway(t, cfg)
	query := `{"query":"{ me { id } }"}`
	for _, tc := range []struct {
		name, request, contentType, shape string
	}{
		{"graphql-response+json", "POST /web/graphql HTTP/1.1\r\nAccept: application/graphql-response+json\r\nContent-Type: application/json\r\n" +
			"Content-Length: " + strconv.Itoa(len(query)) + "\r\n", "application/graphql-response+json", `{"errors":[{"message":`},
		{"legacy json", "POST /web/graphql HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(query)) + "\r\n",
			"application/json", `{"errors":[{"message":`},
		{"GET", "GET /web/graphql?query=%7Bme%7Bid%7D%7D HTTP/1.1\r\nAccept: application/graphql-response+json\r\n",
			"application/graphql-response+json", `{"errors":[{"message":`},
		{"REST route", "GET /web/dashboard HTTP/1.1\r\n", "application/json", `{"error":{"code":"UNAUTHORIZED"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.request + "Host: a\r\nConnection: close\r\n\r\n"
			if strings.HasPrefix(req, "POST") {
				req += query
			}
			out := rawExchange(t, addr, req, 10*time.Second)
			resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(out)), nil)
			if err != nil {
				t.Fatalf("%v in %q", err, out)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("status %d, WWW-Authenticate %q; want the policy's 401 and its header", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
			if got := resp.Header.Get("Content-Type"); got != tc.contentType {
				t.Errorf("Content-Type %q, want %q", got, tc.contentType)
			}
			if !strings.HasPrefix(string(body), tc.shape) || (strings.HasPrefix(tc.shape, `{"errors"`) && !strings.Contains(string(body), `"extensions":{"code":"UNAUTHORIZED","request_id":`)) {
				t.Errorf("body %s; want %s… with the code and request ID", body, tc.shape)
			}
		})
	}
}

// A request must not slip past the route (and the policies) that owns its path to another
// route, while the backend reads the path back into the first route's space:
//   - Route regexes run on the decoded path, and Go's "." does not match "\n": without the s flag
//     "/admin/.*" would not take "/admin/%0Asecret", a later regex route that matches a newline
//     (a negated class) would, and the backend decodes it back into an /admin/ path. (A prefix
//     route always beats a regex route, so a catch-all prefix is not the way through.)
//   - "//admin/x" routed on its literal path would miss a path_prefix /admin route, while
//     Tomcat, Spring and nginx (merge_slashes, the default) resolve it as /admin/x; Go's ServeMux
//     redirects it there. Repeated slashes are merged before routing, as nginx does.
func TestBadInputRoutingCannotBeSkipped(t *testing.T) {
	for _, tc := range []struct{ name, adminMatch, catchAll, request string }{
		{"newline in a regex route", `{path_regex: "/admin/.*"}`, `{path_regex: "/[^#]*"}`, "GET /admin/%0Asecret HTTP/1.1"},
		{"double slash before a prefix route", `{path_prefix: /admin}`, `{path_prefix: /}`, "GET //admin/x HTTP/1.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			public := newRawRecorder(t, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\npublic")
			admin := newRawRecorder(t, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nadmin")
			addr := badInputGateway(t, `admin: "off"
access_log: {enabled: false}
upstreams:
  app: {targets: [{url: "http://`+public.addr+`"}]}
  adm: {targets: [{url: "http://`+admin.addr+`"}]}
routes:
  - {name: adm, match: `+tc.adminMatch+`, upstream: adm}
  - {name: app, match: `+tc.catchAll+`, upstream: app}
`)
			out := rawExchange(t, addr, tc.request+"\r\nHost: a\r\nConnection: close\r\n\r\n", 10*time.Second)
			code, body := parseRaw(t, out)
			if got := public.got(); len(got) > 0 {
				t.Fatalf("%q skipped the admin route and reached the catch-all upstream (%d %s):\n%s", tc.request, code, body, got[0])
			}
			if len(admin.got()) != 1 {
				t.Errorf("%q did not reach the admin route's upstream (%d %s)", tc.request, code, body)
			}
		})
	}
}

// CONNECT asks an intermediary for a tunnel (RFC 9110 9.3.6); a reverse proxy is not one.
// Proxied, a catch-all route would send it on with the target rewritten ("CONNECT
// 127.0.0.1:port", or the client's "other:443" with preserve_host), and on the http.Transport
// path a 2xx would make the answer body the raw connection. nginx refuses CONNECT with 405 ("client
// sent CONNECT method"). The gateway answers 405 in the JSON shape and sends nothing upstream.
func TestBadInputConnectIsRefused(t *testing.T) {
	be := newRawRecorder(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	addr := badInputGateway(t, cfg("http://"+be.addr, "access_log: {enabled: false}"))
	out := rawExchange(t, addr, "CONNECT other.example:443 HTTP/1.1\r\nHost: other.example:443\r\nConnection: close\r\n\r\n", 10*time.Second)
	code, body := parseRaw(t, out)
	if got := be.got(); len(got) > 0 {
		t.Errorf("CONNECT was forwarded to the backend:\n%s", got[0])
	}
	if code != http.StatusMethodNotAllowed || !isJSONError(body) {
		t.Errorf("CONNECT answered %d %q, want 405 with the JSON error body", code, body)
	}
}

// README: client-sent X-Forwarded-For is dropped unless the peer is trusted, and "anything a
// client sent under" X-Consumer-Name & co. "is removed first". The edge and outboundHeader clean
// the header map; sent as chunked request trailers (which http.Transport writes after the body)
// the same fields would reach the backend. nginx forwards no request trailers, and neither does
// the gateway (the rewriter, which the forwarder and the upgrade path both run, drops them).
func TestBadInputTrailersCannotSmuggleForwardingOrIdentityFields(t *testing.T) {
	be := newRawRecorder(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	addr := badInputGateway(t, cfg("http://"+be.addr, "access_log: {enabled: false}"))
	out := rawExchange(t, addr, "POST /t HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"+
		"Trailer: X-Consumer-Name, X-Forwarded-For\r\nConnection: close\r\n\r\n"+
		"3\r\nabc\r\n0\r\nX-Consumer-Name: admin\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n", 10*time.Second)
	if code, body := parseRaw(t, out); code != http.StatusOK {
		t.Fatalf("got %d %s", code, body)
	}
	got := be.got()
	if len(got) != 1 {
		t.Fatalf("backend saw %d requests", len(got))
	}
	if strings.Contains(got[0], "6.6.6.6") || strings.Contains(got[0], "X-Consumer-Name: admin") {
		t.Errorf("client-chosen X-Forwarded-For / X-Consumer-Name reached the backend as trailers:\n%s", got[0])
	}
}

// h2cBackend answers an "Upgrade: h2c" request carrying HTTP2-Settings with 101, as servers with
// the h2c upgrade on do (Apache mod_http2, Jetty; x/net's h2c also wants HTTP2-Settings named in
// Connection), and then records every byte that arrives on the switched connection.
func h2cBackend(t *testing.T) (addr string, tunnelled func() string) {
	t.Helper()
	var mu sync.Mutex
	var buf bytes.Buffer
	addr = serveRaw(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if !strings.EqualFold(req.Header.Get("Upgrade"), "h2c") || req.Header.Get("HTTP2-Settings") == "" {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
		b := make([]byte, 4096)
		for {
			n, err := br.Read(b)
			mu.Lock()
			buf.Write(b[:n])
			mu.Unlock()
			if n > 0 {
				_, _ = io.WriteString(c, "tunnel-ack")
			}
			if err != nil {
				return
			}
		}
	})
	return addr, func() string { mu.Lock(); defer mu.Unlock(); return buf.String() }
}

// An "Upgrade: h2c" request is passed through like a WebSocket upgrade, so against a backend
// that accepts the h2c upgrade the client gets a raw tunnel to the backend and every later
// request on it skips Portico's routing and policies (the "h2c smuggling" class: Bishop Fox
// 2020; Traefik and Envoy refuse it). The README promises WebSocket upgrades only; h2c's
// Upgrade mechanism is deprecated by RFC 9113 section 3.1 and nginx forwards no Upgrade it was
// not configured for. An h2c upgrade is served as a plain request (Upgrade is hop-by-hop and
// goes), so the backend never switches.
func TestBadInputH2CUpgradeDoesNotTunnelPastRouting(t *testing.T) {
	backend, tunnelled := h2cBackend(t)
	addr := badInputGateway(t, `admin: "off"
access_log: {enabled: false}
upstreams:
  app: {targets: [{url: "http://`+backend+`"}]}
routes:
  - {name: public, match: {path_prefix: /public}, upstream: app}
`)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(c, "GET /public HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return // not switched: fine
	}
	// The switched connection is a pipe to the backend: this path has no route at all.
	_, _ = io.WriteString(c, "GET /admin/secret HTTP/1.1\r\nHost: backend\r\n\r\n")
	ack := make([]byte, len("tunnel-ack"))
	_, _ = io.ReadFull(br, ack)
	t.Errorf("the gateway switched the client to h2c with the backend; bytes then tunnelled past routing: %q", tunnelled())
}

// CGI-style backends (RFC 3875 4.1.18: PHP, WSGI, Rack) read X-Consumer-Name and
// X_Consumer_Name as the same HTTP_X_CONSUMER_NAME variable, so the underscore spellings of the
// fields Portico promises to own (README: client-sent X-Forwarded-* dropped from untrusted
// peers; "anything a client sent under" X-Consumer-Name & co. "is removed first") must go too.
// Deleting the canonical keys alone would let "X_Consumer_Name: admin" and "X_Forwarded_For:
// 6.6.6.6" reach the backend. nginx drops fields with underscores by default
// (underscores_in_headers off); Puma fixed the same clobbering as CVE-2024-45614. Client fields
// whose name equals a protected one once '_' is read as '-' are dropped.
func TestBadInputUnderscoreSpellingsOfProtectedFieldsAreDropped(t *testing.T) {
	be := newRawRecorder(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	addr := badInputGateway(t, cfg("http://"+be.addr, "access_log: {enabled: false}"))
	out := rawExchange(t, addr, "GET /x HTTP/1.1\r\nHost: a\r\nX_Consumer_Name: admin\r\nX_Forwarded_For: 6.6.6.6\r\n"+
		"X_Authenticated_Subject: root\r\nConnection: close\r\n\r\n", 10*time.Second)
	if code, body := parseRaw(t, out); code != http.StatusOK {
		t.Fatalf("got %d %s", code, body)
	}
	got := be.got()
	if len(got) != 1 {
		t.Fatalf("backend saw %d requests", len(got))
	}
	for _, bad := range []string{"admin", "6.6.6.6", "root"} {
		if strings.Contains(got[0], bad) {
			t.Errorf("a client-chosen underscore spelling of a protected field reached the backend (%q):\n%s", bad, got[0])
		}
	}
}

// A chunked request body that breaks the framing (bare LF after a chunk size, a "0x5" size) is
// the client's error, found by net/http only while Portico streams the body upstream. Taken for
// the backend's, it would answer 502, blame the target in the log and count toward passive
// ejection and the breaker. nginx answers 400 ("client sent invalid chunked body"); RFC 9112 7.1
// / RFC 9110 15.5.1. The gateway answers 400 in the JSON shape.
func TestBadInputMalformedChunkedBodyIs400Not502(t *testing.T) {
	be := readingBackend(t)
	addr := badInputGateway(t, cfg(be.URL, "access_log: {enabled: false}"))
	for name, body := range map[string]string{
		"bare LF":       "5\nhello\n0\n\n",
		"hex prefix":    "0x5\r\nhello\r\n0\r\n\r\n",
		"bad chunk end": "5\r\nhelloXX\r\n0\r\n\r\n",
	} {
		out := rawExchange(t, addr, "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"+body, 10*time.Second)
		if code, resp := parseRaw(t, out); code != http.StatusBadRequest || !isJSONError(resp) {
			t.Errorf("%s: malformed chunked body answered %d %s, want 400 with the JSON error body", name, code, resp)
		}
	}
}

// The admin listener bounds every phase of a connection, not only the request header: without a
// read, write and idle timeout a client that drips a body, never reads an answer or keeps an idle
// connection open holds a goroutine for good.
func TestBadInputAdminServerBoundsSlowClients(t *testing.T) {
	s := newAdminServer(http.NotFoundHandler())
	for name, d := range map[string]time.Duration{
		"ReadHeaderTimeout": s.ReadHeaderTimeout,
		"ReadTimeout":       s.ReadTimeout,
		"WriteTimeout":      s.WriteTimeout,
		"IdleTimeout":       s.IdleTimeout,
	} {
		if d <= 0 {
			t.Errorf("admin server %s is %v; a slow client could hold its connection forever", name, d)
		}
	}
}
