package ratelimit

import (
	"net/http"
	"testing"
	"unsafe"

	"github.com/portico-gw/portico/policies"
)

// A reload rebuilds every policy; an in-memory limit whose shape did not change keeps its
// counters, so a reload (a ConfigMap update, say) does not hand every client a fresh allowance.
func TestReloadCarriesMemoryCounters(t *testing.T) {
	limit2 := Config{Limits: Limits{Minute: 2}}
	client := req{ip: "198.51.100.7"}
	first := policies.NewCarry(nil)
	a := buildWith(t, "rl", limit2, policies.Deps{Carry: first}, nil)
	if got := statuses(a.Wrap(&backend{}), client, 2); got[0] != 200 || got[1] != 200 {
		t.Fatalf("first snapshot: %v", got)
	}

	second := policies.NewCarry(first)
	b := buildWith(t, "rl", limit2, policies.Deps{Carry: second}, nil)
	if got := client.send(b.Wrap(&backend{})).Code; got != http.StatusTooManyRequests {
		t.Fatalf("after a reload that kept the policy: %d, want 429 (counters carried)", got)
	}
	// The replaced snapshot retires; the store lives on for its successor.
	_ = a.Close()
	storeOf := func(l *Limiter) *memoryStore { return l.store.(*memoryRef).memoryStore }
	select {
	case <-storeOf(b).done:
		t.Fatal("closing the replaced limiter stopped the janitor its successor still uses")
	default:
	}
	if got := client.send(b.Wrap(&backend{})).Code; got != http.StatusTooManyRequests {
		t.Fatalf("after the old limiter closed: %d, want 429", got)
	}

	// Anything that shapes the counters starts them afresh: the limit, or the policy itself.
	third := policies.NewCarry(second)
	c := buildWith(t, "rl", Config{Limits: Limits{Minute: 5}}, policies.Deps{Carry: third}, nil)
	d := buildWith(t, "other", limit2, policies.Deps{Carry: third}, nil)
	for name, l := range map[string]*Limiter{"changed limit": c, "other policy": d} {
		if got := client.send(l.Wrap(&backend{})).Code; got != http.StatusOK {
			t.Errorf("%s: %d, want 200 (fresh counters)", name, got)
		}
		if storeOf(l) == storeOf(b) {
			t.Errorf("%s shares the replaced policy's store", name)
		}
	}

	// Once the last holder lets go, the janitor stops; a later build cannot adopt the dead store.
	_ = b.Close()
	<-storeOf(b).done
	fourth := policies.NewCarry(second)
	e := buildWith(t, "rl", limit2, policies.Deps{Carry: fourth}, nil)
	if storeOf(e) == storeOf(b) {
		t.Error("a build adopted a store whose holders had all let go")
	}
	if got := client.send(e.Wrap(&backend{})).Code; got != http.StatusOK {
		t.Errorf("on a fresh store: %d, want 200", got)
	}
}

// An identity's entry stays within the size config.go and the README document (about 200–250
// bytes an identity with its key and map slot): slots of two int64 per window doubled it to 336
// bytes, and checks over 10k identities slowed by a fifth as entries missed the cache.
func TestEntrySize(t *testing.T) {
	if size := unsafe.Sizeof(entry{}); size > 144 {
		t.Errorf("entry is %d bytes, want at most 144", size)
	}
}
