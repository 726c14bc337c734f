// Package spy has handlers that tests put in front of a backend to see how Portico called it:
// whether calls were in flight together, and which IDs each batched call asked for. They let a
// test assert what a gateway did instead of how long it took, which a loaded machine can stretch.
package spy

import (
	"net/http"
	"strings"
	"sync"
	"time"
)

// Rendezvous holds each call it wraps until want calls have arrived, so a test learns that they
// were in flight together without timing them. A call that waits 3s for the others counts as a
// miss and goes on, so a sequential caller fails the test instead of hanging it.
type Rendezvous struct {
	want   int
	mu     sync.Mutex
	n      int
	all    chan struct{}
	missed int
}

// NewRendezvous waits for want calls.
func NewRendezvous(want int) *Rendezvous {
	return &Rendezvous{want: want, all: make(chan struct{})}
}

// Wrap holds next's calls until the rendezvous is met.
func (rv *Rendezvous) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rv.mu.Lock()
		rv.n++
		if rv.n == rv.want {
			close(rv.all)
		}
		rv.mu.Unlock()
		select {
		case <-rv.all:
		case <-time.After(3 * time.Second):
			rv.mu.Lock()
			rv.missed++
			rv.mu.Unlock()
		case <-r.Context().Done():
		}
		next.ServeHTTP(w, r)
	})
}

// Met reports that want calls arrived and none of them waited in vain.
func (rv *Rendezvous) Met() bool {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return rv.n >= rv.want && rv.missed == 0
}

// Batches records the ids of each call to one path that carries ?ids=a,b,c, the demo services'
// batch endpoints.
type Batches struct {
	path  string
	mu    sync.Mutex
	calls [][]string
}

// NewBatches records batched calls to path (e.g. "/payments").
func NewBatches(path string) *Batches { return &Batches{path: path} }

// Wrap records next's batched calls.
func (b *Batches) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == b.path && r.URL.Query().Has("ids") {
			ids := strings.Split(r.URL.Query().Get("ids"), ",")
			b.mu.Lock()
			b.calls = append(b.calls, ids)
			b.mu.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}

// Summary is what the batched calls asked for.
type Summary struct {
	Calls   int            // batched calls
	Largest int            // ids in the largest call
	Asked   map[string]int // how often each id was asked for
}

// Summary sums up the calls recorded so far.
func (b *Batches) Summary() Summary {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := Summary{Calls: len(b.calls), Asked: map[string]int{}}
	for _, ids := range b.calls {
		s.Largest = max(s.Largest, len(ids))
		for _, id := range ids {
			s.Asked[id]++
		}
	}
	return s
}

// Repeated lists the ids asked for more than once.
func (s Summary) Repeated() []string {
	var out []string
	for id, n := range s.Asked {
		if n > 1 {
			out = append(out, id)
		}
	}
	return out
}
