// Package model holds the Go types behind the GraphQL schema. The types in this file are written
// by hand because they double as the backends' JSON shapes (snake_case tags) and carry foreign keys
// (UserID, PaymentID) that the schema does not expose but resolvers follow; gqlgen binds them by
// autobind and generates the rest into models_gen.go.
package model

import "time"

// User is a customer as the users service returns it.
type User struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Tier      string    `json:"tier"`
	CreatedAt time.Time `json:"created_at"`
}

// Order is an order as the orders service returns it. User and Payment are resolved from UserID
// and PaymentID through per-request dataloaders.
type Order struct {
	ID         string       `json:"id"`
	UserID     string       `json:"user_id"`
	Status     string       `json:"status"`
	Items      []*OrderItem `json:"items"`
	TotalCents int          `json:"total_cents"`
	Currency   string       `json:"currency"`
	PaymentID  string       `json:"payment_id"`
	CreatedAt  time.Time    `json:"created_at"`
}

// OrderItem is one line of an order; the same shape is sent when placing an order.
type OrderItem struct {
	Sku            string `json:"sku"`
	Quantity       int    `json:"quantity"`
	UnitPriceCents int    `json:"unit_price_cents"`
}

// Payment is a payment as the payments service returns it.
type Payment struct {
	ID          string `json:"id"`
	OrderID     string `json:"order_id"`
	Status      string `json:"status"`
	AmountCents int    `json:"amount_cents"`
	Currency    string `json:"currency"`
	Method      string `json:"method"`
}

// Notification is a message as the notifications service returns it.
type Notification struct {
	ID        string    `json:"id"`
	Title     string    `json:"title"`
	Read      bool      `json:"read"`
	CreatedAt time.Time `json:"created_at"`
}

// Dashboard is the home screen. It holds only the viewer it was built for, so that its three
// fields, which resolve concurrently, all describe the same user.
type Dashboard struct {
	ViewerID string
}
