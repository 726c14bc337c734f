package bff

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/portico-gw/portico/internal/apierror"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// restRoute is a REST mapping checked against its operation: everything a request needs is
// resolved here, at New, so the request path only reads.
type restRoute struct {
	index  int
	method string
	path   string // full path as configured: profile path + route path
	params []string
	op     *ast.OperationDefinition
	doc    *document
	schema *ast.Schema
	// result is the response-key path of the body; check is the path whose null answers 404 (the
	// result, or the only root field when there is no result).
	result []string
	check  []string
	// bodyVars are the variables a JSON body may set (methods other than GET).
	hasBody bool
}

// buildRoutes resolves every REST mapping against the stored operations and the schema.
func buildRoutes(cfg *Config, docs *documentSet, schema *ast.Schema, bffName string) ([]*restRoute, error) {
	var errs []error
	routes := make([]*restRoute, 0, len(cfg.REST))
	for i, rc := range cfg.REST {
		rt, err := buildRoute(i, cfg.Path, rc, docs, schema)
		if err != nil {
			errs = append(errs, fmt.Errorf("bffs.%s.rest[%d] (%s %s): %w", bffName, i, rc.method(), rc.Path, err))
			continue
		}
		routes = append(routes, rt)
	}
	return routes, errors.Join(errs...)
}

func buildRoute(i int, prefix string, rc RESTConfig, docs *documentSet, schema *ast.Schema) (*restRoute, error) {
	rp, err := parseRoutePath(rc.Path)
	if err != nil {
		return nil, err
	}
	op, doc := docs.operation(rc.Operation)
	if op == nil {
		return nil, fmt.Errorf("operation %s is not in schema/operations (known: %s)", rc.Operation, strings.Join(docs.names(), ", "))
	}
	rt := &restRoute{
		index: i, method: rc.method(), path: prefix + rc.Path, params: rp.params, op: op, doc: doc, schema: schema,
		hasBody: rc.method() != http.MethodGet && rc.method() != http.MethodDelete,
	}
	if rt.method == http.MethodGet && op.Operation != ast.Query {
		return nil, fmt.Errorf("GET may only run a query; %s is a %s", op.Name, op.Operation)
	}
	for _, name := range rp.params {
		v := op.VariableDefinitions.ForName(name)
		if v == nil {
			return nil, fmt.Errorf("path parameter {%s} is not a variable of %s (variables: %s)", name, op.Name, variableNames(op))
		}
		if v.Type.Elem != nil || schema.Types[v.Type.Name()].Kind == ast.InputObject {
			return nil, fmt.Errorf("path parameter {%s} has type %s; a path segment holds one scalar", name, v.Type)
		}
	}
	if !rt.hasBody {
		for _, v := range op.VariableDefinitions {
			if slices.Contains(rp.params, v.Variable) {
				continue
			}
			if schema.Types[v.Type.Name()].Kind == ast.InputObject {
				return nil, fmt.Errorf("variable $%s is an input object, which a query string cannot carry; map it with POST, PUT or PATCH", v.Variable)
			}
		}
	}
	if rc.Result != "" {
		rt.result = strings.Split(rc.Result, ".")
		if _, err := selectionAt(op.SelectionSet, rt.result); err != nil {
			return nil, fmt.Errorf("result %q: %w", rc.Result, err)
		}
		rt.check = rt.result
	} else if keys := responseKeys(op.SelectionSet); len(keys) == 1 {
		rt.check = keys
	}
	return rt, nil
}

func variableNames(op *ast.OperationDefinition) string {
	if len(op.VariableDefinitions) == 0 {
		return "none"
	}
	names := make([]string, len(op.VariableDefinitions))
	for i, v := range op.VariableDefinitions {
		names[i] = "$" + v.Variable
	}
	return strings.Join(names, ", ")
}

// fieldsByKey returns the fields of a selection set by response key, through fragments, in
// document order; several fields may share a key (they merge).
func fieldsByKey(set ast.SelectionSet) ([]string, map[string][]*ast.Field) {
	var keys []string
	byKey := map[string][]*ast.Field{}
	var walk func(ast.SelectionSet)
	walk = func(set ast.SelectionSet) {
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				key := s.Alias
				if key == "" {
					key = s.Name
				}
				if _, ok := byKey[key]; !ok {
					keys = append(keys, key)
				}
				byKey[key] = append(byKey[key], s)
			case *ast.InlineFragment:
				walk(s.SelectionSet)
			case *ast.FragmentSpread:
				if s.Definition != nil {
					walk(s.Definition.SelectionSet)
				}
			}
		}
	}
	walk(set)
	return keys, byKey
}

