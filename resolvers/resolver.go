package resolvers

import (
	"context"
	"fmt"
	"time"

	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/resolvers/exec"
)

// Resolver is the dependency-injection root of the GraphQL resolvers: everything a resolver needs
// beyond its arguments hangs off it. It holds no per-request state, so one Resolver serves every
// request of a config snapshot.
type Resolver struct {
	backend Backend
	opts    Options
}

// Options tunes the resolvers. The zero value is ready to use.
type Options struct {
	// BatchWait is how long a dataloader collects keys before calling the backend
	// (default DefaultBatchWait, 1ms).
	BatchWait time.Duration
	// FieldCosts overrides the schema's @cost weights for the complexity score, by "Type.field"
	// (for example {"Query.orders": 25}); it lets config tune costs without a schema change.
	FieldCosts map[string]int
}

// Validate reports options that cannot work, such as a cost for a field the schema lacks.
func (o Options) Validate() error {
	if o.BatchWait < 0 {
		return fmt.Errorf("batch wait %s is negative", o.BatchWait)
	}
	schema := exec.NewExecutableSchema(exec.Config{}).Schema()
	for key, weight := range o.FieldCosts {
		if _, err := lookupField(schema, key); err != nil {
			return fmt.Errorf("field cost %q: %w", key, err)
		}
		if weight < 0 {
			return fmt.Errorf("field cost %q: weight %d is negative", key, weight)
		}
	}
	return nil
}

// NewResolver returns the resolver root over b. Call opts.Validate first when opts come from
// config; NewExecutableSchema ignores costs for unknown fields.
func NewResolver(b Backend, opts Options) *Resolver {
	return &Resolver{backend: b, opts: opts}
}

// DemoViewer is the user that `me` and the dashboard describe when the request carries no
// authenticated subject; it is the users service's default current user in the demo.
const DemoViewer = "u1"

// Viewer returns the ID of the user the request acts for: the authenticated subject that the
// authentication policy put in reqctx (the JWT `sub`, for example), else DemoViewer. The consumer
// name is not used: it names a client application, not a user.
func Viewer(ctx context.Context) string {
	if id, ok := authenticatedSubject(ctx); ok {
		return id
	}
	return DemoViewer
}

func authenticatedSubject(ctx context.Context) (string, bool) {
	if info := reqctx.From(ctx); info != nil && info.Identity != nil && info.Identity.Subject != "" {
		return info.Identity.Subject, true
	}
	return "", false
}
