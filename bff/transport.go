package bff

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/portico-gw/portico/internal/apierror"
	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/resolvers"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
)

// Response media types of the GraphQL-over-HTTP draft.
const (
	mediaJSON            = "application/json"
	mediaGraphQLResponse = "application/graphql-response+json"
)

// graphqlTransport serves /graphql by the GraphQL-over-HTTP draft. gqlgen's GET and POST
// transports are not used because they differ from the draft where clients notice: a mutation
// over GET gets 406 (the draft says 405 with Allow), a malformed body's error echoes the body
// back, application/json protocol errors get 422, and a request that a Portico extension refuses
// or a @required field fails would still answer 200. This transport keeps gqlgen's executor,
// extensions, error presenter and recover func; only the HTTP mapping is its own.
type graphqlTransport struct{ p *Profile }

var _ graphql.Transport = graphqlTransport{}

// Supports takes every request the REST transport did not.
func (graphqlTransport) Supports(*http.Request) bool { return true }

// Do answers one GraphQL-over-HTTP request.
func (t graphqlTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	p := t.p
	w.Header().Add("Vary", "Accept")
	media, ok := negotiate(r.Header.Values("Accept"))
	if !ok {
		writeGraphQL(w, http.StatusNotAcceptable, mediaJSON, exec.DispatchError(r.Context(), gqlerror.List{codedError(codeNotAcceptable,
			"cannot answer in any media type the Accept header allows (supported: %s, %s)", mediaGraphQLResponse, mediaJSON)}))
		return
	}
	ctx := p.requestContext(r.Context())
	switch r.Method {
	case http.MethodGet:
		params, docID, err := readGET(r)
		if err != nil {
			writeGraphQL(w, statusForRequestErrors(gqlerror.List{err}, media), media, exec.DispatchError(ctx, gqlerror.List{err}))
			return
		}
		params.Headers = r.Header
		p.writeOutcome(ctx, w, media, exec, p.run(ctx, exec, params, docID, true))
	case http.MethodPost:
		buf := buffers.Get().(*bytes.Buffer)
		defer putBuffer(buf)
		err := p.readPOST(w, r, buf)
		if err != nil {
			writeGraphQL(w, statusForRequestErrors(gqlerror.List{err}, media), media, exec.DispatchError(ctx, gqlerror.List{err}))
			return
		}
		// Nothing decoded from the body refers to it (json.Unmarshal copies), so buf can go back
		// to the pool when the request is answered.
		body := buf.Bytes()
		if isBatch(body) {
			p.serveBatch(ctx, w, r, media, exec, body)
			return
		}
		params, docID, err := decodeParams(body)
		if err != nil {
			writeGraphQL(w, http.StatusBadRequest, media, exec.DispatchError(ctx, gqlerror.List{err}))
			return
		}
		params.Headers = r.Header
		p.writeOutcome(ctx, w, media, exec, p.run(ctx, exec, params, docID, false))
	case http.MethodOptions:
		w.Header().Set("Allow", "GET, POST, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, POST, OPTIONS")
		writeGraphQL(w, http.StatusMethodNotAllowed, media, exec.DispatchError(ctx, gqlerror.List{codedError(codeMethodNotAllowed,
			"method %s is not allowed on a GraphQL endpoint (allowed: GET, POST, OPTIONS)", r.Method)}))
	}
}

// requestContext installs fresh dataloaders for the request, shared by every operation in it (a
// batch batches across its operations too).
func (p *Profile) requestContext(ctx context.Context) context.Context {
	if p.backend != nil {
		ctx = resolvers.WithLoaders(ctx, p.backend)
	}
	return ctx
}

// outcome is what running one operation produced, before any HTTP mapping.
type outcome struct {
	resp *graphql.Response
	// requestError: the operation never ran (parse, validation, limits, documents); resp has
	// errors and no data.
	requestError bool
	// getMutation: a GET asked for a mutation; nothing ran.
	getMutation bool
	// required is the error of a failed @required field, and requiredStatus the answer's status
	// (the failing backend's: 502, 503 or 504); resp.Data is then null.
	required       *gqlerror.Error
	requiredStatus int
	// canceled: the client went away and nobody reads an answer.
	canceled bool
}

