package bff

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/portico-gw/portico/resolvers"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Error codes of the limits; statusForRequestErrors maps them to HTTP statuses.
const (
	codeDocumentTooLarge      = "DOCUMENT_TOO_LARGE"
	codeMaxDepthExceeded      = "MAX_DEPTH_EXCEEDED"
	codeComplexityExceeded    = "COMPLEXITY_LIMIT_EXCEEDED"
	codeIntrospectionDisabled = "INTROSPECTION_DISABLED"
	codeGraphQLParseFailed    = "GRAPHQL_PARSE_FAILED"
	codeGraphQLValidation     = "GRAPHQL_VALIDATION_FAILED"
	codeBatchingDisabled      = "BATCHING_DISABLED"
	codeMethodNotAllowed      = "METHOD_NOT_ALLOWED"
	codeNotAcceptable         = "NOT_ACCEPTABLE"
	codeUnsupportedMediaType  = "UNSUPPORTED_MEDIA_TYPE"
	codeInternal              = "INTERNAL"
	codeBadUserInput          = "BAD_USER_INPUT"
	codeUpstreamTimeout       = "UPSTREAM_TIMEOUT"
	codeUpstreamUnavailable   = "UPSTREAM_UNAVAILABLE"
	codeNotFound              = "NOT_FOUND"
	codeClientClosedRequest   = "CLIENT_CLOSED_REQUEST"
	codeRequestEntityTooLarge = "REQUEST_TOO_LARGE"
	codeRequestTimeout        = "REQUEST_TIMEOUT"
)

// documentSize rejects documents longer than max before anything parses them. It is the first
// parameter mutator, so it sees text sent by the client; stored documents are the platform
// team's, and APQ-registered ones go through sizedCache.
type documentSize struct{ max int64 }

// sizedCache is the APQ cache as one BFF sees it: a document longer than the BFF's
// max_document_bytes is not found. The cache is shared by every BFF (persisted queries outlive
// a reload and are shared across replicas through Redis), so a document registered on a BFF with
// a larger limit would otherwise run here by hash; not found, the client sends the text, which
// documentSize refuses.
type sizedCache struct {
	graphql.Cache[string]
	max int64
}

// Get returns a stored document no longer than max.
func (c sizedCache) Get(ctx context.Context, key string) (string, bool) {
	doc, ok := c.Cache.Get(ctx, key)
	if !ok || int64(len(doc)) > c.max {
		return "", false
	}
	return doc, true
}

// ExtensionName names the extension in gqlgen's stats.
func (documentSize) ExtensionName() string { return "PorticoDocumentSize" }

// Validate accepts any schema.
func (documentSize) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationParameters checks the document's length.
func (d documentSize) MutateOperationParameters(_ context.Context, params *graphql.RawParams) *gqlerror.Error {
	if n := int64(len(params.Query)); n > d.max {
		return codedError(codeDocumentTooLarge, "document is %d bytes, more than the limit of %d", n, d.max)
	}
	return nil
}

// introspectionGate rejects __schema and __type before execution when introspection is off, so
// the client gets a 400 instead of a 200 with a null field. (gqlgen alone would run the operation
// and fail only those fields.) __typename is not introspection of the schema and stays allowed.
type introspectionGate struct{}

// ExtensionName names the extension in gqlgen's stats.
func (introspectionGate) ExtensionName() string { return "PorticoIntrospectionGate" }

// Validate accepts any schema.
func (introspectionGate) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext looks for introspection fields through fragments.
func (introspectionGate) MutateOperationContext(_ context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	seen := map[string]bool{}
	var walk func(ast.SelectionSet) bool
	walk = func(set ast.SelectionSet) bool {
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				if s.Name == "__schema" || s.Name == "__type" {
					return true
				}
				if walk(s.SelectionSet) {
					return true
				}
			case *ast.InlineFragment:
				if walk(s.SelectionSet) {
					return true
				}
			case *ast.FragmentSpread:
				if !seen[s.Name] && s.Definition != nil {
					seen[s.Name] = true
					if walk(s.Definition.SelectionSet) {
						return true
					}
				}
			}
		}
		return false
	}
	if walk(opCtx.Operation.SelectionSet) {
		return codedError(codeIntrospectionDisabled, "introspection is disabled on this endpoint")
	}
	return nil
}

