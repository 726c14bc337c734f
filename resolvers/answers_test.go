package resolvers

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/portico-gw/portico/policies"
	"github.com/portico-gw/portico/policies/cache"
	"github.com/portico-gw/portico/resolvers/model"
	"github.com/portico-gw/portico/upstreams"
)

// pathBackend answers each call with the body of the first path prefix that matches, decoded as
// the upstream client decodes: a body it cannot read is the upstream's bad answer.
type pathBackend map[string]string

func (b pathBackend) GetJSON(_ context.Context, upstream, path string, out any) error {
	for prefix, body := range b {
		if strings.HasPrefix(path, prefix) {
			if err := json.Unmarshal([]byte(body), out); err != nil {
				return &upstreams.Error{Upstream: upstream, Kind: upstreams.ErrBadGateway, Err: err}
			}
			return nil
		}
	}
	return nil
}

func (b pathBackend) SendJSON(_ context.Context, _, _, path string, _, out any) error {
	return b.GetJSON(context.Background(), "svc", path, out)
}

func wantBadGateway(t *testing.T, what string, err error) {
	t.Helper()
	ge, ok := err.(*gqlerror.Error)
	if !ok || ge.Extensions["code"] != "BAD_GATEWAY" {
		t.Errorf("%s: err = %v, want a BAD_GATEWAY error", what, err)
	}
}

// Answers of another shape are the backend's failure, not empty data served as success: a count
// without its key was 0, a list without its key was [], a user without fields was all "".
func TestAnswersOfAnotherShapeAreBadGateway(t *testing.T) {
	ctx := context.Background()
	for _, body := range []string{`{}`, `{"id":"u1","name":"Ada","email":null,"tier":"t","created_at":"2026-01-01T00:00:00Z"}`} {
		r := NewResolver(pathBackend{"/users/": body}, Options{})
		u, err := r.me(ctx)
		if u != nil {
			t.Errorf("users answered %s: me = %+v, want none", body, u)
		}
		wantBadGateway(t, "me from "+body, err)
	}
	for _, body := range []string{`{}`, `{"unread":null}`, `{"count":7}`} {
		r := NewResolver(pathBackend{"/notifications/count": body}, Options{})
		n, err := r.unreadNotifications(ctx, "u1")
		if n != nil {
			t.Errorf("count answered %s: %d, want none", body, *n)
		}
		wantBadGateway(t, "unreadNotifications from "+body, err)
	}
	for _, body := range []string{`{}`, `{"notifications":null}`, `{"notifications":[null]}`, `{"notifications":[{"id":"n1"}]}`} {
		r := NewResolver(pathBackend{"/notifications": body}, Options{})
		_, err := r.notifications(ctx, "u1", nil)
		wantBadGateway(t, "notifications from "+body, err)
	}
	r := NewResolver(pathBackend{"/notifications/read": `{}`}, Options{})
	_, err := r.markNotificationsRead(ctx, nil)
	wantBadGateway(t, "markNotificationsRead from {}", err)

	// The right shapes still pass, empty ones included.
	r = NewResolver(pathBackend{"/notifications/count": `{"unread":0}`, "/notifications?": `{"notifications":[]}`}, Options{})
	if n, err := r.unreadNotifications(ctx, "u1"); err != nil || *n != 0 {
		t.Errorf("unread 0: %v, %v", n, err)
	}
	if l, err := r.notifications(ctx, "u1", nil); err != nil || l == nil || len(l) != 0 {
		t.Errorf("no notifications: %v, %v", l, err)
	}
}

// A batch answer without its list, or with one ID twice, fails the batch: the keys were all
// null (no error), or the last of two contradictory answers was served.
func TestBatchAnswerOfAnotherShapeFails(t *testing.T) {
	for name, body := range map[string]string{
		"no list":            `{"data":[]}`,
		"incomplete element": `{"payments":[{"id":"p1"}]}`,
		"duplicate id":       `{"payments":[{"id":"p1","status":"captured","amount_cents":1,"currency":"EUR","method":"card"},{"id":"p1","status":"refunded","amount_cents":1,"currency":"EUR","method":"card"}]}`,
	} {
		fetch := batchFetch(Backend(jsonBackend(body)), upstreamPayments, "/payments", "payments",
			func(p *model.Payment) string { return p.ID })
		vals, errs := fetch(context.Background(), []string{"p1"})
		if len(errs) != 1 || vals != nil {
			t.Errorf("%s: vals %v errs %v, want one error for the batch", name, vals, errs)
		}
	}
	fetch := batchFetch(Backend(jsonBackend(`{"payments":[]}`)), upstreamPayments, "/payments", "payments",
		func(p *model.Payment) string { return p.ID })
	if vals, errs := fetch(context.Background(), []string{"p1"}); len(errs) != 0 || vals[0] != nil {
		t.Errorf("an empty list: vals %v errs %v, want the key null", vals, errs)
	}
}

