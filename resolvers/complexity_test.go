package resolvers_test

import (
	"context"
	"io/fs"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql"
	"github.com/portico-gw/portico/resolvers"
	"github.com/portico-gw/portico/schema"
	"github.com/vektah/gqlparser/v2"
)

// score computes what extension.FixedComplexityLimit would for q.
func score(t *testing.T, es graphql.ExecutableSchema, q string, vars map[string]any) int {
	t.Helper()
	doc, errs := gqlparser.LoadQueryWithRules(es.Schema(), q, nil)
	if len(errs) > 0 {
		t.Fatalf("parsing %q: %v", q, errs)
	}
	return complexity.Calculate(context.Background(), es, doc.Operations[0], vars)
}

func TestComplexityFollowsCostAndFirst(t *testing.T) {
	es := resolvers.NewExecutableSchema(resolvers.NewResolver(nil, resolvers.Options{}))
	tests := []struct {
		name  string
		query string
		vars  map[string]any
		want  int
	}{
		// Plain fields keep gqlgen's default: 1 each plus their selection.
		{"plain field", `{ dashboard { __typename } }`, nil, 1 + 1},
		// @cost(weight: 10) + 1 for id.
		{"weighted field", `{ me { id } }`, nil, 11},
		// orders: 10 + first × (edges 1 + node 1 + id 1).
		{"paged field, default first", `{ orders { edges { node { id } } } }`, nil, 10 + 10*3},
		{"paged field, literal first", `{ orders(first: 50) { edges { node { id } } } }`, nil, 10 + 50*3},
		{"paged field, variable first", `query($n: Int) { orders(first: $n) { edges { node { id } } } }`,
			map[string]any{"n": int64(100)}, 10 + 100*3},
		// An explicit null fetches the resolvers' default page (10), whatever the schema default.
		{"paged field, null first", `{ orders(first: null) { edges { node { id } } } }`, nil, 10 + 10*3},
		{"dashboard page, null first", `{ dashboard { recentOrders(first: null) { id } } }`, nil, 1 + (10 + 10*1)},
		{"paged field, null variable", `query($n: Int) { orders(first: $n) { edges { node { id } } } }`,
			map[string]any{"n": nil}, 10 + 10*3},
		// Order.user and Order.payment weigh 2 (batched): node = 1 + id 1 + user (2+1) + payment (2+1).
		{"batched relations", `{ orders(first: 50) { edges { node { id user { id } payment { id } } } } }`, nil,
			10 + 50*(1+1+1+3+3)},
		// Nested pages multiply.
		{"nested pages", `{ orders(first: 100) { edges { node { user { orders(first: 100) { edges { cursor } } } } } } }`, nil,
			10 + 100*(1+1+(2+(10+100*(1+1))))},
		{"dashboard", `{ dashboard { me { id } recentOrders { id } unreadNotifications } }`, nil,
			1 + (10 + 1) + (10 + 5*1) + 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := score(t, es, tc.query, tc.vars); got != tc.want {
				t.Errorf("complexity = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestComplexityHugeFirstSaturates(t *testing.T) {
	es := resolvers.NewExecutableSchema(resolvers.NewResolver(nil, resolvers.Options{}))
	q := `query($n: Int) { orders(first: $n) { edges { node { user { orders(first: $n) { edges { node { user { orders(first: $n) { edges { cursor } } } } } } } } } } }`
	got := score(t, es, q, map[string]any{"n": int64(2147483647)})
	if got < 1_000_000_000 {
		t.Errorf("complexity = %d, want it saturated far above any limit, not wrapped around", got)
	}
}

func TestFieldCostsOverrideTheSchema(t *testing.T) {
	opts := resolvers.Options{FieldCosts: map[string]int{"Query.orders": 25, "Order.user": 7}}
	if err := opts.Validate(); err != nil {
		t.Fatal(err)
	}
	es := resolvers.NewExecutableSchema(resolvers.NewResolver(nil, opts))
	if got, want := score(t, es, `{ orders(first: 2) { edges { node { user { id } } } } }`, nil), 25+2*(1+1+(7+1)); got != want {
		t.Errorf("complexity = %d, want %d", got, want)
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opts resolvers.Options
		want string
	}{
		{"zero value", resolvers.Options{}, ""},
		{"unknown type", resolvers.Options{FieldCosts: map[string]int{"Nope.id": 1}}, `"Nope.id": no object type Nope`},
		{"unknown field", resolvers.Options{FieldCosts: map[string]int{"Order.nope": 1}}, `type Order has no field nope`},
		{"no dot", resolvers.Options{FieldCosts: map[string]int{"orders": 1}}, `want "Type.field"`},
		{"negative weight", resolvers.Options{FieldCosts: map[string]int{"Query.me": -1}}, "negative"},
		{"negative wait", resolvers.Options{BatchWait: -1}, "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestStoredOperationsMatchTheSchema keeps schema/operations (run by REST facades and trusted
// documents) valid against the SDL, so a schema change that breaks a shipped operation fails here.
func TestStoredOperationsMatchTheSchema(t *testing.T) {
	es := resolvers.NewExecutableSchema(resolvers.NewResolver(nil, resolvers.Options{}))
	ops := schema.Operations()
	files, err := fs.Glob(ops, "*/*.graphql")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			src, err := fs.ReadFile(ops, name)
			if err != nil {
				t.Fatal(err)
			}
			if _, errs := gqlparser.LoadQueryWithRules(es.Schema(), string(src), nil); len(errs) > 0 {
				t.Errorf("%s does not validate: %v", name, errs)
			}
		})
	}
}