// depthLimit rejects operations nested deeper than max. Depth counts fields, not fragments: a
// spread or inline fragment adds nothing itself, the fields inside it do. Each fragment's depth is
// computed once, so a document that spreads fragments many times cannot make the walk explode.
// Introspection subtrees are left out: gqlparser's MaxIntrospectionDepth rule bounds their
// nesting (GraphiQL's query nests ofType deeper than a usual max_depth), and complexityLimit
// scores them, which bounds aliasing them.
type depthLimit struct{ max int }

// ExtensionName names the extension in gqlgen's stats.
func (depthLimit) ExtensionName() string { return "PorticoDepthLimit" }

// Validate accepts any schema.
func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext measures the operation.
func (d depthLimit) MutateOperationContext(_ context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	if depth := operationDepth(opCtx.Operation); depth > d.max {
		return codedError(codeMaxDepthExceeded, "operation depth %d exceeds the limit of %d", depth, d.max)
	}
	return nil
}

func operationDepth(op *ast.OperationDefinition) int {
	memo := map[string]int{}
	var depth func(ast.SelectionSet) int
	depth = func(set ast.SelectionSet) int {
		deepest := 0
		for _, sel := range set {
			var d int
			switch s := sel.(type) {
			case *ast.Field:
				if s.Name == "__schema" || s.Name == "__type" {
					continue
				}
				d = 1 + depth(s.SelectionSet)
			case *ast.InlineFragment:
				d = depth(s.SelectionSet)
			case *ast.FragmentSpread:
				if s.Definition == nil {
					continue
				}
				v, ok := memo[s.Name]
				if !ok {
					memo[s.Name] = 0 // validation forbids cycles; this only guards the walk
					v = depth(s.Definition.SelectionSet)
					memo[s.Name] = v
				}
				d = v
			}
			deepest = max(deepest, d)
		}
		return deepest
	}
	return depth(op.SelectionSet)
}

// complexityLimit rejects operations whose cost exceeds max. Costs come from the executable
// schema (the resolvers compute them from @cost) unless this BFF's field_costs overrides a field.
// It replaces gqlgen's extension.ComplexityLimit only to read the overrides and to remember
// scores; the walk is gqlgen's.
type complexityLimit struct {
	max int
	es  graphql.ExecutableSchema
	// scores remembers the score of operations that declare no variables, by document text and
	// operation name: such a score depends on nothing else (the schema and costs are fixed for
	// the profile), and the same few documents come back on every request. An operation with
	// variables is scored each time, since `first: $n` prices it.
	scores graphql.Cache[int]
}

// scoreCacheSize matches the parsed-document cache: both hold the documents in use.
const scoreCacheSize = 1000

// ExtensionName names the extension in gqlgen's stats.
func (complexityLimit) ExtensionName() string { return "PorticoComplexityLimit" }

// Validate accepts any schema.
func (complexityLimit) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext scores the operation.
func (c complexityLimit) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	score := c.score(ctx, opCtx)
	if score > c.max {
		return codedError(codeComplexityExceeded, "operation has complexity %d, which exceeds the limit of %d", score, c.max)
	}
	return nil
}

func (c complexityLimit) score(ctx context.Context, opCtx *graphql.OperationContext) int {
	if c.scores == nil || len(opCtx.Operation.VariableDefinitions) > 0 {
		return operationComplexity(ctx, c.es, opCtx.Operation, opCtx.Variables)
	}
	// The name is the one the client asked for ("" picks the only operation), which with the
	// text determines the operation; the separator cannot occur in a GraphQL name.
	key := opCtx.OperationName + "\x00" + opCtx.RawQuery
	if score, ok := c.scores.Get(ctx, key); ok {
		return score
	}
	score := operationComplexity(ctx, c.es, opCtx.Operation, opCtx.Variables)
	c.scores.Add(ctx, key, score)
	return score
}

