package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/portico-gw/portico/internal/apierror"
	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/policies"
)

// Backend is how resolvers call upstreams: the method set of resolvers.Backend and
// *upstreams.Client, declared here so the cache can wrap either without importing them.
type Backend interface {
	GetJSON(ctx context.Context, upstream, path string, out any) error
	SendJSON(ctx context.Context, upstream, method, path string, in, out any) error
}

// BackendRule caches a resolver's GET calls to one upstream under a path prefix.
type BackendRule struct {
	// Upstream is the upstream's name, as in the upstreams section.
	Upstream string `yaml:"upstream"`
	// PathPrefix limits the rule to paths starting with it ("/users/"); empty means every path.
	// The longest matching prefix of an upstream's rules wins.
	PathPrefix string `yaml:"path_prefix"`
	// TTL is how long an answer is reused (default 5m).
	TTL confval.Duration `yaml:"ttl"`
}

// BackendRules are the resolver-side cache rules.
type BackendRules []BackendRule

// Validate reports every problem in r under path.
func (r *BackendRule) Validate(path string, p *confval.Problems) {
	if strings.TrimSpace(r.Upstream) == "" {
		p.Addf(confval.Join(path, "upstream"), "is required")
	}
	if r.PathPrefix != "" && !strings.HasPrefix(r.PathPrefix, "/") {
		p.Addf(confval.Join(path, "path_prefix"), "must start with /")
	}
	if r.TTL < 0 {
		p.Addf(confval.Join(path, "ttl"), "must not be negative")
	}
}

// Validate reports every problem in rs under path, including rules that repeat one another.
func (rs BackendRules) Validate(path string, p *confval.Problems) {
	seen := map[[2]string]bool{}
	for i := range rs {
		at := confval.Index(path, i)
		rs[i].Validate(at, p)
		k := [2]string{rs[i].Upstream, rs[i].PathPrefix}
		if seen[k] {
			p.Addf(at, "repeats the rule for upstream %q and path_prefix %q", k[0], k[1])
		}
		seen[k] = true
	}
}

// backendCache caches GetJSON answers by rule. Keys are
// "resolver:<upstream>:<sha256(upstream, path, identity)>": the identity is exactly what the
// upstream client forwards (X-Consumer-Name, X-Authenticated-Subject, X-Consumer-Groups), so
// an answer is only reused for a call the upstream could not have told apart, and one user's data
// never serves another.
type backendCache struct {
	next    Backend
	rules   map[string][]BackendRule // by upstream, longest prefix first
	store   entryStore
	group   singleflight.Group
	metrics *metrics
}

// backendKeyPrefix namespaces resolver entries away from response cache policies' keys.
const backendKeyPrefix = "resolver:"

var (
	_ Backend            = (*backendCache)(nil)
	_ policies.Purgeable = (*backendCache)(nil)
)

// NewBackend wraps next so that GetJSON calls matching a rule are answered from the cache
// within the rule's TTL, and concurrent identical calls share one upstream call. SendJSON is
// never cached. Errors are not cached. Entries live in Redis when deps.Redis is set, else in
// memory; the cache registers with deps.Purger (prefix "resolver:<upstream>:").
func NewBackend(next Backend, rules BackendRules, deps policies.Deps) (Backend, error) {
	if next == nil {
		return nil, errors.New("building resolver cache: nil backend")
	}
	var probs confval.Problems
	rules.Validate("rules", &probs)
	if len(probs) > 0 {
		return nil, fmt.Errorf("building resolver cache: %s: %s", probs[0].Path, probs[0].Message)
	}
	if len(rules) == 0 {
		return next, nil
	}
	c := &backendCache{next: next, rules: map[string][]BackendRule{}}
	for _, r := range rules {
		c.rules[r.Upstream] = append(c.rules[r.Upstream], r)
	}
	for _, rs := range c.rules {
		sort.SliceStable(rs, func(i, j int) bool { return len(rs[i].PathPrefix) > len(rs[j].PathPrefix) })
	}
	c.metrics = newMetrics(deps, "resolver")
	if deps.Redis != nil {
		c.store = newRedisStore(deps.Redis, DefaultRedisTimeout)
	} else {
		ms, err := acquireMemStore("\x00resolver", DefaultMaxCost, DefaultMaxKeys)
		if err != nil {
			return nil, fmt.Errorf("building resolver cache: %w", err)
		}
		c.store = ms
		runtime.AddCleanup(c, func(s *memStore) { s.release() }, ms)
	}
	deps.Purger.Add(c)
	return c, nil
}

func (c *backendCache) rule(upstream, path string) (BackendRule, bool) {
	for _, r := range c.rules[upstream] {
		if strings.HasPrefix(path, r.PathPrefix) {
			return r, true
		}
	}
	return BackendRule{}, false
}

