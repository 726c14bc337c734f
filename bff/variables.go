package bff

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// strictVariables applies the GraphQL spec's input coercion to variable values where gqlparser
// is looser. Variables arrive with numbers as json.Number, whose kind is string, so gqlparser
// cannot tell 5 from "5": it takes the string "5" as an Int and the number 5 as a String, and an
// Int as large as 64 bits. The spec: an Int accepts only integers from -2^31 to 2^31-1, a Float
// only numbers, a String only strings, an ID strings and integers; "all other input values,
// including strings with numeric content, must raise a request error". Left loose, a backend
// gets a quantity of 9999999999 that no GraphQL Int can hold. The Go types still tell the cases
// apart (json.Number is not string), so the check needs only the coerced values and the schema.
type strictVariables struct{ schema *ast.Schema }

// ExtensionName names the extension in gqlgen's stats.
func (strictVariables) ExtensionName() string { return "PorticoStrictVariables" }

// Validate accepts any schema.
func (strictVariables) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext checks every variable against its declared type.
func (s strictVariables) MutateOperationContext(_ context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	for _, def := range opCtx.Operation.VariableDefinitions {
		if v, ok := opCtx.Variables[def.Variable]; ok {
			if msg := s.check(def.Type, v); msg != "" {
				return codedError(codeGraphQLValidation, "variable $%s: %s", def.Variable, msg)
			}
		}
	}
	return nil
}

// check returns what is wrong with v as a value of t, or "". Nullability, unknown fields and
// enum values are gqlparser's, which has already checked them.
func (s strictVariables) check(t *ast.Type, v any) string {
	if v == nil {
		return ""
	}
	if t.Elem != nil {
		// gqlparser has already coerced a single value to a list of one, of the Go type the
		// value had: "n1" for [ID!] arrives as []string, 5 as []json.Number.
		list := reflect.ValueOf(v)
		if list.Kind() != reflect.Slice {
			return s.check(t.Elem, v)
		}
		for i := range list.Len() {
			if msg := s.check(t.Elem, list.Index(i).Interface()); msg != "" {
				return fmt.Sprintf("[%d]: %s", i, msg)
			}
		}
		return ""
	}
	def := s.schema.Types[t.NamedType]
	if def == nil {
		return ""
	}
	switch def.Kind {
	case ast.InputObject:
		fields, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		for _, f := range def.Fields {
			if msg := s.check(f.Type, fields[f.Name]); msg != "" {
				return f.Name + ": " + msg
			}
		}
		return ""
	case ast.Scalar:
		if !scalarAccepts(t.NamedType, v) {
			return fmt.Sprintf("%s cannot represent %s", t.NamedType, describe(v))
		}
	}
	return ""
}

// scalarAccepts applies the spec's input coercion of the built-in scalars; custom scalars are
// their unmarshalers' to judge.
func scalarAccepts(scalar string, v any) bool {
	switch scalar {
	case "Int":
		return isInteger(v, math.MinInt32, math.MaxInt32)
	case "Float":
		// Finite only: "Non-finite floating-point internal values (NaN and Infinity) cannot be
		// coerced to Float", and strconv.ParseFloat reads "NaN" and "Inf".
		switch n := v.(type) {
		case json.Number:
			return finiteNumber(n)
		case float64:
			return !math.IsNaN(n) && !math.IsInf(n, 0)
		case float32:
			return !math.IsNaN(float64(n)) && !math.IsInf(float64(n), 0)
		case int, int32, int64:
			return true
		}
		return false
	case "String":
		_, ok := v.(string)
		return ok
	case "Boolean":
		_, ok := v.(bool)
		return ok
	case "ID":
		if _, ok := v.(string); ok {
			return true
		}
		return isInteger(v, math.MinInt64, math.MaxInt64)
	}
	return true
}

// finiteNumber reports whether n reads as a finite float64 (a number past float64's range does
// not: ParseFloat reports it out of range).
func finiteNumber(n json.Number) bool {
	f, err := strconv.ParseFloat(string(n), 64)
	return err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
}

func isInteger(v any, lo, hi int64) bool {
	switch n := v.(type) {
	case json.Number:
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil {
			// 5.0 is an integer written as a float; JSON encoders write such values.
			f, ferr := strconv.ParseFloat(string(n), 64)
			if ferr != nil || f != math.Trunc(f) || f < float64(lo) || f > float64(hi) {
				return false
			}
			return true
		}
		return i >= lo && i <= hi
	case int64:
		return n >= lo && n <= hi
	case int:
		return int64(n) >= lo && int64(n) <= hi
	case int32:
		return true
	case float64:
		return n == math.Trunc(n) && n >= float64(lo) && n <= float64(hi)
	}
	return false
}

// describe names a rejected value for the error without echoing a long one.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		return quoteClient(x) + " (a string)"
	case json.Number:
		s := string(x)
		if len(s) > maxEchoed {
			s = s[:maxEchoed] + "…" // ASCII: a valid json.Number is
		}
		return s
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	// Named as the client wrote it, not by the Go type it was decoded to.
	switch reflect.ValueOf(v).Kind() {
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "the value given"
}

// integralNumbers rewrites numbers written with a fraction or an exponent whose value is an
// integer (5.0, 5e0, 50e-1: what JSON encoders of languages without an integer type write) as
// integers, before gqlgen coerces variables. gqlparser reads an Int variable's json.Number with
// strconv.ParseInt and refuses those with a misleading "cannot use value 0 as Int", so
// strictVariables, which runs after it, never sees them; the spec's JSON-number semantics (and
// graphql-js) take them as the integer they are. Only values up to 2^53 in magnitude are
// rewritten: above that a float64 no longer holds every integer, so the text may not be the
// integer the client meant, and Int's range refuses such values anyway.
type integralNumbers struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = integralNumbers{}

// maxExactInteger is 2^53, the largest magnitude below which a float64 holds every integer.
const maxExactInteger = 1 << 53

// ExtensionName names the extension in gqlgen's stats.
func (integralNumbers) ExtensionName() string { return "PorticoIntegralNumbers" }

// Validate accepts any schema.
func (integralNumbers) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationParameters rewrites the request's variables in place; they are the request's own.
func (integralNumbers) MutateOperationParameters(_ context.Context, params *graphql.RawParams) *gqlerror.Error {
	for k, v := range params.Variables {
		params.Variables[k] = integralValue(v)
	}
	return nil
}

func integralValue(v any) any {
	switch x := v.(type) {
	case json.Number:
		return integralNumber(x)
	case map[string]any:
		for k, e := range x {
			x[k] = integralValue(e)
		}
	case []any:
		for i, e := range x {
			x[i] = integralValue(e)
		}
	}
	return v
}

func integralNumber(n json.Number) json.Number {
	if !strings.ContainsAny(string(n), ".eE") {
		return n
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > maxExactInteger {
		return n
	}
	return json.Number(strconv.FormatInt(int64(f), 10))
}
