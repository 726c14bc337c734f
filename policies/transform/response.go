package transform

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portico-gw/portico/internal/apierror"
	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/policies"
)

// Response is a built response-transform policy.
type Response struct {
	name    string
	headers opSet
	body    *bodyEdits
	// reqHeaders are the request headers the templates read, copied when the request arrives.
	reqHeaders []string
}

var _ policies.Policy = (*Response)(nil)

// errUneditable refuses an answer the body edit applies to but cannot edit: a range of it, or a
// compressed one, arriving although the policy asked for neither. Passing it on would hand the
// client what the edit removes.
var errUneditable = apierror.New(http.StatusBadGateway, "BAD_GATEWAY", "Upstream answer could not be transformed")

// NewResponse builds a response-transform policy named name.
func NewResponse(name string, c ResponseConfig, _ policies.Deps) (policies.Policy, error) {
	var p confval.Problems
	headers, body := c.compile("", &p)
	if err := problemsError(p); err != nil {
		return nil, fmt.Errorf("response-transform %q: %w", name, err)
	}
	t := &Response{name: name, headers: headers, body: body}
	for _, list := range [3][]namedValue{headers.replace, headers.add, headers.append} {
		for i := range list {
			t.reqHeaders = headerNames(t.reqHeaders, &list[i].value)
		}
	}
	if body != nil {
		for i := range body.meta {
			t.reqHeaders = headerNames(t.reqHeaders, &body.meta[i].value)
		}
	}
	return t, nil
}

// Phase is PhaseResponseTransform, outside the cache: per-request template values are rendered
// for every answer, hits included, and never stored.
func (t *Response) Phase() policies.Phase { return policies.PhaseResponseTransform }

// Wrap returns next behind the transform.
func (t *Response) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &responseWriter{ResponseWriter: w, t: t, e: env{r: r, info: reqctx.From(r.Context()), start: time.Now()}}
		if len(t.reqHeaders) > 0 {
			// Templates are rendered when the answer is written, after inner policies
			// (request-transform) edited r.Header in place; they must see it as it arrived.
			rw.e.hdr = snapshotHeaders(r.Header, t.reqHeaders)
		}
		if t.body != nil {
			r = wholeIdentity(r)
		}
		next.ServeHTTP(rw, r)
		rw.finish()
	})
}

