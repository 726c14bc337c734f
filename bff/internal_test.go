package bff

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/portico-gw/portico/resolvers"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// encodeResponse writes executed answers by hand; whatever it writes must mean what json.Marshal
// of the same value means, and be byte for byte the same where Marshal has nothing to escape.
func TestEncodeResponseMatchesJSONMarshal(t *testing.T) {
	yes := true
	for _, tc := range []struct {
		name string
		resp any
		// htmlEscaped: Marshal escapes <, > and & inside data; encodeResponse keeps them, which is
		// the same JSON but not the same bytes.
		htmlEscaped bool
	}{
		{name: "data", resp: &graphql.Response{Data: json.RawMessage(`{"me":{"id":"u1","name":"Ada"}}`)}},
		{name: "data and field errors", resp: &graphql.Response{Data: json.RawMessage(`{"me":null}`), Errors: gqlerror.List{
			{Message: "the users service failed", Path: ast.Path{ast.PathName("me")}, Extensions: map[string]any{"code": "BAD_GATEWAY"}}}}},
		{name: "data and extensions", resp: &graphql.Response{Data: json.RawMessage(`{"a":1}`), Extensions: map[string]any{"cost": 3}}},
		{name: "data with HTML characters", resp: &graphql.Response{Data: json.RawMessage(`{"title":"<b>&</b>"}`)}, htmlEscaped: true},
		{name: "request error: no data entry", resp: &graphql.Response{Errors: gqlerror.List{{Message: "bad"}}}},
		{name: "incremental part", resp: &graphql.Response{Data: json.RawMessage(`{}`), Label: "l", Path: ast.Path{ast.PathName("x")}, HasNext: &yes}},
		{name: "batch", resp: []any{bodyOf(&graphql.Response{Data: json.RawMessage(`{"a":1}`)}), bodyOf(&graphql.Response{Errors: gqlerror.List{{Message: "x"}}})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := encodeResponse(&buf, tc.resp); err != nil {
				t.Fatal(err)
			}
			v := tc.resp
			if r, ok := v.(*graphql.Response); ok {
				v = bodyOf(r)
			}
			want, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.htmlEscaped && !bytes.Equal(buf.Bytes(), want) {
				t.Fatalf("got  %s\nwant %s", buf.Bytes(), want)
			}
			var got, exp any
			if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatalf("not JSON: %s: %v", buf.Bytes(), err)
			}
			_ = json.Unmarshal(want, &exp)
			if !reflect.DeepEqual(got, exp) {
				t.Fatalf("got  %s\nwant %s", buf.Bytes(), want)
			}
		})
	}
}

func TestDecodeParams(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       *graphql.RawParams
		wantDocID  string
		wantErr    string
	}{
		{name: "query only", body: `{"query":"{ me { id } }"}`, want: &graphql.RawParams{Query: "{ me { id } }"}},
		{name: "variables keep large integers exact", body: `{"query":"q","operationName":"Q","variables":{"n":9007199254740993,"s":"x"}}`,
			want: &graphql.RawParams{Query: "q", OperationName: "Q", Variables: map[string]any{"n": json.Number("9007199254740993"), "s": "x"}}},
		{name: "null variables and extensions", body: `{"query":"q","variables":null,"extensions":null}`, want: &graphql.RawParams{Query: "q"}},
		{name: "persisted query alone", body: `{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"ab"}}}`,
			want: &graphql.RawParams{Extensions: map[string]any{"persistedQuery": map[string]any{"version": json.Number("1"), "sha256Hash": "ab"}}}},
		{name: "document id", body: `{"documentId":"sha256:ab"}`, want: &graphql.RawParams{}, wantDocID: "sha256:ab"},
		{name: "variables not an object", body: `{"query":"q","variables":"x"}`, wantErr: `request body's "variables" has the wrong JSON type`},
		{name: "extensions not an object", body: `{"query":"q","extensions":[1]}`, wantErr: `request body's "extensions" has the wrong JSON type`},
		{name: "query not a string", body: `{"query":5}`, wantErr: `request body's "query" has the wrong JSON type`},
		{name: "trailing data", body: `{"query":"q"} {}`, wantErr: "not a JSON object of a GraphQL request"},
		{name: "not an object", body: `"q"`, wantErr: "not a JSON object of a GraphQL request"},
		{name: "nothing to run", body: `{"variables":{}}`, wantErr: "has no query"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, docID, err := decodeParams([]byte(tc.body))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Message, tc.wantErr) || errorCode(err) != codeBadRequest {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Message, tc.body) {
					t.Errorf("the error quotes the body back: %s", err.Message)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) || docID != tc.wantDocID {
				t.Fatalf("got %+v, %q\nwant %+v, %q", got, docID, tc.want, tc.wantDocID)
			}
		})
	}
}

// countingSchema counts the complexity walks: each asks for the cost of the fields it visits.
type countingSchema struct {
	graphql.ExecutableSchema
	calls int
}

