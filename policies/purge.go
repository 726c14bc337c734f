package policies

import (
	"context"
	"sync"
)

// Purgeable is a cache the admin API can purge.
type Purgeable interface {
	// Purge removes one entry by its key (as shown in X-Cache-Key); it reports whether it existed.
	Purge(ctx context.Context, key string) (bool, error)
	// PurgePrefix removes every entry whose key starts with prefix and reports how many.
	PurgePrefix(ctx context.Context, prefix string) (int, error)
}

// Purger collects the caches of a snapshot for the admin API.
type Purger struct {
	mu     sync.Mutex
	caches []Purgeable
}

// Add registers a cache.
func (p *Purger) Add(c Purgeable) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.caches = append(p.caches, c)
}

// Caches returns the registered caches.
func (p *Purger) Caches() []Purgeable {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Purgeable(nil), p.caches...)
}
