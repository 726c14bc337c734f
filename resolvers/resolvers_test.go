package resolvers_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/resolvers"
	"github.com/portico-gw/portico/testing/demo"
	"github.com/portico-gw/portico/testing/spy"
	"github.com/portico-gw/portico/upstreams"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

type user struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
	Tier  string `json:"tier"`
}

type order struct {
	ID         string `json:"id"`
	Status     string `json:"status"`
	TotalCents int    `json:"totalCents"`
	User       *user  `json:"user"`
	Payment    *struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	} `json:"payment"`
}

type connection struct {
	Edges []struct {
		Cursor string `json:"cursor"`
		Node   order  `json:"node"`
	} `json:"edges"`
	PageInfo struct {
		HasNextPage bool    `json:"hasNextPage"`
		EndCursor   *string `json:"endCursor"`
	} `json:"pageInfo"`
}

type dashboard struct {
	Dashboard struct {
		Me                  *user   `json:"me"`
		RecentOrders        []order `json:"recentOrders"`
		UnreadNotifications *int    `json:"unreadNotifications"`
	} `json:"dashboard"`
}

const dashboardQuery = `{ dashboard { me { id name } recentOrders { id status } unreadNotifications } }`

func TestDashboardComposesThreeServicesConcurrently(t *testing.T) {
	// Expectations come straight from the same demo data, outside the stack under test.
	expect := newStack(t, stackOptions{})
	var wantOrders struct {
		Orders []struct {
			ID string `json:"id"`
		} `json:"orders"`
	}
	var wantCount struct {
		Unread int `json:"unread"`
	}
	expect.backendJSON(t, "orders", "/orders/recent?user_id=u1&limit=5", &wantOrders)
	expect.backendJSON(t, "notifications", "/notifications/count?user_id=u1", &wantCount)

	rv := spy.NewRendezvous(3)
	s := newStack(t, stackOptions{wrap: map[string]func(http.Handler) http.Handler{
		"users": rv.Wrap, "orders": rv.Wrap, "notifications": rv.Wrap,
	}})
	var got dashboard
	s.mustQuery(t, dashboardQuery, &got)

	if !rv.Met() {
		t.Error("the three backend calls were not in flight at the same time")
	}
	d := got.Dashboard
	if d.Me == nil || d.Me.ID != "u1" || d.Me.Name == "" {
		t.Errorf("me = %+v, want u1 with a name", d.Me)
	}
	var ids []string
	for _, o := range d.RecentOrders {
		ids = append(ids, o.ID)
	}
	var want []string
	for _, o := range wantOrders.Orders {
		want = append(want, o.ID)
	}
	if strings.Join(ids, ",") != strings.Join(want, ",") || len(ids) != 5 {
		t.Errorf("recentOrders = %v, want %v", ids, want)
	}
	if d.UnreadNotifications == nil || *d.UnreadNotifications != wantCount.Unread {
		t.Errorf("unreadNotifications = %v, want %d", d.UnreadNotifications, wantCount.Unread)
	}
	for _, c := range []struct {
		svc, route string
	}{
		{"users", demo.RouteCurrentUser},
		{"orders", demo.RouteRecentOrders},
		{"notifications", demo.RouteNotificationCount},
	} {
		if n := s.svc[c.svc].Requests(c.route); n != 1 {
			t.Errorf("%s %s: %d requests, want 1", c.svc, c.route, n)
		}
		if id := s.svc[c.svc].LastHeadersFor(c.route).Get(reqctx.HeaderRequestID); id != testRequestID {
			t.Errorf("%s got request ID %q, want %q", c.svc, id, testRequestID)
		}
	}
	if n := s.svc["payments"].TotalRequests(); n != 0 {
		t.Errorf("payments got %d requests for a query that selects no payment", n)
	}
}