// run executes one operation through the executor both facades share. get forbids anything but
// queries, checked after parsing and before any resolver runs.
func (p *Profile) run(ctx context.Context, exec graphql.GraphExecutor, params *graphql.RawParams, docID string, get bool) outcome {
	ctx = withDocumentID(ctx, docID)
	opCtx, errs := exec.CreateOperationContext(ctx, params)
	if get && p.selectsNonQuery(opCtx) {
		// Known once the document parses, whatever else is wrong with it: the draft's 405.
		return outcome{getMutation: true}
	}
	if errs != nil {
		errs = capErrors(errs)
		if opCtx != nil && opCtx.Doc != nil && opCtx.Operation == nil {
			// gqlgen's "operation %s not found", the one error left once the document validated:
			// it names the empty name it looked for, or quotes the client's name whole.
			if params.OperationName == "" {
				errs[0].Message = fmt.Sprintf("the document has %d operations; name the one to run with operationName", len(opCtx.Doc.Operations))
			} else {
				errs[0].Message = "the document has no operation named " + quoteClient(params.OperationName)
			}
		}
		for _, e := range errs {
			if errorCode(e) == "" {
				// gqlgen's APQ extension leaves some protocol errors without a code.
				if e.Extensions == nil {
					e.Extensions = map[string]any{}
				}
				e.Extensions["code"] = codeBadRequest
			}
		}
		return outcome{resp: exec.DispatchError(graphql.WithOperationContext(ctx, opCtx), errs), requestError: true}
	}
	handler, execCtx := exec.DispatchOperation(ctx, opCtx)
	resp := handler(execCtx)
	if resp == nil || ctx.Err() != nil {
		return outcome{canceled: true}
	}
	if len(resp.Data) == 0 && len(resp.Errors) > 0 {
		return outcome{resp: resp, requestError: true}
	}
	if status, ok := resolvers.RequiredStatus(resp.Errors); ok {
		// resolvers.FailOnRequired has already nulled data.
		return outcome{resp: resp, required: requiredError(resp.Errors), requiredStatus: status}
	}
	return outcome{resp: resp}
}

// selectsNonQuery reports whether the operation the request selects is a mutation or a
// subscription. gqlgen sets opCtx.Operation only for a document that validated; for one that did
// not, the text (opCtx.RawQuery is set once the parameter mutators, the size limit among them,
// accepted it) is parsed again, within the token limit, to find the operation by name. A document
// that does not parse, or does not say which operation to run, selects none.
func (p *Profile) selectsNonQuery(opCtx *graphql.OperationContext) bool {
	if opCtx == nil {
		return false
	}
	op := opCtx.Operation
	if op == nil {
		doc := opCtx.Doc // set when the document validated but names no such operation
		if doc == nil {
			if opCtx.RawQuery == "" {
				return false
			}
			var err error
			if doc, err = parser.ParseQueryWithTokenLimit(&ast.Source{Input: opCtx.RawQuery}, p.cfg.GraphQL.maxTokens()); err != nil {
				return false
			}
		}
		if op = doc.Operations.ForName(opCtx.OperationName); op == nil {
			return false
		}
	}
	return op.Operation != ast.Query
}

// writeOutcome maps an outcome to the draft's statuses (see statusForRequestErrors); an executed
// operation answers 200 even with field errors, except that a failed @required field answers
// its backend's status with data null.
func (p *Profile) writeOutcome(ctx context.Context, w http.ResponseWriter, media string, exec graphql.GraphExecutor, o outcome) {
	switch {
	case o.canceled:
		w.WriteHeader(apierror.StatusClientClosedRequest)
	case o.getMutation:
		w.Header().Set("Allow", "POST")
		writeGraphQL(w, http.StatusMethodNotAllowed, media, exec.DispatchError(ctx, gqlerror.List{
			codedError(codeMethodNotAllowed, "GET runs queries only; send mutations with POST (subscriptions are not served)")}))
	case o.requestError:
		writeGraphQL(w, statusForRequestErrors(o.resp.Errors, media), media, o.resp)
	case o.required != nil:
		writeGraphQL(w, o.requiredStatus, media, o.resp)
	default:
		writeGraphQL(w, http.StatusOK, media, o.resp)
	}
}

