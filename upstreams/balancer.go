package upstreams

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/portico-gw/portico/internal/reqctx"
)

// balancer chooses a target per attempt. update is called, serialized, whenever the set of
// eligible targets changes (health, ejection); pick runs on the request path, concurrently, and
// must not lock or allocate. tried has the bit of every target already used by this call, so a
// retry lands elsewhere when it can; pick returns nil only when no target is eligible.
type balancer interface {
	update(eligible []*target)
	pick(r *http.Request, tried uint64) *target
}

var (
	_ balancer = (*rotation)(nil)
	_ balancer = (*leastConn)(nil)
	_ balancer = (*hashRing)(nil)
	_ balancer = (*twoChoices)(nil)
)

// Balancer names accepted in Config.Balancer.
const (
	BalancerRoundRobin         = "round_robin"
	BalancerWeightedRoundRobin = "weighted_round_robin"
	BalancerLeastConnections   = "least_connections"
	BalancerConsistentHash     = "consistent_hash"
	BalancerIPHash             = "ip_hash"
	BalancerRandom             = "random"
)

func newBalancer(name, hashOn string, all []*target) (balancer, error) {
	switch name {
	case "", BalancerRoundRobin, BalancerWeightedRoundRobin:
		return &rotation{}, nil
	case BalancerLeastConnections:
		return &leastConn{}, nil
	case BalancerConsistentHash, BalancerIPHash:
		key, err := parseHashOn(hashOn)
		if err != nil {
			return nil, err
		}
		return newHashRing(key, all), nil
	case BalancerRandom:
		return &twoChoices{}, nil
	}
	return nil, fmt.Errorf("unknown balancer %q (use round_robin, weighted_round_robin, least_connections, consistent_hash, ip_hash or random)", name)
}

// rotation is round robin over a precomputed sequence: the targets themselves when weights are
// equal, else the order nginx's smooth weighted round robin produces over one period. Walking a
// fixed sequence with an atomic counter gives the same spread as nginx without its lock.
type rotation struct {
	seq  atomic.Pointer[[]*target]
	next atomic.Uint64
}

func (b *rotation) update(eligible []*target) {
	seq := smoothSequence(eligible)
	b.seq.Store(&seq)
}

func (b *rotation) pick(_ *http.Request, tried uint64) *target {
	p := b.seq.Load()
	if p == nil || len(*p) == 0 {
		return nil
	}
	seq := *p
	n := uint64(len(seq))
	if tried == 0 {
		return seq[(b.next.Add(1)-1)%n]
	}
	// A retry walks from where the next first attempt would start, without moving it: if the
	// retry's pick advanced the rotation too, each call would advance it twice, and with two
	// targets every first attempt would land on the same one (the failing one, when one fails).
	i := b.next.Load() % n
	for k := uint64(0); k < n; k++ {
		if t := seq[i]; t.bit&tried == 0 {
			return t
		}
		if i++; i == n {
			i = 0
		}
	}
	return seq[i]
}

// maxSequence bounds one smooth-weighted period; weights whose reduced sum is larger are scaled
// down, which keeps the ratios within a fraction of a percent.
const maxSequence = 4096

