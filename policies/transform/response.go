package transform

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/policies"
)

// Response is a built response-transform policy.
type Response struct {
	name    string
	headers opSet
	body    *bodyEdits
}

var _ policies.Policy = (*Response)(nil)

// NewResponse builds a response-transform policy named name.
func NewResponse(name string, c ResponseConfig, _ policies.Deps) (policies.Policy, error) {
	var p confval.Problems
	headers, body := c.compile("", &p)
	if err := problemsError(p); err != nil {
		return nil, fmt.Errorf("response-transform %q: %w", name, err)
	}
	return &Response{name: name, headers: headers, body: body}, nil
}

// Phase is PhaseResponseTransform, outside the cache: per-request template values are rendered
// for every answer, hits included, and never stored.
func (t *Response) Phase() policies.Phase { return policies.PhaseResponseTransform }

// Wrap returns next behind the transform.
func (t *Response) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &responseWriter{ResponseWriter: w, t: t, e: env{r: r, info: reqctx.From(r.Context()), start: time.Now()}}
		next.ServeHTTP(rw, r)
		rw.finish()
	})
}

// responseWriter applies header edits when the status is written and, only when a body edit is
// configured and the answer qualifies, holds the body back until the handler returns.
type responseWriter struct {
	http.ResponseWriter
	t           *Response
	e           env
	wroteHeader bool
	status      int
	buffering   bool
	buf         bytes.Buffer
}

func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 200 {
		// Informational answers (103 Early Hints, 101 upgrades) pass as they are; for 101 the
		// connection is no longer HTTP, so nothing more is ours to edit.
		if code == http.StatusSwitchingProtocols {
			w.wroteHeader = true
		}
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.wroteHeader, w.status = true, code
	h := w.ResponseWriter.Header()
	if !w.t.headers.empty() {
		w.t.headers.apply(h, w.t.headers.render(&w.e))
	}
	if w.t.body != nil && w.editable(code, h) {
		w.buffering = true
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

// editable decides whether the answer is worth buffering: a JSON body that may have content, not
// compressed, not a stream, and not declared larger than the limit.
func (w *responseWriter) editable(code int, h http.Header) bool {
	if code == http.StatusNoContent || code == http.StatusNotModified || w.e.r.Method == http.MethodHead {
		return false
	}
	if !isJSON(h.Get("Content-Type")) {
		return false // text/event-stream and every other type stream untouched
	}
	if ce := h.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return false
	}
	if cl := h.Get("Content-Length"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n > w.t.body.max {
			return false
		}
	}
	return true
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.buffering {
		return w.ResponseWriter.Write(b)
	}
	if int64(w.buf.Len()+len(b)) > w.t.body.max {
		// Over the limit after all (no Content-Length was declared): give up editing and send
		// everything, untouched, from here on.
		w.buffering = false
		w.ResponseWriter.WriteHeader(w.status)
		if _, err := w.ResponseWriter.Write(w.buf.Bytes()); err != nil {
			return 0, err
		}
		w.buf = bytes.Buffer{}
		return w.ResponseWriter.Write(b)
	}
	return w.buf.Write(b)
}

// Flush passes through unless the body is being held for editing.
func (w *responseWriter) Flush() {
	if w.buffering {
		return
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
		if w.buffering {
			return
		}
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the writer underneath (Hijack, deadlines).
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finish runs after the handler: header edits for an answer that wrote nothing, and the body
// edit for a held body.
func (w *responseWriter) finish() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.buffering {
		return
	}
	body := w.buf.Bytes()
	if out, ok := w.t.body.apply(body, &w.e); ok {
		body = out
	}
	w.ResponseWriter.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.ResponseWriter.WriteHeader(w.status)
	_, _ = w.ResponseWriter.Write(body)
}
