package config

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// TestGolden loads every testdata/*.yaml and compares the result with its .golden file: the error
// text for a broken config, or the Redacted view as JSON for a valid one. Header comments
// "# env: NAME=value" and "# unset: NAME" set up the environment.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/*.yaml")
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			setEnvFromHeader(t, file)
			got := loadResult(t, file)
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
		})
	}
}

func loadResult(t *testing.T, file string) string {
	t.Helper()
	f, err := Load(file)
	if err != nil {
		var ce *Error
		if !errors.As(err, &ce) {
			t.Fatalf("Load returned %T, want *Error: %v", err, err)
		}
		if f != nil {
			t.Error("Load returned a File together with an error")
		}
		return "error:\n" + err.Error() + "\n"
	}
	b, err := json.MarshalIndent(Redacted(f), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return "ok:\n" + string(b) + "\n"
}

func setEnvFromHeader(t *testing.T, file string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "# env: "); ok {
			name, value, _ := strings.Cut(v, "=")
			t.Setenv(name, value)
		}
		if name, ok := strings.CutPrefix(line, "# unset: "); ok {
			t.Setenv(name, "") // restores the old value after the test
			os.Unsetenv(name)
		}
	}
}

func TestLoadValidValues(t *testing.T) {
	f, err := Load("testdata/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if f.Path != "testdata/valid.yaml" {
		t.Errorf("Path = %q", f.Path)
	}
	users := f.Upstreams["users"]
	if len(users.Targets) != 2 || users.Targets[1].URL != "http://127.0.0.1:9102" || *users.Targets[1].Weight != 50 {
		t.Errorf("users targets = %+v", users.Targets)
	}
	if users.Timeouts.ResponseHeader.Std() != 2*time.Second {
		t.Errorf("response_header = %v", users.Timeouts.ResponseHeader.Std())
	}
	if got := strings.Join(users.Retries.On, ","); got != "connect_failure,502,503,504" {
		t.Errorf("retries.on = %q", got)
	}
	if users.Retries.IdempotentOnly == nil || !*users.Retries.IdempotentOnly {
		t.Error("idempotent_only not set")
	}
	if users.Health.Passive.EjectFor.Std() != 30*time.Second || users.CircuitBreaker.MinRequests != 20 {
		t.Errorf("health/breaker = %+v %+v", users.Health.Passive, users.CircuitBreaker)
	}
	if len(f.Routes) != 3 {
		t.Fatalf("routes = %d", len(f.Routes))
	}
	legacy := f.Routes[2]
	if legacy.Split[1].Upstream != "users-v2" || legacy.Split[1].Weight != 10 || *legacy.Mirror.Percent != 100 || !legacy.Mirror.Compare {
		t.Errorf("legacy = %+v %+v", legacy.Split, legacy.Mirror)
	}
	if f.Routes[1].Match.Headers["X-Client-Type"] != "mobile" {
		t.Errorf("headers = %v", f.Routes[1].Match.Headers)
	}
	if ls := f.EffectiveListeners(); len(ls) != 1 || ls[0].Address != ":8080" {
		t.Errorf("listeners = %+v", ls)
	}
}

// TestExampleLoads keeps examples/portico.yaml, which shows every field, loadable.
func TestExampleLoads(t *testing.T) {
	t.Setenv("PORTICO_ADDR", "")
	f, err := Load("../../examples/portico.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if f.Listeners[0].Address != ":8080" || f.Listeners[1].TLS == nil {
		t.Errorf("listeners = %+v", f.Listeners)
	}
	// Relative TLS paths are taken from the config file's directory.
	want := filepath.Join("..", "..", "examples", "tls", "server.pem")
	if got := f.Listeners[1].TLS.Certificates[0].Cert; got != want {
		t.Errorf("cert = %q, want %q", got, want)
	}
	// Every field of the schema appears in the example, so none goes undocumented.
	for _, path := range unusedFields(t, "../../examples/portico.yaml") {
		t.Errorf("examples/portico.yaml does not show %s", path)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want a not-exist error", err)
	}
	var ce *Error
	if errors.As(err, &ce) {
		t.Error("an I/O failure is not a config *Error")
	}
}

