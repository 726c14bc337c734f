package spy

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
)

var ok = http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})

func TestBatchesRecordOnlyBatchedCallsToTheirPath(t *testing.T) {
	b := NewBatches("/payments")
	h := b.Wrap(ok)
	for _, target := range []string{"/payments?ids=p1,p2", "/payments?ids=p2", "/payments/p3", "/users?ids=u1", "/payments?user_id=u1"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", target, nil))
	}
	s := b.Summary()
	if s.Calls != 2 || s.Largest != 2 || len(s.Asked) != 2 || !slices.Equal(s.Repeated(), []string{"p2"}) {
		t.Errorf("summary = %+v, repeated %v; want 2 calls, the largest of 2, p1 and p2 asked, p2 twice", s, s.Repeated())
	}
}

func TestRendezvousIsMetOnlyByCallsInFlightTogether(t *testing.T) {
	rv := NewRendezvous(3)
	h := rv.Wrap(ok)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)) })
	}
	wg.Wait()
	if !rv.Met() {
		t.Error("three concurrent calls did not meet")
	}
	// One call alone waits out the rendezvous and counts as a miss.
	lone := NewRendezvous(2)
	lone.Wrap(ok).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if lone.Met() {
		t.Error("a single call met a rendezvous of two")
	}
}