func TestOrdersBatchUsersAndPayments(t *testing.T) {
	// The production window (1ms) batches these 100 lookups on an idle machine; under the race
	// detector on a loaded one, goroutine start-up can straddle even a wide window and split the
	// payments batch in two, which costs a call, not correctness. So payments are asserted by
	// what was asked (each id once, in calls of several ids), not by a call count.
	payments := spy.NewBatches("/payments")
	s := newStack(t, stackOptions{batchWait: 50 * time.Millisecond, wrap: map[string]func(http.Handler) http.Handler{"payments": payments.Wrap}})
	q := `query($first: Int) { orders(userId: "u1", first: $first) { edges { node {
		id user { id name } payment { id status } } } } }`
	var got struct {
		Orders connection `json:"orders"`
	}
	s.mustQuery(t, q, &got, client.Var("first", 50))

	if len(got.Orders.Edges) != 50 {
		t.Fatalf("got %d orders, want 50", len(got.Orders.Edges))
	}
	for _, e := range got.Orders.Edges {
		n := strings.TrimPrefix(e.Node.ID, "o")
		if e.Node.User == nil || e.Node.User.ID != "u1" || e.Node.User.Name == "" {
			t.Fatalf("order %s: user = %+v, want u1", e.Node.ID, e.Node.User)
		}
		if e.Node.Payment == nil || e.Node.Payment.ID != "p"+n {
			t.Fatalf("order %s: payment = %+v, want p%s", e.Node.ID, e.Node.Payment, n)
		}
	}
	if b := payments.Summary(); b.Largest < 2 || len(b.Asked) != 50 || len(b.Repeated()) > 0 {
		t.Errorf("payments: %d batched calls, the largest of %d ids, %d distinct ids, asked again: %v; want 50 ids once each, in calls of several",
			b.Calls, b.Largest, len(b.Asked), b.Repeated())
	}
	if n := s.svc["payments"].Requests(demo.RoutePayment); n != 0 {
		t.Errorf("payments: %d single lookups, want none", n)
	}
	// One orders call for the list; one users call, whatever the timing: every order is u1's,
	// and the loader's cache answers every later lookup of a key it already holds or awaits.
	for _, c := range []struct {
		svc, route string
	}{
		{"orders", demo.RouteOrders},
		{"users", demo.RouteUsers},
	} {
		if n := s.svc[c.svc].Requests(c.route); n != 1 {
			t.Errorf("%s %s: %d requests, want exactly 1", c.svc, c.route, n)
		}
		if n := s.svc[c.svc].TotalRequests(); n != 1 {
			t.Errorf("%s: %d requests in all, want 1", c.svc, n)
		}
	}
}

func TestOrderFieldsWithoutSelectionCallNothing(t *testing.T) {
	s := newStack(t, stackOptions{})
	var got struct {
		Orders connection `json:"orders"`
	}
	s.mustQuery(t, `{ orders(first: 30) { edges { node { id } } } }`, &got)
	if len(got.Orders.Edges) != 30 {
		t.Fatalf("got %d orders, want 30", len(got.Orders.Edges))
	}
	if n := s.svc["users"].TotalRequests() + s.svc["payments"].TotalRequests(); n != 0 {
		t.Errorf("users and payments got %d requests, want none", n)
	}
}

