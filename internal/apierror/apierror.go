// Package apierror is the one place where Portico turns an error into an HTTP answer. Every
// handler and policy returns or passes errors that carry a status; Write translates them into the
// JSON body from DESIGN.md, so clients see one shape whatever failed.
package apierror

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/portico-gw/portico/internal/reqctx"
)

// Error is an error with the status and code a client should see. Message must be safe to show:
// never a backend address, stack trace or secret.
type Error struct {
	Status  int
	Code    string
	Message string
	// Header holds extra response headers, such as Allow on a 405 or Retry-After on a 429.
	Header http.Header
	// Err is the underlying cause, kept for logs and errors.Is, never shown to the client.
	Err error
}

// New returns an Error with the given status, code and client-safe message.
func New(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

// Unwrap exposes the cause to errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }

// StatusCode reports the HTTP status the error maps to.
func (e *Error) StatusCode() int { return e.Status }

// ErrorCode reports the machine-readable code.
func (e *Error) ErrorCode() string { return e.Code }

// StatusCoder is implemented by errors that know their HTTP status, such as the upstream layer's.
type StatusCoder interface{ StatusCode() int }

// ErrorCoder is implemented by errors that carry a machine-readable code.
type ErrorCoder interface{ ErrorCode() string }

// StatusClientClosedRequest is the nginx convention for a client that went away before the answer;
// it appears in logs and metrics only, since nobody is left to read the response.
const StatusClientClosedRequest = 499

// Classify returns the status, code and client-safe message for any error. Errors that do not
// carry a status are internal: 500 with a generic message, so nothing leaks.
func Classify(err error) (status int, code, message string) {
	var e *Error
	if errors.As(err, &e) {
		return e.Status, e.Code, e.Message
	}
	if errors.Is(err, context.Canceled) {
		return StatusClientClosedRequest, "CLIENT_CLOSED_REQUEST", "client closed request"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return http.StatusGatewayTimeout, "UPSTREAM_TIMEOUT", "upstream timed out"
	}
	status = http.StatusInternalServerError
	var sc StatusCoder
	if errors.As(err, &sc) {
		status = sc.StatusCode()
	}
	code = defaultCode(status)
	var ec ErrorCoder
	if errors.As(err, &ec) {
		code = ec.ErrorCode()
	}
	return status, code, http.StatusText(status)
}

func defaultCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "BAD_REQUEST"
	case http.StatusUnauthorized:
		return "UNAUTHORIZED"
	case http.StatusForbidden:
		return "FORBIDDEN"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusMethodNotAllowed:
		return "METHOD_NOT_ALLOWED"
	case http.StatusRequestEntityTooLarge:
		return "REQUEST_TOO_LARGE"
	case http.StatusTooManyRequests:
		return "RATE_LIMITED"
	case http.StatusBadGateway:
		return "BAD_GATEWAY"
	case http.StatusServiceUnavailable:
		return "UPSTREAM_UNAVAILABLE"
	case http.StatusGatewayTimeout:
		return "UPSTREAM_TIMEOUT"
	}
	if status >= 500 {
		return "INTERNAL"
	}
	return "ERROR"
}

type body struct {
	Error bodyError `json:"error"`
}

type bodyError struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
}

// graphqlBody is the error body on a GraphQL endpoint: a GraphQL response without data, its code
// and request ID where the BFF's own errors have them.
type graphqlBody struct {
	Errors []graphqlError `json:"errors"`
}

type graphqlError struct {
	Message    string            `json:"message"`
	Extensions graphqlExtensions `json:"extensions"`
}

type graphqlExtensions struct {
	Code      string `json:"code"`
	RequestID string `json:"request_id,omitempty"`
}

// Write answers the request with err as the JSON error body, in the GraphQL response shape on a
// GraphQL endpoint (reqctx.Info.GraphQL). A client that already went away gets nothing written;
// the 499 is recorded for the access log.
func Write(w http.ResponseWriter, r *http.Request, err error) {
	status, code, message := Classify(err)
	info := reqctx.From(r.Context())
	if info != nil {
		info.ErrorCode = code
	}
	if status == StatusClientClosedRequest {
		// Nobody reads this; the status only reaches the access log through the recorder.
		w.WriteHeader(status)
		return
	}
	var e *Error
	if errors.As(err, &e) {
		for k, v := range e.Header {
			w.Header()[k] = v
		}
	}
	var out []byte
	contentType := "application/json"
	switch {
	case info != nil && info.GraphQL != "":
		out, _ = json.Marshal(graphqlBody{Errors: []graphqlError{{Message: message, Extensions: graphqlExtensions{Code: code, RequestID: info.ID}}}})
		contentType = info.GraphQL
		// As the BFF's own answers: the media type follows Accept, and an error is never kept.
		w.Header().Add("Vary", "Accept")
		w.Header().Set("Cache-Control", "no-store")
	default:
		b := body{Error: bodyError{Code: code, Message: message}}
		if info != nil {
			b.Error.RequestID = info.ID
		}
		out, _ = json.Marshal(b)
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(out)+1))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(out, '\n'))
}