// requestErrorBody is an answer to a request that never executed: the spec says such a result
// has no data entry at all, which graphql.Response cannot express.
type requestErrorBody struct {
	Errors     gqlerror.List  `json:"errors"`
	Extensions map[string]any `json:"extensions,omitempty"`
}

func bodyOf(r *graphql.Response) any {
	if len(r.Data) == 0 {
		return requestErrorBody{Errors: r.Errors, Extensions: r.Extensions}
	}
	return r
}

// writeGraphQL writes every GraphQL answer. One that carries errors is marked no-store, as the
// REST facade marks its partial answers: a GET answer is 200 application/json whatever went
// wrong, so a shared cache in front (Portico's cache policy among them) would otherwise keep
// serving a backend failure after the backend recovered, or PERSISTED_QUERY_NOT_FOUND after the
// client registered the query, for the whole TTL.
func writeGraphQL(w http.ResponseWriter, status int, media string, resp any) {
	buf := buffers.Get().(*bytes.Buffer)
	defer putBuffer(buf)
	failed := hasErrors(resp)
	if err := encodeResponse(buf, resp); err != nil {
		buf.Reset()
		buf.WriteString(`{"errors":[{"message":"internal error","extensions":{"code":"INTERNAL"}}]}`)
		status, failed = http.StatusInternalServerError, true
	}
	h := w.Header()
	h.Set("Content-Type", media)
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("X-Content-Type-Options", "nosniff")
	if failed {
		h.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// hasErrors reports whether an answer writeGraphQL is given (one result, or a batch of them)
// carries any error.
func hasErrors(resp any) bool {
	switch r := resp.(type) {
	case *graphql.Response:
		return len(r.Errors) > 0
	case requestErrorBody:
		return true
	case []any:
		return slices.ContainsFunc(r, hasErrors)
	}
	return false
}

// encodeResponse writes resp as JSON. An executed operation's answer is assembled by hand around
// its data, which gqlgen has already marshalled: json.Marshal would scan and copy that
// json.RawMessage again to compact it (3.7% of Portico's CPU under the bench's BFF load, 1.3%
// this way). Unlike Marshal it leaves <, > and & in the data unescaped, which is the same JSON;
// the Content-Type and nosniff keep browsers from reading it as HTML. Anything else (request
// errors, batches, incremental parts) goes through json.Marshal.
func encodeResponse(buf *bytes.Buffer, resp any) error {
	r, ok := resp.(*graphql.Response)
	if ok && len(r.Data) == 0 {
		resp, ok = bodyOf(r), false
	}
	if !ok || r.Label != "" || r.Path != nil || r.HasNext != nil {
		b, err := json.Marshal(resp)
		buf.Write(b)
		return err
	}
	buf.WriteByte('{')
	if len(r.Errors) > 0 {
		buf.WriteString(`"errors":`)
		b, err := json.Marshal(r.Errors)
		if err != nil {
			return err
		}
		buf.Write(b)
		buf.WriteByte(',')
	}
	buf.WriteString(`"data":`)
	buf.Write(r.Data)
	if len(r.Extensions) > 0 {
		buf.WriteString(`,"extensions":`)
		b, err := json.Marshal(r.Extensions)
		if err != nil {
			return err
		}
		buf.Write(b)
	}
	buf.WriteByte('}')
	return nil
}

// buffers holds request bodies and answers. A request body is free once decoded (json.Unmarshal
// copies what it keeps) and an answer once written (w.Write copies or writes it out).
var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuffer keeps a rare large body or answer from pinning its buffer in the pool.
const maxPooledBuffer = 64 << 10

func putBuffer(b *bytes.Buffer) {
	if b.Cap() > maxPooledBuffer {
		return
	}
	b.Reset()
	buffers.Put(b)
}

// readGET reads query, operationName, variables, extensions and documentId from the URL.
func readGET(r *http.Request) (*graphql.RawParams, string, *gqlerror.Error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, "", codedError(codeBadRequest, "the query string does not parse")
	}
	if !utf8Values(q) {
		return nil, "", codedError(codeBadRequest, "%s", errQueryNotUTF8)
	}
	params := &graphql.RawParams{Query: q.Get("query"), OperationName: q.Get("operationName")}
	docID := q.Get("documentId")
	if v := q.Get("variables"); v != "" {
		if err := decodeJSON([]byte(v), &params.Variables); err != nil {
			return nil, "", codedError(codeBadRequest, "variables must be a JSON object")
		}
	}
	if v := q.Get("extensions"); v != "" {
		if err := decodeJSON([]byte(v), &params.Extensions); err != nil {
			return nil, "", codedError(codeBadRequest, "extensions must be a JSON object")
		}
	}
	if noQuery(params, docID) {
		return nil, "", errNoQuery()
	}
	return params, docID, nil
}

// readPOST checks the request's media type and reads the body within the size limit into buf.
func (p *Profile) readPOST(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) *gqlerror.Error {
	if msg := unreadableBody(r.Header.Get("Content-Type")); msg != "" {
		return codedError(codeUnsupportedMediaType, "%s", msg)
	}
	if bp := readBody(w, r, p.maxBodyBytes(), buf); bp != nil {
		return codedError(bp.code, "%s", bp.msg)
	}
	if !utf8.Valid(buf.Bytes()) {
		return codedError(codeBadRequest, "%s", errNotUTF8)
	}
	return nil
}

// bodyProblem is why a request body could not be read: /graphql answers it as a GraphQL error of
// its code, the REST routes as the gateway's error of its status.
type bodyProblem struct {
	status    int
	code, msg string
}

// readBody reads a request body of at most limit bytes into buf, for /graphql and the REST routes
// alike. An encoded body and a declared length over the limit are refused before any of it is
// read, and before the server would answer "Expect: 100-continue" with an invitation to send it.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, buf *bytes.Buffer) *bodyProblem {
	if msg := encodedBody(r.Header); msg != "" {
		w.Header().Set("Accept-Encoding", "identity") // RFC 9110 15.5.16: the codings accepted
		return &bodyProblem{http.StatusUnsupportedMediaType, codeUnsupportedMediaType, msg}
	}
	tooLarge := func(limit int64) *bodyProblem {
		return &bodyProblem{http.StatusRequestEntityTooLarge, codeRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", limit)}
	}
	if r.ContentLength > limit {
		return tooLarge(limit)
	}
	if n := r.ContentLength; n > 0 {
		buf.Grow(int(n) + bytes.MinRead) // ReadFrom wants MinRead spare bytes before it reads EOF
	}
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit)); err != nil {
		var over *http.MaxBytesError
		var timeout interface{ Timeout() bool }
		switch {
		case errors.As(err, &over):
			return tooLarge(over.Limit)
		case errors.As(err, &timeout) && timeout.Timeout():
			// The server's read timeout ended a body that came too slowly; the client is still
			// there to read why: RFC 9110's 408, as the pass-through proxy answers it.
			return &bodyProblem{http.StatusRequestTimeout, codeRequestTimeout, "the request body did not arrive in time"}
		}
		return &bodyProblem{http.StatusBadRequest, codeBadRequest, "reading the request body failed"}
	}
	return nil
}