func (c *countingSchema) Complexity(ctx context.Context, typeName, field string, child int, args map[string]any) (int, bool) {
	c.calls++
	return c.ExecutableSchema.Complexity(ctx, typeName, field, child, args)
}

// The score cache must answer only for the document and operation it scored: another text,
// another operation of the same text, or an operation with variables is scored afresh.
func TestComplexityScoresAreCachedPerDocumentAndOperation(t *testing.T) {
	real := resolvers.NewExecutableSchema(resolvers.NewResolver(nil, resolvers.Options{}))
	es := &countingSchema{ExecutableSchema: real}
	c := complexityLimit{max: 1000, es: es, scores: lru.New[int](10)}
	score := func(query, opName string, vars map[string]any) (got, want int) {
		t.Helper()
		doc, errs := gqlparser.LoadQueryWithRules(real.Schema(), query, nil)
		if errs != nil {
			t.Fatal(errs)
		}
		op := doc.Operations.ForName(opName)
		opCtx := &graphql.OperationContext{RawQuery: query, OperationName: opName, Doc: doc, Operation: op, Variables: vars}
		return c.score(context.Background(), opCtx), complexity.Calculate(context.Background(), real, op, vars)
	}
	const two = `query Small { notifications(first: 2) { id } } query Big { notifications(first: 50) { id title } }`
	small, want := score(two, "Small", nil)
	if small != want {
		t.Fatalf("Small scored %d, want %d", small, want)
	}
	calls := es.calls
	if got, _ := score(two, "Small", nil); got != small || es.calls != calls {
		t.Fatalf("Small again: score %d, %d more walks; want %d from the cache", got, es.calls-calls, small)
	}
	if got, want := score(two, "Big", nil); got != want || got == small {
		t.Fatalf("Big, same text: scored %d, want %d (not Small's cached %d)", got, want, small)
	}
	if got, want := score(`{ notifications(first: 2) { id title } }`, "", nil); got != want || got == small {
		t.Fatalf("another text: scored %d, want %d", got, want)
	}
	const withVars = `query V($n: Int!) { notifications(first: $n) { id } }`
	few, want := score(withVars, "V", map[string]any{"n": int64(2)})
	if few != want {
		t.Fatalf("V with n=2 scored %d, want %d", few, want)
	}
	if many, want := score(withVars, "V", map[string]any{"n": int64(90)}); many != want || many == few {
		t.Fatalf("V with n=90 scored %d, want %d: operations with variables must not be cached", many, want)
	}
}

func TestNegotiate(t *testing.T) {
	for _, tc := range []struct {
		accept []string
		want   string // "" for 406
	}{
		{nil, mediaJSON},
		{[]string{""}, mediaJSON},
		{[]string{"application/json"}, mediaJSON},
		{[]string{"*/*"}, mediaJSON},
		{[]string{"application/graphql-response+json"}, mediaGraphQLResponse},
		{[]string{"application/graphql-response+json, application/json;q=0.9"}, mediaGraphQLResponse},
		{[]string{"application/json", "application/graphql-response+json"}, mediaGraphQLResponse},
		{[]string{"application/json;q=0"}, ""},
		{[]string{"text/html"}, ""},
	} {
		got, ok := negotiate(tc.accept)
		if !ok {
			got = ""
		}
		if got != tc.want {
			t.Errorf("negotiate(%q) = %q, want %q", tc.accept, got, tc.want)
		}
	}
}

// operationComplexity scores like gqlgen's complexity.Calculate, fragments and all; it only walks
// each fragment once.
func TestOperationComplexityMatchesGqlgen(t *testing.T) {
	es := resolvers.NewExecutableSchema(resolvers.NewResolver(nil, resolvers.Options{}))
	for _, tc := range []struct {
		query string
		vars  map[string]any
	}{
		{query: `{ dashboard { me { id name email tier } recentOrders(first: 5) { id status totalCents currency createdAt } unreadNotifications } }`},
		{query: `{ orders(first: 20) { edges { node { id user { id name } payment { id status } } } pageInfo { hasNextPage endCursor } } }`},
		{query: `query { me { ...U orders(first: 3) { edges { node { ...O } } } } } fragment U on User { id name } fragment O on Order { id user { ...U } }`},
		{query: `{ me { ... on User { id orders(first: 7) { edges { node { id } } } } } }`},
		{query: `query Q($n: Int) { notifications(first: $n) { id title } }`, vars: map[string]any{"n": int64(40)}},
		{query: `{ me { ...A ...A } } fragment A on User { id ...B ...B } fragment B on User { name orders(first: 2) { edges { node { id } } } }`},
	} {
		doc, errs := gqlparser.LoadQueryWithRules(es.Schema(), tc.query, nil)
		if errs != nil {
			t.Fatalf("%s: %v", tc.query, errs)
		}
		op := doc.Operations[0]
		got := operationComplexity(context.Background(), es, op, tc.vars)
		want := complexity.Calculate(context.Background(), es, op, tc.vars)
		if got != want {
			t.Errorf("%s: scored %d, gqlgen %d", tc.query, got, want)
		}
	}
}

