package resolvers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// requiredFailure marks a GraphQL error as fatal to the whole operation and carries the HTTP
// status the answer should have.
type requiredFailure struct {
	status int
	err    error
}

func (e *requiredFailure) Error() string { return "required field failed: " + e.err.Error() }
func (e *requiredFailure) Unwrap() error { return e.err }

// requiredDirective implements @required. The field still resolves as usual; when it fails, its
// error is copied (dataloader causes are shared, the copy is this field's own) with
// extensions.required = true and a requiredFailure in its chain. Failing the operation is left to
// the response stage (FailOnRequired, or the BFF via RequiredStatus), because gqlgen has already
// written sibling fields by the time the error surfaces.
func requiredDirective(ctx context.Context, _ any, next graphql.Resolver) (any, error) {
	res, err := next(ctx)
	if err == nil {
		return res, nil
	}
	return nil, markRequired(err)
}

func markRequired(err error) *gqlerror.Error {
	var src *gqlerror.Error
	if !errors.As(err, &src) {
		// Not one of ours, so its text may not be safe to show.
		src = &gqlerror.Error{Message: "internal error", Extensions: map[string]any{"code": codeInternal}, Err: err}
	}
	out := *src
	out.Extensions = maps.Clone(src.Extensions)
	if out.Extensions == nil {
		out.Extensions = map[string]any{}
	}
	out.Extensions["required"] = true
	cause := src.Err
	if cause == nil {
		cause = errors.New(src.Message)
	}
	out.Err = &requiredFailure{status: failureStatus(cause, out.Extensions), err: cause}
	return &out
}

// failureStatus is the HTTP status for a failed required field: the backend error's own when it
// has one, else the one its extensions.code implies.
func failureStatus(cause error, ext map[string]any) int {
	var sc interface{ StatusCode() int }
	if errors.As(cause, &sc) && sc.StatusCode() >= 400 {
		return sc.StatusCode()
	}
	switch ext["code"] {
	case "UPSTREAM_TIMEOUT":
		return http.StatusGatewayTimeout
	case "UPSTREAM_UNAVAILABLE":
		return http.StatusServiceUnavailable
	case "BAD_GATEWAY":
		return http.StatusBadGateway
	case codeBadUserInput:
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// IsRequiredFailure reports whether err is the failure of a @required field, which fails the
// whole operation, and the HTTP status the answer should carry (502, 503 or 504 for a backend
// failure). It accepts the error a resolver returned and the *gqlerror.Error in a response, also
// after an error presenter rebuilt it, as long as extensions.required and extensions.code survived.
func IsRequiredFailure(err error) (status int, ok bool) {
	var rf *requiredFailure
	if errors.As(err, &rf) {
		return rf.status, true
	}
	var ge *gqlerror.Error
	if errors.As(err, &ge) && ge.Extensions["required"] == true {
		return failureStatus(ge.Err, ge.Extensions), true
	}
	return 0, false
}

// RequiredStatus reports whether a response's errors include a @required failure and the status
// the whole answer should carry: the highest among them, so the choice does not depend on which
// backend failed first.
func RequiredStatus(errs gqlerror.List) (status int, ok bool) {
	for _, e := range errs {
		if s, is := IsRequiredFailure(e); is {
			status, ok = max(status, s), true
		}
	}
	return status, ok
}

// FailOnRequired is a gqlgen handler extension that enforces @required: when a required field
// failed, the answer's data is null, so no client reads a partial answer as a whole one. The
// errors stay, with their paths and codes. The HTTP status is the transport's business; a BFF
// reads it with RequiredStatus.
type FailOnRequired struct{}

var (
	_ graphql.HandlerExtension    = FailOnRequired{}
	_ graphql.ResponseInterceptor = FailOnRequired{}
)

// ExtensionName names the extension in gqlgen's stats.
func (FailOnRequired) ExtensionName() string { return "FailOnRequired" }

// Validate accepts every schema.
func (FailOnRequired) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptResponse nulls data when a required field failed.
func (FailOnRequired) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if resp == nil {
		return nil
	}
	if _, ok := RequiredStatus(resp.Errors); ok {
		resp.Data = json.RawMessage("null")
	}
	return resp
}

// StableErrors is a gqlgen handler extension that sorts a response's errors by path (then
// message). gqlgen appends field errors as concurrent resolvers finish, so without it the order
// of errors would depend on which backend failed first.
type StableErrors struct{}

var (
	_ graphql.HandlerExtension    = StableErrors{}
	_ graphql.ResponseInterceptor = StableErrors{}
)

// ExtensionName names the extension in gqlgen's stats.
func (StableErrors) ExtensionName() string { return "StableErrors" }

// Validate accepts every schema.
func (StableErrors) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptResponse sorts the errors.
func (StableErrors) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if resp != nil && len(resp.Errors) > 1 {
		slices.SortStableFunc(resp.Errors, func(a, b *gqlerror.Error) int {
			if c := comparePaths(a.Path, b.Path); c != 0 {
				return c
			}
			if c := compareLocations(a.Locations, b.Locations); c != 0 {
				return c
			}
			switch {
			case a.Message < b.Message:
				return -1
			case a.Message > b.Message:
				return 1
			}
			return 0
		})
	}
	return resp
}

// compareLocations orders errors by where in the document they point, so that errors without a
// path (a document's validation errors) keep the document's order; one that points nowhere (a
// count of omitted errors) comes after those that do.
func compareLocations(a, b []gqlerror.Location) int {
	switch {
	case len(a) == 0 || len(b) == 0:
		return len(b) - len(a)
	case a[0].Line != b[0].Line:
		return a[0].Line - b[0].Line
	}
	return a[0].Column - b[0].Column
}

// comparePaths orders paths element by element, list indexes numerically, a prefix first.
func comparePaths(a, b ast.Path) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		ai, aIdx := a[i].(ast.PathIndex)
		bi, bIdx := b[i].(ast.PathIndex)
		switch {
		case aIdx && bIdx:
			if ai != bi {
				return int(ai) - int(bi)
			}
		case aIdx != bIdx:
			// An index sorts before a name; paths of one response never mix them at one depth.
			if aIdx {
				return -1
			}
			return 1
		default:
			as, bs := fmt.Sprint(a[i]), fmt.Sprint(b[i])
			if as != bs {
				if as < bs {
					return -1
				}
				return 1
			}
		}
	}
	return len(a) - len(b)
}
