package model

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// A backend's object without a field the schema declares non-null, or with null or "" there,
// is a bad answer: encoding/json made it "", and it was served as success. Free text may be
// empty and numbers and booleans zero.
func TestCheckRefusesMissingFields(t *testing.T) {
	const (
		user  = `{"id":"u1","name":"","email":"ada@example.com","tier":"gold","created_at":"2026-01-01T00:00:00Z"}`
		order = `{"id":"o1","user_id":"u1","status":"paid","items":[{"sku":"A","quantity":0,"unit_price_cents":0}],"total_cents":0,"currency":"EUR","created_at":"2026-01-01T00:00:00Z"}`
		pay   = `{"id":"p1","status":"captured","amount_cents":0,"currency":"EUR","method":"card"}`
		note  = `{"id":"n1","title":"","read":false,"created_at":"2026-01-01T00:00:00Z"}`
	)
	set := func(obj, key string, v any, drop bool) string {
		var m map[string]any
		if err := json.Unmarshal([]byte(obj), &m); err != nil {
			t.Fatal(err)
		}
		if drop {
			delete(m, key)
		} else {
			m[key] = v
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	checkers := map[string]func(string) error{
		"user":         func(s string) error { var v User; _ = json.Unmarshal([]byte(s), &v); return v.Check() },
		"order":        func(s string) error { var v Order; _ = json.Unmarshal([]byte(s), &v); return v.Check() },
		"payment":      func(s string) error { var v Payment; _ = json.Unmarshal([]byte(s), &v); return v.Check() },
		"notification": func(s string) error { var v Notification; _ = json.Unmarshal([]byte(s), &v); return v.Check() },
	}
	tests := []struct {
		kind, full string
		required   []string
	}{
		{"user", user, []string{"id", "email", "tier", "created_at"}},
		{"order", order, []string{"id", "status", "items", "currency", "created_at"}},
		{"payment", pay, []string{"id", "status", "currency", "method"}},
		{"notification", note, []string{"id", "created_at"}},
	}
	for _, tt := range tests {
		check := checkers[tt.kind]
		if err := check(tt.full); err != nil {
			t.Errorf("a whole %s (empty text, zeros and false included) was refused: %v", tt.kind, err)
		}
		if err := check(`{}`); err == nil {
			t.Errorf("an empty %s was accepted", tt.kind)
		}
		for _, key := range tt.required {
			forms := map[string]string{"absent": set(tt.full, key, nil, true), "null": set(tt.full, key, nil, false)}
			if key != "items" && key != "created_at" {
				forms["empty"] = set(tt.full, key, "", false)
			}
			for form, obj := range forms {
				err := check(obj)
				var mf *MissingFieldsError
				if !errors.As(err, &mf) || len(mf.Fields) != 1 || mf.Fields[0] != key {
					t.Errorf("%s with %s %s: err = %v, want it named", tt.kind, key, form, err)
				}
			}
		}
	}
	var o Order
	if err := json.Unmarshal([]byte(order), &o); err != nil || o.Check() != nil || o.PaymentID != "" {
		t.Errorf("an order without payment_id: %+v, %v", o, err)
	}
	for _, bad := range []string{
		strings.Replace(order, `{"sku":"A","quantity":0,"unit_price_cents":0}`, `null`, 1),
		strings.Replace(order, `"sku":"A",`, ``, 1),
	} {
		var o Order
		_ = json.Unmarshal([]byte(bad), &o)
		if o.Check() == nil {
			t.Errorf("order %s was accepted", bad)
		}
	}
}
