package transform

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"

	"github.com/portico-gw/portico/internal/apierror"
	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/policies"
)

// Request is a built request-transform policy.
type Request struct {
	name    string
	headers opSet
	query   opSet
	body    *bodyEdits
	// keyHeaders and readHeaders: see KeyHeaders and ReadHeaders.
	keyHeaders, readHeaders []string
}

var _ policies.Policy = (*Request)(nil)

// NewRequest builds a request-transform policy named name. Every name, path and template is
// checked and parsed here; the request path only applies the result.
func NewRequest(name string, c RequestConfig, _ policies.Deps) (policies.Policy, error) {
	var p confval.Problems
	headers, query, body := c.compile("", &p)
	if err := problemsError(p); err != nil {
		return nil, fmt.Errorf("request-transform %q: %w", name, err)
	}
	t := &Request{name: name, headers: headers, query: query, body: body}
	t.keyHeaders = append(t.keyHeaders, headers.remove...)
	for _, rn := range headers.rename {
		t.keyHeaders = append(t.keyHeaders, rn[0], rn[1])
	}
	for _, list := range [3][]namedValue{headers.replace, headers.add, headers.append} {
		for _, nv := range list {
			t.keyHeaders = append(t.keyHeaders, nv.name)
		}
	}
	// The request ID is unique to each request: an edit of it is not keyed, or every request
	// would miss (a rename to X-Correlation-Id, say).
	t.keyHeaders = slices.DeleteFunc(t.keyHeaders, func(n string) bool { return n == reqctx.RequestIDKey })
	slices.Sort(t.keyHeaders)
	t.keyHeaders = slices.Compact(t.keyHeaders)
	for _, set := range []*opSet{&headers, &query} {
		for _, list := range [3][]namedValue{set.replace, set.add, set.append} {
			for i := range list {
				t.readHeaders = headerNames(t.readHeaders, &list[i].value)
			}
		}
	}
	return t, nil
}

// Phase is PhaseRequestTransform: after authentication and caching, so rate limits and cache
// keys see the request as the client sent it.
func (t *Request) Phase() policies.Phase { return policies.PhaseRequestTransform }

var _ policies.KeyVariant = (*Request)(nil)

// The cache runs outside request transforms (its phase comes first, so rate limits and its own
// lookups see the request as the client sent it), and replays their edits for its key through
// these: with $(header.X-Lang) added to the query, the answer fetched for "de" was served to a
// client sending "fr". Kong avoids it by running request-transformer before proxy-cache.

// KeyName is the policy's name: two consumers' transforms that edit alike but are not the same
// policy are keyed apart.
func (t *Request) KeyName() string { return t.name }

// EditForKey makes on r the header and query edits apply makes, with $(uuid) and
// $(request_id) rendered empty: unique to each request, they would make every request a miss,
// and a trace token is not what an upstream varies its answer by. A query apply would refuse
// (400) is left as it is: that request never reaches the upstream.
func (t *Request) EditForKey(r *http.Request) {
	e := env{r: r, info: reqctx.From(r.Context()), forKey: true}
	hv, qv := t.headers.render(&e), t.query.render(&e)
	if !t.query.empty() {
		if raw, err := editQuery(&t.query, r.URL.RawQuery, qv); err == nil {
			r.URL.RawQuery = raw
		}
	}
	if !t.headers.empty() {
		t.headers.apply(r.Header, hv)
	}
}

// KeyHeaders are the header names the transform removes, renames (both ends), replaces, adds or
// appends to, the request ID's aside.
func (t *Request) KeyHeaders() []string { return t.keyHeaders }

// ReadHeaders are the header names the transform's templates read ($(header.X)).
func (t *Request) ReadHeaders() []string { return t.readHeaders }

// EditsQuery reports whether the transform has query edits.
func (t *Request) EditsQuery() bool { return !t.query.empty() }

// Wrap returns next behind the transform.
func (t *Request) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := t.apply(r); err != nil {
			apierror.Write(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// apply edits r in Kong's part order: headers, then body, then query. The query is worked out
// first (it depends on nothing the other edits change), so a query that cannot be edited safely
// is refused before anything is read or changed.
func (t *Request) apply(r *http.Request) error {
	e := env{r: r, info: reqctx.From(r.Context())}
	// Every value is rendered before anything changes, so templates see the request as it came.
	hv, qv := t.headers.render(&e), t.query.render(&e)
	var rawQuery string
	if !t.query.empty() {
		var err error
		if rawQuery, err = editQuery(&t.query, r.URL.RawQuery, qv); err != nil {
			return err
		}
	}
	if !t.headers.empty() {
		t.headers.apply(r.Header, hv)
	}
	if t.body != nil {
		t.editBody(r, &e)
	}
	if !t.query.empty() {
		u := *r.URL
		u.RawQuery = rawQuery
		r.URL = &u
	}
	return nil
}

func (t *Request) editBody(r *http.Request, e *env) {
	if r.Body == nil || r.Body == http.NoBody || !isJSON(r.Header.Get("Content-Type")) || r.ContentLength > t.body.max {
		return
	}
	orig := r.Body
	buf, err := io.ReadAll(io.LimitReader(orig, t.body.max+1))
	if err != nil {
		// The upstream must see the same failure (a size limit, a client gone), not a shorter
		// body that looks complete.
		r.Body = &replayBody{Reader: io.MultiReader(bytes.NewReader(buf), errReader{err}), Closer: orig}
		return
	}
	if int64(len(buf)) > t.body.max {
		// Too big to edit: send it whole, what was read first and the rest as it streams.
		r.Body = &replayBody{Reader: io.MultiReader(bytes.NewReader(buf), orig), Closer: orig}
		return
	}
	_ = orig.Close()
	out, ok := t.body.apply(buf, e)
	if !ok {
		out = buf
	}
	r.Body = io.NopCloser(bytes.NewReader(out))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(out)), nil }
	r.ContentLength = int64(len(out))
	r.TransferEncoding = nil
	r.Header.Set("Content-Length", strconv.Itoa(len(out)))
}

type replayBody struct {
	io.Reader
	io.Closer
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
