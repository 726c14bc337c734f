package resolvers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/portico-gw/portico/resolvers/model"
)

// This file holds what resolvers ask of each service, so that *.resolvers.go (rewritten by gqlgen
// on every generate) stay one-liners.

// me fetches the signed-in user. With an authenticated subject Portico knows the ID and asks for
// it; without one it asks the users service for its current user (the demo's default, u1, which is
// also DemoViewer). A users service that does not know the user makes me null, not an error.
func (r *Resolver) me(ctx context.Context) (*model.User, error) {
	path := "/users/current"
	if id, ok := authenticatedSubject(ctx); ok {
		path = "/users/" + url.PathEscape(id)
	}
	var u model.User
	if err := r.backend.GetJSON(ctx, upstreamUsers, path, &u); err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, upstreamError(upstreamUsers, err)
	}
	if err := u.Check(); err != nil {
		return nil, unusable(ctx, r.backend, upstreamUsers, path, err)
	}
	// Later lookups of the same user in this operation (an order's user) need no call.
	r.loaders(ctx).users().Prime(u.ID, &u)
	return &u, nil
}

// userByID looks a user up through the batching loader; an unknown ID is null.
func (r *Resolver) userByID(ctx context.Context, id string) (*model.User, error) {
	u, err := r.loaders(ctx).users().Load(ctx, id)
	if err != nil {
		return nil, upstreamError(upstreamUsers, err)
	}
	return u, nil
}

// recentOrders fetches a user's latest orders and starts the batched lookups of their users and
// payments when the query selects them.
func (r *Resolver) recentOrders(ctx context.Context, userID string, first *int) ([]*model.Order, error) {
	n, err := pageSize(first)
	if err != nil {
		return nil, err
	}
	var out struct {
		Orders *[]*model.Order `json:"orders"`
	}
	path := "/orders/recent?" + userPage(userID, n)
	if err := r.backend.GetJSON(ctx, upstreamOrders, path, &out); err != nil {
		return nil, upstreamError(upstreamOrders, err)
	}
	orders, err := answerList("orders", out.Orders)
	if err != nil {
		return nil, unusable(ctx, r.backend, upstreamOrders, path, err)
	}
	if len(orders) > n {
		orders = orders[:n]
	}
	r.prefetchOrderRelations(ctx, orders)
	return orders, nil
}

// userPage is the query "limit=n&user_id=id", as url.Values.Encode would write it, without the
// map and the sort: it is built on every dashboard request.
func userPage(userID string, n int) string {
	return "limit=" + strconv.Itoa(n) + "&user_id=" + url.QueryEscape(userID)
}

// unreadNotifications counts a user's unread notifications.
func (r *Resolver) unreadNotifications(ctx context.Context, userID string) (*int, error) {
	var out struct {
		Unread *int `json:"unread"`
	}
	path := "/notifications/count?user_id=" + url.QueryEscape(userID)
	if err := r.backend.GetJSON(ctx, upstreamNotifications, path, &out); err != nil {
		return nil, upstreamError(upstreamNotifications, err)
	}
	if out.Unread == nil {
		// {} or {"count": 7} is not "no unread notifications".
		return nil, unusable(ctx, r.backend, upstreamNotifications, path, errors.New(`the answer has no "unread" count`))
	}
	return out.Unread, nil
}

// notifications fetches a user's latest notifications.
func (r *Resolver) notifications(ctx context.Context, userID string, first *int) ([]*model.Notification, error) {
	n, err := pageSize(first)
	if err != nil {
		return nil, err
	}
	var out struct {
		Notifications *[]*model.Notification `json:"notifications"`
	}
	path := "/notifications?" + userPage(userID, n)
	if err := r.backend.GetJSON(ctx, upstreamNotifications, path, &out); err != nil {
		return nil, upstreamError(upstreamNotifications, err)
	}
	list, err := answerList("notifications", out.Notifications)
	if err != nil {
		return nil, unusable(ctx, r.backend, upstreamNotifications, path, err)
	}
	return list, nil
}

