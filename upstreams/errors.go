package upstreams

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// The kinds of failure the upstream layer reports. Test for them with errors.Is on any error
// RoundTrip or Client returns.
var (
	// ErrUnknownUpstream is a call to an upstream name the registry does not hold: a wiring or
	// config bug, answered 502.
	ErrUnknownUpstream = errors.New("unknown upstream")
	// ErrNoHealthyTarget means every target is unhealthy, ejected or has weight 0 (503).
	ErrNoHealthyTarget = errors.New("no healthy target")
	// ErrCircuitOpen means the upstream's circuit breaker refused the call (503).
	ErrCircuitOpen = errors.New("circuit breaker open")
	// ErrRetryBudget means a call failed and the retry budget allowed no further try (503).
	ErrRetryBudget = errors.New("retry budget exhausted")
	// ErrTimeout covers the connect, response-header and total timeouts (504).
	ErrTimeout = errors.New("upstream timed out")
	// ErrBadGateway covers refused or reset connections, TLS failures and malformed or
	// undecodable responses (502).
	ErrBadGateway = errors.New("bad upstream response")
)

// Error is a failed upstream call. Its StatusCode and ErrorCode are what apierror shows; Error()
// may name the target's address and is meant for logs only.
type Error struct {
	// Upstream is the upstream's name.
	Upstream string
	// Target is the URL of the target that failed, empty when none was tried.
	Target string
	// Kind is one of the Err* sentinels above, or context.Canceled when the caller gave up.
	Kind error
	// Err is the underlying cause.
	Err error
}

