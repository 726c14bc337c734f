package demo

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sizes of the seed data set.
const (
	NumUsers  = 100 // u1 … u100
	NumOrders = 500 // o1 … o500, each paid by p1 … p500 of the same number
)

// Currency is the currency of every order and payment.
const Currency = "EUR"

// User is a user as the users service (and the monolith's legacy API) answers it.
type User struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Tier      string    `json:"tier"` // "free" or "pro"
	CreatedAt time.Time `json:"created_at"`
}

// OrderItem is one line of an order.
type OrderItem struct {
	SKU            string `json:"sku"`
	Quantity       int    `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
}

// Order is an order as the orders service (and the monolith's legacy API) answers it.
type Order struct {
	ID         string      `json:"id"`
	UserID     string      `json:"user_id"`
	Status     string      `json:"status"` // "pending", "paid" or "shipped"
	Items      []OrderItem `json:"items"`
	TotalCents int64       `json:"total_cents"`
	Currency   string      `json:"currency"`
	// PaymentID names the order's payment; empty for an order created through POST /orders,
	// which has not been paid yet.
	PaymentID string    `json:"payment_id"`
	CreatedAt time.Time `json:"created_at"`
}

// Payment is a payment as the payments service answers it.
type Payment struct {
	ID          string `json:"id"`
	OrderID     string `json:"order_id"`
	Status      string `json:"status"` // "authorized", "captured" or "refunded"
	AmountCents int64  `json:"amount_cents"`
	Currency    string `json:"currency"`
	Method      string `json:"method"` // "card" or "paypal"
}

// Notification is a user's notification as the notifications service answers it.
type Notification struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	Title     string    `json:"title"`
	Read      bool      `json:"read"`
	CreatedAt time.Time `json:"created_at"`
}

// dataSeed fixes the generated data set; changing it changes every answer of every service.
const dataSeed = 20250101

var (
	userEpoch         = time.Date(2024, 1, 1, 9, 0, 0, 0, time.UTC)
	orderEpoch        = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	notificationEpoch = time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)
)

// orderTime is when order number n was placed: one per hour, so that "newest first" and the
// order numbers agree, including for orders created at runtime.
func orderTime(n int) time.Time { return orderEpoch.Add(time.Duration(n) * time.Hour) }

type dataset struct {
	users         []User         // users[n-1] is "u<n>"
	orders        []Order        // orders[n-1] is "o<n>"
	payments      []Payment      // payments[n-1] is "p<n>"
	notifications []Notification // grouped by user, oldest first within a user
}

// seedData is generated once per process and never mutated: services that change state keep
// their changes beside it.
var seedData = sync.OnceValue(generate)

var (
	firstNames = []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Margaret", "Ken",
		"Frances", "Dennis", "Radia", "John", "Katherine", "Niklaus", "Hedy", "Tim", "Sophie", "Linus",
		"Annie", "Guido"}
	lastNames = []string{"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton",
		"Thompson", "Allen", "Ritchie", "Perlman", "McCarthy", "Johnson", "Wirth", "Lamarr",
		"Berners-Lee", "Wilson", "Torvalds", "Easley", "van Rossum"}
	notificationTitles = []string{"Your order has shipped", "Payment received", "New sign-in from a new device",
		"Your weekly summary is ready", "A price dropped on your wishlist", "Your invoice is available",
		"Delivery is scheduled for tomorrow"}
)

func generate() *dataset {
	rng := newRNG(dataSeed)
	d := &dataset{}

	for i := 1; i <= NumUsers; i++ {
		first := firstNames[rng.IntN(len(firstNames))]
		last := lastNames[rng.IntN(len(lastNames))]
		tier := "free"
		if rng.IntN(10) < 3 {
			tier = "pro"
		}
		d.users = append(d.users, User{
			ID:        "u" + strconv.Itoa(i),
			Name:      first + " " + last,
			Email:     fmt.Sprintf("%s.%s%d@example.com", strings.ToLower(first), strings.ToLower(strings.ReplaceAll(last, " ", "")), i),
			Tier:      tier,
			CreatedAt: userEpoch.Add(time.Duration(i-1) * 37 * time.Hour),
		})
	}

	for n := 1; n <= NumOrders; n++ {
		// Every eighth order belongs to u1 (63 in all), so pagination tests have several pages.
		user := 1
		if n%8 != 1 {
			user = 2 + rng.IntN(NumUsers-1)
		}
		items := make([]OrderItem, 1+rng.IntN(3))
		var total int64
		for j := range items {
			items[j] = OrderItem{
				SKU:            fmt.Sprintf("SKU-%04d", 1+rng.IntN(200)),
				Quantity:       1 + rng.IntN(3),
				UnitPriceCents: int64(rng.IntN(100)+1)*100 - 1,
			}
			total += int64(items[j].Quantity) * items[j].UnitPriceCents
		}
		status, payStatus := "shipped", "captured"
		switch r := rng.IntN(10); {
		case r < 2:
			status, payStatus = "pending", "authorized"
		case r < 5:
			status = "paid"
		case n%23 == 0:
			payStatus = "refunded"
		}
		method := "card"
		if rng.IntN(10) >= 7 {
			method = "paypal"
		}
		id, pid := "o"+strconv.Itoa(n), "p"+strconv.Itoa(n)
		d.orders = append(d.orders, Order{
			ID: id, UserID: "u" + strconv.Itoa(user), Status: status, Items: items,
			TotalCents: total, Currency: Currency, PaymentID: pid, CreatedAt: orderTime(n),
		})
		d.payments = append(d.payments, Payment{
			ID: pid, OrderID: id, Status: payStatus, AmountCents: total, Currency: Currency, Method: method,
		})
	}

	k := 0
	for i := 1; i <= NumUsers; i++ {
		count := 3 + i%5
		for j := range count {
			k++
			d.notifications = append(d.notifications, Notification{
				ID:     "n" + strconv.Itoa(k),
				UserID: "u" + strconv.Itoa(i),
				Title:  notificationTitles[rng.IntN(len(notificationTitles))],
				// Every user's newest notification is unread, so each has a non-zero count.
				Read:      j < count-1 && rng.IntN(2) == 0,
				CreatedAt: notificationEpoch.Add(time.Duration(k) * 90 * time.Minute),
			})
		}
	}
	return d
}

// parseID returns n for an id of the canonical form prefix+n (no sign, no leading zeros).
func parseID(prefix, id string) (int, bool) {
	rest, ok := strings.CutPrefix(id, prefix)
	if !ok || rest == "" || rest[0] < '1' || rest[0] > '9' || len(rest) > 9 {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil {
		return 0, false
	}
	return n, true
}

func (d *dataset) user(id string) (User, bool) {
	n, ok := parseID("u", id)
	if !ok || n > len(d.users) {
		return User{}, false
	}
	return d.users[n-1], true
}

func (d *dataset) payment(id string) (Payment, bool) {
	n, ok := parseID("p", id)
	if !ok || n > len(d.payments) {
		return Payment{}, false
	}
	return d.payments[n-1], true
}

// SeedUsers returns a copy of the users every users service starts with, in id order.
func SeedUsers() []User { return slices.Clone(seedData().users) }

// SeedOrders returns a copy of the orders every orders service starts with, in id order (oldest
// first).
func SeedOrders() []Order {
	orders := slices.Clone(seedData().orders)
	for i := range orders {
		orders[i].Items = slices.Clone(orders[i].Items)
	}
	return orders
}

// SeedPayments returns a copy of the payments every payments service holds, in id order.
func SeedPayments() []Payment { return slices.Clone(seedData().payments) }

// SeedNotifications returns a copy of the notifications every notifications service starts with,
// grouped by user and oldest first within a user.
func SeedNotifications() []Notification { return slices.Clone(seedData().notifications) }