// Forget drops the answer stored for upstream and path under ctx's identity. A resolver that
// finds an answer unusable (of another shape than the service's contract) calls it, so one bad
// answer is not replayed for the rule's whole TTL.
func (c *backendCache) Forget(ctx context.Context, upstream, path string) {
	norm := path
	if !strings.HasPrefix(norm, "/") {
		norm = "/" + norm
	}
	if _, ok := c.rule(upstream, norm); !ok {
		return
	}
	if _, err := c.store.del(context.WithoutCancel(ctx), backendKey(upstream, norm, reqctx.From(ctx))); err != nil {
		c.metrics.storeFailed(err)
	}
}

// GetJSON answers from the cache when a rule matches, else calls next.
func (c *backendCache) GetJSON(ctx context.Context, upstream, path string, out any) error {
	norm := path
	if !strings.HasPrefix(norm, "/") {
		norm = "/" + norm // the upstream client adds it too; users/42 and /users/42 are one call
	}
	rule, ok := c.rule(upstream, norm)
	if !ok {
		return c.next.GetJSON(ctx, upstream, path, out)
	}
	key := backendKey(upstream, norm, reqctx.From(ctx))
	e, err := c.store.get(ctx, key)
	if err != nil {
		c.metrics.storeFailed(err)
		c.metrics.bypass.Inc()
		return c.next.GetJSON(ctx, upstream, path, out)
	}
	if e != nil {
		c.metrics.hit.Inc()
		return c.decodeOrForget(ctx, key, e.body, out)
	}
	c.metrics.miss.Inc()
	ch := c.group.DoChan(key, func() (any, error) {
		// Detached from the first caller's cancellation so one client leaving does not fail the
		// others; the upstream client's own timeouts still bound the call.
		cctx := context.WithoutCancel(ctx)
		// A caller that missed just before a previous flight stored its answer starts a new
		// flight; look again so it reads that answer instead of calling the upstream twice.
		if e, err := c.store.get(cctx, key); err == nil && e != nil {
			return e.body, nil
		}
		var raw json.RawMessage
		if err := c.next.GetJSON(cctx, upstream, path, &raw); err != nil {
			return nil, err
		}
		if len(raw) == 0 {
			return []byte(nil), nil // 204: nothing to decode or keep
		}
		ttl := rule.TTL.Or(DefaultTTL)
		err := c.store.set(cctx, key, newEntry(200, nil, raw, time.Now()), ttl)
		if err != nil && !errors.Is(err, errNotStored) {
			c.metrics.storeFailed(err)
		}
		return []byte(raw), nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return res.Err
		}
		return c.decodeOrForget(ctx, key, res.Val.([]byte), out)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// decodeOrForget decodes a stored answer into out. One that does not fit out (a number where the
// contract has a string, a list for an object) is the upstream's bad answer, 502 as from the
// upstream client, and is dropped: kept, it failed every call for the rule's whole TTL.
func (c *backendCache) decodeOrForget(ctx context.Context, key string, raw []byte, out any) error {
	if out == nil || len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		if _, derr := c.store.del(context.WithoutCancel(ctx), key); derr != nil {
			c.metrics.storeFailed(derr)
		}
		return &apierror.Error{Status: http.StatusBadGateway, Code: "BAD_GATEWAY", Message: http.StatusText(http.StatusBadGateway),
			Err: fmt.Errorf("decoding cached upstream answer: %w", err)}
	}
	return nil
}

// SendJSON is never cached: it may change state, and its answer belongs to its caller.
func (c *backendCache) SendJSON(ctx context.Context, upstream, method, path string, in, out any) error {
	return c.next.SendJSON(ctx, upstream, method, path, in, out)
}

func backendKey(upstream, path string, info *reqctx.Info) string {
	b := make([]byte, 0, 128)
	b = appendField(b, upstream)
	b = appendField(b, path)
	b = appendIdentity(b, info)
	sum := sha256.Sum256(b)
	return backendKeyPrefix + upstream + ":" + hex.EncodeToString(sum[:])
}

// Purge removes one resolver entry by key.
func (c *backendCache) Purge(ctx context.Context, key string) (bool, error) {
	if !strings.HasPrefix(key, backendKeyPrefix) {
		return false, nil
	}
	return c.store.del(ctx, key)
}

// PurgePrefix removes resolver entries whose key starts with prefix ("resolver:users:").
func (c *backendCache) PurgePrefix(ctx context.Context, prefix string) (int, error) {
	if !strings.HasPrefix(prefix, backendKeyPrefix) && !strings.HasPrefix(backendKeyPrefix, prefix) {
		return 0, nil
	}
	return c.store.delPrefix(ctx, prefix)
}
