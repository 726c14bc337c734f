package listener

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/confval"
)

// testCA is a certificate authority made for one test, so no key material lives in the tree.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // the CA certificate as PEM
	pool *x509.CertPool
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{cert: cert, key: key, file: filepath.Join(t.TempDir(), name+".pem"), pool: x509.NewCertPool()}
	ca.pool.AddCert(cert)
	writePEM(t, ca.file, "CERTIFICATE", der)
	return ca
}

// issue signs a leaf certificate for dnsNames (server) or for a client, writes it and its key to
// certFile and keyFile, and returns the certificate.
func (ca *testCA) issue(t *testing.T, certFile, keyFile string, usage x509.ExtKeyUsage, dnsNames ...string) *x509.Certificate {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(t),
		Subject:      pkix.Name{CommonName: "portico test leaf"},
		DNSNames:     dnsNames,
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", keyDER)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// serverCert issues a server certificate for name into dir and returns its config entry.
func (ca *testCA) serverCert(t *testing.T, dir, name string) (CertConfig, *x509.Certificate) {
	t.Helper()
	c := CertConfig{Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+"-key.pem")}
	return c, ca.issue(t, c.Cert, c.Key, x509.ExtKeyUsageServerAuth, name)
}

// clientCert issues a client certificate ready for a tls.Config.
func (ca *testCA) clientCert(t *testing.T) tls.Certificate {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	ca.issue(t, certFile, keyFile, x509.ExtKeyUsageClientAuth)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func newSerial(t *testing.T) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writePEM(t *testing.T, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// reportingHandler answers with what the server saw of the request, so clients can assert the
// protocol and the verified client chain from the handler's side.
func reportingHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Proto-Major", strconv.Itoa(r.ProtoMajor))
	if r.TLS != nil {
		w.Header().Set("X-Verified-Chains", strconv.Itoa(len(r.TLS.VerifiedChains)))
	}
	_, _ = io.WriteString(w, "ok")
}

// start runs a listener on a free loopback port until the test ends.
func start(t *testing.T, cfg Config, sc ServerConfig) *Server {
	t.Helper()
	return serveWith(t, cfg, sc, http.HandlerFunc(reportingHandler))
}

// serveWith serves h on a free loopback port until the test ends.
func serveWith(t *testing.T, cfg Config, sc ServerConfig, h http.Handler) *Server {
	t.Helper()
	cfg.Address = "127.0.0.1:0"
	s, err := New(cfg, sc, h)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		_ = s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve after Close: %v", err)
		}
	})
	return s
}

// httpsClient trusts ca and sends serverName as SNI, offering h2 and http/1.1 over ALPN.
func httpsClient(t *testing.T, ca *testCA, serverName string) *http.Client {
	t.Helper()
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: ca.pool, ServerName: serverName},
		ForceAttemptHTTP2: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 2 * time.Second}
}

// mtlsClient presents cert (none when nil) whatever CAs the server asks for: Go's client would
// otherwise withhold a certificate the server's CA list does not name, and the server's own
// verification would go untested. It speaks HTTP/1.1 so a refusal surfaces as the TLS alert,
// which the HTTP/2 transport reports only as "client conn could not be established".
func mtlsClient(t *testing.T, ca *testCA, serverName string, cert *tls.Certificate) *http.Client {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs:    ca.pool,
		ServerName: serverName,
		NextProtos: []string{"http/1.1"},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cert == nil {
				return &tls.Certificate{}, nil
			}
			return cert, nil
		},
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 2 * time.Second}
}

// get performs one GET and reads the body, so the connection can be reused afterwards.
func get(c *http.Client, url string) (*http.Response, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return nil, err
	}
	return resp, nil
}

func TestTLSCertificateBySNI(t *testing.T) {
	ca := newTestCA(t, "ca")
	dir := t.TempDir()
	certA, leafA := ca.serverCert(t, dir, "a.portico.test")
	certB, leafB := ca.serverCert(t, dir, "b.portico.test")
	s := start(t, Config{TLS: &TLSConfig{Certificates: []CertConfig{certA, certB}}}, ServerConfig{})

	tests := []struct {
		name       string
		serverName string
		want       *x509.Certificate
	}{
		{"first name", "a.portico.test", leafA},
		{"second name", "b.portico.test", leafB},
		{"no SNI gets the first certificate", "", leafA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &tls.Config{RootCAs: ca.pool, ServerName: tt.serverName}
			if tt.serverName == "" {
				// Dialling an IP sends no SNI, and there is no name to check the certificate
				// against, so the chain is verified here without one.
				cfg.InsecureSkipVerify = true
				cfg.VerifyConnection = func(cs tls.ConnectionState) error {
					_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: ca.pool})
					return err
				}
			}
			conn, err := tls.Dial("tcp", s.Addr(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if got := conn.ConnectionState().PeerCertificates[0]; !got.Equal(tt.want) {
				t.Fatalf("server presented %v, want %v", got.DNSNames, tt.want.DNSNames)
			}
		})
	}
}

