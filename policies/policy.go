// Package policies is the shared proxy layer's edge half: named, reusable policy instances built
// from config (authentication, ACL, rate limiting, caching, transformation, protection) and
// assembled into one chain per route or BFF whose order is fixed by phase, not by list order.
//
// Each policy type lives in its own subpackage with its Config (doc-commented fields), Validate and
// New; this package holds what they share: phases, the build-time dependencies, the consumer
// registry, and the chain builder.
package policies

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Phase fixes where a policy runs in a chain. Lower phases run first (outermost), like Kong's
// priorities, so a user's list order can never put rate limiting before authentication.
type Phase int

// The phases, in execution order (DESIGN.md "Request flow").
const (
	PhaseRequestID       Phase = 100
	PhaseIPRestriction   Phase = 200
	PhaseCORS            Phase = 210
	PhaseSecurityHeaders Phase = 220
	PhaseSizeLimit       Phase = 230
	PhaseAuthentication  Phase = 300
	PhaseACL             Phase = 400
	PhaseRateLimit       Phase = 500
	// PhaseResponseTransform wraps the cache rather than sitting inside it: response transforms
	// may render per-request values ($(request_id), $(client_ip), request headers), which must
	// never be stored and replayed to other clients, so they apply to hits and misses alike and
	// the cache keeps the upstream's answer.
	PhaseResponseTransform Phase = 550
	PhaseCache             Phase = 600
	PhaseRequestTransform  Phase = 700
)

// Policy is a built policy instance: a middleware with a fixed phase.
type Policy interface {
	Phase() Phase
	Wrap(next http.Handler) http.Handler
}

// KeyVariant is implemented by policies that edit the request (a request-transform adding
// $(header.X-Lang) to the query, a static X-Tier header for one consumer). A cache outside such
// policies keys on the request before their edits, so it replays their edits on a copy and keys
// on the outcome too, or the answer fetched for one client's edit would be served to a client
// whose request they would have edited otherwise.
type KeyVariant interface {
	// KeyName tells the policy apart from others (its configured name).
	KeyName() string
	// EditForKey makes on r the header and query edits the policy will make, rendering nothing
	// unique to one request ($(request_id), $(uuid)). r is a copy whose URL the caller owns, and
	// whose Header holds only the KeyHeaders and ReadHeaders of every KeyVariant in the chain,
	// without a body.
	EditForKey(r *http.Request)
	// KeyHeaders are the header names (canonical) whose values the edits may change: the key
	// holds their values after the replay.
	KeyHeaders() []string
	// ReadHeaders are the other header names (canonical) the edits read: the replay needs
	// them, the key does not.
	ReadHeaders() []string
	// EditsQuery reports whether the edits may change the query.
	EditsQuery() bool
}

// VariantKeyed is implemented by a policy that keys what it stores on the request (the cache):
// the chain wraps it with WrapKeyed, handing it the KeyVariants that run inside it.
type VariantKeyed interface {
	WrapKeyed(next http.Handler, inner []KeyVariant) http.Handler
}

// Authenticator is implemented by authentication policies. The chain runs every authenticator of
// a scope in one step: the first that recognises a valid credential sets the identity; a present
// but invalid credential fails the request at once (401); when none finds a credential, the
// anonymous consumer is used if configured, else 401.
type Authenticator interface {
	Policy
	// Authenticate returns (nil, nil) when the request carries no credential of this kind, an
	// identity for a valid one, or an error (shown to the client only as 401) for an invalid one.
	// It may remove the credential from r when configured to hide it.
	Authenticate(r *http.Request) (*reqctx.Identity, error)
	// Challenge is this scheme's WWW-Authenticate value, e.g. `Key realm="portico"`.
	Challenge() string
}

// MissingChallenger is an Authenticator whose challenge to a request without any credential
// differs from the one to a bad credential: RFC 6750 (3.1) gives a Bearer challenge an error
// code only when a token was sent.
type MissingChallenger interface {
	MissingChallenge() string
}

// Deps are what policies are built with. One Deps serves one config snapshot.
type Deps struct {
	// Consumers is the snapshot's consumer registry.
	Consumers *Consumers
	// Redis is the shared store when `store.redis` is configured, nil for in-memory stores.
	Redis redis.UniversalClient
	// Metrics registers policy metrics; Register tolerates a collector registered by an earlier
	// snapshot, so reloads do not fail.
	Metrics prometheus.Registerer
	// Logger for operational logs (never secrets).
	Logger *slog.Logger
	// Purger collects caches so the admin API can purge them; nil when there is no admin API.
	Purger *Purger
	// Carry hands state across reloads (see Carry); nil carries nothing.
	Carry *Carry
}

// Register registers c, or returns the collector already registered under the same descriptor
// (an earlier snapshot's), so reloads and tests can build policies repeatedly.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err) // a descriptor clash between two different collectors is a programming error
	}
	return c
}

// CheckAnonymous reports an error unless consumer, an authentication policy's anonymous
// fallback, is empty or declared.
func (d Deps) CheckAnonymous(what, consumer string) error {
	if consumer == "" {
		return nil
	}
	if _, ok := d.Consumers.ByName(consumer); !ok {
		return fmt.Errorf("%s: anonymous consumer %q is not declared", what, consumer)
	}
	return nil
}
