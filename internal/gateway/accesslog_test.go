package gateway

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/config"
)

// Every reload reopens the access log file: after logrotate renames it, the next line goes to a
// new file at the path, not on into the renamed one, which nginx and Kong users rotate the same
// way. A reload to another path stops holding the old file.
func TestReloadReopensTheAccessLog(t *testing.T) {
	backend := echo(t).URL
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	yaml := func(out string) string { return cfg(backend, "access_log: {output: "+out+"}") }
	g, _ := newGateway(t, yaml(path))
	apply := func(out string) {
		t.Helper()
		f, err := config.Parse([]byte(yaml(out)), "test.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Apply(f); err != nil {
			t.Fatal(err)
		}
	}
	hit := func(p string) { do(t, g, httptest.NewRequest("GET", p, nil)) }
	read := func(p string) string {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	hit("/before-rotation")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	hit("/after-rename")
	apply(path) // what SIGHUP does
	hit("/after-reload")
	rotated, current := read(path+".1"), read(path)
	if !strings.Contains(rotated, "/before-rotation") || !strings.Contains(rotated, "/after-rename") || strings.Contains(rotated, "/after-reload") {
		t.Errorf("rotated file:\n%s", rotated)
	}
	if !strings.Contains(current, "/after-reload") || strings.Contains(current, "/before-rotation") {
		t.Errorf("file at the path after the reload:\n%s", current)
	}

	other := filepath.Join(dir, "other.log")
	apply(other)
	hit("/other")
	if _, kept := g.outputs[path]; kept {
		t.Errorf("the previous path is still held open after a reload to %s", other)
	}
	if !strings.Contains(read(other), "/other") || strings.Contains(read(path), "/other") {
		t.Errorf("the line went to the wrong file")
	}
}