func TestParseUsesNameAndCWD(t *testing.T) {
	_, err := Parse([]byte("listen: 8080\n"), "inline.yaml")
	want := `inline.yaml:1:1: listen: invalid address "8080": a port alone is written ":8080"`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
	f, err := Parse([]byte("listen: \":9\"\n"), "inline.yaml")
	if err != nil || f.Path != "" {
		t.Fatalf("f = %+v, err = %v", f, err)
	}
}

// TestLoadResolvesRelativePaths loads from another directory, so a path relative to the working
// directory would not be found.
func TestLoadResolvesRelativePaths(t *testing.T) {
	dir := t.TempDir()
	tlsDir := filepath.Join(dir, "certs")
	if err := os.Mkdir(tlsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ca.pem", "client.pem", "client-key.pem", "server.pem", "server-key.pem"} {
		data, err := os.ReadFile(filepath.Join("testdata", "tls", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tlsDir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := `
listeners:
  - address: ":8443"
    tls: {certificates: [{cert: certs/server.pem, key: certs/server-key.pem}], client_ca: certs/ca.pem}
access_log: {output: access.log}
upstreams:
  pay:
    targets: [{url: "https://127.0.0.1:9"}]
    tls: {ca_file: certs/ca.pem, cert_file: certs/client.pem, key_file: ` + filepath.Join(tlsDir, "client-key.pem") + `}
`
	path := filepath.Join(dir, "portico.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]string{
		f.Listeners[0].TLS.Certificates[0].Key: filepath.Join(tlsDir, "server-key.pem"),
		f.Listeners[0].TLS.ClientCA:            filepath.Join(tlsDir, "ca.pem"),
		f.Upstreams["pay"].TLS.CAFile:          filepath.Join(tlsDir, "ca.pem"),
		f.Upstreams["pay"].TLS.KeyFile:         filepath.Join(tlsDir, "client-key.pem"),
		f.AccessLogOutput():                    filepath.Join(dir, "access.log"),
	}
	for got, want := range checks {
		if got != want {
			t.Errorf("path = %q, want %q", got, want)
		}
	}
	// The watcher's list: every file read, ca.pem once, the access log (written) not at all.
	var want []string
	for _, name := range []string{"ca.pem", "client-key.pem", "client.pem", "server-key.pem", "server.pem"} {
		want = append(want, filepath.Join(tlsDir, name))
	}
	if got := f.InputFiles(); !slices.Equal(got, want) {
		t.Errorf("InputFiles() = %q, want %q", got, want)
	}
	// Parse has no file, so the same relative paths are looked up from the working directory.
	if _, err := Parse([]byte(cfg), "inline"); err == nil || !strings.Contains(err.Error(), `"certs/server.pem" does not exist`) {
		t.Errorf("Parse err = %v", err)
	}
}

// A config named as a device is refused at once; /dev/zero was read until memory ran out.
func TestLoadRefusesADevice(t *testing.T) {
	_, err := Load("/dev/zero")
	if err == nil || !strings.Contains(err.Error(), "is a device or a socket") {
		t.Fatalf("Load(/dev/zero) err = %v", err)
	}
}

// A regex route behind an unconditional prefix route is refused with the route that shadows it.
func TestRegexRouteBehindCatchAllRefused(t *testing.T) {
	_, err := Parse([]byte(`upstreams: {u: {targets: [{url: "http://127.0.0.1:1"}]}}
routes:
  - {name: profile, match: {path_regex: "^/users/[0-9]+$"}, upstream: u}
  - {name: legacy, match: {path_prefix: /}, upstream: u}
`), "inline")
	if err == nil || !strings.Contains(err.Error(), `inline:3:`) ||
		!strings.Contains(err.Error(), `routes[0].match.path_regex: route "profile" can never match: route "legacy"`) {
		t.Fatalf("err = %v", err)
	}
}
