package listener

import (
	"time"

	"github.com/portico-gw/portico/internal/confval"
)

// DefaultReadTimeout bounds reading a request, body included, when server.read_timeout is unset.
const DefaultReadTimeout = 60 * time.Second

// Config declares one listening socket.
type Config struct {
	// Address to listen on, "host:port" (":8080" for all interfaces).
	Address string `yaml:"address"`
	// H2C accepts HTTP/2 without TLS (prior knowledge; Go does not offer the Upgrade: h2c route)
	// besides HTTP/1.1.
	H2C bool `yaml:"h2c"`
	// TLS terminates TLS on this listener; HTTP/2 is offered over ALPN.
	TLS *TLSConfig `yaml:"tls"`
}

// TLSConfig is a listener's TLS termination. Certificates and the client CA are read again on every
// reload, so a renewed certificate needs no restart.
type TLSConfig struct {
	// Certificates are chosen by SNI; the first is the default for clients that send no SNI.
	Certificates []CertConfig `yaml:"certificates"`
	// ClientCA is a PEM bundle; when set, clients may present certificates signed by it (mTLS).
	ClientCA string `yaml:"client_ca"`
	// ClientAuth: request (default when ClientCA is set: verify if given) or require.
	ClientAuth string `yaml:"client_auth"`
	// MinVersion: "1.2" (default) or "1.3".
	MinVersion string `yaml:"min_version"`
}

// CertConfig is one certificate and its key, as PEM files.
type CertConfig struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// ServerConfig bounds what one client connection may take, so slow clients cannot hold
// connections forever.
type ServerConfig struct {
	ReadHeaderTimeout confval.Duration `yaml:"read_header_timeout"` // default 10s
	ReadTimeout       confval.Duration `yaml:"read_timeout"`        // default 60s
	WriteTimeout      confval.Duration `yaml:"write_timeout"`       // default 0: streams may run long; use route timeouts
	SendTimeout       confval.Duration `yaml:"send_timeout"`        // default 60s: a client taking no bytes this long is cut (nginx send_timeout)
	IdleTimeout       confval.Duration `yaml:"idle_timeout"`        // default 120s
	MaxHeaderBytes    confval.ByteSize `yaml:"max_header_bytes"`    // default 1MiB, at most 64MiB
	MaxBodyBytes      confval.ByteSize `yaml:"max_body_bytes"`      // default 10MiB, per route override
	ShutdownTimeout   confval.Duration `yaml:"shutdown_timeout"`    // default 30s: drain time on SIGTERM
	// ShutdownDelay keeps serving after SIGTERM with /ready answering 503, before listeners close,
	// so load balancers stop sending new requests first (default 0; set it to their probe period).
	ShutdownDelay confval.Duration `yaml:"shutdown_delay"`
	// Procs is how many OS threads run Go code at once (GOMAXPROCS). 0 keeps Go's choice: the
	// CPUs the container may use. Fewer than the CPUs suits a host shared with busy neighbours.
	// At most MaxProcs.
	Procs int `yaml:"procs"`
	// HTTP1Server is what serves cleartext HTTP/1.1 listeners: "portico" (the default, h1serve,
	// which hands unusual requests to net/http) or "net/http" (Go's server for everything), the
	// way back should a client depend on something only net/http does.
	HTTP1Server string `yaml:"http1_server"`
}

// HTTP1Server values.
const (
	HTTP1Portico = "portico"
	HTTP1NetHTTP = "net/http"
)
