package resolvers

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/portico-gw/portico/internal/apierror"
	"github.com/portico-gw/portico/resolvers/model"
)

// Page sizes for `first`.
const (
	defaultFirst = 10
	maxFirst     = 100
)

// maxLimit is the most orders asked of the orders service in one call (the demo service clamps
// there too). A cursor's skip never exceeds it: a page asked for skip+first orders but capped at
// maxLimit is just shorter, and its last edge continues at the service's next_cursor.
const maxLimit = 100

// cursor is a position in a user's order list in terms the orders service understands: the
// service's own page cursor (empty for the start) plus how many orders after it were already
// seen. Every edge gets one, not just the page's end, which is why it cannot simply be the
// service's next_cursor: a client may continue after any edge.
type cursor struct {
	after string
	skip  int
}

// encode makes the opaque string clients see.
func (c cursor) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(c.skip) + ":" + c.after))
}

func decodeCursor(s string) (cursor, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, false
	}
	n, after, ok := strings.Cut(string(raw), ":")
	if !ok {
		return cursor{}, false
	}
	skip, err := strconv.Atoi(n)
	if err != nil || skip < 0 || skip > maxLimit {
		return cursor{}, false
	}
	return cursor{after: after, skip: skip}, true
}

// pageSize validates `first`.
func pageSize(first *int) (int, error) {
	if first == nil {
		return defaultFirst, nil
	}
	if *first < 1 || *first > maxFirst {
		return 0, inputError("first must be between 1 and " + strconv.Itoa(maxFirst))
	}
	return *first, nil
}

// ordersPage is the orders service's answer to GET /orders?user_id=&after=&limit=.
type ordersPage struct {
	Orders     *[]*model.Order `json:"orders"`
	NextCursor string          `json:"next_cursor"`
}

// orderConnection fetches one page of userID's orders. It asks the service for the page that
// starts at the cursor's service position, enlarged by the cursor's skip, and drops the skipped
// orders. Each edge's cursor is its position (service cursor, skip); the last edge continues at
// the service's next_cursor instead, which keeps skips small on a walk by endCursor.
func (r *Resolver) orderConnection(ctx context.Context, userID string, first *int, after *string) (*model.OrderConnection, error) {
	n, err := pageSize(first)
	if err != nil {
		return nil, err
	}
	var start cursor
	if after != nil && *after != "" {
		var ok bool
		if start, ok = decodeCursor(*after); !ok {
			return nil, inputError("after is not a cursor from this API")
		}
	}
	q := url.Values{"user_id": {userID}, "limit": {strconv.Itoa(min(start.skip+n, maxLimit))}}
	if start.after != "" {
		q.Set("after", start.after)
	}
	var page ordersPage
	path := "/orders?" + q.Encode()
	if err := r.backend.GetJSON(ctx, upstreamOrders, path, &page); err != nil {
		var sc apierror.StatusCoder
		if start.after != "" && errors.As(err, &sc) && sc.StatusCode() == http.StatusBadRequest {
			// The cursor's service part is the orders service's own and only it can tell a
			// forged one; its 400 here is the client's bad cursor, not the service rejecting us.
			return nil, inputError("after is not a cursor from this API")
		}
		return nil, upstreamError(upstreamOrders, err)
	}
	all, err := answerList("orders", page.Orders)
	if err != nil {
		return nil, unusable(ctx, r.backend, upstreamOrders, path, err)
	}
	orders := all[min(start.skip, len(all)):]
	truncated := len(orders) > n // a service that ignores limit
	if truncated {
		orders = orders[:n]
	}
	conn := &model.OrderConnection{
		Edges:    make([]*model.OrderEdge, len(orders)),
		PageInfo: &model.PageInfo{HasNextPage: truncated || page.NextCursor != ""},
	}
	for i, o := range orders {
		c := cursor{after: start.after, skip: start.skip + i + 1}
		if i == len(orders)-1 && !truncated && page.NextCursor != "" {
			c = cursor{after: page.NextCursor}
		}
		conn.Edges[i] = &model.OrderEdge{Cursor: c.encode(), Node: o}
	}
	switch {
	case len(conn.Edges) > 0:
		conn.PageInfo.EndCursor = &conn.Edges[len(conn.Edges)-1].Cursor
	case page.NextCursor != "":
		end := cursor{after: page.NextCursor}.encode()
		conn.PageInfo.EndCursor = &end
	}
	r.prefetchOrderRelations(ctx, orders, "edges", "node")
	return conn, nil
}