// wholeIdentity returns r asking for the whole, uncompressed representation: without Range and
// If-Range, with Accept-Encoding: identity. A body edit can only apply to one whole JSON value;
// a 206 slice or a gzip body would otherwise pass untouched, edited-out fields and all, at the
// client's request. r itself is not modified (outer policies and logs see what the client sent).
//
// If-Match loses its W/ prefixes: edited answers carry the upstream's ETag made weak (see
// editedRepresentation), and If-Match compares strongly, so a client echoing the tag it got
// would otherwise always be refused 412 (optimistic locking on writes would break). `W/"` can
// only start a weak tag: '"' is not allowed inside one.
func wholeIdentity(r *http.Request) *http.Request {
	h := r.Header
	weakIfMatch := false
	for _, v := range h["If-Match"] {
		weakIfMatch = weakIfMatch || strings.Contains(v, `W/"`)
	}
	if h["Range"] == nil && h["If-Range"] == nil && !weakIfMatch && len(h["Accept-Encoding"]) == 1 && h["Accept-Encoding"][0] == "identity" {
		return r
	}
	r2 := new(http.Request)
	*r2 = *r
	r2.Header = h.Clone()
	if r2.Header == nil {
		r2.Header = make(http.Header, 1)
	}
	delete(r2.Header, "Range")
	delete(r2.Header, "If-Range")
	r2.Header["Accept-Encoding"] = []string{"identity"}
	for i, v := range r2.Header["If-Match"] {
		r2.Header["If-Match"][i] = strings.ReplaceAll(v, `W/"`, `"`)
	}
	return r2
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
	// refused is set once errUneditable was written in place of the answer; the handler's body is
	// discarded.
	refused bool
	buf     bytes.Buffer
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
	if w.t.body != nil {
		switch w.bodyAction(code, h) {
		case bodyRefuse:
			w.refuse(h)
			return
		case bodyBuffer:
			w.buffering = true
			return
		case bodyHead:
			// The edited length is unknown without the body; announcing the upstream's would
			// contradict what GET sends.
			h.Del("Content-Length")
			editedRepresentation(h)
		case bodyNotModified:
			editedRepresentation(h)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

type bodyActionKind uint8

const (
	bodyPass        bodyActionKind = iota // streams untouched
	bodyBuffer                            // held for editing
	bodyRefuse                            // would be edited but cannot be: 502
	bodyHead                              // a HEAD answer whose GET would be edited
	bodyNotModified                       // a 304 for what may be an edited body
)

// bodyAction decides what happens to the answer's body. Buffered: a JSON body that may have
// content, uncompressed, whole, not declared larger than the limit. A JSON answer that is
// compressed, or any 206, is refused: the request asked for neither (see wholeIdentity), and
// passing it on untouched would leak what the edit removes.
func (w *responseWriter) bodyAction(code int, h http.Header) bodyActionKind {
	head := w.e.r.Method == http.MethodHead
	switch {
	case code == http.StatusNotModified:
		if ct := h.Get("Content-Type"); ct == "" || isJSON(ct) {
			return bodyNotModified
		}
		return bodyPass
	case code == http.StatusNoContent:
		return bodyPass
	case code == http.StatusPartialContent:
		if head {
			return bodyPass
		}
		return bodyRefuse
	case !isJSON(h.Get("Content-Type")):
		return bodyPass // text/event-stream and every other type stream untouched
	case head:
		return bodyHead
	case encoded(h):
		return bodyRefuse
	}
	if cl := h.Get("Content-Length"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n > w.t.body.max {
			return bodyPass
		}
	}
	return bodyBuffer
}

// encoded reports whether any Content-Encoding other than identity applies to the body.
func encoded(h http.Header) bool {
	for _, v := range h["Content-Encoding"] {
		for _, c := range strings.Split(v, ",") {
			if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "identity") {
				return true
			}
		}
	}
	return false
}

// editedRepresentation fixes the headers of an edited body: the upstream's strong ETag would
// claim the bytes are the upstream's, so it is weakened (If-None-Match revalidation still works,
// with weak comparison); ranges are no longer served.
func editedRepresentation(h http.Header) {
	if et := h.Get("Etag"); et != "" && !strings.HasPrefix(et, "W/") {
		h.Set("Etag", "W/"+et)
	}
	h.Del("Accept-Ranges")
}

// representationHeaders describe the upstream's body; none of them describes the 502 that
// replaces it.
var representationHeaders = []string{"Accept-Ranges", "Cache-Control", "Content-Disposition", "Content-Encoding",
	"Content-Language", "Content-Length", "Content-Location", "Content-Range", "Content-Type", "Etag", "Expires",
	"Last-Modified", "Transfer-Encoding"}

// refuse answers errUneditable in place of the upstream's answer.
func (w *responseWriter) refuse(h http.Header) {
	w.refused = true
	for _, k := range representationHeaders {
		delete(h, k)
	}
	apierror.Write(w.ResponseWriter, w.e.r, errUneditable)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.refused {
		// Discarded, not failed: an error would make a reverse proxy abort the connection and
		// the client would lose the 502 already written.
		return len(b), nil
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

// Flush passes through unless the body is being held for editing or was refused.
func (w *responseWriter) Flush() {
	if w.buffering || w.refused {
		return
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
		if w.buffering || w.refused {
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
		editedRepresentation(w.ResponseWriter.Header())
	}
	w.ResponseWriter.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.ResponseWriter.WriteHeader(w.status)
	_, _ = w.ResponseWriter.Write(body)
}