func TestPartialFailureNullsOnlyTheFailedField(t *testing.T) {
	zero := 0
	tests := []struct {
		name     string
		failing  string
		field    string
		code     string
		total    time.Duration
		setup    func(s *demo.Service)
		config   func(c *upstreamsConfig)
		wantNull func(d dashboard) bool
	}{
		{
			name: "orders times out", failing: "orders", field: "recentOrders", code: "UPSTREAM_TIMEOUT",
			total: 300 * time.Millisecond,
			setup: func(s *demo.Service) { _ = s.Behavior.SetLatency(5 * time.Second) },
		},
		{
			name: "notifications has no healthy target", failing: "notifications", field: "unreadNotifications",
			code:   "UPSTREAM_UNAVAILABLE",
			config: func(c *upstreamsConfig) { c.Targets[0].Weight = &zero },
		},
		{
			name: "orders answers 500", failing: "orders", field: "recentOrders", code: "BAD_GATEWAY",
			setup: func(s *demo.Service) { _ = s.Behavior.SetErrorRate(1); _ = s.Behavior.SetErrorStatus(500) },
		},
		{
			name: "orders answers 503", failing: "orders", field: "recentOrders", code: "UPSTREAM_UNAVAILABLE",
			setup: func(s *demo.Service) { _ = s.Behavior.SetErrorRate(1) },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStack(t, stackOptions{total: tc.total, config: func(name string, c *upstreamsConfig) {
				if name == tc.failing && tc.config != nil {
					tc.config(c)
				}
			}})
			if tc.setup != nil {
				tc.setup(s.svc[tc.failing])
			}
			var got dashboard
			raw, errs := s.query(t, dashboardQuery, &got)

			if len(errs) != 1 {
				t.Fatalf("errors = %+v, want exactly one", errs)
			}
			e := errs[0]
			if p := e.pathString(); p != "dashboard."+tc.field {
				t.Errorf("error path = %s, want dashboard.%s", p, tc.field)
			}
			if e.Extensions["code"] != tc.code || e.Extensions["service"] != tc.failing {
				t.Errorf("extensions = %v, want code %s, service %s", e.Extensions, tc.code, tc.failing)
			}
			if _, required := e.Extensions["required"]; required {
				t.Errorf("a non-required field's error says required: %v", e.Extensions)
			}
			for _, leak := range []string{"127.0.0.1", "http://", s.url[tc.failing]} {
				if strings.Contains(e.Message, leak) {
					t.Errorf("message %q leaks %q", e.Message, leak)
				}
			}
			d := got.Dashboard
			if d.Me == nil || d.Me.ID != "u1" {
				t.Errorf("me = %+v, want u1 despite %s failing (data %s)", d.Me, tc.failing, raw)
			}
			switch tc.field {
			case "recentOrders":
				if d.RecentOrders != nil || d.UnreadNotifications == nil {
					t.Errorf("data = %s, want only recentOrders null", raw)
				}
			case "unreadNotifications":
				if d.UnreadNotifications != nil || len(d.RecentOrders) != 5 {
					t.Errorf("data = %s, want only unreadNotifications null", raw)
				}
			}
		})
	}
}

// upstreamsConfig shortens the config type in tables.
type upstreamsConfig = upstreams.Config

func TestRequiredFieldFailureFailsTheOperation(t *testing.T) {
	for _, lenient := range []bool{false, true} {
		t.Run(fmt.Sprintf("FailOnRequired=%v", !lenient), func(t *testing.T) {
			s := newStack(t, stackOptions{total: 300 * time.Millisecond, lenient: lenient})
			_ = s.svc["users"].Behavior.SetLatency(5 * time.Second)

			resp, err := s.gql.RawPost(dashboardQuery)
			if err != nil {
				t.Fatal(err)
			}
			var errs gqlerror.List
			if err := json.Unmarshal(resp.Errors, &errs); err != nil {
				t.Fatalf("decoding errors %s: %v", resp.Errors, err)
			}
			if len(errs) != 1 || errs[0].Extensions["code"] != "UPSTREAM_TIMEOUT" || errs[0].Extensions["required"] != true {
				t.Fatalf("errors = %s, want one required UPSTREAM_TIMEOUT", resp.Errors)
			}
			if p := errs[0].Path.String(); p != "dashboard.me" {
				t.Errorf("path = %s, want dashboard.me", p)
			}
			// The presented error, decoded from JSON without its Go cause, still tells the BFF.
			if status, ok := resolvers.RequiredStatus(errs); !ok || status != http.StatusGatewayTimeout {
				t.Errorf("RequiredStatus = %d, %v; want 504, true", status, ok)
			}
			if lenient {
				// Without the extension the executor alone returns the other fields.
				var d dashboard
				b, _ := json.Marshal(resp.Data)
				_ = json.Unmarshal(b, &d)
				if d.Dashboard.Me != nil || d.Dashboard.UnreadNotifications == nil {
					t.Errorf("data = %s, want me null and the rest present", b)
				}
				return
			}
			if resp.Data != nil {
				t.Errorf("data = %v, want null: a required field failed", resp.Data)
			}
		})
	}
}

