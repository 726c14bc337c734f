package bff_test

// Bad input against the BFF facades: a clear error and a 4xx, never a panic, a 5xx, a hang or an
// answer out of proportion to the request. Each test states the behaviour it expects and the
// attack it keeps out.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/portico-gw/portico/bff"
	"github.com/portico-gw/portico/resolvers"
	"github.com/portico-gw/portico/schema"
)

// countingSchema counts the complexity callbacks the complexity limit makes.
type countingSchema struct {
	graphql.ExecutableSchema
	calls *atomic.Int64
}

func (c countingSchema) Complexity(ctx context.Context, typeName, field string, child int, args map[string]any) (int, bool) {
	c.calls.Add(1)
	return c.ExecutableSchema.Complexity(ctx, typeName, field, child, args)
}

// fragmentFanOut is `{ me { ...F0 } }` where each fragment Fi spreads F(i+1) twice: about 40
// bytes per level, 2^n paths through the fragments, one field (`id`) once merged.
func fragmentFanOut(n int) string {
	var b strings.Builder
	b.WriteString("query { me { ...F0 } }")
	for i := range n {
		next := strconv.Itoa(i + 1)
		b.WriteString(" fragment F" + strconv.Itoa(i) + " on User { ...F" + next + " ...F" + next + " }")
	}
	b.WriteString(" fragment F" + strconv.Itoa(n) + " on User { id }")
	return b.String()
}

