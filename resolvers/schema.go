package resolvers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/portico-gw/portico/resolvers/exec"
	"github.com/vektah/gqlparser/v2/ast"
)

// NewExecutableSchema returns the executable schema over r for gqlgen's handler.New. Beyond the
// generated one it
//   - implements @required (see requiredDirective),
//   - scores complexity from the schema's @cost weights (and Options.FieldCosts), multiplying a
//     field's selection by its `first` argument, for extension.FixedComplexityLimit,
//   - gives every operation fresh dataloaders unless the context already carries some
//     (WithLoaders), so batching works for the GraphQL and REST facades alike.
func NewExecutableSchema(r *Resolver) graphql.ExecutableSchema {
	es := exec.NewExecutableSchema(exec.Config{
		Resolvers:  r,
		Directives: exec.DirectiveRoot{Required: requiredDirective},
	})
	return &executableSchema{ExecutableSchema: es, r: r, costs: fieldCosts(es.Schema(), r.opts.FieldCosts)}
}

type executableSchema struct {
	graphql.ExecutableSchema
	r     *Resolver
	costs map[string]fieldCost
}

// Exec installs one set of dataloaders per operation: created lazily on the first response so an
// operation rejected before execution costs nothing, and reused for deferred parts.
func (s *executableSchema) Exec(ctx context.Context) graphql.ResponseHandler {
	next := s.ExecutableSchema.Exec(ctx)
	var l *loaders
	return func(ctx context.Context) *graphql.Response {
		if loadersFrom(ctx) == nil {
			if l == nil {
				l = newLoaders(s.r.backend, s.r.opts.BatchWait)
			}
			ctx = context.WithValue(ctx, loadersKey{}, l)
		}
		return next(ctx)
	}
}

// fieldCost is how one field scores: its weight, and whether its selection repeats `first` times.
type fieldCost struct {
	weight int
	paged  bool
}

// Complexity scores a field as weight + n × childComplexity, with n the field's `first` argument
// (its default when absent) for paged fields and 1 otherwise. Fields without @cost and without
// `first` keep gqlgen's default (1 + childComplexity).
func (s *executableSchema) Complexity(ctx context.Context, typeName, field string, child int, args map[string]any) (int, bool) {
	if n, ok := s.ExecutableSchema.Complexity(ctx, typeName, field, child, args); ok {
		return n, ok
	}
	c, ok := s.costs[typeName+"."+field]
	if !ok {
		return 0, false
	}
	n := 1
	if c.paged {
		n = PageItems(args["first"])
	}
	return satAdd(c.weight, satMul(n, child)), true
}

// fieldCosts reads @cost(weight:) and `first` arguments from the schema, then applies overrides.
func fieldCosts(schema *ast.Schema, overrides map[string]int) map[string]fieldCost {
	costs := map[string]fieldCost{}
	for _, def := range schema.Types {
		if def.Kind != ast.Object || def.BuiltIn || strings.HasPrefix(def.Name, "__") {
			continue
		}
		for _, f := range def.Fields {
			c := fieldCost{weight: 1, paged: f.Arguments.ForName("first") != nil}
			d := f.Directives.ForName("cost")
			if d != nil {
				if arg := d.Arguments.ForName("weight"); arg != nil && arg.Value != nil {
					if w, err := strconv.Atoi(arg.Value.Raw); err == nil {
						c.weight = w
					}
				}
			}
			if d != nil || c.paged {
				costs[def.Name+"."+f.Name] = c
			}
		}
	}
	for key, w := range overrides {
		if def, err := lookupField(schema, key); err == nil {
			costs[key] = fieldCost{weight: w, paged: def.Arguments.ForName("first") != nil}
		}
	}
	return costs
}

// lookupField finds "Type.field" in schema.
func lookupField(schema *ast.Schema, key string) (*ast.FieldDefinition, error) {
	typeName, fieldName, ok := strings.Cut(key, ".")
	if !ok {
		return nil, errors.New(`want "Type.field"`)
	}
	def := schema.Types[typeName]
	if def == nil || def.Kind != ast.Object {
		return nil, fmt.Errorf("no object type %s in the schema", typeName)
	}
	f := def.Fields.ForName(fieldName)
	if f == nil {
		return nil, fmt.Errorf("type %s has no field %s", typeName, fieldName)
	}
	return f, nil
}

// PageItems is how many items a paged field can return for the `first` argument v, however the
// variables decoder typed it, so that the complexity score prices what the resolvers fetch: an
// explicit null gets their default page (pageSize), not one item, and a value the score cannot
// read is priced as the largest page anyone could ask for, never as the smallest.
func PageItems(v any) int {
	var n float64
	switch x := v.(type) {
	case nil:
		return defaultFirst
	case *int:
		if x == nil {
			return defaultFirst
		}
		n = float64(*x)
	case int:
		n = float64(x)
	case int32:
		n = float64(x)
	case int64:
		n = float64(x)
	case float64:
		n = x
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return math.MaxInt32
		}
		n = f
	case string:
		f, err := strconv.ParseFloat(x, 64)
		if err != nil {
			return math.MaxInt32
		}
		n = f
	default:
		return math.MaxInt32
	}
	switch {
	case math.IsNaN(n) || n >= math.MaxInt32:
		return math.MaxInt32
	case n <= 0:
		return 0
	}
	return int(n)
}

// satAdd and satMul saturate instead of overflowing, so a crafted `first` cannot wrap the score
// around below the limit.
func satAdd(a, b int) int {
	if c := a + b; c >= a {
		return c
	}
	return math.MaxInt
}

func satMul(a, b int) int {
	if a == 0 || b == 0 {
		return 0
	}
	if a > math.MaxInt/b {
		return math.MaxInt
	}
	return a * b
}
