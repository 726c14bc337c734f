package bff

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// operationComplexity is gqlgen's complexity.Calculate (same costs, same interface rule, same
// saturating sums) with each fragment scored once, and introspection scored too (see
// introspectionCosts). gqlgen walks a fragment again at every spread, so a 2 KB document whose
// fragments each spread the next one twice takes 2^40 steps: a request that never finishes. A fragment's cost does not depend on where it is spread (its fields'
// parent types come from its type condition, the variables are the operation's), so remembering
// it changes no score.
func operationComplexity(ctx context.Context, es graphql.ExecutableSchema, op *ast.OperationDefinition, vars map[string]any) int {
	w := complexityWalk{ctx: ctx, es: es, schema: es.Schema(), vars: vars, fragments: map[string]int{}}
	return w.selectionSet(op.SelectionSet)
}

type complexityWalk struct {
	ctx       context.Context
	es        graphql.ExecutableSchema
	schema    *ast.Schema
	vars      map[string]any
	fragments map[string]int
}

func (w complexityWalk) selectionSet(set ast.SelectionSet) int {
	total := 0
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			def := w.schema.Types[s.Definition.Type.Name()]
			child := 0
			switch def.Kind {
			case ast.Object, ast.Interface, ast.Union:
				child = w.selectionSet(s.SelectionSet)
			}
			args := s.ArgumentMap(w.vars)
			cost := 0
			if weight, ok := introspectionCosts[s.Name]; ok {
				cost = costAdd(weight, child)
			} else if s.ObjectDefinition.Kind == ast.Interface {
				// An interface field costs what its most expensive implementation does.
				for _, t := range w.schema.GetPossibleTypes(s.ObjectDefinition) {
					cost = max(cost, w.field(t, def.Kind, s.Name, child, args))
				}
			} else {
				cost = w.field(s.ObjectDefinition, def.Kind, s.Name, child, args)
			}
			total = costAdd(total, cost)
		case *ast.FragmentSpread:
			cost, ok := w.fragments[s.Name]
			if !ok {
				w.fragments[s.Name] = 0 // validation forbids cycles; this only guards the walk
				cost = w.selectionSet(s.Definition.SelectionSet)
				w.fragments[s.Name] = cost
			}
			total = costAdd(total, cost)
		case *ast.InlineFragment:
			total = costAdd(total, w.selectionSet(s.SelectionSet))
		}
	}
	return total
}

// introspectionCosts weigh the introspection meta-fields, which the executable schema has no
// cost for, by what they answer: __schema the whole schema, __type one type. Each costs its
// weight plus its selection's score, so aliases of them add up like aliases of any field (gqlgen
// leaves __schema out of the score, so 320 aliased copies of the schema fitted in 1500), while
// GraphiQL's introspection query scores 307 and fits DefaultMaxComplexity
// (TestGraphiQLIntrospectionFitsTheDefaultLimits). Depth still leaves introspection out:
// gqlparser's MaxIntrospectionDepth rule bounds its nesting, and TypeRef's ofType chain is deeper
// than a client's max_depth.
var introspectionCosts = map[string]int{"__schema": 100, "__type": 10}

func (w complexityWalk) field(def *ast.Definition, kind ast.DefinitionKind, name string, child int, args map[string]any) int {
	if cost, ok := w.es.Complexity(w.ctx, def.Name, name, child, args); ok && cost >= 1 {
		return cost
	}
	return costAdd(1, child)
}

// costAdd is gqlgen's safeAdd: a negative operand (a custom cost gone wrong) is ignored, and a
// sum past the largest int is the largest int, so no document can wrap its score to a small one.
func costAdd(a, b int) int {
	switch {
	case a < 0 && b < 0:
		return 1
	case a < 0:
		return b
	case b < 0:
		return a
	}
	return saturatingAdd(a, b)
}

// withFieldCosts is the executable schema as a profile's complexity limit scores it: the
// profile's field_costs override the schema's @cost weights.
func withFieldCosts(es graphql.ExecutableSchema, costs map[string]int) graphql.ExecutableSchema {
	if len(costs) == 0 {
		return es
	}
	return costSchema{ExecutableSchema: es, costs: costs}
}