// TestBadInputFragmentFanOutComplexityIsNotExponential: gqlgen's complexity.Calculate walks a
// fragment again at every spread, so a valid document of n fragments that each spread the next
// one twice cost 2^n steps before the limit answered: n=22 took 2 s, n=40 (under 2 KB) would
// never finish, a core pinned per request. The walk must score each fragment once.
func TestBadInputFragmentFanOutComplexityIsNotExponential(t *testing.T) {
	e := newEnv(t, envOptions{})
	var calls atomic.Int64
	es := resolvers.NewExecutableSchema(resolvers.NewResolver(e.backend, resolvers.Options{}))
	p, err := bff.New("web", webConfig(), bff.Deps{
		Schema:  countingSchema{ExecutableSchema: es, calls: &calls},
		Backend: e.backend, Operations: schema.Operations(), Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	pe := &env{srv: newServer(t, p.Handler())}
	const n = 16 // a walk per spread makes 2^16 complexity callbacks; one per fragment, a handful
	start := time.Now()
	a := pe.post(t, "web", map[string]any{"query": fragmentFanOut(n)})
	t.Logf("n=%d: %d complexity callbacks, %v, answer %d %s", n, calls.Load(), time.Since(start), a.status, a.body)
	if got := calls.Load(); got > 1000 {
		t.Errorf("a %d-byte document cost %d complexity callbacks (2^%d): the walk is exponential in the fragment nesting",
			len(fragmentFanOut(n)), got, n)
	}
}

// TestBadInputConflictingFieldsDoNotAmplifyErrors: n fields with the same response key and
// different arguments (`{ user(id:"0"){id} user(id:"1"){id} … }`) fail validation with one error
// per conflicting pair, n(n-1)/2. Uncapped, one document at the 32 KiB limit answered 1.37 million
// errors in a 371 MB body after 4.7 GB of allocations. The draft asks for a non-empty errors list;
// the answer must stay bounded.
func TestBadInputConflictingFieldsDoNotAmplifyErrors(t *testing.T) {
	noIntro := webConfig()
	noIntro.GraphQL.Introspection = nil
	for name, e := range map[string]*env{
		"introspection on": newEnv(t, envOptions{}),
		// gqlgen swaps in rules of its own when suggestions are off; they must be capped too.
		"introspection off": newEnv(t, envOptions{web: &noIntro}),
	} {
		t.Run(name, func(t *testing.T) {
			var b strings.Builder
			b.WriteString("{ nope1 nope2 nope3 ")
			for i := range 300 {
				b.WriteString(`user(id:"` + strconv.Itoa(i) + `"){id} `)
			}
			b.WriteString("}")
			a := e.post(t, "web", map[string]any{"query": b.String()})
			r := a.graphql(t)
			if a.status >= 500 || len(r.Errors) == 0 {
				t.Fatalf("answer %d with %d errors, want a 200/4xx validation failure", a.status, len(r.Errors))
			}
			if len(r.Errors) > 128 || len(a.body) > 256<<10 {
				t.Errorf("a %d-byte document answered %d errors in %d bytes; want a bounded answer (say the first 100 errors)",
					b.Len(), len(r.Errors), len(a.body))
			}
			// 3 unknown fields, and 300 fields make 44,850 conflicting pairs: the first 100 and a
			// count of the rest.
			if n := len(r.Errors); n != 101 || r.Errors[n-1].Message != "44753 more errors omitted" || r.Errors[n-1].code() != "GRAPHQL_VALIDATION_FAILED" {
				last := ""
				if n > 0 {
					last = r.Errors[n-1].Message
				}
				t.Errorf("%d errors, the last %q; want 100 and \"44753 more errors omitted\" with the validation code", n, last)
			}
		})
	}
}

// TestBadInputNumericLiteralsInRange: an Int literal takes -2^31 to 2^31-1 only, as an Int
// variable does; gqlparser accepts 64 bits, and a quantity of 4294967297 reached the orders
// service. Nothing runs for such a document.
func TestBadInputNumericLiteralsInRange(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, tc := range []struct {
		name, query string
		want        string // "" for accepted
	}{
		{"largest Int", `{ orders(first: 2147483647) { pageInfo { hasNextPage } } }`, ""},
		{"smallest Int", `{ orders(first: -2147483648) { pageInfo { hasNextPage } } }`, ""},
		{"Int past 32 bits", `{ orders(first: 2147483648) { pageInfo { hasNextPage } } }`, "Int cannot represent non 32-bit signed integer value: 2147483648"},
		{"Int below 32 bits", `{ notifications(first: -2147483649) { id } }`, "Int cannot represent non 32-bit signed integer value: -2147483649"},
		{"Int past 64 bits, one error", `{ notifications(first: 1` + strings.Repeat("0", 40) + `) { id } }`, "value: 1" + strings.Repeat("0", 40)},
		{"nested in an input object and a list", `mutation { placeOrder(input: {items: [{sku: "SKU-1", quantity: 4294967297, unitPriceCents: 100}]}) { id } }`, "value: 4294967297"},
		{"ID as a large integer", `{ user(id: 99999999999) { id } }`, ""},
		{"in a fragment, once", `query { ...F } fragment F on Query { notifications(first: 4294967297) { id } }`, "value: 4294967297"},
		{"a variable's default", `query($n: Int = 4294967297) { notifications(first: $n) { id } }`, "value: 4294967297"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := e.do(t, http.MethodPost, "/web/graphql", mustJSONBytes(t, map[string]any{"query": tc.query}),
				"Content-Type", "application/json", "Accept", "application/graphql-response+json")
			r := a.graphql(t)
			if tc.want == "" {
				for _, err := range r.Errors {
					if err.code() == "GRAPHQL_VALIDATION_FAILED" {
						t.Errorf("accepted literal refused: %s", a.body)
					}
				}
				return
			}
			if a.status != http.StatusBadRequest || r.Data != nil || len(r.Errors) != 1 || !strings.Contains(r.Errors[0].Message, tc.want) ||
				r.Errors[0].code() != "GRAPHQL_VALIDATION_FAILED" {
				t.Errorf("answer %d %s; want 400 GRAPHQL_VALIDATION_FAILED with %q", a.status, a.body, tc.want)
			}
		})
	}
}

// TestBadInputRepeatedFieldsStopAtTheTokenLimit: the same field repeated (`{ me{id} me{id} … }`,
// valid GraphQL that merges to one field) is compared pairwise by validation
// (OverlappingFieldsCanBeMerged), quadratic in the document: 4,500 repetitions fit in 32 KiB and
// took 2.4 s of CPU to refuse. The parser's token limit (max_tokens) refuses them before
// validation; a document under the limit still runs.
func TestBadInputRepeatedFieldsStopAtTheTokenLimit(t *testing.T) {
	e := newEnv(t, envOptions{})
	q := "{" + strings.Repeat("me{id} ", 4500) + "}"
	a := e.post(t, "web", map[string]any{"query": q})
	// A parse failure: 200 under application/json, as the draft has it for that media type.
	if r := a.graphql(t); a.status >= 500 || len(r.Errors) != 1 || !strings.Contains(r.Errors[0].Message, "token limit") || r.Errors[0].code() != "GRAPHQL_PARSE_FAILED" {
		t.Errorf("a %d-byte document of 18,000 tokens: answer %d %s; want GRAPHQL_PARSE_FAILED naming the token limit", len(q), a.status, a.body)
	}
	ok := "{" + strings.Repeat("me{id} ", 100) + "}"
	if a := e.post(t, "web", map[string]any{"query": ok}); a.status != http.StatusOK || len(a.graphql(t).Errors) != 0 {
		t.Errorf("400 tokens: answer %d %s; want 200 without errors", a.status, a.body)
	}
}

// TestBadInputTrustedDocumentHashWithForeignQuery: on a trusted-documents-only BFF, any query sent
// together with the sha256Hash of a stored document must not run: otherwise one known hash
// admits ad-hoc documents (here the user's email and tier, which no mobile operation selects).
// As for documentId, a query that is not the hashed document's text is refused and nothing runs.
func TestBadInputTrustedDocumentHashWithForeignQuery(t *testing.T) {
	e := newEnv(t, envOptions{})
	hash := sha(operationText(t, "mobile", "MobileHome.graphql"))
	ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hash}}
	extJSON, _ := json.Marshal(ext)
	const adHoc = `{ me { id email tier } }`
	for name, send := range map[string]func() answer{
		"POST": func() answer { return e.post(t, "mobile", map[string]any{"query": adHoc, "extensions": ext}) },
		"GET": func() answer {
			return e.do(t, http.MethodGet, "/mobile/graphql?query="+url.QueryEscape(adHoc)+"&extensions="+url.QueryEscape(string(extJSON)), nil)
		},
	} {
		t.Run(name, func(t *testing.T) {
			a := send()
			r := a.graphql(t)
			if a.status < 400 || a.status >= 500 || r.Data != nil || contains(string(a.body), "email") {
				t.Errorf("answer %d %s; want 400 or 403 and nothing run on a trusted-documents-only BFF", a.status, a.body)
			}
		})
	}
}

