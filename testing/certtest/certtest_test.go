package certtest

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
)

func TestWriteSelfSignedLoadsAndTrustsItself(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := WriteSelfSigned(t, dir, "srv", "server-one", "localhost")
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf := pair.Leaf
	if leaf.Subject.CommonName != "server-one" || len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "localhost" {
		t.Fatalf("certificate for %q %v", leaf.Subject.CommonName, leaf.DNSNames)
	}
	pemBytes, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("the certificate file is no trust bundle")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"}); err != nil {
		t.Errorf("the certificate does not verify against itself: %v", err)
	}
	again, _ := WriteSelfSigned(t, dir, "srv", "server-one", "localhost")
	other, err := tls.LoadX509KeyPair(again, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if other.Leaf.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Error("two certificates of one name share a serial")
	}
}