// errNotUTF8 refuses a body with bytes that are not UTF-8 (RFC 8259 8.1: JSON exchanged between
// systems is UTF-8). encoding/json would read each as U+FFFD, and a name or SKU reach a backend
// other than the client wrote; a body that says it is Latin-1 is a 415 already.
const errNotUTF8 = "the request body is not valid UTF-8"

// errQueryNotUTF8 is errNotUTF8 for the URL: a percent-escape decodes to any byte, and a
// document, variable or REST parameter read from one must be UTF-8 as a body's must.
const errQueryNotUTF8 = "the query string is not valid UTF-8 once percent-decoded"

// utf8Values reports whether every name and value in q is UTF-8.
func utf8Values(q url.Values) bool {
	for k, vs := range q {
		if !utf8.ValidString(k) {
			return false
		}
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return false
			}
		}
	}
	return true
}

// encodedBody returns why a body sent with a Content-Encoding cannot be read (RFC 9110's 415 for
// an unsupported content coding), or "". A gzipped body was read as JSON and refused as "not a
// JSON object", which sent clients looking in the wrong place.
func encodedBody(h http.Header) string {
	for _, v := range h.Values("Content-Encoding") {
		for coding := range strings.SplitSeq(v, ",") {
			if c := strings.TrimSpace(coding); c != "" && !strings.EqualFold(c, "identity") {
				return "Content-Encoding " + quoteClient(c) + " is not supported: send the body uncompressed"
			}
		}
	}
	return ""
}