func TestTLSNegotiatesHTTP2OverALPN(t *testing.T) {
	ca := newTestCA(t, "ca")
	cert, _ := ca.serverCert(t, t.TempDir(), "a.portico.test")
	s := start(t, Config{TLS: &TLSConfig{Certificates: []CertConfig{cert}}}, ServerConfig{})

	tests := []struct {
		name      string
		client    func(t *testing.T) *http.Client
		wantALPN  string
		wantMajor int
	}{
		{"h2 client", func(t *testing.T) *http.Client { return httpsClient(t, ca, "a.portico.test") }, "h2", 2},
		{"http/1.1-only client", func(t *testing.T) *http.Client {
			tr := &http.Transport{TLSClientConfig: &tls.Config{
				RootCAs: ca.pool, ServerName: "a.portico.test", NextProtos: []string{"http/1.1"},
			}}
			t.Cleanup(tr.CloseIdleConnections)
			return &http.Client{Transport: tr, Timeout: 2 * time.Second}
		}, "http/1.1", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := get(tt.client(t), "https://"+s.Addr()+"/")
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.TLS.NegotiatedProtocol; got != tt.wantALPN {
				t.Errorf("ALPN = %q, want %q", got, tt.wantALPN)
			}
			if resp.ProtoMajor != tt.wantMajor {
				t.Errorf("client saw HTTP/%d, want HTTP/%d", resp.ProtoMajor, tt.wantMajor)
			}
			if got := resp.Header.Get("X-Proto-Major"); got != strconv.Itoa(tt.wantMajor) {
				t.Errorf("handler saw r.ProtoMajor = %s, want %d", got, tt.wantMajor)
			}
		})
	}
}

func TestTLSMinVersion(t *testing.T) {
	ca := newTestCA(t, "ca")
	cert, _ := ca.serverCert(t, t.TempDir(), "a.portico.test")

	tests := []struct {
		name             string
		minVersion       string
		clientMin        uint16
		clientMax        uint16
		wantVersion      uint16 // 0: the handshake must fail
		wantErrSubstring string
	}{
		{"default refuses TLS 1.1", "", tls.VersionTLS10, tls.VersionTLS11, 0, "protocol version"},
		{"default accepts TLS 1.2", "", tls.VersionTLS12, tls.VersionTLS12, tls.VersionTLS12, ""},
		{"1.3 refuses TLS 1.2", "1.3", tls.VersionTLS12, tls.VersionTLS12, 0, "protocol version"},
		{"1.3 accepts TLS 1.3", "1.3", tls.VersionTLS13, tls.VersionTLS13, tls.VersionTLS13, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, Config{TLS: &TLSConfig{Certificates: []CertConfig{cert}, MinVersion: tt.minVersion}}, ServerConfig{})
			conn, err := tls.Dial("tcp", s.Addr(), &tls.Config{
				RootCAs: ca.pool, ServerName: "a.portico.test", MinVersion: tt.clientMin, MaxVersion: tt.clientMax,
			})
			if tt.wantVersion == 0 {
				if err == nil {
					conn.Close()
					t.Fatal("handshake succeeded, want it refused")
				}
				if !strings.Contains(err.Error(), tt.wantErrSubstring) {
					t.Fatalf("handshake error %q, want one about %q", err, tt.wantErrSubstring)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if got := conn.ConnectionState().Version; got != tt.wantVersion {
				t.Fatalf("negotiated %s, want %s", tls.VersionName(got), tls.VersionName(tt.wantVersion))
			}
		})
	}
}

func TestTLSClientCertificates(t *testing.T) {
	ca := newTestCA(t, "server-ca")
	clientCA := newTestCA(t, "client-ca")
	strangerCA := newTestCA(t, "stranger-ca")
	cert, _ := ca.serverCert(t, t.TempDir(), "a.portico.test")
	signed := clientCA.clientCert(t)
	foreign := strangerCA.clientCert(t)

	tests := []struct {
		name       string
		clientAuth string
		cert       *tls.Certificate
		wantChains int // -1: the connection must be refused
	}{
		{"require refuses a client without certificate", "require", nil, -1},
		{"require accepts a certificate from the client CA", "require", &signed, 1},
		{"require refuses a certificate from another CA", "require", &foreign, -1},
		{"request accepts a client without certificate", "request", nil, 0},
		{"request verifies a certificate from the client CA", "request", &signed, 1},
		{"request refuses a certificate from another CA", "request", &foreign, -1},
		{"unset means request", "", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, Config{TLS: &TLSConfig{
				Certificates: []CertConfig{cert}, ClientCA: clientCA.file, ClientAuth: tt.clientAuth,
			}}, ServerConfig{})
			resp, err := get(mtlsClient(t, ca, "a.portico.test", tt.cert), "https://"+s.Addr()+"/")
			if tt.wantChains < 0 {
				if err == nil {
					t.Fatalf("request succeeded with status %d, want the handshake refused", resp.StatusCode)
				}
				// With TLS 1.3 the client learns of the refusal on its first read, as an alert
				// ("certificate required", "unknown certificate authority").
				if !strings.Contains(err.Error(), "certificate") {
					t.Fatalf("error %q is not a certificate refusal", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200", resp.StatusCode)
			}
			if got := resp.Header.Get("X-Verified-Chains"); got != strconv.Itoa(tt.wantChains) {
				t.Fatalf("handler saw %s verified chains, want %d", got, tt.wantChains)
			}
		})
	}
}

