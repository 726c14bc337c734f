package gateway

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/testing/certtest"
)

func TestReloadKeepsTargetHealth(t *testing.T) {
	good := echo(t)
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(bad.Close)
	conf := func(extra string) string {
		return `admin: "off"
access_log: {enabled: false}
upstreams:
  app:
    targets: [{url: "` + good.URL + `"}, {url: "` + bad.URL + `"}]
    health: {active: {path: /health, interval: 300ms, timeout: 100ms, unhealthy_failures: 2}}
routes:
  - {name: app, match: {path_prefix: /}, upstream: app}
` + extra
	}
	g, _ := newGateway(t, conf(""))
	deadline := time.Now().Add(5 * time.Second)
	for g.Current().Upstreams.Status()[0].Targets[1].Healthy {
		if time.Now().After(deadline) {
			t.Fatal("the dead target was never marked unhealthy")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := 0; i < 10; i++ {
		if w, _ := do(t, g, httptest.NewRequest("GET", "/x", nil)); w.Code != 200 {
			t.Fatalf("before the reload: %d", w.Code)
		}
	}
	f, err := config.Parse([]byte(conf("  - {name: extra, match: {path_prefix: /extra}, upstream: app}\n")), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Apply(f); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for i := 0; i < 10; i++ {
		if w, _ := do(t, g, httptest.NewRequest("GET", "/x", nil)); w.Code != 200 {
			failed++
		}
	}
	if failed > 0 {
		t.Errorf("%d of 10 requests right after an unrelated reload failed: the dead target is back in rotation", failed)
	}
}

// lockedLog collects log output written from any goroutine.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Certificates are re-read on every reload. Listeners were matched with the running ones by
// position, so once a listener was added in front (waiting for the next restart) the TLS listener
// behind it, its own address unchanged, kept its old certificate on every later reload while the
// reloads reported success: a renewed certificate was never served.
func TestReloadRefreshesCertificatesWhileAListenerChangeWaitsForRestart(t *testing.T) {
	dir := t.TempDir()
	certtest.WriteSelfSigned(t, dir, "old", "old-cert", "localhost")
	certtest.WriteSelfSigned(t, dir, "new", "new-cert", "localhost")
	backend := echo(t)
	tlsListener := func(cert string) string {
		return `  - address: "127.0.0.1:0"
    tls: {certificates: [{cert: ` + cert + `.pem, key: ` + cert + `-key.pem}]}
`
	}
	write := func(listeners string) string {
		path := filepath.Join(dir, "portico.yaml")
		writeFile(t, path, `admin: "off"
access_log: {enabled: false}
listeners:
`+listeners+`upstreams: {app: {targets: [{url: "`+backend.URL+`"}]}}
routes: [{name: app, match: {path_prefix: /}, upstream: app}]
`)
		return path
	}
	g, log, bound := serving(t, write(tlsListener("old")))
	addr := (<-bound)[1]
	served := func() string {
		t.Helper()
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "old-cert" {
		t.Fatalf("before: %s", got)
	}
	// A plain listener is added in front (it will bind at the next restart); the reload succeeds
	// and says which listener waits.
	if err := g.Reload(write(`  - address: "127.0.0.1:18555"` + "\n" + tlsListener("old"))); err != nil {
		t.Fatal(err)
	}
	if out := log.String(); !strings.Contains(out, "take effect after a restart") || !strings.Contains(out, "added=[127.0.0.1:18555]") {
		t.Errorf("the reload log does not name the listener waiting for a restart:\n%s", out)
	}
	// Later the certificate is renewed and the gateway reloaded, as the docs say to.
	if err := g.Reload(write(`  - address: "127.0.0.1:18555"` + "\n" + tlsListener("new"))); err != nil {
		t.Fatal(err)
	}
	if got := served(); got != "new-cert" {
		t.Fatalf("reload succeeded, but the TLS listener still serves %q, not the renewed certificate", got)
	}
}

// The admin API stays where Serve bound it. A reload that turns it off or moves it said
// "config reloaded" and nothing else, while /config and DELETE /cache stayed reachable.
func TestReloadThatMovesTheAdminAPISaysItWaitsForRestart(t *testing.T) {
	backend := echo(t)
	dir := t.TempDir()
	write := func(admin string) string {
		path := filepath.Join(dir, "portico.yaml")
		writeFile(t, path, `admin: "`+admin+`"
access_log: {enabled: false}
listen: "127.0.0.1:0"
upstreams: {app: {targets: [{url: "`+backend.URL+`"}]}}
routes: [{name: app, match: {path_prefix: /}, upstream: app}]
`)
		return path
	}
	g, log, bound := serving(t, write("127.0.0.1:0"))
	var adminAddr string
	for b := range bound {
		if b[0] == "admin" {
			adminAddr = b[1]
			break
		}
	}
	// The same file again: nothing to say.
	if err := g.Reload(write("127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "admin changes") {
		t.Fatalf("an unchanged admin address was reported as changed:\n%s", log.String())
	}
	if err := g.Reload(write("off")); err != nil {
		t.Fatal(err)
	}
	if out := log.String(); !strings.Contains(out, "admin changes take effect after a restart") || !strings.Contains(out, "configured=off") {
		t.Errorf("the reload log does not say the admin API is still on:\n%s", out)
	}
	// And it is still on, as the log says.
	resp, err := http.Get("http://" + adminAddr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// serving loads the config at path and serves it until the test ends, logging to the returned
// log; bound yields each listener's name and address as Serve binds it.
func serving(t *testing.T, path string) (*Gateway, *lockedLog, <-chan [2]string) {
	t.Helper()
	f, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	log := &lockedLog{}
	g, err := New(f, Options{Stdout: io.Discard, Logger: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	bound := make(chan [2]string, 8)
	done := make(chan error, 1)
	go func() { done <- g.Serve(ctx, func(name, addr string) { bound <- [2]string{name, addr} }) }()
	t.Cleanup(func() { cancel(); <-done })
	return g, log, bound
}
