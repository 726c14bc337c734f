package resolvers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vikstrous/dataloadgen"

	"github.com/portico-gw/portico/resolvers/model"
)

// DefaultBatchWait is how long a dataloader collects keys before it calls the backend: long
// enough for sibling fields that gqlgen resolves concurrently to join the batch, short against a
// backend round trip.
const DefaultBatchWait = time.Millisecond

// maxBatch caps the IDs in one batched call, keeping URLs short; more keys make more calls.
const maxBatch = 100

// loaders batch and cache lookups by ID for one operation, so that a list of 50 orders with their
// users and payments costs one users call and one payments call, not 100. Each loader is created
// on first use: every request gets a set, and most operations use one loader or none.
type loaders struct {
	b    Backend
	wait time.Duration

	usersOnce, ordersOnce, paymentsOnce sync.Once
	usersLoader                         *dataloadgen.Loader[string, *model.User]
	ordersLoader                        *dataloadgen.Loader[string, *model.Order]
	paymentsLoader                      *dataloadgen.Loader[string, *model.Payment]
}

func newLoaders(b Backend, wait time.Duration) *loaders {
	if wait <= 0 {
		wait = DefaultBatchWait
	}
	return &loaders{b: b, wait: wait}
}

func (l *loaders) options() []dataloadgen.Option {
	return []dataloadgen.Option{dataloadgen.WithWait(l.wait), dataloadgen.WithBatchCapacity(maxBatch)}
}

func (l *loaders) users() *dataloadgen.Loader[string, *model.User] {
	l.usersOnce.Do(func() {
		l.usersLoader = dataloadgen.NewLoader(batchFetch(l.b, upstreamUsers, "/users", "users",
			func(u *model.User) string { return u.ID }), l.options()...)
	})
	return l.usersLoader
}

func (l *loaders) orders() *dataloadgen.Loader[string, *model.Order] {
	l.ordersOnce.Do(func() {
		l.ordersLoader = dataloadgen.NewLoader(batchFetch(l.b, upstreamOrders, "/orders", "orders",
			func(o *model.Order) string { return o.ID }), l.options()...)
	})
	return l.ordersLoader
}

func (l *loaders) payments() *dataloadgen.Loader[string, *model.Payment] {
	l.paymentsOnce.Do(func() {
		l.paymentsLoader = dataloadgen.NewLoader(batchFetch(l.b, upstreamPayments, "/payments", "payments",
			func(p *model.Payment) string { return p.ID }), l.options()...)
	})
	return l.paymentsLoader
}

// batchFetch builds a dataloader fetch that asks upstream for path?ids=a,b,c and reads the list
// under field. The answer may come in any order and omit unknown IDs: values are returned in key
// order, with nil (and no error) for a missing key, so unknown IDs become null fields. A failed
// call fails every key of the batch with the same cause; resolvers map it per field.
func batchFetch[T any](b Backend, upstream, path, field string, idOf func(*T) string) func(context.Context, []string) ([]*T, []error) {
	return func(ctx context.Context, ids []string) ([]*T, []error) {
		escaped := make([]string, len(ids))
		for i, id := range ids {
			escaped[i] = url.QueryEscape(id)
		}
		var body map[string]json.RawMessage
		call := path + "?ids=" + strings.Join(escaped, ",")
		if err := b.GetJSON(ctx, upstream, call, &body); err != nil {
			return nil, []error{err}
		}
		bad := func(err error) ([]*T, []error) {
			return nil, []error{unusable(ctx, b, upstream, call, err)}
		}
		var list []*T
		raw, ok := body[field]
		if !ok || string(bytes.TrimSpace(raw)) == "null" {
			// Not "none of these IDs" (that is an empty list): an answer of another shape.
			return bad(fmt.Errorf("the answer has no %q list", field))
		}
		if err := json.Unmarshal(raw, &list); err != nil {
			return bad(err)
		}
		byID := make(map[string]*T, len(list))
		for _, v := range list {
			if v == nil {
				continue // a null element names no key: the keys asked for stay null
			}
			if err := check(v); err != nil {
				return bad(err)
			}
			id := idOf(v)
			if _, dup := byID[id]; dup {
				// Two answers for one ID: serving either would be a guess.
				return bad(fmt.Errorf("the answer lists %q twice", id))
			}
			byID[id] = v
		}
		out := make([]*T, len(ids))
		for i, id := range ids {
			out[i] = byID[id]
		}
		return out, nil
	}
}

