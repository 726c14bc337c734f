package bff_test

import (
	"net/http"
	"testing"
)

// The benchmarks measure the whole stack over loopback HTTP with zero-latency backends, so the
// figure is Portico's cost per request (executor, extensions, three or four backend calls).

func BenchmarkGraphQLSmallQuery(b *testing.B) {
	e := newEnv(b, envOptions{})
	body := []byte(`{"query":"{ me { id name } }"}`)
	for b.Loop() {
		if a := e.do(b, http.MethodPost, "/web/graphql", body); a.status != 200 {
			b.Fatal(a.status)
		}
	}
}

// BenchmarkGraphQLDashboard is the bench scenario's dashboard query (users, orders and
// notifications called concurrently) over POST /graphql.
func BenchmarkGraphQLDashboard(b *testing.B) {
	e := newEnv(b, envOptions{})
	body := []byte(`{"query":"{ dashboard { me { id name email tier } recentOrders(first: 5) { id status totalCents currency createdAt } unreadNotifications } }"}`)
	for b.Loop() {
		if a := e.do(b, http.MethodPost, "/web/graphql", body); a.status != 200 {
			b.Fatal(a.status)
		}
	}
}

func BenchmarkDashboardREST(b *testing.B) {
	e := newEnv(b, envOptions{})
	for b.Loop() {
		if a := e.do(b, http.MethodGet, "/web/dashboard", nil); a.status != 200 {
			b.Fatal(a.status)
		}
	}
}