// smoothSequence returns one period of nginx's smooth weighted round robin over ts: each target
// appears weight/gcd times, interleaved so that no target gets long bursts.
func smoothSequence(ts []*target) []*target {
	if len(ts) == 0 {
		return nil
	}
	equal := true
	for _, t := range ts[1:] {
		if t.weight != ts[0].weight {
			equal = false
			break
		}
	}
	if equal {
		return slices.Clone(ts)
	}
	g := 0
	for _, t := range ts {
		g = gcd(g, t.weight)
	}
	w := make([]int, len(ts))
	total := 0
	for i, t := range ts {
		w[i] = t.weight / g
		total += w[i]
	}
	if total > maxSequence {
		scaled := 0
		for i := range w {
			w[i] = max(1, w[i]*maxSequence/total)
			scaled += w[i]
		}
		total = scaled
	}
	seq := make([]*target, 0, total)
	cur := make([]int, len(ts))
	for range total {
		best := 0
		for i := range w {
			cur[i] += w[i]
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		seq = append(seq, ts[best])
	}
	return seq
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// leastConn picks the target with the fewest in-flight requests relative to its weight. The scan
// starts at a rotating offset so ties spread instead of piling onto the first target.
type leastConn struct {
	ts   atomic.Pointer[[]*target]
	next atomic.Uint64
}

func (b *leastConn) update(eligible []*target) {
	ts := slices.Clone(eligible)
	b.ts.Store(&ts)
}

func (b *leastConn) pick(_ *http.Request, tried uint64) *target {
	p := b.ts.Load()
	if p == nil || len(*p) == 0 {
		return nil
	}
	ts := *p
	n := uint64(len(ts))
	// As in rotation.pick, only a first attempt moves the offset: with retries moving it too,
	// ties between two targets would always go to the same one.
	var start uint64
	if tried == 0 {
		start = (b.next.Add(1) - 1) % n
	} else {
		start = b.next.Load() % n
	}
	for {
		var best *target
		var bestActive int64
		i := start
		for range n {
			t := ts[i]
			if i++; i == n {
				i = 0
			}
			if t.bit&tried != 0 {
				continue
			}
			a := t.active.Load()
			// a/w < bestActive/bestW, cross-multiplied to stay in integers.
			if best == nil || a*int64(best.weight) < bestActive*int64(t.weight) {
				best, bestActive = t, a
			}
		}
		if best != nil || tried == 0 {
			return best
		}
		tried = 0
	}
}

// twoChoices draws two targets at random in proportion to their weights and takes the one with
// fewer in-flight requests relative to weight; on a tie the first draw wins, so an idle upstream
// spreads exactly by weight.
type twoChoices struct {
	state atomic.Pointer[weightedSet]
}

type weightedSet struct {
	ts    []*target
	cum   []int64 // cum[i] is the sum of the weights of ts[0..i]
	total int64
}

func (b *twoChoices) update(eligible []*target) {
	s := &weightedSet{ts: slices.Clone(eligible), cum: make([]int64, len(eligible))}
	for i, t := range eligible {
		s.total += int64(t.weight)
		s.cum[i] = s.total
	}
	b.state.Store(s)
}

func (s *weightedSet) draw() *target {
	r := rand.Int64N(s.total)
	lo, hi := 0, len(s.cum)-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if s.cum[mid] > r {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return s.ts[lo]
}

func (b *twoChoices) pick(_ *http.Request, tried uint64) *target {
	s := b.state.Load()
	if s == nil || len(s.ts) == 0 {
		return nil
	}
	a := s.drawUntried(tried)
	if len(s.ts) == 1 {
		return a
	}
	c := s.drawUntried(tried)
	if c.active.Load()*int64(a.weight) < a.active.Load()*int64(c.weight) {
		return c
	}
	return a
}

// drawUntried draws a few times for a target not in tried, then settles for any untried one, then
// for any at all.
func (s *weightedSet) drawUntried(tried uint64) *target {
	t := s.draw()
	if tried == 0 {
		return t
	}
	for range 3 {
		if t.bit&tried == 0 {
			return t
		}
		t = s.draw()
	}
	for _, u := range s.ts {
		if u.bit&tried == 0 {
			return u
		}
	}
	return t
}

// hashRing is consistent hashing over every target with weight > 0, eligible or not, with
// virtual nodes in proportion to weight. A key whose target is out of rotation walks clockwise to
// the next node that is in rotation, so only that target's keys move, and they come back when it
// recovers.
type hashRing struct {
	nodes    []ringNode
	key      hashKey
	eligible atomic.Int64
	// fallback spreads requests that carry no key (no header, no cookie).
	fallback rotation
}

type ringNode struct {
	hash uint64
	t    *target
}

// virtualNodes per target of average weight: enough for a spread within a few percent.
const virtualNodes = 160

func newHashRing(key hashKey, all []*target) *hashRing {
	b := &hashRing{key: key}
	var sum int
	var n int
	for _, t := range all {
		if t.weight > 0 {
			sum += t.weight
			n++
		}
	}
	for _, t := range all {
		if t.weight <= 0 {
			continue
		}
		vn := max(1, virtualNodes*n*t.weight/sum)
		for i := range vn {
			b.nodes = append(b.nodes, ringNode{hash: hashString(t.url + "#" + strconv.Itoa(i)), t: t})
		}
	}
	slices.SortFunc(b.nodes, func(x, y ringNode) int {
		switch {
		case x.hash < y.hash:
			return -1
		case x.hash > y.hash:
			return 1
		}
		return strings.Compare(x.t.url, y.t.url)
	})
	return b
}

func (b *hashRing) update(eligible []*target) {
	b.eligible.Store(int64(len(eligible)))
	b.fallback.update(eligible)
}

func (b *hashRing) pick(r *http.Request, tried uint64) *target {
	if b.eligible.Load() == 0 || len(b.nodes) == 0 {
		return nil
	}
	key, ok := b.key.of(r)
	if !ok {
		return b.fallback.pick(r, tried)
	}
	h := hashString(key)
	n := len(b.nodes)
	lo, hi := 0, n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if b.nodes[mid].hash < h {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	for {
		i := lo
		for range n {
			if i == n {
				i = 0
			}
			t := b.nodes[i].t
			i++
			if t.bit&tried == 0 && t.inRotation.Load() {
				return t
			}
		}
		if tried == 0 {
			return nil
		}
		tried = 0
	}
}

// hashKey says where a consistent-hash key comes from.
type hashKey struct {
	kind byte // 'i' client IP, 'h' header, 'c' cookie
	name string
}

func parseHashOn(s string) (hashKey, error) {
	switch {
	case s == "" || s == "ip":
		return hashKey{kind: 'i'}, nil
	case strings.HasPrefix(s, "header:") && len(s) > len("header:"):
		return hashKey{kind: 'h', name: textproto.CanonicalMIMEHeaderKey(s[len("header:"):])}, nil
	case strings.HasPrefix(s, "cookie:") && len(s) > len("cookie:"):
		return hashKey{kind: 'c', name: s[len("cookie:"):]}, nil
	}
	return hashKey{}, fmt.Errorf("invalid hash_on %q (use ip, header:<Name> or cookie:<name>)", s)
}

// of returns the request's key without allocating; ok is false when the request carries none.
func (k hashKey) of(r *http.Request) (string, bool) {
	switch k.kind {
	case 'h':
		if v := r.Header[k.name]; len(v) > 0 && v[0] != "" {
			return v[0], true
		}
		return "", false
	case 'c':
		return cookieValue(r.Header["Cookie"], k.name)
	}
	if info := reqctx.From(r.Context()); info != nil && info.ClientIP != "" {
		return info.ClientIP, true
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host, true
	}
	return r.RemoteAddr, r.RemoteAddr != ""
}

// cookieValue finds one cookie in Cookie header lines; http.Request.Cookie would parse and
// allocate every cookie on the request.
func cookieValue(lines []string, name string) (string, bool) {
	for _, line := range lines {
		for len(line) > 0 {
			part := line
			if i := strings.IndexByte(line, ';'); i >= 0 {
				part, line = line[:i], line[i+1:]
			} else {
				line = ""
			}
			part = strings.TrimSpace(part)
			if len(part) > len(name) && part[len(name)] == '=' && part[:len(name)] == name {
				v := part[len(name)+1:]
				if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
					v = v[1 : len(v)-1]
				}
				if v == "" {
					return "", false
				}
				return v, true
			}
		}
	}
	return "", false
}

// hashString is FNV-1a followed by a 64-bit finalizer, so that similar keys (IPs differing in
// the last octet) land far apart on the ring.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
