package bff

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
)

// openAPIDocument describes the profile's REST routes as OpenAPI 3.1: a path item per route, its
// parameters typed by the operation's variables, a JSON request body for methods that take one,
// and a 200 response whose schema follows the operation's selection set over the schema's types
// (null allowed exactly where the schema allows it). Error answers share one Error schema.
func openAPIDocument(name string, cfg *Config, routes []*restRoute) ([]byte, error) {
	paths := map[string]map[string]any{}
	usedIDs := map[string]bool{}
	for _, rt := range routes {
		item := paths[rt.path]
		if item == nil {
			item = map[string]any{}
			paths[rt.path] = item
		}
		id := operationID(rt, usedIDs)
		usedIDs[id] = true
		item[strings.ToLower(rt.method)] = routeOperation(rt, id)
	}
	h := sha256.New()
	for _, rt := range routes {
		h.Write([]byte(rt.method + " " + rt.path + " " + rt.doc.hash + "\n"))
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title": "Portico " + name + " BFF",
			"description": "REST facade of the " + name + " BFF. Each route runs a stored GraphQL operation; " +
				"GraphQL clients can use " + cfg.Path + "/graphql instead.",
			// The version changes whenever a route or an operation's text does.
			"version": "ops-" + hex.EncodeToString(h.Sum(nil))[:12],
		},
		"paths": paths,
		"components": map[string]any{
			"schemas": map[string]any{
				"Error": map[string]any{
					"type":     "object",
					"required": []string{"error"},
					"properties": map[string]any{
						"error": map[string]any{
							"type":     "object",
							"required": []string{"code", "message"},
							"properties": map[string]any{
								"code":       map[string]any{"type": "string", "description": "Machine-readable code, e.g. NOT_FOUND, UPSTREAM_TIMEOUT."},
								"message":    map[string]any{"type": "string"},
								"request_id": map[string]any{"type": "string"},
							},
						},
					},
				},
			},
			"responses": map[string]any{
				"Error": map[string]any{
					"description": "Error",
					"content":     map[string]any{mediaJSON: map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Error"}}},
				},
			},
		},
	}
	return json.MarshalIndent(doc, "", "  ")
}

// operationID names a route's OpenAPI operation, unique in the document as OpenAPI requires:
// the operation's name, then the name and method (OrderDetailGet), then that with a counter
// (OrderDetailGet2, …) for a third route of one operation and method. Routes are numbered in
// config order, so the ids do not change between builds of one config.
func operationID(rt *restRoute, used map[string]bool) string {
	id := rt.op.Name
	if !used[id] {
		return id
	}
	id += strings.ToUpper(rt.method[:1]) + strings.ToLower(rt.method[1:])
	if !used[id] {
		return id
	}
	for n := 2; ; n++ {
		if c := id + strconv.Itoa(n); !used[c] {
			return c
		}
	}
}

func routeOperation(rt *restRoute, id string) map[string]any {
	g := schemaGen{schema: rt.schema}
	op := map[string]any{
		"operationId": id,
		"summary":     "Runs the stored GraphQL " + string(rt.op.Operation) + " " + rt.op.Name + " (" + rt.doc.file + ")",
	}
	var params []any
	bodyProps := map[string]any{}
	var bodyRequired []string
	for _, v := range rt.op.VariableDefinitions {
		required := v.Type.NonNull && v.DefaultValue == nil
		s := g.input(v.Type)
		switch {
		case slices.Contains(rt.params, v.Variable):
			params = append(params, map[string]any{"name": v.Variable, "in": "path", "required": true, "schema": s})
		case rt.hasBody:
			bodyProps[v.Variable] = s
			if required {
				bodyRequired = append(bodyRequired, v.Variable)
			}
		default:
			params = append(params, map[string]any{"name": v.Variable, "in": "query", "required": required, "schema": s})
		}
	}
	if len(params) > 0 {
		op["parameters"] = params
	}
	if rt.hasBody && len(bodyProps) > 0 {
		body := map[string]any{"type": "object", "properties": bodyProps, "additionalProperties": false}
		if len(bodyRequired) > 0 {
			body["required"] = bodyRequired
		}
		op["requestBody"] = map[string]any{
			"required": len(bodyRequired) > 0,
			"content":  map[string]any{mediaJSON: map[string]any{"schema": body}},
		}
	}
	errRef := map[string]any{"$ref": "#/components/responses/Error"}
	responses := map[string]any{
		"200": map[string]any{
			"description": "The operation's data" + resultNote(rt),
			"headers": map[string]any{
				"X-Portico-Partial": map[string]any{
					"description": "true when some field failed and is null in the body; such answers are not cacheable.",
					"schema":      map[string]any{"type": "string", "enum": []string{"true"}},
				},
			},
			"content": map[string]any{mediaJSON: map[string]any{"schema": g.result(rt)}},
		},
		"400": errRef, "502": errRef, "503": errRef, "504": errRef,
		"default": errRef,
	}
	if rt.check != nil {
		responses["404"] = errRef
	}
	op["responses"] = responses
	return op
}

func resultNote(rt *restRoute) string {
	if len(rt.result) == 0 {
		return "."
	}
	return " at " + strings.Join(rt.result, ".") + "."
}

// schemaGen turns GraphQL types into JSON Schema 2020-12 (OpenAPI 3.1) schemas.
type schemaGen struct{ schema *ast.Schema }

