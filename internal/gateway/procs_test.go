package gateway

import (
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/config"
)

// TestProcsFollowsConfig: server.procs sets GOMAXPROCS at start and on reload, and 0 gives the
// choice back to Go. Not parallel: GOMAXPROCS is the whole test process's.
func TestProcsFollowsConfig(t *testing.T) {
	if os.Getenv("GOMAXPROCS") != "" {
		t.Skip("GOMAXPROCS is set in the environment, which takes precedence over server.procs")
	}
	def := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.SetDefaultGOMAXPROCS() })
	backend := echo(t).URL
	load := func(procs string) *config.File {
		f, err := config.Parse([]byte(cfg(backend, "server: {procs: "+procs+"}")), "procs.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	g, err := New(load("1"), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Fatalf("after start with procs 1: GOMAXPROCS %d", n)
	}
	if err := g.Apply(load("3")); err != nil {
		t.Fatal(err)
	}
	if n := runtime.GOMAXPROCS(0); n != 3 {
		t.Fatalf("after reload with procs 3: GOMAXPROCS %d", n)
	}
	// A config that fails to build leaves the serving config's procs in place.
	bad := load("2")
	bad.Upstreams = nil // its route now names an upstream that is gone
	if err := g.Apply(bad); err == nil {
		t.Fatal("Apply accepted a config whose route names a missing upstream")
	}
	if n := runtime.GOMAXPROCS(0); n != 3 {
		t.Fatalf("after a rejected reload with procs 2: GOMAXPROCS %d, want the serving config's 3", n)
	}
	if err := g.Apply(load("0")); err != nil {
		t.Fatal(err)
	}
	if n := runtime.GOMAXPROCS(0); n != def {
		t.Fatalf("after reload with procs 0: GOMAXPROCS %d, want Go's default %d", n, def)
	}
}

func TestProcsMustNotBeNegative(t *testing.T) {
	if err := parseErr(cfg("http://127.0.0.1:1", "server: {procs: -1}")); err == "" || !strings.Contains(err, "server.procs") {
		t.Fatalf("error %q does not name server.procs", err)
	}
}

// server.procs is bounded at load: 2147483648 passed validation and a reload killed the process
// ("procresize: invalid arg", the runtime keeps it in an int32), and 100000 stalled it.
func TestProcsAboveTheBoundAreRefusedAtLoad(t *testing.T) {
	for _, procs := range []string{"1025", "100000", "2147483648"} {
		t.Run(procs, func(t *testing.T) {
			if err := parseErr(cfg("http://127.0.0.1:1", "server: {procs: "+procs+"}")); !strings.Contains(err, "server.procs") || !strings.Contains(err, "at most 1024") {
				t.Fatalf("error %q does not refuse server.procs above 1024", err)
			}
		})
	}
	if err := parseErr(cfg("http://127.0.0.1:1", "server: {procs: 1024}")); err != "" {
		t.Fatalf("procs 1024 refused: %s", err)
	}
}