func TestReloadTLS(t *testing.T) {
	ca := newTestCA(t, "ca")
	dir := t.TempDir()
	cert, oldLeaf := ca.serverCert(t, dir, "a.portico.test")
	cfg := TLSConfig{Certificates: []CertConfig{cert}}
	s := start(t, Config{TLS: &cfg}, ServerConfig{})
	url := "https://" + s.Addr() + "/"

	// reused tells whether a request went over an already open connection.
	var reused bool
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
	getTraced := func(c *http.Client) *http.Response {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			t.Fatal(err)
		}
		return resp
	}
	presented := func(resp *http.Response) *x509.Certificate { return resp.TLS.PeerCertificates[0] }

	established := httpsClient(t, ca, "a.portico.test")
	if got := presented(getTraced(established)); !got.Equal(oldLeaf) {
		t.Fatal("first connection did not get the configured certificate")
	}

	// A renewal writes new files in place; the reload must read them again.
	newLeaf := ca.issue(t, cert.Cert, cert.Key, x509.ExtKeyUsageServerAuth, "a.portico.test")
	if err := s.ReloadTLS(cfg); err != nil {
		t.Fatal(err)
	}
	if got := presented(getTraced(httpsClient(t, ca, "a.portico.test"))); !got.Equal(newLeaf) {
		t.Fatal("a new connection after ReloadTLS did not get the new certificate")
	}
	resp := getTraced(established)
	if !reused {
		t.Fatal("the established keep-alive connection was not reused")
	}
	if !presented(resp).Equal(oldLeaf) {
		t.Fatal("the established connection changed certificate")
	}

	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	other, _ := ca.serverCert(t, dir, "other.portico.test")
	broken := []struct {
		name string
		cfg  TLSConfig
	}{
		{"certificate file is not PEM", TLSConfig{Certificates: []CertConfig{{Cert: garbage, Key: cert.Key}}}},
		{"key file is missing", TLSConfig{Certificates: []CertConfig{{Cert: cert.Cert, Key: filepath.Join(dir, "missing.pem")}}}},
		{"key belongs to another certificate", TLSConfig{Certificates: []CertConfig{{Cert: cert.Cert, Key: other.Key}}}},
		{"no certificates", TLSConfig{}},
		{"client CA has no certificate", TLSConfig{Certificates: []CertConfig{cert}, ClientCA: garbage}},
	}
	for _, tt := range broken {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.ReloadTLS(tt.cfg); err == nil {
				t.Fatal("ReloadTLS accepted a broken configuration")
			}
			if got := presented(getTraced(httpsClient(t, ca, "a.portico.test"))); !got.Equal(newLeaf) {
				t.Fatal("a failed reload replaced the working certificate")
			}
		})
	}
}

func TestH2C(t *testing.T) {
	priorKnowledge := func(t *testing.T) *http.Client {
		p := new(http.Protocols)
		p.SetUnencryptedHTTP2(true)
		tr := &http.Transport{Protocols: p}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 2 * time.Second}
	}
	http1 := func(t *testing.T) *http.Client {
		tr := &http.Transport{}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 2 * time.Second}
	}
	tests := []struct {
		name      string
		h2c       bool
		client    func(t *testing.T) *http.Client
		wantMajor int // 0: the request must fail
	}{
		{"h2c on, prior knowledge", true, priorKnowledge, 2},
		{"h2c on, HTTP/1.1 still served", true, http1, 1},
		{"h2c off, prior knowledge fails", false, priorKnowledge, 0},
		{"h2c off, HTTP/1.1", false, http1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, Config{H2C: tt.h2c}, ServerConfig{})
			resp, err := get(tt.client(t), "http://"+s.Addr()+"/")
			if tt.wantMajor == 0 {
				if err == nil {
					t.Fatalf("HTTP/2 without TLS succeeded (HTTP/%d) on a listener without h2c", resp.ProtoMajor)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.ProtoMajor != tt.wantMajor || resp.Header.Get("X-Proto-Major") != strconv.Itoa(tt.wantMajor) {
				t.Fatalf("client saw HTTP/%d, handler saw HTTP/%s, want %d", resp.ProtoMajor, resp.Header.Get("X-Proto-Major"), tt.wantMajor)
			}
		})
	}
}