func (e *Error) Error() string {
	s := "upstream " + strconv.Quote(e.Upstream) + ": " + e.Kind.Error()
	if e.Target != "" {
		s += " (target " + e.Target + ")"
	}
	if e.Err != nil && e.Err != e.Kind {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is reports whether target is the error's kind, so errors.Is(err, ErrTimeout) works.
func (e *Error) Is(target error) bool { return target == e.Kind }

// Unwrap exposes the cause.
func (e *Error) Unwrap() error { return e.Err }

// StatusCode is the HTTP status a client should see.
func (e *Error) StatusCode() int {
	switch e.Kind {
	case ErrNoHealthyTarget, ErrCircuitOpen, ErrRetryBudget:
		return http.StatusServiceUnavailable
	case ErrTimeout:
		return http.StatusGatewayTimeout
	case context.Canceled:
		// The nginx convention; apierror classifies context.Canceled before asking us anyway.
		return 499
	}
	return http.StatusBadGateway
}

// ErrorCode is the machine-readable code matching StatusCode.
func (e *Error) ErrorCode() string {
	switch e.StatusCode() {
	case http.StatusServiceUnavailable:
		return "UPSTREAM_UNAVAILABLE"
	case http.StatusGatewayTimeout:
		return "UPSTREAM_TIMEOUT"
	case 499:
		return "CLIENT_CLOSED_REQUEST"
	}
	return "BAD_GATEWAY"
}

// StatusError is a non-2xx answer from a backend to a Client.GetJSON or Client.SendJSON call. A
// backend's 4xx passes through as the same status so that, for example, a missing user is a 404
// for the caller. A backend's own 503 or 504 says it is unavailable or timed out further down, and
// stays a 503 UPSTREAM_UNAVAILABLE or 504 UPSTREAM_TIMEOUT so clients can back off and retry as
// they would for the gateway's own; anything else (other 5xx, or an unexpected 1xx/3xx) is the
// gateway's 502 (issue 3 review).
type StatusError struct {
	// Upstream is the upstream's name.
	Upstream string
	// Status is the backend's status code.
	Status int
	// Body holds the first bytes of the backend's answer, for logs; never shown to clients.
	Body []byte
}

func (e *StatusError) Error() string {
	s := "upstream " + strconv.Quote(e.Upstream) + " answered " + strconv.Itoa(e.Status)
	if len(e.Body) > 0 {
		s += ": " + string(e.Body)
	}
	return s
}

// StatusCode is the HTTP status a client should see.
func (e *StatusError) StatusCode() int {
	if e.Status >= 400 && e.Status < 500 {
		return e.Status
	}
	switch e.Status {
	case http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return e.Status
	}
	return http.StatusBadGateway
}

// ErrorCode is the machine-readable code matching StatusCode.
func (e *StatusError) ErrorCode() string {
	switch e.StatusCode() {
	case http.StatusBadRequest:
		return "BAD_REQUEST"
	case http.StatusUnauthorized:
		return "UNAUTHORIZED"
	case http.StatusForbidden:
		return "FORBIDDEN"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusConflict:
		return "CONFLICT"
	case http.StatusUnprocessableEntity:
		return "UNPROCESSABLE_ENTITY"
	case http.StatusTooManyRequests:
		return "RATE_LIMITED"
	case http.StatusBadGateway:
		return "BAD_GATEWAY"
	case http.StatusServiceUnavailable:
		return "UPSTREAM_UNAVAILABLE"
	case http.StatusGatewayTimeout:
		return "UPSTREAM_TIMEOUT"
	}
	return "UPSTREAM_ERROR"
}

// ClientBodyError is a call that failed because the caller's request body could not be read:
// over its size limit, malformed chunked encoding, a client too slow for the read timeout or
// still sending when the upstream's total timeout ran out. It is the caller's failure, not the
// target's: it is not retried, does not count against the target's health or the breaker, and
// the proxy answers it with a 4xx (413, 408 or 400).
type ClientBodyError struct{ Err error }

func (e *ClientBodyError) Error() string { return "reading the request body: " + e.Err.Error() }

func (e *ClientBodyError) Unwrap() error { return e.Err }

type bodyDeadlineKey struct{}

// WithBodyDeadline returns ctx carrying how to bound the reads of the request's body, from the
// server that reads it (http.ResponseController's SetReadDeadline): a call with a body sets it
// to the call's deadline, so that a client that stops sending mid-body fails the call when its
// total timeout runs out, as a ClientBodyError, rather than when the server's read timeout does.
func WithBodyDeadline(ctx context.Context, set func(time.Time) error) context.Context {
	return context.WithValue(ctx, bodyDeadlineKey{}, set)
}

// bodyReader remembers the first error reading the caller's body, so that a failed call can be
// told apart from a failed target. The transport reads it on a goroutine of its own, and closes
// it when the target fails; a read that fails because of that close is not the caller's.
type bodyReader struct {
	rc io.ReadCloser
	// deadline is the call's (zero: none), for waiting.
	deadline time.Time
	closed   atomic.Bool
	err      atomic.Pointer[error]
	// reading is set while a Read waits on the caller; stalled, for good, once a Read that began
	// before the deadline ended after it.
	reading, stalled atomic.Bool
}

func (b *bodyReader) Read(p []byte) (int, error) {
	var start time.Time
	if !b.deadline.IsZero() {
		start = time.Now()
	}
	b.reading.Store(true)
	n, err := b.rc.Read(p)
	b.reading.Store(false)
	if !b.deadline.IsZero() && start.Before(b.deadline) && !time.Now().Before(b.deadline) {
		b.stalled.Store(true)
	}
	if err != nil && err != io.EOF && !b.closed.Load() {
		b.err.CompareAndSwap(nil, &err)
	}
	return n, err
}

// waiting reports that the call's deadline passed while the transport waited for the caller's
// next body bytes: a Read is still blocked, or one outlasted the deadline. http.Transport does
// not return before its writer is done with the body, so the Read has usually ended by the time
// the error is classified; hence the deadline. A target that reads slowly leaves the transport
// blocked writing to it, not here.
func (b *bodyReader) waiting() bool { return b.stalled.Load() || b.reading.Load() }

func (b *bodyReader) Close() error {
	b.closed.Store(true)
	return b.rc.Close()
}

func (b *bodyReader) failed() error {
	if p := b.err.Load(); p != nil {
		return *p
	}
	return nil
}
