// Package sizelimit implements the request-size-limit policy: request bodies over a size are
// refused with 413, before reading when Content-Length says so, while reading otherwise.
package sizelimit

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/portico-gw/portico/internal/apierror"
	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/policies"
)

// DefaultMaxBytes is Kong's default allowed payload size, 128 MiB.
const DefaultMaxBytes = 128 << 20

// Config is the request-size-limit policy's settings:
//
//	policies:
//	  small-bodies:
//	    request-size-limit: {max_bytes: 1MiB, require_content_length: true}
type Config struct {
	// MaxBytes is the largest request body accepted, as a number of bytes or with a unit
	// ("64KiB", "10MB"); default 128MiB (Kong's default).
	MaxBytes confval.ByteSize `yaml:"max_bytes"`
	// RequireContentLength refuses (411) requests that have neither a Content-Length header nor a
	// chunked (or, on HTTP/2 and 3, streamed) body. GET, HEAD, OPTIONS and TRACE are exempt: they
	// carry no body, and a client has no reason to declare an empty one.
	RequireContentLength bool `yaml:"require_content_length"`
}

// Validate reports every problem under path ("policies.small-bodies.request-size-limit").
func (c *Config) Validate(path string, p *confval.Problems) {
	if c.MaxBytes < 0 {
		p.Addf(confval.Join(path, "max_bytes"), "must not be negative")
	}
}

// The answers, with Kong's statuses and messages.
var (
	ErrTooLarge           = apierror.New(http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE", "Request size limit exceeded")
	ErrExpectationFailed  = apierror.New(http.StatusExpectationFailed, "REQUEST_TOO_LARGE", "Request size limit exceeded")
	ErrLengthRequired     = apierror.New(http.StatusLengthRequired, "LENGTH_REQUIRED", "A valid Content-Length header is required")
	errTooLargeConnClosed = &apierror.Error{Status: http.StatusRequestEntityTooLarge, Code: "REQUEST_TOO_LARGE",
		Message: "Request size limit exceeded",
		// The rest of an oversized stream is never read, so the connection cannot carry another
		// request.
		Header: http.Header{"Connection": {"close"}}}
)

// Limit is a built request-size-limit policy.
type Limit struct {
	max       int64
	requireCL bool
}

var _ policies.Policy = (*Limit)(nil)

// New builds a request-size-limit policy named name.
func New(name string, c Config, _ policies.Deps) (policies.Policy, error) {
	var p confval.Problems
	c.Validate("max_bytes", &p)
	if len(p) > 0 {
		return nil, fmt.Errorf("request-size-limit %q: %s: %s", name, p[0].Path, p[0].Message)
	}
	return &Limit{max: c.MaxBytes.Or(DefaultMaxBytes), requireCL: c.RequireContentLength}, nil
}

// Phase is PhaseSizeLimit: before authentication, so an oversized body is refused before any
// work is spent on it.
func (l *Limit) Phase() policies.Phase { return policies.PhaseSizeLimit }

// Wrap returns next behind the policy.
func (l *Limit) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > l.max {
			// Refused before reading. A client waiting for 100 Continue gets 417, so it never
			// sends the body at all (Kong does the same).
			if expectsContinue(r) {
				apierror.Write(w, r, ErrExpectationFailed)
			} else {
				apierror.Write(w, r, ErrTooLarge)
			}
			return
		}
		streamed := r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody
		if l.requireCL && !streamed && len(r.Header["Content-Length"]) == 0 && !bodyless(r.Method) {
			apierror.Write(w, r, ErrLengthRequired)
			return
		}
		if !streamed {
			// A declared length within the limit is enforced by the server: it never reads past it.
			next.ServeHTTP(w, r)
			return
		}
		body := &limitedBody{rc: r.Body, remaining: l.max, limit: l.max}
		r.Body = body
		lw := &writer{ResponseWriter: w, r: r, body: body}
		next.ServeHTTP(lw, r)
		if !lw.wroteHeader && body.exceeded.Load() {
			lw.reject()
		}
	})
}

func expectsContinue(r *http.Request) bool {
	for _, v := range r.Header["Expect"] {
		if strings.EqualFold(strings.TrimSpace(v), "100-continue") {
			return true
		}
	}
	return false
}

func bodyless(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// limitedBody counts a body of unknown length as it is read, with http.MaxBytesReader's
// semantics: a read past the limit returns *http.MaxBytesError (which the proxy and most handlers
// map to 413) and keeps returning it.
type limitedBody struct {
	rc        io.ReadCloser
	remaining int64
	limit     int64
	err       error
	// exceeded is read by the handler's goroutine while a transport goroutine may be reading the
	// body.
	exceeded atomic.Bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	// Read one byte more than allowed, so a body of exactly the limit is not mistaken for a
	// bigger one.
	if int64(len(p))-1 > b.remaining {
		p = p[:b.remaining+1]
	}
	n, err := b.rc.Read(p)
	if int64(n) <= b.remaining {
		b.remaining -= int64(n)
		b.err = err
		return n, err
	}
	n = int(b.remaining)
	b.remaining = 0
	b.err = &http.MaxBytesError{Limit: b.limit}
	b.exceeded.Store(true)
	return n, b.err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// writer turns whatever the handler answers after an oversized read into the 413, so the client
// sees one status for one cause whichever handler ran (a proxy would otherwise say 502).
type writer struct {
	http.ResponseWriter
	r           *http.Request
	body        *limitedBody
	wroteHeader bool
	rejected    bool
}

var bodyHeaders = []string{"Content-Length", "Content-Type", "Content-Encoding", "Content-Range", "Etag", "Last-Modified", "Transfer-Encoding"}

var errRejected = errors.New("request body over the size limit: answer already sent")

func (w *writer) reject() {
	w.wroteHeader, w.rejected = true, true
	h := w.ResponseWriter.Header()
	// Headers the handler prepared for its own body do not describe the 413's.
	for _, k := range bodyHeaders {
		delete(h, k)
	}
	apierror.Write(w.ResponseWriter, w.r, errTooLargeConnClosed)
}

func (w *writer) WriteHeader(code int) {
	if w.wroteHeader || code < 200 {
		if !w.rejected {
			w.ResponseWriter.WriteHeader(code)
		}
		return
	}
	if w.body.exceeded.Load() {
		w.reject()
		return
	}
	w.wroteHeader = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *writer) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.rejected {
		return 0, errRejected
	}
	return w.ResponseWriter.Write(b)
}

// Flush passes through so streams stay streams.
func (w *writer) Flush() {
	if w.rejected {
		return
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
		if w.rejected {
			return
		}
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }
