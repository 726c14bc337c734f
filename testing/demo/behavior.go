package demo

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultSeed seeds the error-rate decisions of a fresh or reset Behavior, so that a sequence of
// requests fails at the same positions on every run.
const DefaultSeed uint64 = 42

// Behavior shapes how a Service answers, switchable at runtime from another goroutine (a test or
// the demo's admin) while traffic flows. The zero value is a healthy service: no added latency, no
// injected errors, up. Latency and ErrorRate apply to every route except GET /health, so that a
// slow or flaky API can be modelled behind a health endpoint that still passes (the case passive
// health checks and circuit breakers exist for); Down and Drop apply to everything, health included.
type Behavior struct {
	latency     atomic.Int64  // nanoseconds
	errorRate   atomic.Uint64 // math.Float64bits of the share in [0, 1]
	errorStatus atomic.Int32  // 0 means http.StatusServiceUnavailable
	down        atomic.Bool
	drop        atomic.Bool

	mu  sync.Mutex
	rng *rand.Rand // nil until first needed or reseeded
}

// SetLatency makes every answer (except GET /health) wait d first. The wait ends early, without
// an answer, when the request's context is cancelled, as a real slow backend's work would be
// abandoned when the caller goes away.
func (b *Behavior) SetLatency(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("latency %v: must not be negative", d)
	}
	b.latency.Store(int64(d))
	return nil
}

// Latency reports the added latency.
func (b *Behavior) Latency() time.Duration { return time.Duration(b.latency.Load()) }

// SetErrorRate makes that share of answers (except GET /health) an injected error with
// ErrorStatus and a JSON error body. 0 never fails, 1 always fails; in between, the decision comes
// from a generator seeded by Seed, so a sequential run fails at the same requests every time.
func (b *Behavior) SetErrorRate(p float64) error {
	if math.IsNaN(p) || p < 0 || p > 1 {
		return fmt.Errorf("error rate %v: must be between 0 and 1", p)
	}
	b.errorRate.Store(math.Float64bits(p))
	return nil
}

// ErrorRate reports the injected error share.
func (b *Behavior) ErrorRate() float64 { return math.Float64frombits(b.errorRate.Load()) }

// SetErrorStatus chooses the status of injected errors (default 503), for example 500 to check
// that a gateway does not retry it or 504 to check that it does.
func (b *Behavior) SetErrorStatus(status int) error {
	if status < 400 || status > 599 {
		return fmt.Errorf("error status %d: must be a 4xx or 5xx code", status)
	}
	b.errorStatus.Store(int32(status))
	return nil
}

// ErrorStatus reports the status used for injected errors.
func (b *Behavior) ErrorStatus() int {
	if s := b.errorStatus.Load(); s != 0 {
		return int(s)
	}
	return http.StatusServiceUnavailable
}

// SetDown makes the service answer 503 to everything, GET /health included: up at the TCP level
// but refusing work, like a service in maintenance. To make it unreachable instead, stop its
// listener (Service.Close or Cluster.Stop).
func (b *Behavior) SetDown(down bool) { b.down.Store(down) }

// Down reports whether the service refuses everything.
func (b *Behavior) Down() bool { return b.down.Load() }

// SetDrop makes the service abort every request without an answer: the net/http server closes
// the connection (HTTP/1.1) or resets the stream (HTTP/2), as when a backend crashes mid-request.
// It needs a real server; a handler called directly with a ResponseRecorder sees the panic that
// net/http uses for this (http.ErrAbortHandler).
func (b *Behavior) SetDrop(drop bool) { b.drop.Store(drop) }

// Drop reports whether requests are aborted without an answer.
func (b *Behavior) Drop() bool { return b.drop.Load() }

// Seed restarts the error-rate decisions from seed.
func (b *Behavior) Seed(seed uint64) {
	b.mu.Lock()
	b.rng = newRNG(seed)
	b.mu.Unlock()
}

// Reset restores the healthy defaults and DefaultSeed.
func (b *Behavior) Reset() {
	b.latency.Store(0)
	b.errorRate.Store(0)
	b.errorStatus.Store(0)
	b.down.Store(false)
	b.drop.Store(false)
	b.Seed(DefaultSeed)
}

// fail decides whether this request gets an injected error. The lock is taken only for rates
// strictly between 0 and 1, so the common healthy path stays lock-free.
func (b *Behavior) fail() bool {
	p := b.ErrorRate()
	switch {
	case p <= 0:
		return false
	case p >= 1:
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rng == nil {
		b.rng = newRNG(DefaultSeed)
	}
	return b.rng.Float64() < p
}

// wait sleeps for the configured latency and reports false when ctx ended first.
func (b *Behavior) wait(ctx context.Context) bool {
	d := b.Latency()
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func newRNG(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}
