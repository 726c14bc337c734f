package bff_test

import (
	"net/http"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/portico-gw/portico/bff"
	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/resolvers"
	"github.com/portico-gw/portico/schema"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*bff.Config)
		want []string // "path: message fragment"; none means valid
	}{
		{name: "web is valid", edit: func(*bff.Config) {}},
		{name: "path required", edit: func(c *bff.Config) { c.Path = "" }, want: []string{"bffs.web.path: is required"}},
		{name: "path shape", edit: func(c *bff.Config) { c.Path = "/web/" }, want: []string{"bffs.web.path: \"/web/\" must start with /"}},
		{name: "path segment", edit: func(c *bff.Config) { c.Path = "/we b" }, want: []string{"bffs.web.path: \"/we b\" has an invalid segment"}},
		{name: "negative limits", edit: func(c *bff.Config) { c.GraphQL.MaxDepth = -1; c.GraphQL.MaxComplexity = -2; c.GraphQL.MaxTokens = -3 },
			want: []string{"bffs.web.graphql.max_depth: must not be negative", "bffs.web.graphql.max_complexity: must not be negative",
				"bffs.web.graphql.max_tokens: must not be negative"}},
		{name: "persisted query mode", edit: func(c *bff.Config) { c.GraphQL.PersistedQueries = "auto" },
			want: []string{`bffs.web.graphql.persisted_queries: unknown mode "auto" (allowed: apq, off)`}},
		{name: "apq with trusted documents", edit: func(c *bff.Config) {
			c.GraphQL.PersistedQueries = "apq"
			c.GraphQL.TrustedDocumentsOnly = true
		}, want: []string{"bffs.web.graphql.persisted_queries: apq registers any document"}},
		{name: "field cost key", edit: func(c *bff.Config) { c.GraphQL.FieldCosts = map[string]int{"orders": 5, "Query.me": -1} },
			want: []string{"bffs.web.graphql.field_costs.Query.me: weight -1 must not be negative", "bffs.web.graphql.field_costs.orders: must be written Type.field"}},
		{name: "rest method", edit: func(c *bff.Config) { c.REST[0].Method = "FETCH" },
			want: []string{`bffs.web.rest[0].method: unknown method "FETCH"`}},
		{name: "rest reserved path", edit: func(c *bff.Config) { c.REST[0].Path = "/graphql" },
			want: []string{`bffs.web.rest[0].path: "/graphql" is served by the profile itself`}},
		{name: "rest parameter syntax", edit: func(c *bff.Config) { c.REST[1].Path = "/orders/{1d}" },
			want: []string{`bffs.web.rest[1].path: "/orders/{1d}" has an invalid segment`}},
		{name: "rest parameter twice", edit: func(c *bff.Config) { c.REST[1].Path = "/orders/{id}/{id}" },
			want: []string{"bffs.web.rest[1].path: \"/orders/{id}/{id}\" names parameter {id} twice"}},
		{name: "rest duplicate route", edit: func(c *bff.Config) {
			c.REST = append(c.REST, bff.RESTConfig{Path: "/orders/{oid}", Operation: "OrderDetail"})
		}, want: []string{"bffs.web.rest[4]: GET /orders/{oid} is already mapped by rest[1]",
			"bffs.web.rest[4].path: /orders/{oid} names its parameters otherwise than rest[1]'s /orders/{id}"}},
		// One path of the OpenAPI document: parameters named otherwise made it invalid.
		{name: "rest parameters named otherwise on one path", edit: func(c *bff.Config) {
			c.REST = append(c.REST, bff.RESTConfig{Method: "DELETE", Path: "/orders/{orderId}", Operation: "OrderDetail"})
		}, want: []string{"bffs.web.rest[4].path: /orders/{orderId} names its parameters otherwise than rest[1]'s /orders/{id}, the same path"}},
		{name: "rest operation", edit: func(c *bff.Config) { c.REST[0].Operation = "" },
			want: []string{"bffs.web.rest[0].operation: is required"}},
		{name: "rest result", edit: func(c *bff.Config) { c.REST[1].Result = "order..id" },
			want: []string{`bffs.web.rest[1].result: "order..id" must be a dot path`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := webConfig()
			tt.edit(&c)
			var p confval.Problems
			c.Validate("bffs.web", &p)
			var got []string
			for _, pr := range p {
				got = append(got, pr.Path+": "+pr.Message)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("problems %q, want %d like %q", got, len(tt.want), tt.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("problem %q, want it to start with %q", got[i], tt.want[i])
				}
			}
		})
	}
}