// result is the 200 body's schema: the operation's selection, or the field at its result path.
// The value checked for null is never null in a 200 (that answers 404), so it is not nullable.
func (g schemaGen) result(rt *restRoute) map[string]any {
	if len(rt.result) == 0 {
		root := rt.schema.Query
		if rt.op.Operation == ast.Mutation {
			root = rt.schema.Mutation
		}
		s := g.selection(root, rt.op.SelectionSet)
		if len(rt.check) == 1 {
			props := s["properties"].(map[string]any)
			props[rt.check[0]] = nonNull(props[rt.check[0]].(map[string]any))
		}
		return s
	}
	fields, _ := selectionAt(rt.op.SelectionSet, rt.result)
	return nonNull(g.field(fields))
}

// selection describes an object selected by set on def: one property per response key, every key
// required (GraphQL always answers selected fields, null or not) unless it sits in a fragment on
// another type or under @skip/@include.
func (g schemaGen) selection(def *ast.Definition, set ast.SelectionSet) map[string]any {
	props := map[string]any{}
	var required []string
	_, all := fieldsByKey(set)
	var walk func(set ast.SelectionSet, conditional bool)
	walk = func(set ast.SelectionSet, conditional bool) {
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				key := s.Alias
				if key == "" {
					key = s.Name
				}
				if _, seen := props[key]; !seen {
					// Fields sharing a key merge; validation made their types agree.
					props[key] = g.field(all[key])
				}
				if !conditional && len(s.Directives) == 0 {
					required = append(required, key)
				}
			case *ast.InlineFragment:
				walk(s.SelectionSet, conditional || len(s.Directives) > 0 || (s.TypeCondition != "" && s.TypeCondition != def.Name))
			case *ast.FragmentSpread:
				if s.Definition != nil {
					walk(s.Definition.SelectionSet, conditional || len(s.Directives) > 0 || s.Definition.TypeCondition != def.Name)
				}
			}
		}
	}
	walk(set, false)
	out := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		slices.Sort(required)
		out["required"] = slices.Compact(required)
	}
	return out
}

// field describes the value of fields sharing one response key; their sub-selections merge.
func (g schemaGen) field(fields []*ast.Field) map[string]any {
	f := fields[0]
	if f.Name == "__typename" || f.Definition == nil {
		return map[string]any{"type": "string"}
	}
	var merged ast.SelectionSet
	for _, x := range fields {
		merged = append(merged, x.SelectionSet...)
	}
	s := g.output(f.Definition.Type, merged)
	if d := strings.TrimSpace(f.Definition.Description); d != "" {
		s["description"] = d
	}
	return s
}

func (g schemaGen) output(t *ast.Type, set ast.SelectionSet) map[string]any {
	var s map[string]any
	if t.Elem != nil {
		s = map[string]any{"type": "array", "items": g.output(t.Elem, set)}
	} else if def := g.schema.Types[t.NamedType]; def != nil && (def.Kind == ast.Object || def.Kind == ast.Interface || def.Kind == ast.Union) {
		s = g.selection(def, set)
	} else {
		s = g.leaf(t.NamedType)
	}
	if !t.NonNull {
		s = nullable(s)
	}
	return s
}

// input describes a variable's type: scalars, enums, lists and input objects.
func (g schemaGen) input(t *ast.Type) map[string]any {
	var s map[string]any
	if t.Elem != nil {
		s = map[string]any{"type": "array", "items": g.input(t.Elem)}
	} else if def := g.schema.Types[t.NamedType]; def != nil && def.Kind == ast.InputObject {
		props := map[string]any{}
		var required []string
		for _, f := range def.Fields {
			props[f.Name] = g.input(f.Type)
			if f.Type.NonNull && f.DefaultValue == nil {
				required = append(required, f.Name)
			}
		}
		s = map[string]any{"type": "object", "properties": props, "additionalProperties": false}
		if len(required) > 0 {
			s["required"] = required
		}
	} else {
		s = g.leaf(t.NamedType)
	}
	if !t.NonNull {
		s = nullable(s)
	}
	return s
}

func (g schemaGen) leaf(name string) map[string]any {
	switch name {
	case "Int":
		return map[string]any{"type": "integer", "format": "int32"}
	case "Float":
		return map[string]any{"type": "number"}
	case "String", "ID":
		return map[string]any{"type": "string"}
	case "Boolean":
		return map[string]any{"type": "boolean"}
	case "Time":
		return map[string]any{"type": "string", "format": "date-time"}
	}
	def := g.schema.Types[name]
	if def != nil && def.Kind == ast.Enum {
		values := make([]any, len(def.EnumValues))
		for i, v := range def.EnumValues {
			values[i] = v.Name
		}
		return map[string]any{"type": "string", "enum": values}
	}
	// A custom scalar whose JSON shape the schema does not state: any value.
	s := map[string]any{}
	if def != nil && strings.TrimSpace(def.Description) != "" {
		s["description"] = strings.TrimSpace(def.Description)
	}
	return s
}

// nullable adds null to a schema's types (OpenAPI 3.1 has no `nullable`; it uses type arrays).
func nullable(s map[string]any) map[string]any {
	switch t := s["type"].(type) {
	case string:
		s["type"] = []string{t, "null"}
	case nil:
		return s // any value already includes null
	}
	if e, ok := s["enum"].([]any); ok {
		s["enum"] = append(e, nil)
	}
	return s
}

// nonNull undoes nullable for a value a 200 never holds as null.
func nonNull(s map[string]any) map[string]any {
	if t, ok := s["type"].([]string); ok {
		s["type"] = slices.DeleteFunc(slices.Clone(t), func(x string) bool { return x == "null" })
		if len(s["type"].([]string)) == 1 {
			s["type"] = s["type"].([]string)[0]
		}
	}
	if e, ok := s["enum"].([]any); ok {
		s["enum"] = slices.DeleteFunc(slices.Clone(e), func(x any) bool { return x == nil })
	}
	return s
}

// serveOpenAPI answers the generated document.
func serveOpenAPI(doc []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-cache")
		_, _ = w.Write(doc)
	})
}
