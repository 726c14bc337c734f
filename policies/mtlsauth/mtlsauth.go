// Package mtlsauth is the mtls-auth policy: a consumer is identified by the client certificate
// the TLS listener verified against its client CA.
package mtlsauth

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/policies"
)

// Config is the mtls-auth policy's settings, written under its type key:
//
//	policies:
//	  partners-mtls: {mtls-auth: {}}
//
// The listener must have a client CA (listeners[].tls.client_ca); the certificate is verified
// there, during the handshake.
type Config struct {
	// Anonymous names a consumer that requests without a verified client certificate proceed
	// as, instead of being refused with 401. A verified certificate of no consumer is still
	// refused.
	Anonymous string `yaml:"anonymous"`
}

// Validate reports every problem in c under path. There is nothing to check without the
// consumer registry; New checks the anonymous consumer.
func (c *Config) Validate(path string, p *confval.Problems) {}

// MTLSAuth is a built mtls-auth policy.
type MTLSAuth struct {
	anonymous string
	consumers *policies.Consumers
}

var (
	_ policies.Authenticator = (*MTLSAuth)(nil)
	_ policies.Anonymous     = (*MTLSAuth)(nil)
)

// New builds the policy named name from c.
func New(name string, c Config, deps policies.Deps) (policies.Policy, error) {
	if err := deps.CheckAnonymous(fmt.Sprintf("mtls-auth policy %q", name), c.Anonymous); err != nil {
		return nil, err
	}
	return &MTLSAuth{anonymous: c.Anonymous, consumers: deps.Consumers}, nil
}

// Phase is authentication.
func (m *MTLSAuth) Phase() policies.Phase { return policies.PhaseAuthentication }

// Wrap authenticates alone, for use outside policies.Chain (which runs all of a scope's
// authenticators as one step and never calls Wrap).
func (m *MTLSAuth) Wrap(next http.Handler) http.Handler {
	return policies.Chain(next, []policies.Policy{m}, nil, m.consumers)
}

// Challenge is empty: HTTP has no authentication scheme for client certificates, and a
// WWW-Authenticate header would suggest one.
func (m *MTLSAuth) Challenge() string { return "" }

// AnonymousConsumer is the configured fallback consumer, or "".
func (m *MTLSAuth) AnonymousConsumer() string { return m.anonymous }

var errUnknownCertificate = errors.New("client certificate of no consumer")
var errBadSubject = errors.New("client certificate subject holds a control character")

// Authenticate maps the verified client certificate to its consumer. Only r.TLS.VerifiedChains
// counts: PeerCertificates alone are whatever the client sent (with client_auth "request" the TLS
// stack verifies a certificate when one is given, and VerifiedChains stays empty otherwise).
func (m *MTLSAuth) Authenticate(r *http.Request) (*reqctx.Identity, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil, nil
	}
	leaf := r.TLS.VerifiedChains[0][0]
	cons, ok := m.consumers.ByCertificate(leaf)
	if !ok {
		return nil, errUnknownCertificate
	}
	if !reqctx.SendableValue(leaf.Subject.CommonName) {
		// A consumer found by SAN may have any CN; it goes upstream as X-Authenticated-Subject.
		return nil, errBadSubject
	}
	return &reqctx.Identity{Consumer: cons.Name, Groups: cons.Groups, Subject: leaf.Subject.CommonName}, nil
}
