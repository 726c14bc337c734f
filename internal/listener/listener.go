// Package listener owns Portico's client-facing sockets: plain HTTP/1.1, h2c, and TLS with
// certificates chosen by SNI, HTTP/2 over ALPN and optional client certificates. Certificates are
// held behind an atomic pointer so a reload swaps them without touching open connections.
package listener

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/internal/h1serve"
)

// Server is one configured listener and the http.Server that serves it.
type Server struct {
	cfg  Config
	srv  *http.Server
	tls  atomic.Pointer[tls.Config]
	addr atomic.Pointer[string]
	// h1 serves a cleartext HTTP/1.1 listener, handing what it does not take to srv (see
	// h1serve); nil on TLS and h2c listeners, which srv serves alone.
	h1 *h1serve.Server
}

// New prepares a server for cfg that hands every request to h. TLS material is loaded now, so a
// bad certificate fails at start, not at the first handshake.
func New(cfg Config, sc ServerConfig, h http.Handler) (*Server, error) {
	s := &Server{cfg: cfg}
	send := sc.SendTimeout.Or(defaultSendTimeout)
	s.srv = &http.Server{
		Handler:           &sendTimeout{next: h, d: send, capAfter: sc.WriteTimeout.Std()},
		ReadHeaderTimeout: sc.ReadHeaderTimeout.Or(10 * time.Second),
		ReadTimeout:       sc.ReadTimeout.Or(DefaultReadTimeout),
		WriteTimeout:      sc.WriteTimeout.Std(),
		IdleTimeout:       sc.IdleTimeout.Or(120 * time.Second),
		MaxHeaderBytes:    int(sc.MaxHeaderBytes.Or(1 << 20)),
		// net/http's own complaints (mostly TLS handshake noise from scanners) go to the structured
		// log at debug level instead of unstructured stderr.
		ErrorLog: slog.NewLogLogger(slog.Default().Handler(), slog.LevelDebug),
		// HTTP/2's send_timeout: a connection on which nothing could be written for this long is
		// closed (its writer re-arms the deadline before every write, as sendTimeout does for
		// HTTP/1).
		HTTP2: &http.HTTP2Config{WriteByteTimeout: send},
	}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	if cfg.TLS != nil {
		protocols.SetHTTP2(true)
		if err := s.ReloadTLS(*cfg.TLS); err != nil {
			return nil, err
		}
		s.srv.TLSConfig = &tls.Config{
			// Each handshake takes the current certificates, so a reload applies to the next
			// connection while established ones keep theirs.
			GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return s.tls.Load(), nil },
			NextProtos:         []string{"h2", "http/1.1"},
		}
	} else if cfg.H2C {
		protocols.SetUnencryptedHTTP2(true)
	}
	s.srv.Protocols = protocols
	if cfg.TLS == nil && !cfg.H2C && sc.HTTP1Server != HTTP1NetHTTP {
		s.h1 = h1serve.New(s.srv)
	}
	return s, nil
}

// ReloadTLS reads the certificate files and client CA again and uses them for new connections.
// On error the previous certificates stay in use.
func (s *Server) ReloadTLS(cfg TLSConfig) error {
	tc, err := LoadTLS(cfg)
	if err != nil {
		return err
	}
	s.tls.Store(tc)
	return nil
}

// LoadTLS builds a server tls.Config from files. Go's crypto/tls picks among several
// certificates by the client's SNI; the first is the default.
func LoadTLS(cfg TLSConfig) (*tls.Config, error) {
	if len(cfg.Certificates) == 0 {
		return nil, errors.New("tls: at least one certificate is required")
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	if cfg.MinVersion == "1.3" {
		tc.MinVersion = tls.VersionTLS13
	}
	for _, c := range cfg.Certificates {
		pair, err := confval.LoadKeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, fmt.Errorf("loading certificate %s: %w", c.Cert, err)
		}
		tc.Certificates = append(tc.Certificates, pair)
	}
	if cfg.ClientCA != "" {
		pem, err := confval.ReadFile(cfg.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("reading client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client CA %s: no PEM certificates found", cfg.ClientCA)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.VerifyClientCertIfGiven
		if cfg.ClientAuth == "require" {
			tc.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return tc, nil
}

// Listen binds the socket. It is separate from Serve so that the caller learns of a taken port
// before it reports the gateway as started.
func (s *Server) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", s.cfg.Address, err)
	}
	addr := ln.Addr().String()
	s.addr.Store(&addr)
	if s.cfg.TLS != nil {
		ln = tls.NewListener(ln, s.srv.TLSConfig)
	}
	return ln, nil
}

// Serve serves ln until Shutdown; it returns nil after a graceful shutdown.
func (s *Server) Serve(ln net.Listener) error {
	if s.h1 != nil {
		return s.h1.Serve(ln)
	}
	err := s.srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Addr is the bound address (useful with port 0), empty before Listen.
func (s *Server) Addr() string {
	if a := s.addr.Load(); a != nil {
		return *a
	}
	return ""
}

// Config returns the listener's configuration.
func (s *Server) Config() Config { return s.cfg }

// Shutdown stops accepting and waits, until ctx is done, for the requests in flight.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.h1 != nil {
		return s.h1.Shutdown(ctx)
	}
	return s.srv.Shutdown(ctx)
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error {
	if s.h1 != nil {
		return s.h1.Close()
	}
	return s.srv.Close()
}
