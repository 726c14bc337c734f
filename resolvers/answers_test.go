package resolvers

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/portico-gw/portico/resolvers/model"
	"github.com/portico-gw/portico/upstreams"
	"github.com/vektah/gqlparser/v2/gqlerror"
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
