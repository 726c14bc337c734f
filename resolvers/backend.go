package resolvers

import (
	"context"
	"errors"
	"net/http"

	"github.com/portico-gw/portico/internal/apierror"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Backend is the only way resolvers reach the services. *upstreams.Client satisfies it; the
// upstream layer owns balancing, retries, timeouts, circuit breaking and identity propagation, so
// resolvers only name the upstream and the path. Failed calls return errors carrying
// StatusCode() and ErrorCode() (UPSTREAM_TIMEOUT, UPSTREAM_UNAVAILABLE, BAD_GATEWAY, NOT_FOUND).
type Backend interface {
	// GetJSON GETs path from upstream and decodes the JSON answer into out.
	GetJSON(ctx context.Context, upstream, path string, out any) error
	// SendJSON sends in as a JSON body with method and decodes the answer into out.
	SendJSON(ctx context.Context, upstream, method, path string, in, out any) error
}

// Upstream names the resolvers call; they must exist in the gateway's upstreams config.
const (
	upstreamUsers         = "users"
	upstreamOrders        = "orders"
	upstreamPayments      = "payments"
	upstreamNotifications = "notifications"
)

// Upstreams lists the upstream names the resolvers call, for the config check: a config with
// BFFs but without one of them started, and every field of that service failed.
func Upstreams() []string {
	return []string{upstreamNotifications, upstreamOrders, upstreamPayments, upstreamUsers}
}

// Error codes resolvers put in extensions.code besides the upstream layer's.
const (
	codeBadUserInput = "BAD_USER_INPUT"
	codeInternal     = "INTERNAL"
)

// backendError is the cause kept inside a GraphQL error for a failed backend call: logs and
// apierror.Classify see the upstream's status and code through it, clients never see its text.
type backendError struct {
	upstream string
	status   int
	code     string
	err      error
}

func (e *backendError) Error() string     { return "calling " + e.upstream + ": " + e.err.Error() }
func (e *backendError) Unwrap() error     { return e.err }
func (e *backendError) StatusCode() int   { return e.status }
func (e *backendError) ErrorCode() string { return e.code }

// upstreamError turns a failed backend call into the GraphQL error a client sees: a message that
// names the service but never its address, extensions.code from the upstream layer, and the cause
// kept for logs. It builds a new error on every call because gqlgen writes the field's path into
// the error, and a dataloader hands the same cause to many fields.
func upstreamError(upstream string, err error) *gqlerror.Error {
	status, code, _ := apierror.Classify(err)
	var msg string
	switch {
	case code == "UPSTREAM_TIMEOUT":
		msg = "the " + upstream + " service timed out"
	case code == "UPSTREAM_UNAVAILABLE":
		msg = "the " + upstream + " service is unavailable"
	case code == "CLIENT_CLOSED_REQUEST":
		msg = "the request was canceled"
	case code == "NOT_FOUND":
		msg = "the " + upstream + " service found no such object"
	case status >= 400 && status < 500:
		msg = "the " + upstream + " service rejected the request"
	default:
		msg = "the " + upstream + " service failed"
	}
	return &gqlerror.Error{
		Message:    msg,
		Extensions: map[string]any{"code": code, "service": upstream},
		Err:        &backendError{upstream: upstream, status: status, code: code, err: err},
	}
}

// isNotFound reports whether a backend answered 404, which single-object lookups turn into null.
func isNotFound(err error) bool {
	var ec apierror.ErrorCoder
	if errors.As(err, &ec) && ec.ErrorCode() == "NOT_FOUND" {
		return true
	}
	var sc apierror.StatusCoder
	return errors.As(err, &sc) && sc.StatusCode() == http.StatusNotFound
}

// inputError is a client mistake in arguments, which no backend is called for.
func inputError(msg string) *gqlerror.Error {
	return &gqlerror.Error{Message: msg, Extensions: map[string]any{"code": codeBadUserInput}}
}
