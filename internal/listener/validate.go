package listener

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/portico-gw/portico/internal/confval"
)

// CheckAddress reports whether addr is a listen address of the form "host:port" (host may be
// empty for all interfaces, port is a number; 0 picks a free port).
func CheckAddress(addr string) error {
	if addr == "" {
		return errors.New("address is required (host:port, e.g. \":8080\" or \"127.0.0.1:8080\")")
	}
	_, port, err := net.SplitHostPort(addr)
	if _, numErr := strconv.Atoi(addr); err != nil && numErr == nil {
		return fmt.Errorf("invalid address %q: a port alone is written %q", addr, ":"+addr)
	}
	if err != nil {
		return fmt.Errorf("invalid address %q: use host:port, e.g. \":8080\" or \"127.0.0.1:8080\"", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("invalid port in address %q: use a number from 0 to 65535", addr)
	}
	return nil
}

// Validate records every problem with the listener under path ("listeners[0]").
func (c *Config) Validate(path string, p *confval.Problems) {
	if err := CheckAddress(c.Address); err != nil {
		p.Addf(confval.Join(path, "address"), "%v", err)
	}
	if c.TLS != nil {
		if c.H2C {
			// h2c is HTTP/2 in clear text; on a TLS listener HTTP/2 is already offered over ALPN.
			p.Addf(confval.Join(path, "h2c"), "h2c cannot be combined with tls: a TLS listener already offers HTTP/2 over ALPN")
		}
		c.TLS.Validate(confval.Join(path, "tls"), p)
	}
}

// Validate records every problem with the TLS settings under path ("listeners[0].tls"). The
// certificate files are read, so a key that does not match its certificate is found at load time
// rather than on the first handshake.
func (c *TLSConfig) Validate(path string, p *confval.Problems) {
	if len(c.Certificates) == 0 {
		p.Addf(confval.Join(path, "certificates"), "at least one certificate is required")
	}
	for i, cert := range c.Certificates {
		checkKeyPair(confval.Index(confval.Join(path, "certificates"), i), "cert", cert.Cert, "key", cert.Key, true, p)
	}
	if c.ClientCA != "" {
		checkCAFile(confval.Join(path, "client_ca"), c.ClientCA, p)
	}
	switch c.ClientAuth {
	case "":
	case "request", "require":
		if c.ClientCA == "" {
			p.Addf(confval.Join(path, "client_auth"), "client_auth needs client_ca, the CA bundle client certificates are verified against")
		}
	default:
		p.Addf(confval.Join(path, "client_auth"), "unknown client_auth %q (allowed: request, require)", c.ClientAuth)
	}
	switch c.MinVersion {
	case "", "1.2", "1.3":
	default:
		p.Addf(confval.Join(path, "min_version"), "unsupported min_version %q (allowed: \"1.2\", \"1.3\")", c.MinVersion)
	}
}

// MaxHeaderBytesLimit is the largest max_header_bytes accepted. net/http lets a connection read
// MaxHeaderBytes plus 4096 bytes of slack for a request's headers, so a value near MaxInt64
// overflowed that sum into a negative limit and every request got 431; well before that, every
// connection could make the gateway hold that much memory for its headers. 64MiB is 64 times the
// default, far above any real header block.
const MaxHeaderBytesLimit = 64 << 20

// MaxProcs is the largest server.procs accepted. procs exists to run fewer threads than CPUs; a
// P beyond the CPUs only adds scheduler work, and the runtime allocates per-P state eagerly, so
// 100000 stalled a reload and 2147483648 (negative as the runtime's int32) killed the process.
// A fixed bound rather than a multiple of runtime.NumCPU keeps a config that `portico validate`
// passes on a small CI runner valid on the large host it is deployed to; 1024 is above the
// hardware threads of any single machine the gateway is likely to run on.
const MaxProcs = 1024

// Validate records every problem with the server limits under path ("server").
func (c *ServerConfig) Validate(path string, p *confval.Problems) {
	durations := []struct {
		name string
		v    confval.Duration
	}{
		{"read_header_timeout", c.ReadHeaderTimeout},
		{"read_timeout", c.ReadTimeout},
		{"write_timeout", c.WriteTimeout},
		{"send_timeout", c.SendTimeout},
		{"idle_timeout", c.IdleTimeout},
		{"shutdown_timeout", c.ShutdownTimeout},
		{"shutdown_delay", c.ShutdownDelay},
	}
	for _, d := range durations {
		if d.v < 0 {
			p.Addf(confval.Join(path, d.name), "must not be negative (0 means the default)")
		}
	}
	switch {
	case c.MaxHeaderBytes < 0:
		p.Addf(confval.Join(path, "max_header_bytes"), "must not be negative (0 means the default)")
	case c.MaxHeaderBytes > MaxHeaderBytesLimit:
		p.Addf(confval.Join(path, "max_header_bytes"), "must be at most %d (64MiB)", MaxHeaderBytesLimit)
	}
	if c.MaxBodyBytes < 0 {
		p.Addf(confval.Join(path, "max_body_bytes"), "must not be negative (0 means the default)")
	}
	switch {
	case c.Procs < 0:
		p.Addf(confval.Join(path, "procs"), "must not be negative (0 means one per CPU the process may use)")
	case c.Procs > MaxProcs:
		p.Addf(confval.Join(path, "procs"), "must be at most %d (0 means one per CPU the process may use)", MaxProcs)
	}
	switch c.HTTP1Server {
	case "", HTTP1Portico, HTTP1NetHTTP:
	default:
		p.Addf(confval.Join(path, "http1_server"), "unknown server %q (known: %s, %s)", c.HTTP1Server, HTTP1Portico, HTTP1NetHTTP)
	}
}

// checkKeyPair validates a certificate and key given as two PEM files named certField and
// keyField under path: both or neither must be set (required demands both), both files must
// exist, and the key must belong to the certificate.
func checkKeyPair(path, certField, certFile, keyField, keyFile string, required bool, p *confval.Problems) {
	certPath, keyPath := confval.Join(path, certField), confval.Join(path, keyField)
	switch {
	case certFile == "" && keyFile == "":
		if required {
			p.Addf(certPath, "%s and %s are required", certField, keyField)
		}
		return
	case certFile == "":
		p.Addf(certPath, "%s is required when %s is set", certField, keyField)
		return
	case keyFile == "":
		p.Addf(keyPath, "%s is required when %s is set", keyField, certField)
		return
	}
	certOK := p.RequireFile(certPath, certFile)
	keyOK := p.RequireFile(keyPath, keyFile)
	if !certOK || !keyOK {
		return
	}
	if _, err := confval.LoadKeyPair(certFile, keyFile); err != nil {
		p.Addf(certPath, "%s %q and %s %q are not a usable pair: %v", certField, certFile, keyField, keyFile, err)
	}
}

// checkCAFile validates a PEM bundle of CA certificates at path: the file exists and holds at
// least one certificate.
func checkCAFile(path, file string, p *confval.Problems) {
	if !p.RequireFile(path, file) {
		return
	}
	data, err := confval.ReadFile(file)
	if err != nil {
		p.Addf(path, "reading %q: %v", file, err)
		return
	}
	if !x509.NewCertPool().AppendCertsFromPEM(data) {
		p.Addf(path, "no PEM certificate found in %q", file)
	}
}
