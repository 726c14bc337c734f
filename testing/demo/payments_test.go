package demo

import (
	"slices"
	"testing"
)

func TestPayments(t *testing.T) {
	svc := NewPayments()
	o := SeedOrders()[41]
	p := decode[Payment](t, call(t, svc, "GET", "/payments/"+o.PaymentID, ""), 200)
	if p.OrderID != o.ID || p.AmountCents != o.TotalCents || p.Currency != "EUR" || (p.Method != "card" && p.Method != "paypal") {
		t.Fatalf("payment %+v for order %+v", p, o)
	}
	statuses := map[string]bool{}
	for _, p := range SeedPayments() {
		statuses[p.Status] = true
	}
	if !statuses["authorized"] || !statuses["captured"] || !statuses["refunded"] {
		t.Errorf("payment statuses = %v, want authorized, captured and refunded", statuses)
	}

	for _, id := range []string{"p0", "p501", "o1"} {
		t.Run("unknown "+id, func(t *testing.T) {
			wantError(t, call(t, svc, "GET", "/payments/"+id, ""), 404, "NOT_FOUND", id)
		})
	}

	tests := []struct {
		name, target string
		want         []string
	}{
		{"order asked", "/payments?ids=p3,p1,p2", []string{"p3", "p1", "p2"}},
		{"unknown left out", "/payments?ids=p0,p500,p9999", []string{"p500"}},
		{"empty", "/payments?ids=", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := decode[paymentsBody](t, call(t, svc, "GET", tt.target, ""), 200)
			if got := ids(body.Payments, paymentID); !slices.Equal(got, tt.want) {
				t.Fatalf("ids = %v, want %v", got, tt.want)
			}
		})
	}
	if all := decode[paymentsBody](t, call(t, svc, "GET", "/payments", ""), 200); len(all.Payments) != NumOrders {
		t.Errorf("GET /payments listed %d", len(all.Payments))
	}
}
