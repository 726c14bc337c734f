package bff

import (
	"regexp"

	"github.com/vektah/gqlparser/v2/ast"
)

// gqlparser's variable coercion speaks of Go's types ("must be a PlaceOrderInput, not a slice",
// "cannot use map as ID") and prints a top-level Int variable it cannot read as "cannot use value
// 0 as Int" whatever was sent (1.5, 1e300). Clients write JSON, so the messages are restated in
// its terms; the path still names the variable.
var (
	varValueAs   = regexp.MustCompile(`^cannot use value .* as (Int|Float)$`)
	varKindAs    = regexp.MustCompile(`^cannot use ([a-z0-9]+) as (\w+)$`)
	varMustBeNot = regexp.MustCompile(`^must be a (\w+), not a ([a-z0-9]+)$`)
)

// jsonKinds names reflect kinds as the JSON a client sent (json.Number decodes as a string kind,
// so a number may show as one).
var jsonKinds = map[string]string{
	"map": "an object", "slice": "a list", "array": "a list", "string": "a string or number",
	"bool": "a boolean", "float64": "a number", "float32": "a number", "int": "a number",
	"int64": "a number", "int32": "a number",
}

func jsonKind(k string) string {
	if s, ok := jsonKinds[k]; ok {
		return s
	}
	return "this value"
}

// variableMessage restates a coercion error of the variable at path, or returns msg unchanged.
func variableMessage(path ast.Path, msg string) string {
	if len(path) == 0 || path[0] != ast.PathName("variable") {
		return msg
	}
	if m := varValueAs.FindStringSubmatch(msg); m != nil {
		if m[1] == "Int" {
			return "Int cannot represent this value: it takes a whole number from -2147483648 to 2147483647"
		}
		return "Float cannot represent this value: it takes a finite number"
	}
	if m := varKindAs.FindStringSubmatch(msg); m != nil {
		return "cannot use " + jsonKind(m[1]) + " as " + m[2]
	}
	if m := varMustBeNot.FindStringSubmatch(msg); m != nil {
		return "must be an object of type " + m[1] + ", not " + jsonKind(m[2])
	}
	if msg == "enums must be ints or strings" {
		return "an enum value must be a string"
	}
	return msg
}
