package main

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/gateway"
)

const validateHead = "admin: \"off\"\naccess_log: {enabled: false}\nupstreams:\n  u: {targets: [{url: \"http://127.0.0.1:1\"}]}\n"

// A well-formed bcrypt hash, so that only the username is wrong.
const validateHash = `$2a$10$abcdefghijklmnopqrstuuJ0pZ4Xq1k5Zb6kYVv7n6sYbq0w0l9mS`

func writeValidateConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "portico.yaml")
	if err := os.WriteFile(path, []byte(validateHead+body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// buildLikeRun reports whether `portico run` would start on the file: config.Load, then the
// gateway build.
func buildLikeRun(t *testing.T, path string) error {
	t.Helper()
	f, err := config.Load(path)
	if err != nil {
		return err
	}
	g, err := gateway.New(f, gateway.Options{Logger: slog.New(slog.DiscardHandler), Stdout: io.Discard})
	if err == nil {
		g.Close()
	}
	return err
}

// Files that config.Load accepts but the gateway build refuses: validate must refuse them too,
// naming what is wrong.
func TestValidateRejectsWhatRunRefuses(t *testing.T) {
	cases := []struct{ name, body, mention string }{
		{"shared api key", "consumers: [{name: a, keys: [k-123]}, {name: b, keys: [k-123]}]\n", `consumer "b"`},
		{"empty api key", "consumers: [{name: a, keys: [\"\"]}]\n", "empty API key"},
		{"username with ':'", "consumers: [{name: a, basic_auth: {username: \"x:y\", password_hash: \"" + validateHash + "\"}}]\n", "cannot contain ':'"},
		{"shared jwt key", "consumers: [{name: a, jwt: {key: iss}}, {name: b, jwt: {key: iss}}]\n", "jwt.key"},
		{"shared jwt key and issuer", "consumers: [{name: a, jwt: {key: sub1, issuer: i}}, {name: b, jwt: {key: sub1, issuer: i}}]\n", "jwt.key"},
		{"empty mtls", "consumers: [{name: a, mtls: {}}]\n", "mtls"},
		// Named policies are built whether or not a route uses them.
		{"bad jwt public key", "policies:\n  j: {jwt: {issuers: [{issuer: a, algorithms: [RS256], keys: [{pem: \"-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----\\n\"}]}]}}\n", `policy "j"`},
		{"unknown bff op", "bffs:\n  web: {path: /web, rest: [{method: GET, path: /x, operation: NoSuchOperation}]}\n", "NoSuchOperation"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeValidateConfig(t, tc.body)
			if _, err := config.Load(path); err != nil {
				t.Fatalf("config.Load refuses the file already, so this case tests nothing: %v", err)
			}
			if err := buildLikeRun(t, path); err == nil {
				t.Fatal("run accepts this file: the case tests nothing")
			}
			var stdout, stderr bytes.Buffer
			if code := run([]string{"validate", "-config", path}, &stdout, &stderr); code != 1 {
				t.Errorf("validate exit %d (stdout %q), want 1: run refuses this file at start", code, stdout.String())
			}
			if got := stderr.String(); !strings.Contains(got, tc.mention) || !strings.HasPrefix(got, path+": ") {
				t.Errorf("validate's report does not name the file and %q:\n%s", tc.mention, got)
			}
		})
	}
}

// What run accepts, validate accepts: same jwt key under different issuers, and a store and key
// set that are not reachable (run starts without them too), all without waiting for them.
func TestValidateAcceptsWhatRunStarts(t *testing.T) {
	body := `consumers: [{name: a, jwt: {key: sub1, issuer: i1}}, {name: b, jwt: {key: sub1, issuer: i2}}]
store: {redis: "redis://127.0.0.1:1/0"}
policies:
  j: {jwt: {issuers: [{issuer: i1, algorithms: [RS256], jwks_url: "https://192.0.2.1/jwks.json", jwks_timeout: 3s}]}}
`
	path := writeValidateConfig(t, body)
	var stdout, stderr bytes.Buffer
	start := time.Now()
	if code := run([]string{"validate", "-config", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("validate exit %d: %s", code, stderr.String())
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("validate took %v: it waited for Redis or the JWKS", took)
	}
}

// Every problem the build finds is reported, not the first only.
func TestValidateReportsEveryBuildProblem(t *testing.T) {
	path := writeValidateConfig(t, `consumers: [{name: a, keys: [k]}, {name: b, keys: [k]}]
bffs:
  web: {path: /web, rest: [{method: GET, path: /x, operation: NoSuchOperation}]}
`)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"validate", "-config", path}, &stdout, &stderr); code != 1 {
		t.Fatalf("validate exit %d, want 1", code)
	}
	for _, want := range []string{"building consumers", "NoSuchOperation"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("validate's report lacks %q:\n%s", want, stderr.String())
		}
	}
}

// An access log file is checked, not created.
func TestValidateDoesNotCreateTheAccessLog(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	path := filepath.Join(dir, "portico.yaml")
	if err := os.WriteFile(path, []byte("admin: \"off\"\naccess_log: {output: "+logPath+"}\nupstreams:\n  u: {targets: [{url: \"http://127.0.0.1:1\"}]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"validate", "-config", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("validate exit %d: %s", code, stderr.String())
	}
	if _, err := os.Stat(logPath); err == nil {
		t.Error("validate created the access log file")
	}
}
