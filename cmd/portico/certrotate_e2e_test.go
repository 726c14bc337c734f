package main

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portico-gw/portico/testing/certtest"
)

// A certificate renewed on disk (as cert-manager or certbot do: new files, no signal, no config
// change) is served by the running binary, and a renewal that is refused (a key that does not
// match its certificate) keeps the old certificate serving until the files are fixed.
func TestRenewedCertificateIsServedWithoutSignal(t *testing.T) {
	backend := namedBackend(t, "app")
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	if err := os.Mkdir(certs, 0o755); err != nil {
		t.Fatal(err)
	}
	certtest.WriteSelfSigned(t, certs, "tls", "first", "localhost")
	path := filepath.Join(dir, "portico.yaml")
	writeConfig(t, path, fmt.Sprintf(`admin: "127.0.0.1:0"
access_log: {enabled: false}
listeners:
  - address: "127.0.0.1:0"
    tls: {certificates: [{cert: certs/tls.pem, key: certs/tls-key.pem}]}
upstreams: {app: {targets: [{url: %q}]}}
routes: [{name: app, match: {path_prefix: /}, upstream: app}]
`, backend.URL))
	p := start(t, path)
	addr := strings.TrimPrefix(p.proxyURL(), "http://")
	served := func() string {
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "first" {
		t.Fatalf("served %q, want first", got)
	}

	// A renewal written in place of the old files.
	certtest.WriteSelfSigned(t, certs, "tls", "second", "localhost")
	waitFor(t, func() bool { return served() == "second" }, "the renewed certificate to be served")

	// A certificate whose key is another's is refused; the served one stays.
	other := t.TempDir()
	certtest.WriteSelfSigned(t, other, "tls", "third", "localhost")
	third, err := os.ReadFile(filepath.Join(other, "tls.pem"))
	if err != nil {
		t.Fatal(err)
	}
	writeConfig(t, filepath.Join(certs, "tls.pem"), string(third))
	waitFor(t, func() bool { return strings.Contains(p.logs.String(), "are not a usable pair") }, "the mismatched pair to be refused")
	if got := served(); got != "second" {
		t.Fatalf("after a refused renewal served %q, want second", got)
	}
	// The matching key arrives: the pair is served.
	key, err := os.ReadFile(filepath.Join(other, "tls-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	writeConfig(t, filepath.Join(certs, "tls-key.pem"), string(key))
	waitFor(t, func() bool { return served() == "third" }, "the completed renewal to be served")
}