// TestNewRejectsWhatCannotWork: every check that needs the schema or the operation files fails at
// New, with a message that says where.
func TestNewRejectsWhatCannotWork(t *testing.T) {
	es := resolvers.NewExecutableSchema(resolvers.NewResolver(panicky{}, resolvers.Options{}))
	ops := func(files map[string]string) fstest.MapFS {
		m := fstest.MapFS{}
		for name, text := range files {
			m[name] = &fstest.MapFile{Data: []byte(text)}
		}
		return m
	}
	tests := []struct {
		name string
		edit func(*bff.Config)
		ops  fstest.MapFS // nil: the real schema/operations
		want string
	}{
		{name: "unknown operation", edit: func(c *bff.Config) { c.REST[0].Operation = "Dashbord" },
			want: "bffs.web.rest[0] (GET /dashboard): operation Dashbord is not in schema/operations (known: Dashboard, MyOrders, OrderDetail, PlaceOrder)"},
		{name: "path parameter not a variable", edit: func(c *bff.Config) { c.REST[1].Path = "/orders/{orderId}" },
			want: "path parameter {orderId} is not a variable of OrderDetail (variables: $id)"},
		{name: "GET mapped to a mutation", edit: func(c *bff.Config) { c.REST[3].Method = "GET"; c.REST[3].Path = "/place" },
			want: "GET may only run a query; PlaceOrder is a mutation"},
		{name: "result not selected", edit: func(c *bff.Config) { c.REST[1].Result = "order.customer" },
			want: `result "order.customer": customer is not selected at data.order (selected: id, status, items`},
		{name: "result through a list", edit: func(c *bff.Config) { c.REST[1].Result = "order.items.sku" },
			want: "items is a list"},
		{name: "field cost for a missing field", edit: func(c *bff.Config) { c.GraphQL.FieldCosts = map[string]int{"Query.nope": 3} },
			want: "field_costs name fields the schema lacks: Query.nope"},
		{name: "conflicting routes", edit: func(c *bff.Config) {
			c.REST = append(c.REST, bff.RESTConfig{Path: "/x/{id}/y", Operation: "OrderDetail"},
				bff.RESTConfig{Path: "/x/y/{id}", Operation: "OrderDetail"})
		}, want: "rest routes conflict"},
		{name: "input object in a query string", edit: func(c *bff.Config) { c.REST[3].Method = "DELETE" },
			want: "variable $input is an input object, which a query string cannot carry"},
		{name: "invalid configuration", edit: func(c *bff.Config) { c.Path = "" }, want: "bffs.web.path: is required"},
		{name: "operation does not validate", edit: func(c *bff.Config) { c.REST = nil },
			ops:  ops(map[string]string{"web/Bad.graphql": "query Bad { nope }"}),
			want: "web/Bad.graphql does not validate against the schema: "},
		{name: "operation does not parse", edit: func(c *bff.Config) { c.REST = nil },
			ops: ops(map[string]string{"web/Bad.graphql": "query Bad { "}), want: "parsing web/Bad.graphql"},
		{name: "anonymous operation", edit: func(c *bff.Config) { c.REST = nil },
			ops: ops(map[string]string{"web/Anon.graphql": "{ me { id } }"}), want: "web/Anon.graphql:1: anonymous operation"},
		{name: "operation name defined twice", edit: func(c *bff.Config) { c.REST = nil },
			ops:  ops(map[string]string{"web/A.graphql": "query Me { me { id } }", "web/B.graphql": "query Me { me { name } }"}),
			want: "web/B.graphql: operation Me is already defined in web/A.graphql"},
		{name: "trusted documents without operations", edit: func(c *bff.Config) { c.REST = nil; c.GraphQL.TrustedDocumentsOnly = true },
			ops: fstest.MapFS{}, want: "need operations in schema/operations/web/"},
		// A stored operation the profile's own limits refuse would answer every request 400, as if
		// the client had sent it.
		{name: "route operation deeper than max_depth", edit: func(c *bff.Config) { c.GraphQL.MaxDepth = 2 },
			want: "bffs.web.rest[0] (GET /dashboard): operation Dashboard has depth 4, more than graphql.max_depth 2"},
		{name: "route operation over max_complexity", edit: func(c *bff.Config) { c.GraphQL.MaxComplexity = 50 },
			want: "bffs.web.rest[0] (GET /dashboard): operation Dashboard has complexity 80 at the least, more than graphql.max_complexity 50"},
		{name: "trusted document deeper than max_depth", edit: func(c *bff.Config) {
			c.REST = nil
			c.GraphQL.TrustedDocumentsOnly = true
			c.GraphQL.MaxDepth = 3
		}, want: "bffs.web: trusted document web/Dashboard.graphql: operation Dashboard has depth 4, more than graphql.max_depth 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := webConfig()
			tt.edit(&c)
			deps := bff.Deps{Schema: es, Operations: schema.Operations(), Logger: quietLogger()}
			if tt.ops != nil {
				deps.Operations = tt.ops
			}
			p, err := bff.New("web", c, deps)
			if err == nil {
				p.Close()
				t.Fatalf("New succeeded; want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestNewPricesRouteOperationsAtTheirCheapest: a route is refused only when no request could fit
// max_complexity. MyOrders scores 120 with its default `first: 10`, over a limit of 50, but
// GET /web/orders?first=3 fits, so New accepts it and the default page is the client's 400.
func TestNewPricesRouteOperationsAtTheirCheapest(t *testing.T) {
	cfg := webConfig()
	cfg.REST = cfg.REST[1:] // Dashboard scores 80 whatever is sent
	cfg.GraphQL.MaxComplexity = 50
	e := newEnv(t, envOptions{web: &cfg})
	if a := e.do(t, http.MethodGet, "/web/orders?first=3", nil); a.status != http.StatusOK {
		t.Errorf("GET /web/orders?first=3 = %d %s, want 200", a.status, a.body)
	}
	if a := e.do(t, http.MethodGet, "/web/orders", nil); a.status != http.StatusBadRequest || !strings.Contains(string(a.body), "COMPLEXITY_LIMIT_EXCEEDED") {
		t.Errorf("GET /web/orders = %d %s, want 400 COMPLEXITY_LIMIT_EXCEEDED", a.status, a.body)
	}
}

func TestRealOperationsAllLoad(t *testing.T) {
	es := resolvers.NewExecutableSchema(resolvers.NewResolver(panicky{}, resolvers.Options{}))
	for _, c := range []bff.Config{webConfig(), mobileConfig()} {
		name := strings.TrimPrefix(c.Path, "/")
		p, err := bff.New(name, c, bff.Deps{Schema: es, Operations: schema.Operations()})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p.Name() != name || p.Path() != c.Path || len(p.OpenAPI()) == 0 {
			t.Errorf("%s: Name %q Path %q", name, p.Name(), p.Path())
		}
		p.Close()
	}
}
