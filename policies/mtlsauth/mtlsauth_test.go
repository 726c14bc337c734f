package mtlsauth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/policies"
	"github.com/portico-gw/portico/policies/mtlsauth"
)

type pki struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// issue makes a certificate signed by parent (self-signed when parent is nil).
func issue(t *testing.T, parent *pki, cn string, dns []string, isCA bool, usage x509.ExtKeyUsage) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: isCA,
	}
	if isCA {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
	}
	if cn == "127.0.0.1" {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &pki{cert: cert, key: key}
}

func (p *pki) tls() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{p.cert.Raw}, PrivateKey: p.key, Leaf: p.cert}
}

func TestMTLS(t *testing.T) {
	ca := issue(t, nil, "client-ca", nil, true, 0)
	serverCert := issue(t, ca, "127.0.0.1", nil, false, x509.ExtKeyUsageServerAuth)
	clients := map[string]*pki{
		"by-cn":  issue(t, ca, "billing-service", nil, false, x509.ExtKeyUsageClientAuth),
		"by-san": issue(t, ca, "whatever", []string{"orders.internal"}, false, x509.ExtKeyUsageClientAuth),
		// Found by SAN, with a CN that would go upstream as X-Authenticated-Subject.
		"nul-cn":  issue(t, ca, "admin\x00.evil", []string{"orders.internal"}, false, x509.ExtKeyUsageClientAuth),
		"unknown": issue(t, ca, "stranger", nil, false, x509.ExtKeyUsageClientAuth),
		// Same subject as a consumer, but not signed by the client CA.
		"forged": issue(t, nil, "billing-service", nil, false, x509.ExtKeyUsageClientAuth),
	}
	cs, err := policies.NewConsumers([]policies.ConsumerConfig{
		{Name: "billing", Groups: []string{"internal"}, MTLS: &policies.MTLSCredential{Subject: "billing-service"}},
		{Name: "orders", MTLS: &policies.MTLSCredential{SANs: []string{"orders.internal"}}},
		{Name: "guest"},
	})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)

	start := func(t *testing.T, anonymous string, auth tls.ClientAuthType) *httptest.Server {
		p, err := mtlsauth.New("mtls", mtlsauth.Config{Anonymous: anonymous}, policies.Deps{Consumers: cs})
		if err != nil {
			t.Fatal(err)
		}
		h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := reqctx.From(r.Context()).Identity
			w.Header().Set("X-Test-Consumer", id.Consumer)
			w.Header().Set("X-Test-Subject", id.Subject)
			w.WriteHeader(http.StatusNoContent)
		}))
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r.WithContext(reqctx.With(r.Context(), &reqctx.Info{})))
		}))
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert.tls()}, ClientCAs: roots, ClientAuth: auth}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv
	}
	do := func(t *testing.T, srv *httptest.Server, client string) (*http.Response, error) {
		cfg := &tls.Config{RootCAs: roots}
		if c := clients[client]; c != nil {
			// GetClientCertificate sends the certificate even when the server's list of
			// acceptable CAs does not include its issuer (Go's client would otherwise stay silent).
			cert := c.tls()
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
		defer hc.CloseIdleConnections()
		resp, err := hc.Get(srv.URL + "/")
		if err == nil {
			resp.Body.Close()
		}
		return resp, err
	}

	verifying := start(t, "", tls.VerifyClientCertIfGiven)
	withAnon := start(t, "guest", tls.VerifyClientCertIfGiven)
	// RequestClientCert takes any certificate without verifying it: PeerCertificates is set,
	// VerifiedChains is not, and the policy must not trust it.
	unverified := start(t, "", tls.RequestClientCert)
	tests := []struct {
		name     string
		srv      *httptest.Server
		client   string
		status   int
		consumer string
		subject  string
	}{
		{"subject CN", verifying, "by-cn", 204, "billing", "billing-service"},
		{"SAN", verifying, "by-san", 204, "orders", "whatever"},
		{"SAN, control byte in the CN", verifying, "nul-cn", 401, "", ""},
		{"no certificate", verifying, "", 401, "", ""},
		{"no certificate, anonymous", withAnon, "", 204, "guest", ""},
		{"verified but unknown", verifying, "unknown", 401, "", ""},
		{"verified but unknown, anonymous does not excuse it", withAnon, "unknown", 401, "", ""},
		{"unverified certificate is no credential", unverified, "forged", 401, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := do(t, tt.srv, tt.client)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status == 204 && (resp.Header.Get("X-Test-Consumer") != tt.consumer || resp.Header.Get("X-Test-Subject") != tt.subject) {
				t.Fatalf("consumer %q subject %q", resp.Header.Get("X-Test-Consumer"), resp.Header.Get("X-Test-Subject"))
			}
			if tt.status == 401 && resp.Header.Get("WWW-Authenticate") != "" {
				t.Fatalf("WWW-Authenticate %q: there is no HTTP scheme for certificates", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
	t.Run("certificate from another CA fails the handshake", func(t *testing.T) {
		if resp, err := do(t, verifying, "forged"); err == nil {
			t.Fatalf("handshake with a foreign certificate succeeded: %d", resp.StatusCode)
		}
	})
}

func TestNoTLS(t *testing.T) {
	p, err := mtlsauth.New("mtls", mtlsauth.Config{}, policies.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := p.(policies.Authenticator).Authenticate(httptest.NewRequest(http.MethodGet, "/", nil))
	if id != nil || err != nil {
		t.Fatalf("plain HTTP: %v, %v", id, err)
	}
	if _, err := mtlsauth.New("mtls", mtlsauth.Config{Anonymous: "nobody"}, policies.Deps{}); err == nil ||
		!strings.Contains(err.Error(), "not declared") {
		t.Fatalf("err = %v", err)
	}
}
