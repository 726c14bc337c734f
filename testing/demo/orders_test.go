package demo

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func seedOrdersOf(user string) []Order {
	var out []Order
	for _, o := range SeedOrders() {
		if user == "" || o.UserID == user {
			out = append(out, o)
		}
	}
	slices.Reverse(out) // newest first
	return out
}

func TestOrderByID(t *testing.T) {
	svc := NewOrders()
	o := decode[Order](t, call(t, svc, "GET", "/orders/o17", ""), 200)
	if want := SeedOrders()[16]; o.ID != "o17" || o.PaymentID != "p17" || o.TotalCents != want.TotalCents || len(o.Items) != len(want.Items) {
		t.Fatalf("o17 = %+v, want %+v", o, want)
	}
	for _, id := range []string{"o0", "o501", "o017", "p17", "x"} {
		t.Run(id, func(t *testing.T) {
			wantError(t, call(t, svc, "GET", "/orders/"+id, ""), 404, "NOT_FOUND", id)
		})
	}
}

func TestRecentOrders(t *testing.T) {
	svc := NewOrders()
	u1 := seedOrdersOf("u1")
	tests := []struct {
		name    string
		target  string
		headers []string
		want    []Order
	}{
		{name: "default limit 5", target: "/orders/recent?user_id=u1", want: u1[:5]},
		{name: "limit", target: "/orders/recent?user_id=u1&limit=2", want: u1[:2]},
		{name: "limit clamped to 100", target: "/orders/recent?user_id=u1&limit=1000", want: u1},
		{name: "user from X-User-ID", target: "/orders/recent?limit=3", headers: []string{"X-User-ID", "u1"}, want: u1[:3]},
		{name: "user defaults to u1", target: "/orders/recent", want: u1[:5]},
		{name: "unknown user has none", target: "/orders/recent?user_id=u999", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := decode[ordersBody](t, call(t, svc, "GET", tt.target, "", tt.headers...), 200)
			if got, want := ids(body.Orders, orderID), ids(tt.want, orderID); !slices.Equal(got, want) {
				t.Fatalf("ids = %v, want %v", got, want)
			}
			if body.Orders == nil {
				t.Fatal(`"orders" is null, want []`)
			}
		})
	}
	for _, limit := range []string{"0", "-1", "abc", "1.5"} {
		t.Run("bad limit "+limit, func(t *testing.T) {
			wantError(t, call(t, svc, "GET", "/orders/recent?limit="+limit, ""), 400, "BAD_REQUEST", "limit")
		})
	}
}

// walk follows next_cursor from the first page and returns every page.
func walk(t *testing.T, svc http.Handler, query string) [][]Order {
	t.Helper()
	var pages [][]Order
	after := ""
	for range 1000 {
		target := "/orders?" + query
		if after != "" {
			target += "&after=" + after
		}
		p := decode[orderPage](t, call(t, svc, "GET", target, ""), 200)
		pages = append(pages, p.Orders)
		if p.NextCursor == "" {
			return pages
		}
		after = p.NextCursor
	}
	t.Fatal("pagination does not end")
	return nil
}

func TestOrderPaginationWalksEveryOrderOnce(t *testing.T) {
	svc := NewOrders()
	tests := []struct {
		user  string
		limit int
	}{
		{"u1", 1}, {"u1", 7}, {"u1", 21}, {"u1", 63}, {"u1", 64}, {"u1", 100},
		{"", 20}, {"", 100}, {"", 500}, {"u2", 3}, {"u999", 5},
	}
	for _, tt := range tests {
		t.Run(tt.user+"/"+strconv.Itoa(tt.limit), func(t *testing.T) {
			q := "limit=" + strconv.Itoa(tt.limit)
			if tt.user != "" {
				q += "&user_id=" + tt.user
			}
			pages := walk(t, svc, q)
			var got []Order
			for i, p := range pages {
				if len(p) == 0 && len(pages) > 1 {
					t.Fatalf("page %d of %d is empty", i+1, len(pages))
				}
				if i < len(pages)-1 && len(p) != min(tt.limit, MaxPageLimit) {
					t.Fatalf("page %d has %d orders, want a full page of %d", i+1, len(p), tt.limit)
				}
				got = append(got, p...)
			}
			want := seedOrdersOf(tt.user)
			if !slices.Equal(ids(got, orderID), ids(want, orderID)) {
				t.Fatalf("walk gave %d orders %v…, want %d newest first", len(got), ids(got, orderID)[:min(5, len(got))], len(want))
			}
			if wantPages := max(1, (len(want)+min(tt.limit, 100)-1)/min(tt.limit, 100)); len(pages) != wantPages {
				t.Errorf("%d pages, want %d", len(pages), wantPages)
			}
		})
	}
}

func TestOrderCursorIsStableAcrossNewOrders(t *testing.T) {
	svc := NewOrders()
	first := decode[orderPage](t, call(t, svc, "GET", "/orders?user_id=u1&limit=10", ""), 200)
	call(t, svc, "POST", "/orders", `{"user_id":"u1","items":[{"sku":"A","quantity":1,"unit_price_cents":100}]}`)
	second := decode[orderPage](t, call(t, svc, "GET", "/orders?user_id=u1&limit=10&after="+first.NextCursor, ""), 200)
	if want := ids(seedOrdersOf("u1")[10:20], orderID); !slices.Equal(ids(second.Orders, orderID), want) {
		t.Fatalf("second page = %v, want %v", ids(second.Orders, orderID), want)
	}
}

