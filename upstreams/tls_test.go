package upstreams

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// quietServerLog keeps the handshake failures these tests cause on purpose out of the output.
var quietServerLog = log.New(io.Discard, "", 0)

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// caFileFor writes the test server's certificate as a CA bundle.
func caFileFor(t *testing.T, srv *httptest.Server) string {
	return writeFile(t, "ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
}

// clientCert makes a self-signed client certificate and returns its cert and key files.
func clientCert(t *testing.T) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "portico-test-client"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = writeFile(t, "client.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyFile = writeFile(t, "client-key.pem", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	return certFile, keyFile, cert
}

func TestHTTPSTargetWithCABundle(t *testing.T) {
	var sni string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sni = r.TLS.ServerName
		_, _ = io.WriteString(w, "secure")
	}))
	srv.Config.ErrorLog = quietServerLog
	srv.StartTLS()
	defer srv.Close()
	ca := caFileFor(t, srv)

	tests := []struct {
		name    string
		tls     *TLSConfig
		wantErr bool
		wantSNI string
	}{
		{name: "trusted by the CA bundle", tls: &TLSConfig{CAFile: ca}},
		{name: "server name override", tls: &TLSConfig{CAFile: ca, ServerName: "example.com"}, wantSNI: "example.com"},
		{name: "server name not in the certificate", tls: &TLSConfig{CAFile: ca, ServerName: "wrong.test"}, wantErr: true},
		{name: "system roots do not trust it", tls: nil, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sni = ""
			// A generous connect bound: the handshake under test loads the system roots, which
			// on a loaded machine under the race detector outlasted the default 2s ("TLS
			// handshake timeout", a timeout, not the bad gateway this is about).
			_, u := newTestRegistry(t, Config{Targets: targetsOf(srv.URL), TLS: tc.tls, Retries: RetryConfig{Attempts: intp(0)},
				Timeouts: TimeoutsConfig{Connect: dur(30 * time.Second)}})
			resp, err := get(t, u, "1")
			if tc.wantErr {
				if !errors.Is(err, ErrBadGateway) {
					t.Fatalf("err = %v, want a bad gateway", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if body := readAll(t, resp); body != "secure" {
				t.Errorf("body %q", body)
			}
			if sni != tc.wantSNI {
				t.Errorf("SNI %q, want %q", sni, tc.wantSNI)
			}
		})
	}
}

func TestMutualTLSToTarget(t *testing.T) {
	certFile, keyFile, cert := clientCert(t)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 || r.TLS.PeerCertificates[0].Subject.CommonName != "portico-test-client" {
			http.Error(w, "no client certificate", http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, "hello client")
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.Config.ErrorLog = quietServerLog
	srv.StartTLS()
	defer srv.Close()
	ca := caFileFor(t, srv)

	_, u := newTestRegistry(t, Config{Targets: targetsOf(srv.URL), TLS: &TLSConfig{CAFile: ca, CertFile: certFile, KeyFile: keyFile}})
	resp, err := get(t, u, "1")
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != 200 || body != "hello client" {
		t.Errorf("%d %q", resp.StatusCode, body)
	}

	_, noCert := newTestRegistry(t, Config{Targets: targetsOf(srv.URL), TLS: &TLSConfig{CAFile: ca}, Retries: RetryConfig{Attempts: intp(0)}})
	if _, err := get(t, noCert, "2"); !errors.Is(err, ErrBadGateway) {
		t.Errorf("without a client certificate: err = %v, want a bad gateway", err)
	}
}

func TestNewRegistryRejectsWhatCannotWork(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := TargetConfig{URL: "http://127.0.0.1:9"}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "no targets", cfg: Config{}, want: "no targets"},
		{name: "unparsable url", cfg: Config{Targets: targetsOf("http://[::1")}, want: "invalid target url"},
		{name: "wrong scheme", cfg: Config{Targets: targetsOf("ftp://h:1")}, want: "scheme must be http or https"},
		{name: "no host", cfg: Config{Targets: targetsOf("http://")}, want: "missing host"},
		{name: "path", cfg: Config{Targets: targetsOf("http://h:1/api")}, want: "only scheme, host and port"},
		{name: "duplicate", cfg: Config{Targets: targetsOf("http://h:1", "http://h:1")}, want: "duplicate target"},
		{name: "negative weight", cfg: Config{Targets: []TargetConfig{{URL: "http://h:1", Weight: intp(-1)}}}, want: "negative"},
		{name: "unknown balancer", cfg: Config{Targets: []TargetConfig{ok}, Balancer: "fastest"}, want: "unknown balancer"},
		{name: "bad hash_on", cfg: Config{Targets: []TargetConfig{ok}, Balancer: "ip_hash", HashOn: "body"}, want: "invalid hash_on"},
		{name: "bad retry condition", cfg: Config{Targets: []TargetConfig{ok}, Retries: RetryConfig{On: []string{"sometimes"}}}, want: "unknown condition"},
		{name: "negative timeout", cfg: Config{Targets: []TargetConfig{ok}, Timeouts: TimeoutsConfig{Connect: dur(-time.Second)}}, want: "negative"},
		{name: "health path", cfg: Config{Targets: []TargetConfig{ok}, Health: HealthConfig{Active: &ActiveHealthConfig{Path: "health"}}}, want: "must start with /"},
		{name: "breaker ratio", cfg: Config{Targets: []TargetConfig{ok}, CircuitBreaker: &BreakerConfig{FailureRatio: 2}}, want: "failure_ratio"},
		{name: "unreadable CA", cfg: Config{Targets: []TargetConfig{ok}, TLS: &TLSConfig{CAFile: filepath.Join(dir, "missing.pem")}}, want: "tls.ca_file"},
		{name: "CA without certificates", cfg: Config{Targets: []TargetConfig{ok}, TLS: &TLSConfig{CAFile: notPEM}}, want: "no PEM certificates"},
		{name: "cert without key", cfg: Config{Targets: []TargetConfig{ok}, TLS: &TLSConfig{CertFile: notPEM}}, want: "set together"},
		{name: "bad client cert", cfg: Config{Targets: []TargetConfig{ok}, TLS: &TLSConfig{CertFile: notPEM, KeyFile: notPEM}}, want: "client certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewRegistry(map[string]Config{"svc": tc.cfg}, Options{Logger: quietLogger})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `upstream "svc"`) {
				t.Errorf("err = %v, want one naming the upstream and containing %q", err, tc.want)
			}
		})
	}
}

