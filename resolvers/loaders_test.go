package resolvers_test

import (
	"context"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/executor"
	"github.com/portico-gw/portico/resolvers"
	"github.com/portico-gw/portico/testing/demo"
)

// run executes q directly on an executor, as a transport would, with ctx.
func run(t *testing.T, ex *executor.Executor, ctx context.Context, q string) *graphql.Response {
	t.Helper()
	ctx = graphql.StartOperationTrace(ctx)
	opCtx, errs := ex.CreateOperationContext(ctx, &graphql.RawParams{Query: q})
	if errs != nil {
		t.Fatalf("preparing %q: %v", q, errs)
	}
	h, ctx := ex.DispatchOperation(ctx, opCtx)
	resp := h(ctx)
	if len(resp.Errors) > 0 {
		t.Fatalf("running %q: %v", q, resp.Errors)
	}
	return resp
}

func TestLoadersArePerOperationUnlessShared(t *testing.T) {
	s := newStack(t, stackOptions{})
	ex := executor.New(resolvers.NewExecutableSchema(resolvers.NewResolver(s.backend, resolvers.Options{})))
	const q = `{ user(id: "u5") { id } }`
	users := s.svc["users"]

	// Without shared loaders, each operation fetches afresh: no stale data between operations.
	run(t, ex, context.Background(), q)
	run(t, ex, context.Background(), q)
	if n := users.Requests(demo.RouteUsers); n != 2 {
		t.Errorf("two operations made %d users calls, want 2", n)
	}

	// Operations of one request sharing loaders look a user up once.
	users.ResetCounts()
	ctx := resolvers.WithLoaders(context.Background(), s.backend)
	run(t, ex, ctx, q)
	run(t, ex, ctx, q)
	if n := users.Requests(demo.RouteUsers); n != 1 {
		t.Errorf("two operations sharing loaders made %d users calls, want 1", n)
	}
}