// TestBadInputGETWithoutQueryIs400: GET /graphql without a query answers 400 BAD_REQUEST, like
// POST {} and as the README's status table says for "no query". The GraphQL-over-HTTP draft:
// query is a required parameter, and a request that is not a well-formed GraphQL-over-HTTP
// request SHOULD get 400 even with application/json.
func TestBadInputGETWithoutQueryIs400(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, path := range []string{"/web/graphql", "/web/graphql?query=", "/web/graphql?variables=%7B%7D"} {
		t.Run(path, func(t *testing.T) {
			a := e.do(t, http.MethodGet, path, nil)
			r := a.graphql(t)
			if a.status != http.StatusBadRequest || len(r.Errors) == 0 || r.Errors[0].code() != "BAD_REQUEST" {
				t.Errorf("answer %d %s; want 400 BAD_REQUEST like POST {} (no query)", a.status, a.body)
			}
		})
	}
}

// TestBadInputGETMutationIs405: a GET whose query and operationName name a mutation answers 405
// whatever else is wrong with it (variables, limits). The draft: "If the values of {query} and
// {operationName} indicate that a mutation operation is to be executed, the server MUST respond
// with error status code 405 (Method Not Allowed) and halt execution", known once the document
// parses.
func TestBadInputGETMutationIs405(t *testing.T) {
	e := newEnv(t, envOptions{})
	var many strings.Builder
	for i := range 100 {
		many.WriteString(" a" + strconv.Itoa(i) + ": markNotificationsRead")
	}
	tests := map[string]string{
		"stored mutation by name, no variables": "/web/graphql?operationName=PlaceOrder",
		"missing required variable":             "/web/graphql?query=" + url.QueryEscape(`mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id } }`),
		"over the complexity limit":             "/web/graphql?query=" + url.QueryEscape("mutation {"+many.String()+" }"),
	}
	for name, path := range tests {
		t.Run(name, func(t *testing.T) {
			a := e.do(t, http.MethodGet, path, nil, "Accept", "application/graphql-response+json")
			if a.status != http.StatusMethodNotAllowed || a.header.Get("Allow") != "POST" {
				t.Errorf("answer %d (Allow %q) %s; want 405 with Allow: POST", a.status, a.header.Get("Allow"), a.body)
			}
		})
	}
}