func TestRequiredFieldSuccessChangesNothing(t *testing.T) {
	s := newStack(t, stackOptions{total: 300 * time.Millisecond})
	_ = s.svc["notifications"].Behavior.SetLatency(5 * time.Second)
	var got dashboard
	_, errs := s.query(t, dashboardQuery, &got)
	if len(errs) != 1 || errs[0].Extensions["code"] != "UPSTREAM_TIMEOUT" {
		t.Fatalf("errors = %+v, want one UPSTREAM_TIMEOUT", errs)
	}
	if got.Dashboard.Me == nil || got.Dashboard.RecentOrders == nil {
		t.Errorf("dashboard = %+v: a non-required failure must not null the operation", got.Dashboard)
	}
}

func TestCursorPaginationWalksEveryOrderOnce(t *testing.T) {
	s := newStack(t, stackOptions{})
	var all struct {
		Orders []struct {
			ID string `json:"id"`
		} `json:"orders"`
	}
	s.backendJSON(t, "orders", "/orders?user_id=u1&limit=100", &all)
	var want []string
	for _, o := range all.Orders {
		want = append(want, o.ID)
	}
	if len(want) < 30 {
		t.Fatalf("demo user u1 has %d orders; the walk needs more than a few pages", len(want))
	}

	q := `query($after: String) { user(id: "u1") { orders(first: 7, after: $after) {
		edges { cursor node { id } } pageInfo { hasNextPage endCursor } } } }`
	var got []string
	var after any
	cursors := map[string]string{}
	for page := 0; ; page++ {
		if page > len(want) {
			t.Fatal("pagination does not end")
		}
		var resp struct {
			User struct {
				Orders connection `json:"orders"`
			} `json:"user"`
		}
		s.mustQuery(t, q, &resp, client.Var("after", after))
		c := resp.User.Orders
		for _, e := range c.Edges {
			got = append(got, e.Node.ID)
			cursors[e.Node.ID] = e.Cursor
		}
		if len(c.Edges) > 0 && (c.PageInfo.EndCursor == nil || *c.PageInfo.EndCursor != c.Edges[len(c.Edges)-1].Cursor) {
			t.Fatalf("page %d: endCursor %v is not the last edge's cursor", page, c.PageInfo.EndCursor)
		}
		if !c.PageInfo.HasNextPage {
			break
		}
		if len(c.Edges) != 7 {
			t.Fatalf("page %d has %d edges and a next page, want 7", page, len(c.Edges))
		}
		after = *c.PageInfo.EndCursor
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("walk = %v\nwant  %v", got, want)
	}

	t.Run("continues after any edge", func(t *testing.T) {
		for _, i := range []int{0, 3, 6, 9, 20} {
			var resp struct {
				Orders connection `json:"orders"`
			}
			s.mustQuery(t, `query($after: String) { orders(first: 4, after: $after) { edges { node { id } } } }`,
				&resp, client.Var("after", cursors[want[i]]))
			var ids []string
			for _, e := range resp.Orders.Edges {
				ids = append(ids, e.Node.ID)
			}
			if w := want[i+1 : i+5]; strings.Join(ids, ",") != strings.Join(w, ",") {
				t.Errorf("after edge %d (%s): %v, want %v", i, want[i], ids, w)
			}
		}
	})
}

func TestBadArgumentsAreRejectedWithoutBackendCalls(t *testing.T) {
	tests := []struct {
		name  string
		query string
	}{
		{"first zero", `{ orders(first: 0) { edges { cursor } } }`},
		{"first too large", `{ orders(first: 101) { edges { cursor } } }`},
		{"forged cursor", `{ orders(after: "bm90LWEtY3Vyc29y") { edges { cursor } } }`},
		{"cursor not base64", `{ orders(after: "%%%") { edges { cursor } } }`},
		{"recent orders first too large", `{ dashboard { recentOrders(first: 1000) { id } } }`},
		{"order without items", `mutation { placeOrder(input: {items: []}) { id } }`},
		{"order with zero quantity", `mutation { placeOrder(input: {items: [{sku: "A", quantity: 0, unitPriceCents: 1}]}) { id } }`},
		{"order with negative price", `mutation { placeOrder(input: {items: [{sku: "A", quantity: 1, unitPriceCents: -1}]}) { id } }`},
		{"order with empty sku", `mutation { placeOrder(input: {items: [{sku: "", quantity: 1, unitPriceCents: 1}]}) { id } }`},
	}
	s := newStack(t, stackOptions{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.resetCounts()
			_, errs := s.query(t, tc.query, nil)
			if len(errs) != 1 || errs[0].Extensions["code"] != "BAD_USER_INPUT" {
				t.Fatalf("errors = %+v, want one BAD_USER_INPUT", errs)
			}
			if n := s.svc["orders"].TotalRequests(); n != 0 {
				t.Errorf("orders service got %d requests for rejected input", n)
			}
		})
	}
}

