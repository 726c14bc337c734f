package resolvers_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkDashboard measures one dashboard operation through the resolvers, the upstream client
// and three demo services without added latency: the fan-out's own cost per request.
func BenchmarkDashboard(b *testing.B) {
	benchQuery(b, dashboardQuery)
}

// BenchmarkOrdersPageWithRelations measures a page of 50 orders with their users and payments
// (three backend calls, two of them batched).
func BenchmarkOrdersPageWithRelations(b *testing.B) {
	benchQuery(b, `{ orders(first: 50) { edges { node { id user { name } payment { status } } } } }`)
}

func benchQuery(b *testing.B, q string) {
	s := newStack(b, stackOptions{})
	body, _ := json.Marshal(map[string]string{"query": q})
	b.ReportAllocs()
	// 32 clients per CPU, like a BFF under keep-alive load: the work is mostly waiting on
	// backends, so fewer would measure latency, not cost.
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			s.handler.ServeHTTP(w, req)
			if w.Code != http.StatusOK || strings.Contains(w.Body.String(), `"errors"`) {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
}