// Introspection meta-fields, which gqlgen leaves out of the score (__schema) or scores as plain
// fields (__type), cost their weight plus their selection, so that aliasing them adds up; the
// rest of the document scores as gqlgen scores it.
func TestIntrospectionCountsTowardComplexity(t *testing.T) {
	es := resolvers.NewExecutableSchema(resolvers.NewResolver(nil, resolvers.Options{}))
	for _, tc := range []struct {
		query string
		extra int // over gqlgen's score
	}{
		{`{ __schema { types { name } } me { id } }`, 100 + 2},
		{`{ a: __schema { queryType { name } } b: __schema { queryType { name } } }`, 2 * (100 + 2)},
		{`{ ...F } fragment F on Query { __schema { queryType { name } } }`, 100 + 2},
		{`{ __type(name: "User") { name fields { name } } }`, 10 - 1}, // gqlgen: 1 + the same selection
		{`{ __typename me { __typename } }`, 0},
	} {
		doc, errs := gqlparser.LoadQueryWithRules(es.Schema(), tc.query, nil)
		if errs != nil {
			t.Fatalf("%s: %v", tc.query, errs)
		}
		op := doc.Operations[0]
		got := operationComplexity(context.Background(), es, op, nil)
		if want := complexity.Calculate(context.Background(), es, op, nil) + tc.extra; got != want {
			t.Errorf("%s: scored %d, want %d", tc.query, got, want)
		}
	}
}

// Float input coercion takes finite numbers only: strconv.ParseFloat reads NaN and Inf, which no
// JSON number and no GraphQL Float literal can be.
func TestFloatRejectsNonFiniteValues(t *testing.T) {
	schema := &ast.Schema{Types: map[string]*ast.Definition{"Float": {Kind: ast.Scalar, Name: "Float"}}}
	for _, s := range []string{"NaN", "Inf", "-Inf", "infinity"} {
		if v, err := coerceString(schema, &ast.Type{NamedType: "Float"}, s); err == nil {
			t.Errorf("coerceString(Float, %q) = %v, want an error", s, v)
		}
		if scalarAccepts("Float", json.Number(s)) {
			t.Errorf("scalarAccepts(Float, %q) = true, want false", s)
		}
	}
}

// REST Float parameters are JSON numbers: strconv.ParseFloat's other syntaxes (hex floats, a
// leading + or .) are refused like NaN, and so are numbers past float64's range.
func TestRESTFloatTakesJSONNumbersOnly(t *testing.T) {
	schema := &ast.Schema{Types: map[string]*ast.Definition{"Float": {Kind: ast.Scalar, Name: "Float"}}}
	for s, ok := range map[string]bool{
		"1": true, "-1.5": true, "2e3": true, "0.25E-2": true,
		"0x1p-2": false, "+1": false, ".5": false, "1.": false, "1e400": false, "": false, "1 ": false,
	} {
		if _, err := coerceString(schema, &ast.Type{NamedType: "Float"}, s); (err == nil) != ok {
			t.Errorf("coerceString(Float, %q): error %v, want accepted %v", s, err, ok)
		}
	}
}

// integralNumber rewrites integers written as floats, and nothing else.
func TestIntegralNumber(t *testing.T) {
	for in, want := range map[string]string{
		"5.0": "5", "5e0": "5", "50e-1": "5", "-3.00": "-3", "-0.0": "0", "1E3": "1000",
		"9007199254740992.0":   "9007199254740992", // 2^53
		"9007199254740994.0":   "9007199254740994.0",
		"5":                    "5",
		"5.5":                  "5.5",
		"1e400":                "1e400",
		"12345678901234567890": "12345678901234567890",
	} {
		if got := integralNumber(json.Number(in)); string(got) != want {
			t.Errorf("integralNumber(%s) = %s, want %s", in, got, want)
		}
	}
	vars := map[string]any{"a": json.Number("2.0"), "b": []any{json.Number("3e0"), "4.0"}, "c": map[string]any{"d": json.Number("1.5")}}
	if err := (integralNumbers{}).MutateOperationParameters(context.Background(), &graphql.RawParams{Variables: vars}); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a": json.Number("2"), "b": []any{json.Number("3"), "4.0"}, "c": map[string]any{"d": json.Number("1.5")}}
	if !reflect.DeepEqual(vars, want) {
		t.Errorf("variables became %v, want %v", vars, want)
	}
}

func TestQuoteClient(t *testing.T) {
	for in, want := range map[string]string{
		"abc":                         `"abc"`,
		strings.Repeat("a", 32):       `"` + strings.Repeat("a", 32) + `"`,
		strings.Repeat("a", 33):       `"` + strings.Repeat("a", 32) + `…"`,
		strings.Repeat("é", 20):       `"` + strings.Repeat("é", 16) + `…"`,
		"a" + strings.Repeat("é", 20): `"a` + strings.Repeat("é", 15) + `…"`,
	} {
		if got := quoteClient(in); got != want {
			t.Errorf("quoteClient(%q) = %s, want %s", in, got, want)
		}
	}
}
