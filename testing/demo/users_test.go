package demo

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestUsersEndpoints(t *testing.T) {
	svc := NewUsers()
	tests := []struct {
		name    string
		target  string
		headers []string
		status  int
		wantID  string
	}{
		{name: "by id", target: "/users/u42", status: 200, wantID: "u42"},
		{name: "first", target: "/users/u1", status: 200, wantID: "u1"},
		{name: "last", target: "/users/u100", status: 200, wantID: "u100"},
		{name: "current defaults to u1", target: "/users/current", status: 200, wantID: "u1"},
		{name: "current from X-User-ID", target: "/users/current", headers: []string{"X-User-ID", "u7"}, status: 200, wantID: "u7"},
		{name: "current from the authenticated subject", target: "/users/current", headers: []string{"X-User-ID", "u7", "X-Authenticated-Subject", "u8"}, status: 200, wantID: "u8"},
		{name: "unknown id", target: "/users/u101", status: 404},
		{name: "non-canonical id", target: "/users/u01", status: 404},
		{name: "zero id", target: "/users/u0", status: 404},
		{name: "not an id", target: "/users/bob", status: 404},
		{name: "current unknown", target: "/users/current", headers: []string{"X-User-ID", "u999"}, status: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := call(t, svc, "GET", tt.target, "", tt.headers...)
			if tt.status != 200 {
				wantError(t, rec, tt.status, "NOT_FOUND", "user")
				return
			}
			u := decode[User](t, rec, 200)
			if u.ID != tt.wantID {
				t.Fatalf("id = %q, want %q", u.ID, tt.wantID)
			}
			if u.Name == "" || !strings.HasSuffix(u.Email, "@example.com") || (u.Tier != "free" && u.Tier != "pro") || u.CreatedAt.IsZero() {
				t.Errorf("incomplete user %+v", u)
			}
			if !strings.Contains(rec.Body.String(), `"created_at":"`+u.CreatedAt.Format(time.RFC3339)+`"`) {
				t.Errorf("created_at not RFC 3339 in %s", rec.Body)
			}
		})
	}
}

func TestUsersBatch(t *testing.T) {
	svc := NewUsers()
	tests := []struct {
		name   string
		target string
		want   []string
	}{
		{name: "order asked, unknown left out", target: "/users?ids=u3,u1,u999,u2", want: []string{"u3", "u1", "u2"}},
		{name: "spaces and empty entries", target: "/users?ids=u5,%20u6,,", want: []string{"u5", "u6"}},
		{name: "repeated parameter", target: "/users?ids=u9&ids=u8", want: []string{"u9", "u8"}},
		{name: "empty asks for nothing", target: "/users?ids=", want: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := decode[usersBody](t, call(t, svc, "GET", tt.target, ""), 200)
			if got := ids(body.Users, userID); !slices.Equal(got, tt.want) {
				t.Fatalf("ids = %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("without ids lists all", func(t *testing.T) {
		body := decode[usersBody](t, call(t, svc, "GET", "/users", ""), 200)
		if len(body.Users) != NumUsers || body.Users[0].ID != "u1" || body.Users[NumUsers-1].ID != "u100" {
			t.Fatalf("got %d users", len(body.Users))
		}
	})
	t.Run("too many ids", func(t *testing.T) {
		many := strings.Repeat("u1,", maxBatchIDs+1)
		wantError(t, call(t, svc, "GET", "/users?ids="+many, ""), 400, "BAD_REQUEST", "ids")
	})
}

func TestSeedDataIsDeterministicAndConsistent(t *testing.T) {
	a, b := call(t, NewUsers(), "GET", "/users", ""), call(t, NewUsers(), "GET", "/users", "")
	if a.Body.String() != b.Body.String() {
		t.Fatal("two users services answer different data")
	}
	users := SeedUsers()
	emails := map[string]bool{}
	tiers := map[string]int{}
	for _, u := range users {
		if emails[u.Email] {
			t.Errorf("duplicate email %s", u.Email)
		}
		emails[u.Email] = true
		tiers[u.Tier]++
	}
	if tiers["free"] == 0 || tiers["pro"] == 0 {
		t.Errorf("tiers = %v, want both free and pro users", tiers)
	}

	orders, payments := SeedOrders(), SeedPayments()
	if len(orders) != NumOrders || len(payments) != NumOrders {
		t.Fatalf("%d orders, %d payments", len(orders), len(payments))
	}
	perUser := map[string]int{}
	statuses := map[string]int{}
	for i, o := range orders {
		perUser[o.UserID]++
		statuses[o.Status]++
		var total int64
		for _, it := range o.Items {
			total += int64(it.Quantity) * it.UnitPriceCents
		}
		p := payments[i]
		if o.TotalCents != total || p.ID != o.PaymentID || p.OrderID != o.ID || p.AmountCents != total || o.Currency != "EUR" {
			t.Errorf("order %+v and payment %+v disagree", o, p)
		}
		if i > 0 && !o.CreatedAt.After(orders[i-1].CreatedAt) {
			t.Errorf("order %s not newer than %s", o.ID, orders[i-1].ID)
		}
	}
	if perUser["u1"] < 60 {
		t.Errorf("u1 has %d orders, want at least 60", perUser["u1"])
	}
	if len(statuses) != 3 {
		t.Errorf("order statuses = %v, want pending, paid and shipped", statuses)
	}

	// Callers get copies: mutating one cannot change what services answer.
	orders[0].Items[0].Quantity = 999
	if SeedOrders()[0].Items[0].Quantity == 999 {
		t.Error("SeedOrders shares item slices with the service data")
	}
}