// A well-formed cursor whose service part the orders service never issued is the client's bad
// input, as a malformed one is, not the orders service rejecting Portico.
func TestCursorTheServiceDoesNotKnowIsBadInput(t *testing.T) {
	s := newStack(t, stackOptions{})
	forged := base64.RawURLEncoding.EncodeToString([]byte("0:made-up"))
	_, errs := s.query(t, `{ orders(first: 3, after: "`+forged+`") { edges { cursor } } }`, nil)
	if len(errs) != 1 || errs[0].Extensions["code"] != "BAD_USER_INPUT" || errs[0].Message != "after is not a cursor from this API" {
		t.Errorf("errors = %+v, want one BAD_USER_INPUT naming the cursor", errs)
	}
}

func TestPlaceOrderCreatesAnOrderForTheViewer(t *testing.T) {
	s := newStack(t, stackOptions{})
	var placed struct {
		PlaceOrder order `json:"placeOrder"`
	}
	s.mustQuery(t, `mutation { placeOrder(input: {items: [
		{sku: "SKU-1", quantity: 2, unitPriceCents: 150}, {sku: "SKU-2", quantity: 1, unitPriceCents: 99}]})
		{ id status totalCents user { id } payment { id } } }`, &placed, client.AddHeader(headerSubject, "u7"))
	o := placed.PlaceOrder
	if o.ID == "" || o.TotalCents != 399 || o.User == nil || o.User.ID != "u7" || o.Payment != nil {
		t.Fatalf("placed = %+v, want an unpaid order of u7 totalling 399", o)
	}
	if n := s.svc["orders"].Requests(demo.RouteCreateOrder); n != 1 {
		t.Errorf("POST /orders: %d requests, want 1", n)
	}

	var fetched struct {
		Order *order `json:"order"`
	}
	s.mustQuery(t, `query($id: ID!) { order(id: $id) { id totalCents } }`, &fetched, client.Var("id", o.ID))
	if fetched.Order == nil || fetched.Order.TotalCents != 399 {
		t.Errorf("order(%s) = %+v after placing it", o.ID, fetched.Order)
	}
}

func TestPlaceOrderRejectedByTheServiceFailsTheMutation(t *testing.T) {
	s := newStack(t, stackOptions{})
	data, errs := s.query(t, `mutation { placeOrder(input: {items: [{sku: "A", quantity: 5000, unitPriceCents: 1}]}) { id } }`,
		nil)
	if string(data) != "null" {
		t.Errorf("data = %s, want null", data)
	}
	if len(errs) != 1 || errs[0].Extensions["code"] != "BAD_REQUEST" || errs[0].pathString() != "placeOrder" {
		t.Fatalf("errors = %+v, want one BAD_REQUEST at placeOrder", errs)
	}
	if strings.Contains(errs[0].Message, "quantity") {
		t.Errorf("message %q passes the backend's text through", errs[0].Message)
	}
}

