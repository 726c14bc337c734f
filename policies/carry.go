package policies

import "sync"

// Carry hands state from the policies of the snapshot a reload replaces to those of the snapshot
// it builds, so that a reload keeps what clients experience as continuous: their in-memory
// rate-limit counters. Without it every reload, a Kubernetes ConfigMap update included, would
// give every client a fresh allowance. A policy keeps its state under a key naming everything
// that shapes it (its name and the config fields that define the state), so a changed policy
// starts afresh and an unchanged one carries on. A nil *Carry carries nothing.
type Carry struct {
	prev map[string]any
	mu   sync.Mutex
	next map[string]any
}

// NewCarry starts the carry of a build; prev is the carry of the snapshot being replaced (nil
// for the first).
func NewCarry(prev *Carry) *Carry {
	c := &Carry{next: make(map[string]any)}
	if prev != nil {
		prev.mu.Lock()
		c.prev = prev.next
		prev.mu.Unlock()
	}
	return c
}

// Take returns what the replaced snapshot kept under key, or nil.
func (c *Carry) Take(key string) any {
	if c == nil {
		return nil
	}
	return c.prev[key]
}

// Done ends the build: what the replaced snapshot kept and this build did not take is let go
// of, instead of being held until the next reload.
func (c *Carry) Done() {
	if c != nil {
		c.prev = nil
	}
}

// Keep offers v to the next build under key.
func (c *Carry) Keep(key string, v any) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.next[key] = v
	c.mu.Unlock()
}