func responseKeys(set ast.SelectionSet) []string {
	keys, _ := fieldsByKey(set)
	return keys
}

// selectionAt follows a response-key path through an operation's selections and returns the
// fields at its end.
func selectionAt(set ast.SelectionSet, path []string) ([]*ast.Field, error) {
	var fields []*ast.Field
	sets := []ast.SelectionSet{set}
	for i, key := range path {
		fields = nil
		var known []string
		for _, s := range sets {
			keys, byKey := fieldsByKey(s)
			known = append(known, keys...)
			fields = append(fields, byKey[key]...)
		}
		if len(fields) == 0 {
			return nil, fmt.Errorf("%s is not selected at %s (selected: %s)", key, strings.Join(append([]string{"data"}, path[:i]...), "."), strings.Join(known, ", "))
		}
		if i < len(path)-1 && fields[0].Definition != nil && fields[0].Definition.Type.Elem != nil {
			return nil, fmt.Errorf("%s is a list; a result path cannot step into a list", key)
		}
		sets = sets[:0]
		for _, f := range fields {
			sets = append(sets, f.SelectionSet)
		}
	}
	return fields, nil
}

// restTransport serves the REST routes through the same gqlgen server, executor and extensions
// as /graphql: it is one more transport, picked when the profile's router put a route in the
// request context, so the two facades cannot drift apart.
type restTransport struct{ p *Profile }

var _ graphql.Transport = restTransport{}

type restMatch struct {
	route  *restRoute
	values map[string]string // path parameters
}

type restMatchKey struct{}

// Supports takes requests the profile routed to a REST mapping.
func (restTransport) Supports(r *http.Request) bool {
	_, ok := r.Context().Value(restMatchKey{}).(*restMatch)
	return ok
}

// Do answers a REST request with the operation's data.
func (t restTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	p := t.p
	m := r.Context().Value(restMatchKey{}).(*restMatch)
	rt := m.route
	vars, aerr := rt.variables(w, r, m.values, p.maxBodyBytes())
	if aerr != nil {
		apierror.Write(w, r, aerr)
		return
	}
	params := &graphql.RawParams{Query: rt.doc.text, OperationName: rt.op.Name, Variables: vars, Headers: r.Header}
	o := p.run(p.requestContext(r.Context()), exec, params, "", rt.method == http.MethodGet)
	p.writeREST(w, r, rt, o)
}

