package gateway

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// serveGateway runs g.Serve until the returned cancel (SIGTERM) and reports the bound listener
// addresses, in config order.
func serveGateway(t *testing.T, g *Gateway, listeners int) (addrs []string, cancel context.CancelFunc, served chan error) {
	t.Helper()
	var mu sync.Mutex
	bound := make(chan struct{}, 8)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	served = make(chan error, 1)
	go func() {
		served <- g.Serve(ctx, func(name, addr string) {
			if name == "admin" {
				return
			}
			mu.Lock()
			addrs = append(addrs, addr)
			mu.Unlock()
			bound <- struct{}{}
		})
	}()
	for range listeners {
		select {
		case <-bound:
		case <-time.After(3 * time.Second):
			t.Fatal("listeners did not bind")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	return append([]string(nil), addrs...), cancel, served
}

// On SIGTERM every listener stops accepting at once and drains in parallel: one after another,
// a later one kept accepting while the first drained a slow request, then got only what was
// left of shutdown_timeout for its own.
func TestDrainStopsEveryListenerAtOnce(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	started := make(chan struct{}, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(backend.Close)
	g, _ := newGateway(t, `admin: "off"
access_log: {enabled: false}
listeners: [{address: "127.0.0.1:0"}, {address: "127.0.0.1:0"}]
server: {shutdown_timeout: 3s}
upstreams:
  app: {targets: [{url: "`+backend.URL+`"}]}
routes:
  - {name: app, match: {path_prefix: /}, upstream: app}
`)
	addrs, cancel, served := serveGateway(t, g, 2)
	slow := make(chan int, 1)
	go func() {
		resp, err := http.Get("http://" + addrs[0] + "/slow")
		if err != nil {
			slow <- 0
			return
		}
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	<-started
	cancel() // SIGTERM
	// Every listener must stop accepting while the slow request is still held (it is freed only
	// below), so a drain that closes them one after another never gets there. Poll for it: a
	// single look after a fixed 300ms can fail when a loaded machine has not yet run the shutdown.
	for _, a := range addrs {
		deadline := time.Now().Add(5 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err != nil {
				break
			}
			c.Close()
			if time.Now().After(deadline) {
				t.Errorf("listener %s still accepts connections 5s into the drain, with a request in flight", a)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	free()
	if code := <-slow; code != http.StatusOK {
		t.Errorf("the in-flight request got %d, want 200", code)
	}
	select {
	case <-served:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}

// A WebSocket session is in flight like a long stream: on SIGTERM it gets up to
// shutdown_timeout to end by itself (http.Server.Shutdown does not wait for hijacked
// connections), and is cut when that is up.
func TestDrainGivesWebSocketsTheShutdownTimeout(t *testing.T) {
	be := wsBackend(t)
	g, _ := newGateway(t, `admin: "off"
access_log: {enabled: false}
listen: "127.0.0.1:0"
server: {shutdown_timeout: 1500ms}
upstreams:
  app: {targets: [{url: "http://`+be+`"}]}
routes:
  - {name: app, match: {path_prefix: /}, upstream: app}
`)
	addrs, cancel, served := serveGateway(t, g, 1)
	c, br, resp, err := dialUpgrade(t, addrs[0])
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	cancel() // SIGTERM
	select {
	case <-served:
		t.Fatal("Serve returned (the process would exit) at once while a WebSocket session was open")
	case <-time.After(500 * time.Millisecond):
	}
	_, _ = io.WriteString(c, "still\n")
	if line, err := br.ReadString('\n'); err != nil || line != "echo: still\n" {
		t.Errorf("tunnel during the drain: %q %v", line, err)
	}
	// Nobody closes it: the drain time ends it, and Serve returns.
	if _, err := br.ReadString('\n'); err == nil {
		t.Error("the tunnel was not cut when the drain time was up")
	}
	select {
	case <-served:
	case <-time.After(3 * time.Second):
		t.Fatal("Serve did not return after the drain time")
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("the session was cut after %v, before shutdown_timeout", d)
	}
}