func TestMarkNotificationsRead(t *testing.T) {
	s := newStack(t, stackOptions{})
	var list struct {
		Notifications []struct {
			ID   string `json:"id"`
			Read bool   `json:"read"`
		} `json:"notifications"`
		Dashboard struct {
			UnreadNotifications int `json:"unreadNotifications"`
		} `json:"dashboard"`
	}
	const listQuery = `{ notifications(first: 100) { id read } dashboard { unreadNotifications } }`
	s.mustQuery(t, listQuery, &list)
	unread := list.Dashboard.UnreadNotifications
	var first string
	for _, n := range list.Notifications {
		if !n.Read {
			first = n.ID
			break
		}
	}
	if unread < 2 || first == "" {
		t.Fatalf("demo user u1 has %d unread notifications; the test needs two", unread)
	}

	var marked struct {
		MarkNotificationsRead int `json:"markNotificationsRead"`
	}
	s.mustQuery(t, `mutation($ids: [ID!]) { markNotificationsRead(ids: $ids) }`, &marked,
		client.Var("ids", []string{first}))
	if marked.MarkNotificationsRead != 1 {
		t.Errorf("marking %s: marked %d, want 1", first, marked.MarkNotificationsRead)
	}
	s.mustQuery(t, `mutation { markNotificationsRead(ids: []) }`, &marked)
	if marked.MarkNotificationsRead != 0 {
		t.Errorf("an empty list marked %d, want 0", marked.MarkNotificationsRead)
	}
	s.mustQuery(t, `mutation { markNotificationsRead }`, &marked)
	if marked.MarkNotificationsRead != unread-1 {
		t.Errorf("marking all: marked %d, want %d", marked.MarkNotificationsRead, unread-1)
	}
	s.mustQuery(t, listQuery, &list)
	if list.Dashboard.UnreadNotifications != 0 {
		t.Errorf("unread after marking all = %d, want 0", list.Dashboard.UnreadNotifications)
	}
}

func TestLookupsOfUnknownObjectsAreNull(t *testing.T) {
	s := newStack(t, stackOptions{})
	tests := []struct {
		name    string
		query   string
		subject string
	}{
		{"user", `{ result: user(id: "u999999") { id } }`, ""},
		{"order", `{ result: order(id: "o999999") { id } }`, ""},
		{"me for an unknown subject", `{ result: me { id } }`, "nobody"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var opts []client.Option
			if tc.subject != "" {
				opts = append(opts, client.AddHeader(headerSubject, tc.subject))
			}
			data, errs := s.query(t, tc.query, nil, opts...)
			if len(errs) != 0 {
				t.Fatalf("errors = %+v, want none for a missing object", errs)
			}
			if string(data) != `{"result":null}` {
				t.Errorf("data = %s, want result null", data)
			}
		})
	}
}

func TestMeFollowsTheAuthenticatedSubject(t *testing.T) {
	s := newStack(t, stackOptions{})
	var got struct {
		Me   user `json:"me"`
		Dash struct {
			Me           user    `json:"me"`
			RecentOrders []order `json:"recentOrders"`
		} `json:"dashboard"`
	}
	s.mustQuery(t, `{ me { id } dashboard { me { id } recentOrders { id user { id } } } }`, &got,
		client.AddHeader(headerSubject, "u7"))
	if got.Me.ID != "u7" || got.Dash.Me.ID != "u7" {
		t.Errorf("me = %s, dashboard.me = %s, want u7", got.Me.ID, got.Dash.Me.ID)
	}
	for _, o := range got.Dash.RecentOrders {
		if o.User == nil || o.User.ID != "u7" {
			t.Errorf("recent order %s belongs to %+v, want u7", o.ID, o.User)
		}
	}
	if n := s.svc["users"].Requests(demo.RouteCurrentUser); n != 0 {
		t.Errorf("with a subject, /users/current got %d requests", n)
	}
	if h := s.svc["users"].LastHeadersFor(demo.RouteUser); h.Get("X-Authenticated-Subject") != "u7" {
		t.Errorf("users service saw subject %q, want u7", h.Get("X-Authenticated-Subject"))
	}
}

func TestBatchLookupKeepsKeyOrderAndNullsUnknownKeys(t *testing.T) {
	s := newStack(t, stackOptions{})
	var got map[string]*user
	s.mustQuery(t, `{ a: user(id: "u3") { id } b: user(id: "zz") { id } c: user(id: "u1") { id } d: user(id: "u3") { id } }`, &got)
	for alias, want := range map[string]string{"a": "u3", "b": "", "c": "u1", "d": "u3"} {
		switch u := got[alias]; {
		case want == "" && u != nil:
			t.Errorf("%s = %+v, want null", alias, u)
		case want != "" && (u == nil || u.ID != want):
			t.Errorf("%s = %+v, want %s", alias, u, want)
		}
	}
}

