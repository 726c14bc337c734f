package bff

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"runtime/debug"
	"strconv"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/portico-gw/portico/internal/apierror"
	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/resolvers"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// presentError is the one place a GraphQL error becomes what the client sees (gqlgen's
// SetErrorPresenter). Every error leaves with extensions.code and, inside a request Portico
// serves, extensions.request_id. Errors that carry a code were written for clients (by the
// resolvers, by gqlgen's parser and validator, or by these extensions) and keep their message.
// Anything else is a plain Go error that reached gqlgen: its text may hold a backend URL or
// internals, so the client gets only what apierror.Classify deems safe and the log gets the rest.
func (p *Profile) presentError(ctx context.Context, err error) *gqlerror.Error {
	if err == nil {
		return nil
	}
	var src *gqlerror.Error
	if !errors.As(err, &src) {
		src = gqlerror.WrapPath(graphql.GetPath(ctx), err)
	}
	// A copy: gqlgen may hand the same error to several fields (a dataloader batch), and the
	// resolvers' errors must stay as they made them.
	out := *src
	out.Extensions = maps.Clone(src.Extensions)
	if out.Extensions == nil {
		out.Extensions = map[string]any{}
	}
	code, coded := out.Extensions["code"].(string)
	if coded && code == codeInternal && out.Err != nil {
		// Coded INTERNAL by a resolver around a cause it could not classify (a dataloader turns
		// a panic in its fetch into a plain error): the client sees the safe message, and the
		// cause still reaches the log.
		p.log.ErrorContext(ctx, "graphql resolver error", "error", out.Err, "path", out.Path.String(), "request_id", requestID(ctx))
	}
	if !coded {
		switch {
		case out.Err != nil && out.Message == out.Err.Error():
			// A wrapped Go error: mask it.
			status, code, message := apierror.Classify(out.Err)
			if status >= http.StatusInternalServerError && code == codeInternal {
				message = "internal error"
				p.log.ErrorContext(ctx, "graphql resolver error", "error", out.Err, "path", out.Path.String(), "request_id", requestID(ctx))
			}
			out.Message = message
			out.Extensions["code"] = code
		case out.Err != nil:
			_, code, _ := apierror.Classify(out.Err)
			out.Extensions["code"] = code
		case len(out.Path) > 0:
			// gqlgen's own execution errors ("must not be null"): a server-side bug.
			out.Extensions["code"] = codeInternal
		default:
			out.Extensions["code"] = codeBadRequest
		}
	}
	out.Message = variableMessage(out.Path, out.Message)
	if id := requestID(ctx); id != "" {
		out.Extensions["request_id"] = id
	}
	return &out
}

// recoverPanic turns a resolver panic into an INTERNAL error for that field (gqlgen's
// SetRecoverFunc); the stack goes to the log, never to the client.
func (p *Profile) recoverPanic(ctx context.Context, v any) error {
	p.log.ErrorContext(ctx, "panic while executing graphql", "panic", fmt.Sprint(v), "stack", string(debug.Stack()),
		"request_id", requestID(ctx))
	return &gqlerror.Error{Message: "internal error", Extensions: map[string]any{"code": codeInternal}}
}

func requestID(ctx context.Context) string {
	if info := reqctx.From(ctx); info != nil {
		return info.ID
	}
	return ""
}

func errorCode(e *gqlerror.Error) string {
	code, _ := e.Extensions["code"].(string)
	return code
}

// statusForRequestErrors is the HTTP status of an answer that failed before execution (no data),
// following the GraphQL-over-HTTP draft: with application/graphql-response+json a document that
// does not parse or validate is 400; with application/json it is 200, the legacy behaviour that
// clients of that media type rely on. Limits and policies are not GraphQL errors but Portico
// refusing work, so they get a 4xx with either media type.
func statusForRequestErrors(errs gqlerror.List, media string) int {
	status := 0
	for _, e := range errs {
		var s int
		switch errorCode(e) {
		case codeDocumentTooLarge, codeRequestEntityTooLarge:
			s = http.StatusRequestEntityTooLarge
		case codePersistedQueryRequired:
			s = http.StatusForbidden
		case codeUnsupportedMediaType:
			s = http.StatusUnsupportedMediaType
		case codeRequestTimeout:
			s = http.StatusRequestTimeout
		case codeNotAcceptable:
			s = http.StatusNotAcceptable
		case codeMethodNotAllowed:
			s = http.StatusMethodNotAllowed
		case codeMaxDepthExceeded, codeComplexityExceeded, codeIntrospectionDisabled, codeBatchingDisabled, codeBadRequest:
			s = http.StatusBadRequest
		case codeGraphQLParseFailed, codeGraphQLValidation, codePersistedQueryNotFound, codePersistedQueryNotSupported:
			s = http.StatusBadRequest
			if media == mediaJSON {
				s = http.StatusOK
			}
		default:
			s = http.StatusBadRequest
		}
		// The highest refusal wins (413 over 403 over 400), and any 4xx over a legacy 200.
		if status == 0 || status == http.StatusOK || (s != http.StatusOK && s > status) {
			status = s
		}
	}
	if status == 0 {
		status = http.StatusBadRequest
	}
	return status
}

// statusForError is the HTTP status of a failed field for a REST answer: the backend's own, as
// the upstream layer maps it for clients, when the error carries it (a 403, 409, 422 or 429 stays
// what it is: a client error, not a gateway's failure to retry), else by extensions.code, as
// @required failures are.
func statusForError(e *gqlerror.Error) int {
	var sc interface{ StatusCode() int }
	if errors.As(e.Err, &sc) && sc.StatusCode() >= 400 {
		return sc.StatusCode()
	}
	return statusForCode(errorCode(e))
}

// statusForCode is the HTTP status of a failed backend or field, by its extensions.code, for
// @required failures and REST answers.
func statusForCode(code string) int {
	switch code {
	case "UNAUTHORIZED":
		return http.StatusUnauthorized
	case "FORBIDDEN":
		return http.StatusForbidden
	case "CONFLICT":
		return http.StatusConflict
	case "UNPROCESSABLE_ENTITY":
		return http.StatusUnprocessableEntity
	case "RATE_LIMITED":
		return http.StatusTooManyRequests
	case codeUpstreamTimeout:
		return http.StatusGatewayTimeout
	case codeUpstreamUnavailable:
		return http.StatusServiceUnavailable
	case codeNotFound:
		return http.StatusNotFound
	case codeBadUserInput, codeBadRequest:
		return http.StatusBadRequest
	case codeInternal:
		return http.StatusInternalServerError
	case codeClientClosedRequest:
		return apierror.StatusClientClosedRequest
	}
	return http.StatusBadGateway
}

// requiredError returns the first error of a failed @required field.
func requiredError(errs gqlerror.List) *gqlerror.Error {
	for _, e := range errs {
		if _, ok := resolvers.IsRequiredFailure(e); ok {
			return e
		}
	}
	return errs[0]
}

// maxEchoed bounds how much of a client's string an error message quotes back.
const maxEchoed = 32

// quoteClient quotes a string the client sent for an error message, cut after maxEchoed bytes
// (at a rune boundary) with "…": enough to recognise it, and a 100 KB name or id cannot come back
// as a 100 KB error.
func quoteClient(s string) string {
	if len(s) <= maxEchoed {
		return strconv.Quote(s)
	}
	cut := maxEchoed
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut] + "…")
}

// isGraphQLName reports whether s is a GraphQL Name: /[_A-Za-z][_0-9A-Za-z]*/.
func isGraphQLName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