// writeREST maps an outcome to a REST answer: the data (or its result sub-path) with 200; 404
// when the checked value is null and no error explains it; the failing backend's status
// (502/503/504) when an error on that path does; 4xx when the request never ran. A partial
// answer (some other field failed) is still 200, marked with X-Portico-Partial and not cacheable.
func (p *Profile) writeREST(w http.ResponseWriter, r *http.Request, rt *restRoute, o outcome) {
	switch {
	case o.canceled:
		apierror.Write(w, r, context.Canceled)
		return
	case o.getMutation:
		apierror.Write(w, r, apierror.New(http.StatusMethodNotAllowed, codeMethodNotAllowed, "GET runs queries only"))
		return
	case o.requestError:
		e := o.resp.Errors[0]
		code := errorCode(e)
		if code == codeGraphQLValidation || code == codeGraphQLParseFailed {
			code = codeBadRequest // the client sent parameters, not GraphQL
		}
		msg := e.Message
		if where := variablePath(e.Path); where != "" {
			msg = where + ": " + msg // "input.items: must be a OrderItemInput, not a string"
		}
		apierror.Write(w, r, apierror.New(statusForRequestErrors(o.resp.Errors, mediaGraphQLResponse), code, msg))
		return
	case o.required != nil:
		apierror.Write(w, r, apierror.New(o.requiredStatus, errorCode(o.required), o.required.Message))
		return
	}
	data := json.RawMessage(o.resp.Data)
	if rt.check != nil {
		v, err := rawAt(data, rt.check)
		if err != nil {
			apierror.Write(w, r, fmt.Errorf("reading the operation's answer: %w", err))
			return
		}
		if isNull(v) {
			if e := errorUnder(o.resp.Errors, rt.check); e != nil {
				status := statusForError(e)
				if status < 400 {
					status = http.StatusBadGateway
				}
				apierror.Write(w, r, apierror.New(status, errorCode(e), e.Message))
				return
			}
			apierror.Write(w, r, apierror.New(http.StatusNotFound, codeNotFound, strings.Join(rt.check, ".")+" not found"))
			return
		}
	}
	body, err := rawAt(data, rt.result)
	if err != nil {
		apierror.Write(w, r, fmt.Errorf("reading the operation's answer: %w", err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", mediaJSON)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if len(o.resp.Errors) > 0 {
		h.Set("X-Portico-Partial", "true")
		h.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// rawAt returns the JSON value at a response-key path without re-encoding, so the body keeps the
// executor's field order; a missing key or a null on the way reads as null.
func rawAt(data json.RawMessage, path []string) (json.RawMessage, error) {
	cur := data
	for _, key := range path {
		if isNull(cur) {
			return json.RawMessage("null"), nil
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(cur, &obj); err != nil {
			return nil, err
		}
		next, ok := obj[key]
		if !ok {
			return json.RawMessage("null"), nil
		}
		cur = next
	}
	return cur, nil
}

func isNull(v json.RawMessage) bool {
	s := strings.TrimSpace(string(v))
	return s == "" || s == "null"
}

// errorUnder returns the first error whose path starts with prefix (or lies above it).
func errorUnder(errs gqlerror.List, prefix []string) *gqlerror.Error {
	for _, e := range errs {
		n := min(len(e.Path), len(prefix))
		match := n > 0
		for i := 0; i < n; i++ {
			if name, ok := e.Path[i].(ast.PathName); !ok || string(name) != prefix[i] {
				match = false
				break
			}
		}
		if match {
			return e
		}
	}
	return nil
}

// variables builds the operation's variables from path parameters, the query string and (for
// methods with a body) a JSON object body, typed by the variable definitions. Every mistake is a
// 400 naming the parameter.
func (rt *restRoute) variables(w http.ResponseWriter, r *http.Request, pathValues map[string]string, maxBody int64) (map[string]any, *apierror.Error) {
	vars := map[string]any{}
	source := map[string]string{}
	for _, name := range rt.params {
		def := rt.op.VariableDefinitions.ForName(name)
		if !utf8.ValidString(pathValues[name]) {
			return nil, badParam("path parameter %q is not valid UTF-8 once percent-decoded", name)
		}
		v, err := coerceString(rt.schema, def.Type, pathValues[name])
		if err != nil {
			return nil, badParam("path parameter %q: %v", name, err)
		}
		vars[name] = v
		source[name] = "path"
	}
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badParam("the query string does not parse")
	}
	if !utf8Values(query) {
		return nil, badParam(errQueryNotUTF8)
	}
	for _, name := range sortedKeys(query) {
		def := rt.op.VariableDefinitions.ForName(name)
		switch {
		case def == nil:
			return nil, badParam("unknown query parameter %s (known: %s)", quoteClient(name), strings.ReplaceAll(variableNames(rt.op), "$", ""))
		case source[name] != "":
			return nil, badParam("parameter %q is already given in the path", name)
		case rt.schema.Types[def.Type.Name()].Kind == ast.InputObject:
			return nil, badParam("parameter %q is an object; send it in a JSON body", name)
		}
		values := query[name]
		if def.Type.Elem != nil {
			list := make([]any, len(values))
			for i, s := range values {
				v, err := coerceString(rt.schema, def.Type.Elem, s)
				if err != nil {
					return nil, badParam("query parameter %q: %v", name, err)
				}
				list[i] = v
			}
			vars[name] = list
		} else {
			if len(values) > 1 {
				return nil, badParam("query parameter %q is given %d times; it takes one value", name, len(values))
			}
			v, err := coerceString(rt.schema, def.Type, values[0])
			if err != nil {
				return nil, badParam("query parameter %q: %v", name, err)
			}
			vars[name] = v
		}
		source[name] = "query"
	}
	if rt.hasBody {
		body, aerr := readRESTBody(w, r, maxBody)
		if aerr != nil {
			return nil, aerr
		}
		for _, name := range sortedKeys(body) {
			switch {
			case rt.op.VariableDefinitions.ForName(name) == nil:
				return nil, badParam("unknown body field %s (known: %s)", quoteClient(name), strings.ReplaceAll(variableNames(rt.op), "$", ""))
			case source[name] != "":
				return nil, badParam("body field %q is already given in the %s", name, source[name])
			}
			vars[name] = body[name]
			source[name] = "body"
		}
	}
	for _, def := range rt.op.VariableDefinitions {
		if _, ok := vars[def.Variable]; !ok && def.Type.NonNull && def.DefaultValue == nil {
			return nil, badParam("missing parameter %q (%s)", def.Variable, def.Type)
		}
	}
	return vars, nil
}

func readRESTBody(w http.ResponseWriter, r *http.Request, limit int64) (map[string]any, *apierror.Error) {
	var buf bytes.Buffer
	if bp := readBody(w, r, limit, &buf); bp != nil {
		return nil, apierror.New(bp.status, bp.code, bp.msg)
	}
	b := buf.Bytes()
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil, nil
	}
	if msg := unreadableBody(r.Header.Get("Content-Type")); msg != "" {
		return nil, apierror.New(http.StatusUnsupportedMediaType, codeUnsupportedMediaType, msg)
	}
	if !utf8.Valid(b) {
		return nil, badParam(errNotUTF8)
	}
	var body map[string]any
	if err := decodeJSON(b, &body); err != nil {
		return nil, badParam("the body must be a JSON object")
	}
	return body, nil
}

func badParam(format string, args ...any) *apierror.Error {
	return apierror.New(http.StatusBadRequest, codeBadRequest, fmt.Sprintf(format, args...))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// coerceString turns a path or query string into a variable value of type t (a named type; lists
// are handled by the caller). Numbers stay json.Number, as a JSON body's would.
func coerceString(schema *ast.Schema, t *ast.Type, s string) (any, error) {
	if t.Elem != nil {
		return nil, fmt.Errorf("a list cannot be given here")
	}
	def := schema.Types[t.NamedType]
	if def == nil {
		return nil, fmt.Errorf("unknown type %s", t.NamedType)
	}
	switch def.Kind {
	case ast.Enum:
		if def.EnumValues.ForName(s) == nil {
			allowed := make([]string, len(def.EnumValues))
			for i, v := range def.EnumValues {
				allowed[i] = v.Name
			}
			return nil, fmt.Errorf("%s is not one of %s", quoteClient(s), strings.Join(allowed, ", "))
		}
		return s, nil
	case ast.InputObject:
		return nil, fmt.Errorf("an object must be sent in a JSON body")
	}
	switch t.NamedType {
	case "Int":
		if _, err := strconv.ParseInt(s, 10, 32); err != nil {
			return nil, fmt.Errorf("%s is not a 32-bit integer", quoteClient(s))
		}
		return json.Number(s), nil
	case "Float":
		// A JSON number, as a body would carry: strconv.ParseFloat also reads NaN, Inf and hex
		// floats, which no JSON number or GraphQL Float can be.
		if !isJSONNumber(s) || !finiteNumber(json.Number(s)) {
			return nil, fmt.Errorf("%s is not a number", quoteClient(s))
		}
		return json.Number(s), nil
	case "Boolean":
		switch s {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, fmt.Errorf("%s is not true or false", quoteClient(s))
	case "ID", "String":
		if t.NonNull && s == "" {
			return nil, fmt.Errorf("must not be empty")
		}
	}
	return s, nil
}

// isJSONNumber reports whether s is a number as JSON writes it: -?int(.digits)?([eE][+-]?digits)?
func isJSONNumber(s string) bool {
	return s != "" && (s[0] == '-' || s[0] >= '0' && s[0] <= '9') && json.Valid([]byte(s))
}

// variablePath names the parameter a variable coercion error is about: gqlparser puts it in the
// error's path as variable.<name>.<field>…
func variablePath(p ast.Path) string {
	if len(p) < 2 || p[0] != ast.PathName("variable") {
		return ""
	}
	var b strings.Builder
	for i, el := range p[1:] {
		switch v := el.(type) {
		case ast.PathName:
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(string(v))
		case ast.PathIndex:
			b.WriteString("[" + strconv.Itoa(int(v)) + "]")
		}
	}
	return b.String()
}