// rawRequest sends head (request line and headers, without the final blank line) and returns the
// status code of the answer.
func rawRequest(t *testing.T, addr, head string) int {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(conn, head+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestServerLimits(t *testing.T) {
	s := start(t, Config{}, ServerConfig{
		ReadHeaderTimeout: confval.Duration(200 * time.Millisecond),
		MaxHeaderBytes:    4 << 10,
	})

	t.Run("headers within the limit", func(t *testing.T) {
		head := "GET / HTTP/1.1\r\nHost: portico.test\r\nX-Big: " + strings.Repeat("a", 2<<10) + "\r\n"
		if got := rawRequest(t, s.Addr(), head); got != http.StatusOK {
			t.Fatalf("status %d, want 200", got)
		}
	})
	t.Run("headers above max_header_bytes get 431", func(t *testing.T) {
		// net/http allows 4KiB of slack above MaxHeaderBytes, so go well past both.
		head := "GET / HTTP/1.1\r\nHost: portico.test\r\nX-Big: " + strings.Repeat("a", 32<<10) + "\r\n"
		if got := rawRequest(t, s.Addr(), head); got != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("status %d, want 431", got)
		}
	})
	t.Run("a client dripping headers is disconnected", func(t *testing.T) {
		conn, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: portico.test\r\nX-Slow: "); err != nil {
			t.Fatal(err)
		}
		// One byte every 50ms keeps the connection busy but never finishes the headers; the
		// header timeout is a deadline for the whole header, not an idle timer.
		stop := make(chan struct{})
		dripped := make(chan struct{})
		go func() {
			defer close(dripped)
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					if _, err := conn.Write([]byte("a")); err != nil {
						return
					}
				}
			}
		}()
		defer func() { close(stop); <-dripped }()
		// Our own deadline is well past the server's 200ms; reaching it means the server kept the
		// slow client.
		_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		got, err := io.ReadAll(conn)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("server still held the connection after 3s")
		}
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("reading: %v", err)
		}
		if len(got) != 0 {
			t.Fatalf("server answered %q, want the connection closed", got)
		}
	})
}

// The largest max_header_bytes validation accepts must still serve: net/http adds its 4096 bytes
// of slack to it, which overflowed for values near MaxInt64 and refused every request with 431.
func TestLargestAcceptedMaxHeaderBytesServes(t *testing.T) {
	s := start(t, Config{}, ServerConfig{MaxHeaderBytes: MaxHeaderBytesLimit})
	if got := rawRequest(t, s.Addr(), "GET / HTTP/1.1\r\nHost: portico.test\r\n"); got != http.StatusOK {
		t.Fatalf("status %d, want 200", got)
	}
}

// ExampleServer shows the order a caller follows: New loads certificates, Listen reports a taken
// port, Serve blocks.
func ExampleServer() {
	s, err := New(Config{Address: "127.0.0.1:0"}, ServerConfig{}, http.NotFoundHandler())
	if err != nil {
		fmt.Println(err)
		return
	}
	ln, err := s.Listen()
	if err != nil {
		fmt.Println(err)
		return
	}
	go func() { _ = s.Serve(ln) }()
	defer s.Close()
	fmt.Println(s.Addr() != "")
	// Output: true
}

// server.http1_server chooses what serves a cleartext HTTP/1.1 listener: h1serve by default, Go's
// net/http on request; TLS and h2c listeners are net/http's either way.
func TestHTTP1Server(t *testing.T) {
	writerType := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for {
			u, ok := w.(interface{ Unwrap() http.ResponseWriter })
			if !ok {
				break
			}
			w = u.Unwrap()
		}
		fmt.Fprintf(w, "%T", w)
	})
	for _, tt := range []struct {
		name string
		cfg  Config
		sc   ServerConfig
		want string
	}{
		{"default", Config{Address: "127.0.0.1:0"}, ServerConfig{}, "*h1serve.response"},
		{"portico", Config{Address: "127.0.0.1:0"}, ServerConfig{HTTP1Server: HTTP1Portico}, "*h1serve.response"},
		{"net/http", Config{Address: "127.0.0.1:0"}, ServerConfig{HTTP1Server: HTTP1NetHTTP}, "*http.response"},
		{"h2c listener", Config{Address: "127.0.0.1:0", H2C: true}, ServerConfig{}, "*http.response"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := serveWith(t, tt.cfg, tt.sc, writerType)
			resp, err := http.Get("http://" + s.Addr() + "/")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if string(body) != tt.want {
				t.Errorf("served by %s, want %s", body, tt.want)
			}
		})
	}
}
