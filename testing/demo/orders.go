package demo

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Limits of the orders service's list endpoints and order validation.
const (
	DefaultRecentLimit = 5
	DefaultPageLimit   = 20
	MaxPageLimit       = 100
	MaxOrderItems      = 100
	MaxItemQuantity    = 1000
	MaxUnitPriceCents  = 10_000_000
)

// ordersBody is the answer of GET /orders/recent and of GET /orders?ids=.
type ordersBody struct {
	Orders []Order `json:"orders"`
}

// orderPage is the answer of GET /orders with cursor pagination.
type orderPage struct {
	Orders     []Order `json:"orders"`
	NextCursor string  `json:"next_cursor"`
}

// CreateOrderRequest is the body of POST /orders.
type CreateOrderRequest struct {
	UserID string      `json:"user_id"`
	Items  []OrderItem `json:"items"`
}

// orderStore holds the seed orders, shared and read-only, plus the orders created at runtime.
// Order numbers are dense (o1 … oN) and increase with creation time, so "newest first" is
// descending number and a cursor is just a number.
type orderStore struct {
	seed []Order

	mu      sync.RWMutex
	created []Order
}

func (st *orderStore) len() int { return len(st.seed) + len(st.created) }

// at returns order number n (1-based); callers hold st.mu.
func (st *orderStore) at(n int) Order {
	if n <= len(st.seed) {
		return st.seed[n-1]
	}
	return st.created[n-len(st.seed)-1]
}

func (st *orderStore) get(id string) (Order, bool) {
	n, ok := parseID("o", id)
	if !ok {
		return Order{}, false
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	if n > st.len() {
		return Order{}, false
	}
	return st.at(n), true
}

// page returns up to limit orders of user (all users when empty), newest first, starting below
// order number before (0: from the newest), and the number of the last order returned when more
// remain (0 at the end). Looking one order ahead means a walk never ends on an empty page.
func (st *orderStore) page(user string, before, limit int) (orders []Order, next int) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	start := st.len()
	if before > 0 && before-1 < start {
		start = before - 1
	}
	orders = make([]Order, 0, min(limit, 16))
	last := 0
	for n := start; n >= 1; n-- {
		o := st.at(n)
		if user != "" && o.UserID != user {
			continue
		}
		if len(orders) == limit {
			return orders, last
		}
		orders = append(orders, o)
		last = n
	}
	return orders, 0
}

func (st *orderStore) create(req CreateOrderRequest) Order {
	items := req.Items
	var total int64
	for _, it := range items {
		total += int64(it.Quantity) * it.UnitPriceCents
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	n := st.len() + 1
	o := Order{
		ID: "o" + strconv.Itoa(n), UserID: req.UserID, Status: "pending", Items: items,
		TotalCents: total, Currency: Currency, CreatedAt: orderTime(n),
	}
	st.created = append(st.created, o)
	return o
}

func (st *orderStore) reset() {
	st.mu.Lock()
	st.created = nil
	st.mu.Unlock()
}

// encodeCursor returns the opaque cursor that continues a listing after order number n.
func encodeCursor(n int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("o:" + strconv.Itoa(n)))
}

func decodeCursor(c string) (int, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		if n, ok := parseID("o:", string(raw)); ok {
			return n, nil
		}
	}
	return 0, fmt.Errorf("after %q: not a cursor this service issued", c)
}

