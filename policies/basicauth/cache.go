package basicauth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/portico-gw/portico/policies"
)

// cache remembers successful checks. It is bounded two ways: entries expire after ttl, and it
// never holds more than size entries; when full, expired entries are dropped first and then, if
// still full, one arbitrary entry (Go's map order) per insertion. Only successes are stored, so an
// attacker cannot fill it without knowing passwords, and a guess always pays for bcrypt.
//
// The key is HMAC-SHA256(random per-instance secret, username, password): the passwords never sit
// in memory, and a memory dump yields digests that cannot be brute-forced offline without the
// secret (a plain SHA-256 would undo bcrypt's slowness).
type cache struct {
	secret [32]byte
	size   int
	ttl    time.Duration
	now    func() time.Time

	mu      sync.RWMutex
	entries map[[sha256.Size]byte]entry
}

type entry struct {
	consumer *policies.Consumer
	expires  time.Time
}

func newCache(size int, ttl time.Duration, now func() time.Time) *cache {
	c := &cache{size: size, ttl: ttl, now: now, entries: make(map[[sha256.Size]byte]entry, min(size, 64))}
	_, _ = rand.Read(c.secret[:]) // crypto/rand.Read never fails on supported platforms
	return c
}

func (c *cache) key(user, pass string) [sha256.Size]byte {
	m := hmac.New(sha256.New, c.secret[:])
	// The username's length first, so ("ab","c") and ("a","bc") differ.
	var n [8]byte
	for i, l := 0, uint64(len(user)); i < 8; i++ {
		n[i] = byte(l >> (8 * i))
	}
	m.Write(n[:])
	m.Write([]byte(user))
	m.Write([]byte(pass))
	var out [sha256.Size]byte
	m.Sum(out[:0])
	return out
}

func (c *cache) get(user, pass string) (*policies.Consumer, bool) {
	k := c.key(user, pass)
	c.mu.RLock()
	e, ok := c.entries[k]
	c.mu.RUnlock()
	if !ok || !c.now().Before(e.expires) {
		return nil, false
	}
	return e.consumer, true
}

func (c *cache) put(user, pass string, cons *policies.Consumer) {
	k := c.key(user, pass)
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, exists := c.entries[k]; !exists && len(c.entries) >= c.size {
		for ek, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, ek)
			}
		}
		if len(c.entries) >= c.size {
			for ek := range c.entries {
				delete(c.entries, ek)
				break
			}
		}
	}
	c.entries[k] = entry{consumer: cons, expires: now.Add(c.ttl)}
}

func (c *cache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