// unreadableBody checks the Content-Type of a JSON request body, for /graphql and the REST
// routes alike: it must be application/json, in UTF-8 if it names a charset, since the body is
// decoded as UTF-8 and a Latin-1 "é" would silently become U+FFFD. It returns why the body
// cannot be read (a 415), or "" when it can.
func unreadableBody(contentType string) string {
	// The exact media type, what nearly every client sends, skips the parser and its map.
	if contentType == mediaJSON {
		return ""
	}
	mt, mp, err := mime.ParseMediaType(contentType)
	if err != nil || mt != mediaJSON {
		return "send the request body as " + mediaJSON
	}
	if cs, ok := mp["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return "the request body must be UTF-8, not " + quoteClient(cs)
	}
	return ""
}

// maxBodyBytes leaves room for variables beside the largest document.
func (p *Profile) maxBodyBytes() int64 { return 4*p.cfg.GraphQL.maxDocumentBytes() + 4096 }

func isBatch(body []byte) bool {
	b := bytes.TrimLeft(body, " \t\r\n")
	return len(b) > 0 && b[0] == '['
}

// postBody is a GraphQL-over-HTTP request body. documentId is the draft's persisted-document
// reference, which gqlgen's RawParams lacks. Variables and extensions are decoded on their own
// (decodeObject), only when sent, so that the common body, a query alone, needs one
// json.Unmarshal and no json.Decoder.
type postBody struct {
	Query         string          `json:"query"`
	OperationName string          `json:"operationName"`
	Variables     json.RawMessage `json:"variables"`
	Extensions    json.RawMessage `json:"extensions"`
	DocumentID    string          `json:"documentId"`
}

// decodeParams reads one request object; the error never quotes the body back.
func decodeParams(b []byte) (*graphql.RawParams, string, *gqlerror.Error) {
	var body postBody
	if err := json.Unmarshal(b, &body); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return nil, "", wrongJSONType(typeErr.Field)
		}
		return nil, "", codedError(codeBadRequest, "the request body is not a JSON object of a GraphQL request")
	}
	params := &graphql.RawParams{Query: body.Query, OperationName: body.OperationName}
	if err := decodeObject(body.Variables, &params.Variables); err != nil {
		return nil, "", wrongJSONType("variables")
	}
	if err := decodeObject(body.Extensions, &params.Extensions); err != nil {
		return nil, "", wrongJSONType("extensions")
	}
	if noQuery(params, body.DocumentID) {
		return nil, "", errNoQuery()
	}
	return params, body.DocumentID, nil
}

// noQuery is a request that names no operation in any of the ways this endpoint accepts; the
// draft makes query required, so it is malformed: 400, over GET as over POST.
func noQuery(params *graphql.RawParams, docID string) bool {
	return params.Query == "" && docID == "" && params.OperationName == "" && params.Extensions["persistedQuery"] == nil
}

// errNoQuery is a new error each time: the error presenter writes into its extensions.
func errNoQuery() *gqlerror.Error {
	return codedError(codeBadRequest, "the request has no query (send query, documentId, operationName or a persisted query hash)")
}

func wrongJSONType(field string) *gqlerror.Error {
	return codedError(codeBadRequest, "the request body's %q has the wrong JSON type", field)
}

// decodeObject decodes a JSON object (or null) that json.Unmarshal already checked is one
// valid JSON value; absent leaves *v nil.
func decodeObject(raw json.RawMessage, v *map[string]any) error {
	if len(raw) == 0 {
		return nil
	}
	return decodeJSON(raw, v)
}

