package resolvers

import (
	"context"
	"fmt"
	"math"
	"reflect"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Int32Results is a gqlgen handler extension that keeps Int results within 32 bits. GraphQL's
// Int is a signed 32-bit integer and the spec's output coercion must raise a field error for a
// value outside it; gqlgen's Int marshaller writes any Go int, so a backend's 10000000000 would
// reach clients that trust the range (the BFF's OpenAPI document declares int32). Checked as the
// field resolves, the field is null with an error at its path, and a non-null field nulls its
// parent as the spec requires; a marshaller cannot do that, since gqlgen writes a ContextMarshaler's
// error in place, while encoding, under a non-null field too. The value came from a backend the
// schema cannot describe, hence BAD_GATEWAY. Input coercion is gqlparser's and gqlgen's, which
// already refuse Int arguments and variables outside 32 bits.
type Int32Results struct{}

var (
	_ graphql.HandlerExtension = Int32Results{}
	_ graphql.FieldInterceptor = Int32Results{}
)

// ExtensionName names the extension in gqlgen's stats.
func (Int32Results) ExtensionName() string { return "Int32Results" }

// Validate accepts every schema.
func (Int32Results) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptField fails an Int field (or list of Int) whose value is outside 32 bits.
func (Int32Results) InterceptField(ctx context.Context, next graphql.Resolver) (any, error) {
	res, err := next(ctx)
	if err != nil {
		return res, err
	}
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || fc.Field.Field == nil || fc.Field.Definition == nil || fc.Field.Definition.Type.Name() != "Int" {
		return res, nil
	}
	if n, outside := outsideInt32(reflect.ValueOf(res)); outside {
		return nil, &gqlerror.Error{
			Message:    fmt.Sprintf("%s.%s is %d, outside the 32-bit range of Int", fc.Object, fc.Field.Name, n),
			Path:       fc.Path(),
			Extensions: map[string]any{"code": "BAD_GATEWAY"},
		}
	}
	return res, nil
}

// outsideInt32 finds an integer outside int32 in v: an int of any size, through pointers and
// lists (a list of Int fails whole).
func outsideInt32(v reflect.Value) (int64, bool) {
	switch v.Kind() {
	case reflect.Int, reflect.Int64:
		n := v.Int()
		return n, n < math.MinInt32 || n > math.MaxInt32
	case reflect.Uint, reflect.Uint32, reflect.Uint64:
		if n := v.Uint(); n > math.MaxInt32 {
			return int64(min(n, math.MaxInt64)), true
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return outsideInt32(v.Elem())
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if n, outside := outsideInt32(v.Index(i)); outside {
				return n, true
			}
		}
	}
	return 0, false
}