// maxOrderItems bounds a new order's lines; the orders service would refuse an absurd order
// anyway, but without a round trip here.
const maxOrderItems = 100

// placeOrder validates the input and creates the order for the signed-in user.
func (r *Resolver) placeOrder(ctx context.Context, input model.PlaceOrderInput) (*model.Order, error) {
	if len(input.Items) == 0 || len(input.Items) > maxOrderItems {
		return nil, inputError("an order needs 1 to " + strconv.Itoa(maxOrderItems) + " items")
	}
	type item struct {
		Sku            string `json:"sku"`
		Quantity       int    `json:"quantity"`
		UnitPriceCents int    `json:"unit_price_cents"`
	}
	body := struct {
		UserID string `json:"user_id"`
		Items  []item `json:"items"`
	}{UserID: Viewer(ctx), Items: make([]item, len(input.Items))}
	for i, it := range input.Items {
		switch {
		case it.Sku == "":
			return nil, inputError("items[" + strconv.Itoa(i) + "].sku is empty")
		case it.Quantity < 1:
			return nil, inputError("items[" + strconv.Itoa(i) + "].quantity must be positive")
		case it.UnitPriceCents < 0:
			return nil, inputError("items[" + strconv.Itoa(i) + "].unitPriceCents is negative")
		}
		body.Items[i] = item{Sku: it.Sku, Quantity: it.Quantity, UnitPriceCents: it.UnitPriceCents}
	}
	var o model.Order
	if err := r.backend.SendJSON(ctx, upstreamOrders, http.MethodPost, "/orders", body, &o); err != nil {
		return nil, upstreamError(upstreamOrders, err)
	}
	if err := o.Check(); err != nil {
		return nil, upstreamError(upstreamOrders, badAnswer(upstreamOrders, err))
	}
	r.loaders(ctx).orders().Prime(o.ID, &o)
	return &o, nil
}

// markNotificationsRead marks the signed-in user's notifications read; absent ids mean all of
// them, as the notifications service reads a body without ids.
func (r *Resolver) markNotificationsRead(ctx context.Context, ids []string) (int, error) {
	if ids != nil && len(ids) == 0 {
		return 0, nil // an explicit empty list marks nothing; only an absent one means all
	}
	body := struct {
		UserID string   `json:"user_id"`
		IDs    []string `json:"ids,omitempty"`
	}{UserID: Viewer(ctx), IDs: ids}
	var out struct {
		Marked *int `json:"marked"`
	}
	if err := r.backend.SendJSON(ctx, upstreamNotifications, http.MethodPost, "/notifications/read", body, &out); err != nil {
		return 0, upstreamError(upstreamNotifications, err)
	}
	if out.Marked == nil {
		return 0, upstreamError(upstreamNotifications, badAnswer(upstreamNotifications, errors.New(`the answer has no "marked" count`)))
	}
	return *out.Marked, nil
}

// answerList is the list a backend answered under field: absent, null, or holding a null or an
// incomplete object is not an empty list but an answer of another shape, since the schema's lists
// are non-null of non-null.
func answerList[T any](field string, list *[]*T) ([]*T, error) {
	if list == nil {
		return nil, fmt.Errorf("the answer has no %q list", field)
	}
	for _, v := range *list {
		if v == nil {
			return nil, fmt.Errorf("the %q list holds a null", field)
		}
		if err := check(v); err != nil {
			return nil, err
		}
	}
	return *list, nil
}

// unusable reports a GET answer of another shape than the service's contract as the upstream's
// failure (BAD_GATEWAY), first dropping it from the resolver cache, if one keeps it, so that one
// bad answer is not replayed for the cache's whole TTL.
func unusable(ctx context.Context, b Backend, upstream, path string, err error) error {
	if f, ok := b.(interface {
		Forget(ctx context.Context, upstream, path string)
	}); ok {
		f.Forget(ctx, upstream, path)
	}
	return upstreamError(upstream, badAnswer(upstream, err))
}

// check runs v's Check when its type has one (the model types a backend answers with).
func check(v any) error {
	if c, ok := v.(interface{ Check() error }); ok {
		return c.Check()
	}
	return nil
}
