package gateway

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/config"
)

// A reload that config.Load accepts but the build refuses has already built its upstream
// registry, which publishes its targets' gauges: the serving config's dead target showed healthy
// and the rejected file's upstreams had series until the next successful reload.
func TestRejectedReloadLeavesUpstreamGaugesAlone(t *testing.T) {
	good := echo(t)
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
	t.Cleanup(bad.Close)
	conf := func(interval, extra string) string {
		return `admin: "off"
access_log: {enabled: false}
upstreams:
  app:
    targets: [{url: "` + good.URL + `"}, {url: "` + bad.URL + `"}]
    health: {active: {path: /health, interval: ` + interval + `, timeout: 100ms, unhealthy_failures: 1}}
` + extra + `
routes:
  - {name: app, match: {path_prefix: /}, upstream: app}
`
	}
	g, _ := newGateway(t, conf("200ms", ""))
	deadline := time.Now().Add(5 * time.Second)
	for g.Current().Upstreams.Status()[0].Targets[1].Healthy {
		if time.Now().After(deadline) {
			t.Fatal("the dead target was never marked unhealthy")
		}
		time.Sleep(10 * time.Millisecond)
	}
	metrics := func() string {
		w := httptest.NewRecorder()
		g.AdminHandler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
		return w.Body.String()
	}
	deadGauge := `portico_upstream_healthy{target="` + bad.URL + `",upstream="app"} `
	for !strings.Contains(metrics(), deadGauge+"0") {
		if time.Now().After(deadline) {
			t.Fatalf("before the reload the dead target's gauge is not 0")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Other health settings, so the dead target's verdict is not carried: the rejected build's
	// registry publishes it as healthy.
	rejected := conf("10s", `  ghost: {targets: [{url: "http://127.0.0.1:1"}]}
consumers: [{name: a, keys: [same-key]}, {name: b, keys: [same-key]}]`)
	f, err := config.Parse([]byte(rejected), "test.yaml")
	if err != nil {
		t.Fatalf("the file must pass config.Load for this test: %v", err)
	}
	if err := g.Apply(f); err == nil {
		t.Fatal("the build must refuse two consumers sharing an API key")
	}
	if g.Current().Upstreams.Status()[0].Targets[1].Healthy {
		t.Fatal("the serving snapshot's dead target came back")
	}
	after := metrics()
	if !strings.Contains(after, deadGauge+"0") {
		t.Errorf("after a rejected reload the serving config's dead target is not 0")
	}
	if strings.Contains(after, `upstream="ghost"`) {
		t.Errorf("after a rejected reload /metrics has series of an upstream the serving config does not have")
	}
}

// A file caught empty by a reload (truncated by a writer that has not written yet, a template
// that rendered nothing, a ConfigMap key that came out blank) must not replace a working config:
// it loaded as a valid config without routes, and every request got 404.
func TestReloadOfEmptyFileKeepsRoutes(t *testing.T) {
	g, _ := newGateway(t, cfg(echo(t).URL, "access_log: {enabled: false}"))
	if w, _ := do(t, g, httptest.NewRequest("GET", "/x", nil)); w.Code != 200 {
		t.Fatalf("before: %d", w.Code)
	}
	path := filepath.Join(t.TempDir(), "portico.yaml")
	for _, content := range []string{"", "# nothing yet\n"} {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		err := g.Reload(path)
		if err == nil || !strings.Contains(err.Error(), "config file is empty") {
			t.Errorf("reload of %q: error %v, want the file refused as empty", content, err)
		}
		if w, _ := do(t, g, httptest.NewRequest("GET", "/x", nil)); w.Code != 200 {
			t.Fatalf("after the reload of %q: every request gets %d (routes: %d)", content, w.Code, len(g.Current().File.Routes))
		}
	}
}
