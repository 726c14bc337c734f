package model

import (
	"strings"
	"time"
)

// A backend's answer is decoded into these types with encoding/json, which leaves a field the
// answer lacks, or holds null, at its zero value: a users service answering {} came out as a user
// with an empty ID, name and email, served as success. Check refuses such objects (a
// MissingFieldsError; resolvers report it as the backend's bad answer, 502) by the zero values no
// backend sends for a field the schema declares non-null: an empty identifier, status, currency
// or other code, a zero time, an absent or null list, a null list element. Free text (a name, a
// title) may be empty, and numbers and booleans may be zero: for those absence cannot be told from
// a real zero without decoding twice, which doubled the cost of decoding the dashboard's answers.
type MissingFieldsError struct {
	Object string
	Fields []string
}

func (e *MissingFieldsError) Error() string {
	return "the " + e.Object + " in the answer lacks " + strings.Join(e.Fields, ", ") + " (absent, null or empty)"
}

// missing collects the fields found at their zero value.
type missing []string

func (m *missing) str(name, v string) {
	if v == "" {
		*m = append(*m, name)
	}
}

func (m *missing) time(name string, v time.Time) {
	if v.IsZero() {
		*m = append(*m, name)
	}
}

func (m missing) err(object string) error {
	if len(m) == 0 {
		return nil
	}
	return &MissingFieldsError{Object: object, Fields: m}
}

// Check refuses a user without id, email, tier or created_at.
func (u *User) Check() error {
	var m missing
	m.str("id", u.ID)
	m.str("email", u.Email)
	m.str("tier", u.Tier)
	m.time("created_at", u.CreatedAt)
	return m.err("user")
}

// Check refuses an order without id, status, items (or with a null or incomplete item),
// currency or created_at. user_id and payment_id are optional: a guest order has no user and an
// order not yet paid no payment, and Order.user and Order.payment are null then.
func (o *Order) Check() error {
	var m missing
	m.str("id", o.ID)
	m.str("status", o.Status)
	if o.Items == nil {
		m = append(m, "items")
	}
	for _, it := range o.Items {
		if it == nil || it.Sku == "" {
			m = append(m, "items[].sku")
			break
		}
	}
	m.str("currency", o.Currency)
	m.time("created_at", o.CreatedAt)
	return m.err("order")
}

// Check refuses a payment without id, status, currency or method.
func (p *Payment) Check() error {
	var m missing
	m.str("id", p.ID)
	m.str("status", p.Status)
	m.str("currency", p.Currency)
	m.str("method", p.Method)
	return m.err("payment")
}

// Check refuses a notification without id or created_at.
func (n *Notification) Check() error {
	var m missing
	m.str("id", n.ID)
	m.time("created_at", n.CreatedAt)
	return m.err("notification")
}