// A null batch list is no "none of these IDs" either.
func TestBatchNullListIsBadGateway(t *testing.T) {
	fetch := batchFetch(Backend(jsonBackend(`{"users":null}`)), upstreamUsers, "/users", "users",
		func(u *model.User) string { return u.ID })
	if vals, errs := fetch(context.Background(), []string{"u1"}); len(errs) != 1 || vals != nil {
		t.Fatalf(`{"users":null}: vals %v errs %v, want one error for the batch`, vals, errs)
	}
}

// A guest order has no user_id (Order.user is nullable and resolves to null): it is served.
func TestOrderWithoutUserIDIsServed(t *testing.T) {
	const order = `{"id":"o1","status":"paid","items":[{"sku":"A","quantity":1,"unit_price_cents":1}],"total_cents":1,"currency":"EUR","created_at":"2026-01-01T00:00:00Z"}`
	r := NewResolver(pathBackend{"/orders/recent": `{"orders":[` + order + `]}`}, Options{})
	if orders, err := r.recentOrders(context.Background(), "u1", nil); err != nil || len(orders) != 1 {
		t.Fatalf("a guest order: %v, %v", orders, err)
	}
}

// firstBadBackend answers the first call with bad and every later one with good.
type firstBadBackend struct {
	calls     atomic.Int64
	bad, good string
}

func (b *firstBadBackend) GetJSON(_ context.Context, _, _ string, out any) error {
	body := b.good
	if b.calls.Add(1) == 1 {
		body = b.bad
	}
	return json.Unmarshal([]byte(body), out)
}

func (b *firstBadBackend) SendJSON(context.Context, string, string, string, any, any) error {
	return nil
}

// The resolver cache stores any JSON; an answer a resolver finds of another shape is dropped from
// it, or the BAD_GATEWAY it causes was replayed for the rule's whole TTL after the backend
// recovered.
func TestResolverCacheForgetsAnAnswerOfAnotherShape(t *testing.T) {
	next := &firstBadBackend{
		bad:  `{}`,
		good: `{"id":"u1","name":"Ada","email":"a@example.com","tier":"gold","created_at":"2026-01-01T00:00:00Z"}`,
	}
	b, err := cache.NewBackend(next, cache.BackendRules{{Upstream: upstreamUsers, PathPrefix: "/users/forget-shape"}}, policies.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	r := NewResolver(prefixed{b, "/users/forget-shape"}, Options{})
	if _, err := r.me(context.Background()); err == nil {
		t.Fatal("first call: the {} answer was not refused")
	}
	if u, err := r.me(context.Background()); err != nil || u.ID != "u1" {
		t.Fatalf("second call, the backend healthy again (%d upstream calls): %v, %v", next.calls.Load(), u, err)
	}
}

// prefixed moves every path under pre, unique to its test, so the process-wide memory store of
// the resolver cache shares no entry with other tests.
type prefixed struct {
	b   cache.Backend
	pre string
}

func (p prefixed) GetJSON(ctx context.Context, upstream, path string, out any) error {
	return p.b.GetJSON(ctx, upstream, p.pre+path, out)
}

func (p prefixed) SendJSON(ctx context.Context, upstream, method, path string, in, out any) error {
	return p.b.SendJSON(ctx, upstream, method, path, in, out)
}

func (p prefixed) Forget(ctx context.Context, upstream, path string) {
	p.b.(interface {
		Forget(context.Context, string, string)
	}).Forget(ctx, upstream, p.pre+path)
}

// A stored answer that does not even decode into the resolver's type (a number for a string ID,
// a list for the batch object) is dropped too, and is a BAD_GATEWAY: it failed every call for the
// rule's TTL.
func TestResolverCacheForgetsAnAnswerThatDoesNotDecode(t *testing.T) {
	const user = `{"id":"u1","name":"Ada","email":"a@example.com","tier":"gold","created_at":"2026-01-01T00:00:00Z"}`
	newCache := func(pre string, next Backend) Backend {
		b, err := cache.NewBackend(next, cache.BackendRules{{Upstream: upstreamUsers, PathPrefix: pre}}, policies.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		return prefixed{b, pre}
	}
	next := &firstBadBackend{bad: strings.Replace(user, `"id":"u1"`, `"id":42`, 1), good: user}
	r := NewResolver(newCache("/users/undecodable", next), Options{})
	_, err := r.me(context.Background())
	wantBadGateway(t, "a number for the id", err)
	if u, err := r.me(context.Background()); err != nil || u.ID != "u1" {
		t.Fatalf("second call, the backend healthy again (%d upstream calls): %v, %v", next.calls.Load(), u, err)
	}

	next = &firstBadBackend{bad: `[]`, good: `{"users":[` + user + `]}`}
	fetch := batchFetch(newCache("/users/undecodable-batch", next), upstreamUsers, "/users", "users",
		func(u *model.User) string { return u.ID })
	if _, errs := fetch(context.Background(), []string{"u1"}); len(errs) != 1 {
		t.Fatal("a list for the batch object was not refused")
	}
	if vals, errs := fetch(context.Background(), []string{"u1"}); len(errs) != 0 || vals[0] == nil {
		t.Fatalf("second batch, the backend healthy again (%d upstream calls): %v %v", next.calls.Load(), vals, errs)
	}
}
