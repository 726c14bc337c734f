package resolvers

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/portico-gw/portico/resolvers/model"
)

type jsonBackend string

func (b jsonBackend) GetJSON(_ context.Context, _, _ string, out any) error {
	return json.Unmarshal([]byte(b), out)
}
func (b jsonBackend) SendJSON(context.Context, string, string, string, any, any) error { return nil }

// A null in a backend's batch answer names no key: the keys it was asked for stay null. It used
// to be dereferenced, and the panic failed every field of the batch.
func TestBatchFetchSkipsNullElements(t *testing.T) {
	fetch := batchFetch(Backend(jsonBackend(`{"users":[null,{"id":"u1","name":"Ada","email":"ada@example.com","tier":"gold","created_at":"2026-01-01T00:00:00Z"}]}`)), upstreamUsers, "/users", "users",
		func(u *model.User) string { return u.ID })
	vals, errs := fetch(context.Background(), []string{"u1", "u2"})
	if len(errs) != 0 {
		t.Fatalf("errs = %v, want none", errs)
	}
	if vals[0] == nil || vals[0].ID != "u1" || vals[1] != nil {
		t.Fatalf("vals = %+v, want [u1 nil]", vals)
	}
}