// TestBadInputMessagesSayWhatToDo: the errors of two common mistakes say how to fix them instead
// of echoing an empty name.
func TestBadInputMessagesSayWhatToDo(t *testing.T) {
	e := newEnv(t, envOptions{})
	a := e.post(t, "web", map[string]any{"query": `query A { me { id } } query B { me { name } }`})
	if r := a.graphql(t); len(r.Errors) != 1 || !strings.Contains(r.Errors[0].Message, "has 2 operations; name the one to run with operationName") {
		t.Errorf("two operations, no operationName: %d %s", a.status, a.body)
	}
	a = e.do(t, http.MethodGet, "/web/dashboard?x=1", nil)
	if a.status != http.StatusBadRequest || !strings.Contains(string(a.body), `unknown query parameter \"x\" (known: none)`) {
		t.Errorf("a parameter on a route that takes none: %d %s", a.status, a.body)
	}
}

// TestBadInputVariablesCoerceLikeTheSpec: variables follow the spec's input coercion for the
// built-in scalars, which gqlparser loosens because numbers arrive as json.Number (a string kind):
// an Int takes integers from -2^31 to 2^31-1 only, a String strings only, an ID strings or
// integers. Anything else is a request error and nothing runs.
func TestBadInputVariablesCoerceLikeTheSpec(t *testing.T) {
	e := newEnv(t, envOptions{})
	const orders = `query($n: Int, $after: String) { orders(first: $n, after: $after) { edges { node { id } } } }`
	const place = `mutation($in: PlaceOrderInput!) { placeOrder(input: $in) { id } }`
	const user = `query($id: ID!) { user(id: $id) { id } }`
	const mark = `mutation($ids: [ID!]) { markNotificationsRead(ids: $ids) }`
	item := func(sku any, qty any) map[string]any {
		return map[string]any{"in": map[string]any{"items": []any{map[string]any{"sku": sku, "quantity": qty, "unitPriceCents": 100}}}}
	}
	for _, tc := range []struct {
		name, query string
		vars        string // JSON, so numbers arrive as a client sends them
		want        string // "" for accepted; else a fragment of the error
	}{
		{"Int", orders, `{"n": 5}`, ""},
		{"Int written as a float", orders, `{"n": 5.0}`, ""},
		{"Int as a string", orders, `{"n": "5"}`, `Int cannot represent "5" (a string)`},
		{"Int past 32 bits", orders, `{"n": 9999999999}`, "Int cannot represent 9999999999"},
		{"String as a number", orders, `{"after": 5}`, "String cannot represent 5"},
		{"ID as an integer", user, `{"id": 7}`, ""},
		{"nested Int past 32 bits", place, mustJSON(t, item("SKU-1", 9999999999)), "items: [0]: quantity: Int cannot represent 9999999999"},
		{"nested Int as a string", place, mustJSON(t, item("SKU-1", "2")), `quantity: Int cannot represent "2" (a string)`},
		{"nested String as a number", place, mustJSON(t, item(5, 2)), "sku: String cannot represent 5"},
		// "If the value passed as an input to a list type is not a list ... the result is a list
		// of size one": gqlparser hands such a value over as a typed slice ([]string).
		{"one ID for a list", mark, `{"ids": "n1"}`, ""},
		{"one integer ID for a list", mark, `{"ids": 5}`, ""},
		{"one boolean for a list of ID", mark, `{"ids": true}`, "cannot use a boolean as ID"},
		{"list of ID with an object", mark, `{"ids": ["n1", {"a": 1}]}`, "cannot use an object as ID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := e.do(t, http.MethodPost, "/web/graphql", mustJSONBytes(t, map[string]any{"query": tc.query, "variables": json.RawMessage(tc.vars)}),
				"Content-Type", "application/json", "Accept", "application/graphql-response+json")
			r := a.graphql(t)
			if tc.want == "" {
				for _, err := range r.Errors {
					if strings.Contains(err.Message, "cannot represent") {
						t.Errorf("accepted value refused: %s", a.body)
					}
				}
				return
			}
			if a.status != http.StatusBadRequest || r.Data != nil || len(r.Errors) != 1 || !strings.Contains(r.Errors[0].Message, tc.want) {
				t.Errorf("answer %d %s; want 400 with %q and nothing run", a.status, a.body, tc.want)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string { return string(mustJSONBytes(t, v)) }

func mustJSONBytes(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBadInputGETMutationThatFailsValidationIs405: a GET naming a mutation answers 405 even when
// the mutation does not validate. gqlgen leaves the operation context without an operation when
// validation fails, so the transport finds the operation in the parsed document itself.
func TestBadInputGETMutationThatFailsValidationIs405(t *testing.T) {
	e := newEnv(t, envOptions{})
	for name, doc := range map[string]string{
		"unknown field":         `mutation { nope }`,
		"unknown sub-field":     `mutation { placeOrder(input: {items: []}) { id nope } }`,
		"wrong argument type":   `mutation { markNotificationsRead(ids: true) }`,
		"named, with a sibling": `query Q { me { id } } mutation M { nope }`,
	} {
		for _, accept := range []string{"application/json", "application/graphql-response+json"} {
			t.Run(name+"/"+accept, func(t *testing.T) {
				path := "/web/graphql?query=" + url.QueryEscape(doc)
				if strings.Contains(doc, "mutation M") {
					path += "&operationName=M"
				}
				a := e.do(t, http.MethodGet, path, nil, "Accept", accept)
				if a.status != http.StatusMethodNotAllowed || a.header.Get("Allow") != "POST" {
					t.Errorf("GET of a mutation answered %d (Allow %q) %s; want 405 with Allow: POST", a.status, a.header.Get("Allow"), a.body)
				}
			})
		}
	}
}

// TestBadInputIntegralFloatVariablesAreInts: JSON encoders write integers as 5.0, 5e0 or 50e-1;
// the spec's Int input coercion takes them as the integer they are, over GraphQL and REST. gqlgen
// coerces variables (and would refuse them) before strictVariables sees them, so they are
// rewritten as integers first.
func TestBadInputIntegralFloatVariablesAreInts(t *testing.T) {
	e := newEnv(t, envOptions{})
	const orders = `query($n: Int) { orders(first: $n) { edges { node { id } } } }`
	for _, vars := range []string{`{"n": 5.0}`, `{"n": 5e0}`, `{"n": 50e-1}`} {
		t.Run("GraphQL "+vars, func(t *testing.T) {
			a := e.do(t, http.MethodPost, "/web/graphql", mustJSONBytes(t, map[string]any{"query": orders, "variables": json.RawMessage(vars)}))
			r := a.graphql(t)
			if a.status != http.StatusOK || len(r.Errors) > 0 || strings.Count(string(r.Data), `"id"`) != 5 {
				t.Errorf("answer %d %s; want the 5 orders that $n = 5 asks for", a.status, a.body)
			}
		})
	}
	t.Run("REST body quantity 2.0", func(t *testing.T) {
		a := e.do(t, http.MethodPost, "/web/orders", []byte(`{"input": {"items": [{"sku": "SKU-1", "quantity": 2.0, "unitPriceCents": 150}]}}`))
		if a.status != http.StatusOK || !strings.Contains(string(a.body), `"quantity":2`) {
			t.Errorf("answer %d %s; want the order placed with quantity 2", a.status, a.body)
		}
	})
}

// TestBadInputIntrospectionAliasesAreBounded: introspection fields count toward max_complexity
// like any other, so aliasing __schema hundreds of times cannot make a small document answer
// megabytes.
func TestBadInputIntrospectionAliasesAreBounded(t *testing.T) {
	e := newEnv(t, envOptions{}) // web: introspection on, max_complexity 1500
	const one = `__schema{types{name description fields{name description}}}`
	var doc strings.Builder
	doc.WriteString("{")
	for i := range 320 {
		fmt.Fprintf(&doc, " a%d:%s", i, one)
	}
	doc.WriteString("}")
	a := e.post(t, "web", map[string]any{"query": doc.String()})
	if a.status == http.StatusOK && len(a.body) > 1<<20 {
		t.Errorf("a %d-byte document answered %d bytes: 320 copies of the schema passed max_complexity 1500", doc.Len(), len(a.body))
	}
}

// TestBadInputErrorsDoNotEchoLongClientStrings: an error names what the client sent in at most a
// few dozen characters, so a large request cannot come back as a large error.
func TestBadInputErrorsDoNotEchoLongClientStrings(t *testing.T) {
	e := newEnv(t, envOptions{})
	big := strings.Repeat("A", 100_000)
	for name, body := range map[string]string{
		"documentId":                   `{"documentId":"` + big + `"}`,
		"operationName alone":          `{"operationName":"` + big + `"}`,
		"operationName beside a query": `{"query":"{ me { id } }","operationName":"` + big + `"}`,
	} {
		t.Run(name, func(t *testing.T) {
			a := e.do(t, http.MethodPost, "/web/graphql", []byte(body))
			if len(a.body) > 4096 {
				t.Errorf("a %d-byte request answered a %d-byte error that quotes it back", len(body), len(a.body))
			}
		})
	}
	t.Run("operationName that is not a name", func(t *testing.T) {
		a := e.do(t, http.MethodPost, "/web/graphql", []byte(`{"query":"{ me { id } }","operationName":"<script> `+big+`"}`))
		if r := a.graphql(t); a.status != http.StatusBadRequest || len(r.Errors) != 1 || r.Errors[0].code() != "BAD_REQUEST" ||
			strings.Contains(r.Errors[0].Message, "script") {
			t.Errorf("answer %d %.300s; want 400 BAD_REQUEST with a fixed message", a.status, a.body)
		}
	})
	t.Run("operationName the document lacks", func(t *testing.T) {
		a := e.do(t, http.MethodPost, "/web/graphql", []byte(`{"query":"query Q { me { id } }","operationName":"`+big+`"}`))
		if r := a.graphql(t); len(r.Errors) != 1 || r.Errors[0].Message != `the document has no operation named "`+big[:32]+`…"` {
			t.Errorf("answer %d %.300s; want the name cut to 32 characters", a.status, a.body)
		}
	})
	t.Run("persistedQuery.version", func(t *testing.T) {
		a := e.do(t, http.MethodPost, "/web/graphql",
			[]byte(`{"query":"{ me { id } }","extensions":{"persistedQuery":{"version":{"x":[1,2,3]},"sha256Hash":"ab"}}}`))
		if strings.Contains(string(a.body), "map[") {
			t.Errorf("the error prints the client's JSON as a Go value: %s", a.body)
		}
	})
}

// A body whose declared length is over the limit is refused at once, as on pass-through routes:
// it was answered "100 Continue" (inviting a gigabyte) and then waited for until the read timeout.
func TestOversizedContentLengthRefusedBeforeTheBody(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, path := range []string{"/web/graphql", "/web/orders"} {
		t.Run(path, func(t *testing.T) {
			c, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
				"Content-Length: 1073741824\r\nExpect: 100-continue\r\n\r\n", path)
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			if !strings.HasPrefix(line, "HTTP/1.1 413") {
				t.Fatalf("status line %q, want 413 before any of the body is sent", strings.TrimSpace(line))
			}
		})
	}
}

// A persisted-query hash that cannot be a SHA-256 is the client's error: "not found" invited it to
// send a document under a hash that can never be the document's.
func TestMalformedPersistedQueryHash(t *testing.T) {
	e := newEnv(t, envOptions{})
	for name, hash := range map[string]any{
		"too long":       strings.Repeat("a", 100_000),
		"too short":      "abc",
		"not hex":        strings.Repeat("g", 64),
		"sha256: prefix": "sha256:" + strings.Repeat("a", 64),
		"a number":       12345, // was "sha256Hash is missing"
		"an object":      map[string]any{"x": 1},
	} {
		t.Run(name, func(t *testing.T) {
			a := e.post(t, "web", map[string]any{"extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hash}}})
			if a.status != http.StatusBadRequest || !strings.Contains(string(a.body), "64 hexadecimal digits") || len(a.body) > 2000 {
				t.Fatalf("answer %d %.300s; want 400 naming the hash's form", a.status, a.body)
			}
		})
	}
	// An unknown hash of the right form is still "not found", so the client sends the document.
	a := e.post(t, "web", map[string]any{"extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": strings.Repeat("A", 64)}}})
	if !strings.Contains(string(a.body), "PersistedQueryNotFound") {
		t.Fatalf("answer %d %.300s; want PersistedQueryNotFound", a.status, a.body)
	}
}

// Variable coercion errors speak JSON, not Go: gqlparser wrote "cannot use value 0 as Int" for
// 1.5 or 1e300, "must be a PlaceOrderInput, not a slice" and "cannot use map as ID".
func TestVariableErrorsSpeakJSON(t *testing.T) {
	e := newEnv(t, envOptions{})
	tests := []struct {
		name, query, vars, want string
	}{
		{"fractional Int", `query($f:Int){ orders(first:$f){ pageInfo{ hasNextPage } } }`, `{"f":1.5}`, "Int cannot represent this value: it takes a whole number"},
		{"huge Int", `query($f:Int){ orders(first:$f){ pageInfo{ hasNextPage } } }`, `{"f":1e300}`, "Int cannot represent this value"},
		{"list for an input object", `mutation($in: PlaceOrderInput!){ placeOrder(input: $in){ id } }`, `{"in":[1]}`, "must be an object of type PlaceOrderInput, not a list"},
		{"object for an ID", `query($id: ID!){ order(id: $id){ id } }`, `{"id":{"a":1}}`, "cannot use an object as ID"},
		{"boolean for an Int", `query($f:Int){ orders(first:$f){ pageInfo{ hasNextPage } } }`, `{"f":true}`, "cannot use a boolean as Int"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{"query": tt.query, "variables": json.RawMessage(tt.vars)})
			a := e.do(t, http.MethodPost, "/web/graphql", body)
			r := a.graphql(t)
			if len(r.Errors) == 0 || !strings.Contains(r.Errors[0].Message, tt.want) {
				t.Fatalf("answer %d %.400s; want a message with %q", a.status, a.body, tt.want)
			}
			for _, goName := range []string{"value 0", "slice", "map", "float64", "bool "} {
				if strings.Contains(r.Errors[0].Message, goName) {
					t.Errorf("message %q names Go's %q", r.Errors[0].Message, goName)
				}
			}
		})
	}
}