func TestOrdersListErrors(t *testing.T) {
	svc := NewOrders()
	tests := []struct {
		name, target, fragment string
	}{
		{"garbage cursor", "/orders?after=nope", "after"},
		{"cursor of another shape", "/orders?after=" + encodeCursor(0), "after"},
		{"bad limit", "/orders?limit=0", "limit"},
		{"ids with user_id", "/orders?ids=o1&user_id=u1", "ids"},
		{"ids with after", "/orders?ids=o1&after=" + encodeCursor(5), "ids"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, call(t, svc, "GET", tt.target, ""), 400, "BAD_REQUEST", tt.fragment)
		})
	}
}

func TestOrdersBatch(t *testing.T) {
	svc := NewOrders()
	body := decode[ordersBody](t, call(t, svc, "GET", "/orders?ids=o9,o2,o999,o500,o2", ""), 200)
	if got, want := ids(body.Orders, orderID), []string{"o9", "o2", "o500", "o2"}; !slices.Equal(got, want) {
		t.Fatalf("ids = %v, want %v", got, want)
	}
}

func TestCreateOrder(t *testing.T) {
	svc := NewOrders()
	rec := call(t, svc, "POST", "/orders", `{"user_id":"u5","items":[{"sku":"SKU-1","quantity":2,"unit_price_cents":1250},{"sku":"SKU-2","quantity":1,"unit_price_cents":99}]}`)
	o := decode[Order](t, rec, http.StatusCreated)
	if o.ID != "o501" || o.UserID != "u5" || o.Status != "pending" || o.TotalCents != 2599 || o.Currency != "EUR" || o.PaymentID != "" || len(o.Items) != 2 {
		t.Fatalf("created %+v", o)
	}
	if loc := rec.Header().Get("Location"); loc != "/orders/o501" {
		t.Errorf("Location = %q", loc)
	}
	if got := decode[Order](t, call(t, svc, "GET", "/orders/o501", ""), 200); got.TotalCents != 2599 {
		t.Errorf("GET o501 = %+v", got)
	}
	recent := decode[ordersBody](t, call(t, svc, "GET", "/orders/recent?user_id=u5&limit=1", ""), 200)
	if len(recent.Orders) != 1 || recent.Orders[0].ID != "o501" {
		t.Errorf("recent orders of u5 = %v, want the new order first", ids(recent.Orders, orderID))
	}

	// The user may come from the gateway's identity header.
	o = decode[Order](t, call(t, svc, "POST", "/orders", `{"items":[{"sku":"X","quantity":1,"unit_price_cents":0}]}`, "X-User-ID", "u2"), 201)
	if o.ID != "o502" || o.UserID != "u2" {
		t.Errorf("created %+v", o)
	}

	svc.Reset()
	wantError(t, call(t, svc, "GET", "/orders/o501", ""), 404, "NOT_FOUND")
}

func TestCreateOrderValidation(t *testing.T) {
	svc := NewOrders()
	item := `{"sku":"A","quantity":1,"unit_price_cents":100}`
	tests := []struct {
		name, body, code string
		fragments        []string
	}{
		{"empty body", ``, "VALIDATION_FAILED", []string{"user_id: required", "items: at least one"}},
		{"no items", `{"user_id":"u1","items":[]}`, "VALIDATION_FAILED", []string{"items: at least one"}},
		{"unknown user", `{"user_id":"u999","items":[` + item + `]}`, "VALIDATION_FAILED", []string{`unknown user "u999"`}},
		{"every bad field at once", `{"user_id":"u1","items":[{"sku":" ","quantity":0,"unit_price_cents":-1}]}`, "VALIDATION_FAILED",
			[]string{"items[0].sku", "items[0].quantity", "items[0].unit_price_cents"}},
		{"quantity too large", `{"user_id":"u1","items":[{"sku":"A","quantity":1001,"unit_price_cents":1}]}`, "VALIDATION_FAILED", []string{"items[0].quantity"}},
		{"too many items", `{"user_id":"u1","items":[` + strings.TrimSuffix(strings.Repeat(item+",", MaxOrderItems+1), ",") + `]}`, "VALIDATION_FAILED", []string{"at most 100"}},
		{"malformed JSON", `{"user_id":`, "BAD_REQUEST", []string{"invalid JSON"}},
		{"unknown field", `{"user_id":"u1","itemz":[]}`, "BAD_REQUEST", []string{"itemz"}},
		{"wrong type", `{"user_id":"u1","items":[{"sku":"A","quantity":"two","unit_price_cents":1}]}`, "BAD_REQUEST", []string{"invalid JSON"}},
		{"trailing data", `{"user_id":"u1","items":[` + item + `]} {}`, "BAD_REQUEST", []string{"more than one"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, call(t, svc, "POST", "/orders", tt.body), 400, tt.code, tt.fragments...)
		})
	}
	if n := decode[orderPage](t, call(t, svc, "GET", "/orders?limit=1", ""), 200); n.Orders[0].ID != "o500" {
		t.Errorf("a rejected order was stored: newest is %s", n.Orders[0].ID)
	}
}