func TestNewRegistryReportsEveryBrokenUpstream(t *testing.T) {
	_, err := NewRegistry(map[string]Config{
		"a":  {},
		"b":  {Targets: targetsOf("ftp://x")},
		"ok": {Targets: targetsOf("http://127.0.0.1:9")},
	}, Options{Logger: quietLogger})
	if err == nil || !strings.Contains(err.Error(), `upstream "a"`) || !strings.Contains(err.Error(), `upstream "b"`) {
		t.Errorf("err = %v, want both broken upstreams named", err)
	}
}

func TestDefaultsApplied(t *testing.T) {
	_, u := newTestRegistry(t, Config{Targets: targetsOf("http://127.0.0.1:9", "https://127.0.0.1:10")})
	tr := std(u.transport)
	checks := []struct {
		name      string
		got, want any
	}{
		{"weight", u.targets[0].weight, defaultWeight},
		{"attempts", u.attempts, defaultAttempts},
		{"retry connect", u.retryConnect, true},
		{"retry 503", u.retryStatus[503/64]&(1<<(503%64)) != 0, true},
		{"retry 500", u.retryStatus[500/64]&(1<<(500%64)) != 0, false},
		{"idempotent only", u.idempotentOnly, true},
		{"total", u.total, defaultTotalTimeout},
		{"backoff", u.backoff, defaultBackoff},
		{"max idle per host", tr.MaxIdleConnsPerHost, defaultMaxIdlePerTarget},
		{"response header timeout", tr.ResponseHeaderTimeout, defaultResponseHeader},
		{"compression off", tr.DisableCompression, true},
		{"no env proxy", tr.Proxy == nil, true},
		{"h2 for https targets", tr.ForceAttemptHTTP2, true},
		{"min TLS 1.2", tr.TLSClientConfig.MinVersion, uint16(tls.VersionTLS12)},
		{"no breaker", u.breaker == nil, true},
		{"no passive", u.passive == nil, true},
		{"no active", u.active == nil, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	_, plain := newTestRegistry(t, Config{Targets: targetsOf("http://127.0.0.1:9")})
	if std(plain.transport).ForceAttemptHTTP2 {
		t.Error("cleartext targets must not force HTTP/2")
	}
}