// decodeJSON decodes exactly one JSON value, keeping numbers as json.Number so that large
// integers reach variable coercion intact.
func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// serveBatch runs an array of operations concurrently and answers an array of results in the
// same order. Batching is not in the GraphQL-over-HTTP draft; as Apollo Server does, the answer
// is 200 with each result carrying its own errors.
func (p *Profile) serveBatch(ctx context.Context, w http.ResponseWriter, r *http.Request, media string, exec graphql.GraphExecutor, body []byte) {
	if !p.cfg.GraphQL.Batching {
		if !json.Valid(body) {
			writeGraphQL(w, http.StatusBadRequest, media, exec.DispatchError(ctx, gqlerror.List{codedError(codeBadRequest,
				"the request body is not JSON")}))
			return
		}
		writeGraphQL(w, http.StatusBadRequest, media, exec.DispatchError(ctx, gqlerror.List{codedError(codeBatchingDisabled,
			"batching is disabled on this endpoint: send one operation per request")}))
		return
	}
	var items []json.RawMessage
	if err := decodeJSON(body, &items); err != nil {
		writeGraphQL(w, http.StatusBadRequest, media, exec.DispatchError(ctx, gqlerror.List{codedError(codeBadRequest,
			"the request body is not a JSON array of GraphQL requests")}))
		return
	}
	if n, limit := len(items), p.cfg.GraphQL.maxBatch(); n == 0 || n > limit {
		writeGraphQL(w, http.StatusBadRequest, media, exec.DispatchError(ctx, gqlerror.List{codedError(codeBadRequest,
			"a batch holds 1 to %d operations, not %d", limit, n)}))
		return
	}
	results := make([]any, len(items))
	var wg sync.WaitGroup
	for i, item := range items {
		wg.Go(func() {
			params, docID, err := decodeParams(item)
			if err != nil {
				results[i] = bodyOf(exec.DispatchError(ctx, gqlerror.List{err}))
				return
			}
			params.Headers = r.Header
			if o := p.run(ctx, exec, params, docID, false); !o.canceled {
				results[i] = bodyOf(o.resp)
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		w.WriteHeader(apierror.StatusClientClosedRequest)
		return
	}
	writeGraphQL(w, http.StatusOK, media, results)
}

// negotiate picks the response media type from the Accept header values. No Accept (or only
// wildcards) means application/json, as the draft requires for legacy clients. An explicit
// application/graphql-response+json wins a tie with application/json, because clients that name
// it know the newer status semantics. Nothing acceptable → ok false (406).
func negotiate(values []string) (media string, ok bool) {
	if len(values) == 1 {
		// The common headers, answered without parsing: they cannot tie or carry a q of 0.
		switch values[0] {
		case mediaJSON, "*/*":
			return mediaJSON, true
		case mediaGraphQLResponse:
			return mediaGraphQLResponse, true
		}
	}
	if strings.TrimSpace(strings.Join(values, "")) == "" {
		return mediaJSON, true
	}
	type score struct {
		q           float64
		specificity int // 0 none, 1 */*, 2 application/*, 3 exact
	}
	var scores [2]score // mediaGraphQLResponse, mediaJSON
	candidates := [2]string{mediaGraphQLResponse, mediaJSON}
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			mt, params, err := mime.ParseMediaType(part)
			if err != nil {
				continue
			}
			q := 1.0
			if qs, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(qs, 64); err == nil && f >= 0 && f <= 1 {
					q = f
				}
			}
			for i, c := range candidates {
				spec := 0
				switch mt {
				case c:
					spec = 3
				case "application/*":
					spec = 2
				case "*/*":
					spec = 1
				}
				if spec > scores[i].specificity {
					scores[i] = score{q: q, specificity: spec}
				}
			}
		}
	}
	g, j := scores[0], scores[1]
	switch {
	case g.q <= 0 && j.q <= 0:
		return "", false
	case g.specificity == 3 && g.q >= j.q && g.q > 0:
		return mediaGraphQLResponse, true
	case j.q > 0 && j.q >= g.q:
		return mediaJSON, true
	default:
		return mediaGraphQLResponse, true
	}
}

// ensureRequestInfo gives the request a reqctx.Info when the gateway's edge did not (the profile
// served on its own, in tests or embedded), so request IDs reach errors and upstreams.
func ensureRequestInfo(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reqctx.From(r.Context()) == nil {
			id := r.Header.Get(reqctx.HeaderRequestID)
			if id == "" || len(id) > 128 {
				id = newRequestID()
			}
			r = r.WithContext(reqctx.With(r.Context(), &reqctx.Info{ID: id}))
		}
		next.ServeHTTP(w, r)
	})
}

// newRequestID returns 16 random bytes in hex.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
