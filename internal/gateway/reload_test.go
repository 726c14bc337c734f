package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/config"
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
