package cache

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultStoreBackoff is how long a Redis store is bypassed after a call to it timed out or could
// not reach it.
const DefaultStoreBackoff = time.Second

// ErrStoreBackingOff is what a store call returns, at once, while its StoreBackoff bypasses Redis.
var ErrStoreBackingOff = errors.New("redis bypassed after a recent timeout or connection failure")

// StoreBackoff keeps callers away from a Redis that has just failed by timeout or connection
// error. Each call is bounded by a timeout, but a hung Redis (stopped, swapping, stuck on a long
// command) makes every call wait that whole timeout: a GraphQL request resolving three levels
// paid it three times, plus once for its APQ registration. After such a failure the store is
// bypassed for a window; when it has passed, a single call probes Redis while the others keep
// bypassing, and its outcome decides: success resumes, failure starts a new window. A hung Redis
// thus costs one timeout per window, not one per call. Error replies (Redis answered) do not
// count: Redis is up.
//
// A nil *StoreBackoff never bypasses. It is safe for concurrent use.
type StoreBackoff struct {
	window time.Duration
	now    func() time.Time
	// until is when Redis may be tried again, in Unix nanoseconds; 0 while it is healthy. A
	// probe moves it one window on before calling, so the callers behind it keep bypassing.
	until atomic.Int64
}

// NewStoreBackoff returns a StoreBackoff bypassing Redis for window after each failure
// (DefaultStoreBackoff when window ≤ 0).
func NewStoreBackoff(window time.Duration) *StoreBackoff {
	if window <= 0 {
		window = DefaultStoreBackoff
	}
	return &StoreBackoff{window: window, now: time.Now}
}

// Allow reports whether a call may go to Redis now: always while it is healthy; during a
// back-off window never; after it, for exactly one caller, the probe.
func (b *StoreBackoff) Allow() bool {
	if b == nil {
		return true
	}
	u := b.until.Load()
	if u == 0 {
		return true
	}
	now := b.now().UnixNano()
	if now < u {
		return false
	}
	return b.until.CompareAndSwap(u, now+int64(b.window))
}

// Done records the outcome of a call that Allow let through. parent is the caller's context,
// without the call's own timeout: a call cut short because its caller left says nothing about
// Redis.
func (b *StoreBackoff) Done(parent context.Context, err error) {
	if b == nil {
		return
	}
	switch {
	case err == nil:
		if b.until.Load() != 0 {
			b.until.Store(0)
		}
	case parent.Err() != nil || errors.Is(err, context.Canceled):
		// Checked before the verdict on err: go-redis returns the caller's context.Canceled as
		// is (waiting for a pooled connection, say), which is not an unreachable Redis, and as
		// an answer it would end a back-off that a hung Redis had started.
	case unreachable(err):
		b.until.Store(b.now().Add(b.window).UnixNano())
	default:
		if b.until.Load() != 0 {
			b.until.Store(0) // Redis answered, with an error of its own
		}
	}
}

// unreachable reports whether err says Redis did not answer: the call's timeout, a network
// error, a connection closed under it, or no free connection in time.
func unreachable(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, redis.ErrClosed) || errors.Is(err, redis.ErrPoolTimeout)
}

// Call runs fn, bounded by timeout, unless the store is being bypassed (ErrStoreBackingOff), and
// records its outcome. fn reports an answer that means "not there" (a miss) as nil: Redis
// answered. ctx is the caller's context, without the timeout, as Done wants it.
func (b *StoreBackoff) Call(ctx context.Context, timeout time.Duration, fn func(context.Context) error) error {
	if !b.Allow() {
		return ErrStoreBackingOff
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := fn(cctx)
	b.Done(ctx, err)
	return err
}