func TestClientCancellationStopsBackendCalls(t *testing.T) {
	arrived := make(chan struct{}, 1)
	gone := make(chan struct{}, 1)
	s := newStack(t, stackOptions{wrap: map[string]func(http.Handler) http.Handler{
		"orders": func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				arrived <- struct{}{}
				select {
				case <-r.Context().Done():
					gone <- struct{}{}
				case <-time.After(10 * time.Second):
				}
			})
		},
	}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	body := strings.NewReader(`{"query":"{ dashboard { recentOrders { id } } }"}`)
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/", body)
	req.Header.Set("Content-Type", "application/json")
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		s.handler.ServeHTTP(httptest.NewRecorder(), req)
	}()
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("the orders call never arrived")
	}
	cancel()
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the backend call was not cancelled when the client went away")
	}
	select {
	case <-finished:
	case <-time.After(5 * time.Second):
		t.Fatal("the operation did not end after the client went away")
	}
}

func TestUnknownUpstreamIsAnErrorNotAPanic(t *testing.T) {
	// A registry without the payments upstream: a wiring mistake must surface as a field error.
	s := newStack(t, stackOptions{})
	reg, err := upstreams.NewRegistry(map[string]upstreams.Config{
		"orders": {Targets: []upstreams.TargetConfig{{URL: s.url["orders"]}}},
	}, upstreams.Options{Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	srv := newHandler(resolvers.NewResolver(upstreams.NewClient(reg), resolvers.Options{}), false)
	resp, err := client.New(srv).RawPost(`{ order(id: "o1") { id payment { id } } }`)
	if err != nil {
		t.Fatal(err)
	}
	var errs gqlerror.List
	_ = json.Unmarshal(resp.Errors, &errs)
	if len(errs) != 1 || errs[0].Path.String() != "order.payment" || errs[0].Extensions["code"] != "BAD_GATEWAY" {
		t.Fatalf("errors = %s, want one BAD_GATEWAY at order.payment", resp.Errors)
	}
	b, _ := json.Marshal(resp.Data)
	if !strings.Contains(string(b), `"id":"o1"`) {
		t.Errorf("data = %s, want order o1 with a null payment", b)
	}
}

func TestManyOrdersSplitIntoBatchesOfAtMostOneHundred(t *testing.T) {
	orders := spy.NewBatches("/orders")
	// A wide window, so that all 150 root fields join batches even when the race detector and
	// a loaded machine slow their start: the split, not the timing, is under test.
	s := newStack(t, stackOptions{batchWait: 50 * time.Millisecond, wrap: map[string]func(http.Handler) http.Handler{"orders": orders.Wrap}})
	var b strings.Builder
	b.WriteString("{")
	for i := 1; i <= 150; i++ {
		fmt.Fprintf(&b, " o%d: order(id: \"o%d\") { id }", i, i)
	}
	b.WriteString(" }")
	var got map[string]*order
	s.mustQuery(t, b.String(), &got)
	for i := 1; i <= 150; i++ {
		if o := got["o"+strconv.Itoa(i)]; o == nil || o.ID != "o"+strconv.Itoa(i) {
			t.Fatalf("o%d = %+v", i, o)
		}
	}
	sum := orders.Summary()
	if sum.Largest > 100 {
		t.Errorf("one batched call asked for %d ids, want at most 100", sum.Largest)
	}
	if sum.Calls < 2 || sum.Largest < 2 {
		t.Errorf("150 lookups made %d batched calls, the largest of %d ids; want several calls of several ids", sum.Calls, sum.Largest)
	}
	if len(sum.Asked) != 150 || len(sum.Repeated()) > 0 {
		t.Errorf("batched calls asked for %d distinct ids, again for %v; want 150, once each", len(sum.Asked), sum.Repeated())
	}
}
