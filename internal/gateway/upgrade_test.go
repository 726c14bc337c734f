package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// An upgrade request goes through httputil.ReverseProxy, not the pass-through forwarder: the
// underscore spellings of protected fields must be dropped there too, or adding
// "Connection: Upgrade" would hand a CGI-style backend any identity or client address.
func TestUpgradeDropsUnderscoreSpellingsOfProtectedFields(t *testing.T) {
	be := newRawRecorder(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	addr := badInputGateway(t, cfg("http://"+be.addr, "access_log: {enabled: false}"))
	rawExchange(t, addr, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"+
		"X_Consumer_Name: admin\r\nX_Forwarded_For: 6.6.6.6\r\nX_Authenticated_Subject: root\r\n\r\n", 3*time.Second)
	got := be.got()
	if len(got) != 1 {
		t.Fatalf("backend saw %d requests", len(got))
	}
	for _, bad := range []string{"admin", "6.6.6.6", "root"} {
		if strings.Contains(got[0], bad) {
			t.Errorf("an underscore spelling of a protected field reached the backend on an upgrade request (%q):\n%s", bad, got[0])
		}
	}
}

// The edge drops X-Forwarded-Port from untrusted peers, so its underscore spelling goes too.
func TestUnderscoreForwardedPortIsDropped(t *testing.T) {
	be := newRawRecorder(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	addr := badInputGateway(t, cfg("http://"+be.addr, "access_log: {enabled: false}"))
	out := rawExchange(t, addr, "GET /x HTTP/1.1\r\nHost: a\r\nX_Forwarded_Port: 6666\r\nX-Forwarded-Port: 7777\r\nConnection: close\r\n\r\n", 3*time.Second)
	if code, body := parseRaw(t, out); code != http.StatusOK {
		t.Fatalf("got %d %s", code, body)
	}
	got := be.got()
	if len(got) != 1 {
		t.Fatalf("backend saw %d requests", len(got))
	}
	if strings.Contains(got[0], "7777") || strings.Contains(got[0], "6666") {
		t.Errorf("X-Forwarded-Port or its underscore spelling from an untrusted peer reached the backend:\n%s", got[0])
	}
}

// wsBackend answers every upgrade request with 101 and echoes lines until the client hangs up;
// it echoes the request ID it got, as many frameworks do.
func wsBackend(t *testing.T) string {
	t.Helper()
	return serveRaw(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil || !strings.EqualFold(req.Header.Get("Upgrade"), "websocket") {
			_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"X-Request-Id: "+req.Header.Get("X-Request-Id")+"\r\n\r\n")
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "echo: "+line)
		}
	})
}

func dialUpgrade(t *testing.T, addr string) (net.Conn, *bufio.Reader, *http.Response, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	_, _ = io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nX-Request-Id: ws-1\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	return c, br, resp, err
}

// A cache policy coalesces concurrent GET misses for one key behind one leader. A WebSocket
// upgrade is a GET, but a session: a second client upgrading on the same URL must not wait for
// the first one's whole session.
func TestCachedRouteDoesNotSerializeWebSocketUpgrades(t *testing.T) {
	be := wsBackend(t)
	addr := badInputGateway(t, `admin: "off"
access_log: {enabled: false}
upstreams:
  app: {targets: [{url: "http://`+be+`"}]}
policies:
  c: {cache: {ttl: 1m}}
routes:
  - {name: app, match: {path_prefix: /}, upstream: app, policies: [c]}
`)
	c1, br1, resp, err := dialUpgrade(t, addr)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("first upgrade: %v %v", resp, err)
	}
	if ids := resp.Header.Values("X-Request-Id"); len(ids) != 1 || ids[0] != "ws-1" {
		t.Errorf("101 carries X-Request-Id %q, want only ws-1", ids)
	}
	_, _ = io.WriteString(c1, "one\n")
	if line, err := br1.ReadString('\n'); err != nil || line != "echo: one\n" {
		t.Fatalf("first tunnel: %q %v", line, err)
	}
	// The first tunnel stays open; a second client upgrades on the same URL.
	_, _, resp2, err := dialUpgrade(t, addr)
	if err != nil {
		t.Fatalf("second upgrade got no answer while the first tunnel is open: %v", err)
	}
	if resp2.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("second upgrade: status %d", resp2.StatusCode)
	}
}

// Many backends echo the X-Request-ID they receive. An answer carries one ID, its own: not the
// backend's echo beside the edge's, and on a cache hit not the ID of the request that filled the
// cache (another client's).
func TestAnswerCarriesOwnRequestIDOnly(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-ID", r.Header.Get("X-Request-ID"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	}))
	defer backend.Close()
	g, _ := newGateway(t, `admin: "off"
access_log: {enabled: false}
upstreams:
  app: {targets: [{url: "`+backend.URL+`"}]}
policies:
  c: {cache: {ttl: 1h}}
routes:
  - {name: cached, match: {path_prefix: /cached}, upstream: app, policies: [c]}
  - {name: plain, match: {path_prefix: /plain}, upstream: app}
`)
	get := func(path, id string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("X-Request-ID", id)
		w, _ := do(t, g, r)
		return w
	}
	if w := get("/plain", "plain-1"); len(w.Header().Values("X-Request-ID")) != 1 {
		t.Errorf("pass-through answer carries X-Request-ID %q, want exactly one value", w.Header().Values("X-Request-ID"))
	}
	get("/cached", "first-client")
	w := get("/cached", "second-client")
	if w.Header().Get("X-Cache-Status") != "Hit" {
		t.Fatalf("X-Cache-Status %q, want Hit", w.Header().Get("X-Cache-Status"))
	}
	if got := w.Header().Values("X-Request-ID"); len(got) != 1 || got[0] != "second-client" {
		t.Errorf("a cache hit answered X-Request-ID %q, want only its own %q", got, "second-client")
	}
}