// NewOrders returns the orders service: o1 … o500 spread over the users (u1 has 63), each with
// the payment of the same number.
//
//	GET  /health
//	GET  /orders/recent?user_id=u1&limit=5      {"orders":[…]} newest first (user defaults as
//	                                            for reads: user_id, then
//	                                            X-Authenticated-Subject or
//	                                            X-User-ID, then u1)
//	GET  /orders/{id}                           404 when unknown
//	GET  /orders?user_id=&after=&limit=         {"orders":[…],"next_cursor":"…"} newest first,
//	                                            limit default 20, max 100; next_cursor is empty
//	                                            on the last page; without user_id, all orders
//	GET  /orders?ids=o1,o2                      {"orders":[…]} in the order asked, unknown left out
//	POST /orders {user_id, items:[…]}           201 with the order (status pending, no payment
//	                                            yet) and Location; 400 listing every invalid field
//
// Created orders live as long as the Service (or until Reset) and show up in every listing.
func NewOrders() *Service {
	s := newService("orders")
	st := &orderStore{seed: seedData().orders}
	s.resetState = st.reset

	s.handle(RouteRecentOrders, func(w http.ResponseWriter, r *http.Request) {
		limit, err := queryLimit(r, DefaultRecentLimit, MaxPageLimit)
		if err != nil {
			badRequest(w, err)
			return
		}
		orders, _ := st.page(readUserID(r), 0, limit)
		writeJSON(w, http.StatusOK, ordersBody{Orders: orders})
	})
	s.handle(RouteOrder, func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		o, ok := st.get(id)
		if !ok {
			notFound(w, "order", id)
			return
		}
		writeJSON(w, http.StatusOK, o)
	})
	s.handle(RouteOrders, func(w http.ResponseWriter, r *http.Request) {
		ids, present, err := queryIDs(r)
		if err != nil {
			badRequest(w, err)
			return
		}
		q := r.URL.Query()
		if present {
			if q.Has("user_id") || q.Has("after") {
				badRequest(w, errors.New("ids cannot be combined with user_id or after"))
				return
			}
			out := ordersBody{Orders: make([]Order, 0, len(ids))}
			for _, id := range ids {
				if o, ok := st.get(id); ok {
					out.Orders = append(out.Orders, o)
				}
			}
			writeJSON(w, http.StatusOK, out)
			return
		}
		limit, err := queryLimit(r, DefaultPageLimit, MaxPageLimit)
		if err != nil {
			badRequest(w, err)
			return
		}
		before := 0
		if c := q.Get("after"); c != "" {
			if before, err = decodeCursor(c); err != nil {
				badRequest(w, err)
				return
			}
		}
		orders, next := st.page(q.Get("user_id"), before, limit)
		out := orderPage{Orders: orders}
		if next > 0 {
			out.NextCursor = encodeCursor(next)
		}
		writeJSON(w, http.StatusOK, out)
	})
	s.handle(RouteCreateOrder, func(w http.ResponseWriter, r *http.Request) {
		var req CreateOrderRequest
		if err := decodeBody(w, r, &req); err != nil {
			badRequest(w, err)
			return
		}
		if req.UserID == "" {
			req.UserID = headerUser(r)
		}
		if problems := validateOrder(req); len(problems) > 0 {
			writeError(w, http.StatusBadRequest, "VALIDATION_FAILED", strings.Join(problems, "; "))
			return
		}
		o := st.create(req)
		w.Header().Set("Location", "/orders/"+o.ID)
		writeJSON(w, http.StatusCreated, o)
	})
	return s
}

// validateOrder lists every problem at once, so a client fixes its request in one round.
func validateOrder(req CreateOrderRequest) []string {
	var problems []string
	switch {
	case req.UserID == "":
		problems = append(problems, "user_id: required (in the body or a user header)")
	default:
		if _, ok := seedData().user(req.UserID); !ok {
			problems = append(problems, fmt.Sprintf("user_id: unknown user %q", req.UserID))
		}
	}
	switch {
	case len(req.Items) == 0:
		problems = append(problems, "items: at least one item is required")
	case len(req.Items) > MaxOrderItems:
		problems = append(problems, fmt.Sprintf("items: at most %d items, got %d", MaxOrderItems, len(req.Items)))
	}
	for i, it := range req.Items {
		if strings.TrimSpace(it.SKU) == "" {
			problems = append(problems, fmt.Sprintf("items[%d].sku: required", i))
		}
		if it.Quantity < 1 || it.Quantity > MaxItemQuantity {
			problems = append(problems, fmt.Sprintf("items[%d].quantity: must be between 1 and %d, got %d", i, MaxItemQuantity, it.Quantity))
		}
		if it.UnitPriceCents < 0 || it.UnitPriceCents > MaxUnitPriceCents {
			problems = append(problems, fmt.Sprintf("items[%d].unit_price_cents: must be between 0 and %d, got %d", i, MaxUnitPriceCents, it.UnitPriceCents))
		}
	}
	return problems
}