// costSchema overrides the complexity of configured fields with the schema's documented formula:
// weight plus the selection's cost, times `first` when the field takes it. Other fields keep the
// executable schema's own complexity.
type costSchema struct {
	graphql.ExecutableSchema
	costs map[string]int
}

// Complexity answers for a field, overriding configured ones.
func (c costSchema) Complexity(ctx context.Context, typeName, field string, child int, args map[string]any) (int, bool) {
	w, ok := c.costs[typeName+"."+field]
	if !ok {
		return c.ExecutableSchema.Complexity(ctx, typeName, field, child, args)
	}
	if first, paged := args["first"]; paged {
		child = saturatingMul(child, resolvers.PageItems(first))
	}
	// gqlgen ignores a custom complexity below 1 and uses its default; a weight-0 field with an
	// empty selection therefore costs 1, which is harmless.
	return saturatingAdd(w, child), true
}

const maxInt = int(^uint(0) >> 1)

func saturatingAdd(a, b int) int {
	if a > maxInt-b {
		return maxInt
	}
	return a + b
}

func saturatingMul(a, b int) int {
	if a != 0 && b > maxInt/a {
		return maxInt
	}
	return a * b
}

// checkFieldCosts reports configured costs for fields the schema lacks.
func checkFieldCosts(schema *ast.Schema, costs map[string]int) error {
	var bad []string
	for key := range costs {
		typ, field, _ := strings.Cut(key, ".")
		def := schema.Types[typ]
		if def == nil || def.Fields.ForName(field) == nil {
			bad = append(bad, key)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("field_costs name fields the schema lacks: %s", strings.Join(bad, ", "))
	}
	return nil
}

// checkStoredLimits reports stored operations the profile runs that can never pass its own
// max_depth or max_complexity: every request for them would answer 400 MAX_DEPTH_EXCEEDED or
// COMPLEXITY_LIMIT_EXCEEDED, blaming the client for the config. Those are the operations of REST
// routes and, on a trusted-documents-only profile, every stored operation, since nothing else
// can run there. Complexity is checked at its lowest: with every Int variable 0, `first: $n`
// prices its selection at nothing (a score only grows with first), so an operation over the
// limit here is over it whatever a request sends.
func checkStoredLimits(name string, cfg *Config, costs graphql.ExecutableSchema, routes []*restRoute, docs *documentSet) error {
	g := &cfg.GraphQL
	check := func(op *ast.OperationDefinition) error {
		if depth := operationDepth(op); depth > g.maxDepth() {
			return fmt.Errorf("operation %s has depth %d, more than graphql.max_depth %d", op.Name, depth, g.maxDepth())
		}
		lowest := map[string]any{}
		for _, v := range op.VariableDefinitions {
			if v.Type.Elem == nil && v.Type.NamedType == "Int" {
				lowest[v.Variable] = 0
			}
		}
		if score := operationComplexity(context.Background(), costs, op, lowest); score > g.maxComplexity() {
			return fmt.Errorf("operation %s has complexity %d at the least, more than graphql.max_complexity %d", op.Name, score, g.maxComplexity())
		}
		return nil
	}
	var errs []error
	checked := map[string]bool{}
	for _, rt := range routes {
		if err := check(rt.op); err != nil {
			errs = append(errs, fmt.Errorf("bffs.%s.rest[%d] (%s %s): %w", name, rt.index, rt.method, strings.TrimPrefix(rt.path, cfg.Path), err))
		}
		checked[rt.op.Name] = true
	}
	if g.TrustedDocumentsOnly {
		for _, opName := range docs.names() {
			if op, d := docs.operation(opName); !checked[opName] {
				if err := check(op); err != nil {
					errs = append(errs, fmt.Errorf("bffs.%s: trusted document %s: %w", name, d.file, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}
