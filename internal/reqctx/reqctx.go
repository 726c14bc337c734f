// Package reqctx carries what Portico learns about an inbound request (its ID, the client's
// address, the authenticated identity, the route it matched) through context.Context, so that the
// upstream layer can propagate it and the access log can report it without either importing the
// edge.
package reqctx

import (
	"context"
	"net/http"
	"strings"
	"time"
)

// Info is the per-request record the edge creates once and later stages fill in. It is a pointer
// in the context so that inner handlers can set Route and Upstream for the access log and metrics
// without allocating a new context per stage. Only the goroutine serving the request writes it.
type Info struct {
	// ID is the request ID: the client's X-Request-ID when it sent a valid one, else generated.
	ID string
	// ClientIP is the client's address as Portico trusts it (the TCP peer unless a trusted proxy
	// chain says otherwise).
	ClientIP string
	// Start is when the edge received the request.
	Start time.Time
	// Route is the name of the matched route or BFF, empty until the router matches.
	Route string
	// Upstream is the name of the upstream that served the request, if any.
	Upstream string
	// Identity is the authenticated caller, nil when the request is anonymous.
	Identity *Identity
	// ErrorCode is the machine-readable code of an error answer Portico wrote itself, for logs.
	ErrorCode string
	// PreflightAllow is set when the router routed a CORS preflight by the method it asks about
	// to a route that does not take OPTIONS: the Allow that route answers OPTIONS with. A cors
	// policy answers the preflight; if none does, the proxy answers 405 with it instead of
	// sending upstream an OPTIONS the route never allows.
	PreflightAllow string
	// GraphQL is set for a request to a BFF's GraphQL endpoint before its policies run: the media
	// type (application/graphql-response+json or application/json) in which an error Portico
	// writes itself, a policy's 401 or 429, takes the GraphQL response shape. GraphQL clients
	// read errors[].message and extensions.code; {"error": …} reads to them as no answer at all.
	GraphQL string
}

// Identity is an authenticated consumer, forwarded to upstreams as X-Consumer-* headers.
type Identity struct {
	// Anonymous is true for the anonymous fallback consumer (no credential was sent).
	Anonymous bool
	Consumer  string
	Groups    []string
	Subject   string
	Claims    map[string]any
	// Credential is the raw credential an authenticator accepted, when another authenticator may
	// have answered policies.ErrNotMine for it (a bearer token); never sent on, never logged.
	Credential string `json:"-"`
}

type infoKey struct{}

// With returns a context carrying info.
func With(ctx context.Context, info *Info) context.Context {
	return context.WithValue(ctx, infoKey{}, info)
}

// From returns the request's Info, or nil outside a request Portico is serving (for example a
// background health check).
func From(ctx context.Context) *Info {
	info, _ := ctx.Value(infoKey{}).(*Info)
	return info
}

// SendableValue reports whether s can go upstream as a header field value: no control byte but
// HTAB (RFC 9110 5.5). An identity's subject comes from a token or certificate, not from the
// HTTP parser that refuses such bytes in client headers, so authenticators check it with this.
func SendableValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// HeaderRequestID is the header that carries the request ID both ways.
const HeaderRequestID = "X-Request-ID"

// RequestIDKey is HeaderRequestID as an http.Header map key, for code that indexes the map
// directly on the hot path.
var RequestIDKey = http.CanonicalHeaderKey(HeaderRequestID)

// Identity headers Portico sets toward upstreams. Any copy the client sent is removed first so a
// client cannot claim an identity.
var IdentityHeaders = []string{"X-Consumer-Name", "X-Consumer-Groups", "X-Authenticated-Subject", "X-Anonymous-Consumer"}

// KongIdentityHeaders are the identity headers Kong sets toward upstreams. Portico never sets
// them, but backends moved from behind Kong still trust them, so on an authenticated request the
// client's copies are removed, as Kong removes them, before request transforms (which may set
// them from the identity). Like Kong, a request to a scope without authentication keeps them.
var KongIdentityHeaders = []string{"X-Consumer-Id", "X-Consumer-Custom-Id", "X-Consumer-Username",
	"X-Credential-Identifier", "X-Authenticated-Groups", "X-Authenticated-Scope", "X-Authenticated-Userid"}

// BackendSpelling is the field name k as CGI-style backends (PHP, WSGI, Rack) read it, in
// canonical form: they turn every name into HTTP_NAME_IN_CAPITALS, so X_Consumer_Name,
// x-consumer_name and X-Consumer-Name are one field to them (Puma's CVE-2024-45614). Two names
// with the same spelling must be judged together, or a client can send one Portico never looked
// at under the other's meaning.
func BackendSpelling(k string) string {
	return http.CanonicalHeaderKey(strings.ReplaceAll(k, "_", "-"))
}

// SetUpstreamHeaders writes the request ID and identity from ctx onto h, an outbound header map,
// after removing any of Portico's identity headers already there. Kong's are removed from the
// request when it is authenticated (policies.Chain), before request transforms: a transform may
// set them for a backend moved from Kong, and they must arrive.
//
// It runs on every upstream call, so it writes the canonical keys straight into the map rather
// than through Set and Del, which canonicalize each key again.
func SetUpstreamHeaders(ctx context.Context, h http.Header) {
	for _, k := range IdentityHeaders {
		delete(h, k)
	}
	info := From(ctx)
	if info == nil {
		return
	}
	if info.ID != "" {
		// The edge has usually put this very ID on the inbound header the outbound one copies.
		if v := h[RequestIDKey]; len(v) != 1 || v[0] != info.ID {
			h[RequestIDKey] = []string{info.ID}
		}
	}
	if id := info.Identity; id != nil {
		if id.Consumer != "" {
			h["X-Consumer-Name"] = []string{id.Consumer}
		}
		if len(id.Groups) > 0 {
			h["X-Consumer-Groups"] = []string{strings.Join(id.Groups, ",")}
		}
		if id.Subject != "" {
			h["X-Authenticated-Subject"] = []string{id.Subject}
		}
		if id.Anonymous {
			h["X-Anonymous-Consumer"] = []string{"true"}
		}
	}
}