// badAnswer marks a backend answer Portico could not read as the backend's fault (502).
func badAnswer(upstream string, err error) error {
	return &backendError{upstream: upstream, status: http.StatusBadGateway, code: "BAD_GATEWAY", err: fmt.Errorf("decoding answer: %w", err)}
}

type loadersKey struct{}

// WithLoaders returns a context carrying fresh dataloaders over b, shared by every operation run
// with it. Executable schemas from NewExecutableSchema install their own per operation when the
// context has none, so this is only needed to share batches and cached lookups across the
// operations of one request (a batched GraphQL request, say). The loaders live as long as the
// context: never put them in a context that outlives a request, or they serve stale data.
func WithLoaders(ctx context.Context, b Backend) context.Context {
	return context.WithValue(ctx, loadersKey{}, newLoaders(b, DefaultBatchWait))
}

func loadersFrom(ctx context.Context) *loaders {
	l, _ := ctx.Value(loadersKey{}).(*loaders)
	return l
}

// loaders returns the operation's dataloaders. Without any (a schema built some other way than
// NewExecutableSchema) it returns unshared ones: answers stay correct, only batching is lost.
func (r *Resolver) loaders(ctx context.Context) *loaders {
	if l := loadersFrom(ctx); l != nil {
		return l
	}
	return newLoaders(r.backend, r.opts.BatchWait)
}

// prefetchOrderRelations starts the batched user and payment lookups for a list of orders as soon
// as the list is known, when the query selects them under path (for a connection, edges.node).
// Without it the batch would depend on all per-order field goroutines reaching the loader within
// the batch wait; with it every key is queued, in one goroutine, before any of them runs, so the
// call count does not depend on scheduling.
func (r *Resolver) prefetchOrderRelations(ctx context.Context, orders []*model.Order, path ...string) {
	if len(orders) == 0 {
		return
	}
	selected := selectedFields(ctx, path...)
	l := r.loaders(ctx)
	if selected["user"] {
		l.users().LoadAllThunk(ctx, distinct(orders, func(o *model.Order) string { return o.UserID }))
	}
	if selected["payment"] {
		l.payments().LoadAllThunk(ctx, distinct(orders, func(o *model.Order) string { return o.PaymentID }))
	}
}

// selectedFields returns the names of the fields selected at path below the current field,
// through fragments and aliases and honouring @skip and @include.
func selectedFields(ctx context.Context, path ...string) map[string]bool {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || !graphql.HasOperationContext(ctx) {
		return nil
	}
	opCtx := graphql.GetOperationContext(ctx)
	sets := []ast.SelectionSet{fc.Field.Selections}
	for _, name := range path {
		var next []ast.SelectionSet
		for _, set := range sets {
			for _, f := range graphql.CollectFields(opCtx, set, nil) {
				if f.Name == name {
					next = append(next, f.Selections)
				}
			}
		}
		sets = next
	}
	names := map[string]bool{}
	for _, set := range sets {
		for _, f := range graphql.CollectFields(opCtx, set, nil) {
			names[f.Name] = true
		}
	}
	return names
}

// distinct returns the non-empty keys of orders in first-seen order.
func distinct(orders []*model.Order, key func(*model.Order) string) []string {
	seen := make(map[string]bool, len(orders))
	keys := make([]string, 0, len(orders))
	for _, o := range orders {
		if k := key(o); k != "" && !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys
}
