// Package iprestrict implements the ip-restriction policy: CIDR allow and deny lists checked
// against the client address the edge settled (through top-level trusted_proxies), deny first.
package iprestrict

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strings"

	"github.com/portico-gw/portico/internal/apierror"
	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/policies"
)

// Config is the ip-restriction policy's settings:
//
//	policies:
//	  office-only:
//	    ip-restriction: {allow: [10.0.0.0/8, "2001:db8::/32"], deny: [10.6.6.6]}
//
// The client address is the one the edge settled: the TCP peer, or, when the peer is one of the
// top-level trusted_proxies, the nearest untrusted address in X-Forwarded-For. There is no
// per-policy trusted_proxies, so two policies can never disagree about who the client is.
type Config struct {
	// Allow lists addresses and CIDRs; when set, every other address is refused.
	Allow []string `yaml:"allow"`
	// Deny lists addresses and CIDRs refused even when Allow also matches them (Kong's order).
	Deny []string `yaml:"deny"`
}

// Validate reports every problem under path ("policies.office-only.ip-restriction").
func (c *Config) Validate(path string, p *confval.Problems) {
	c.compile(path, p)
}

func (c *Config) compile(path string, p *confval.Problems) *Restriction {
	if len(c.Allow) == 0 && len(c.Deny) == 0 {
		p.Addf(path, "set allow, deny or both")
	}
	return &Restriction{
		allow: buildSet(confval.Join(path, "allow"), c.Allow, p),
		deny:  buildSet(confval.Join(path, "deny"), c.Deny, p),
	}
}

// ErrNotAllowed is the answer to a refused address (Kong's message).
var ErrNotAllowed = apierror.New(http.StatusForbidden, "IP_NOT_ALLOWED", "IP address not allowed")

// Restriction is a built ip-restriction policy.
type Restriction struct {
	allow, deny *prefixSet
}

var _ policies.Policy = (*Restriction)(nil)

// New builds an ip-restriction policy named name.
func New(name string, c Config, _ policies.Deps) (policies.Policy, error) {
	var p confval.Problems
	out := c.compile("", &p)
	if len(p) > 0 {
		msgs := make([]string, len(p))
		for i, pr := range p {
			msgs[i] = strings.TrimPrefix(pr.Path+": ", ": ") + pr.Message
		}
		return nil, fmt.Errorf("ip-restriction %q: %w", name, errors.New(strings.Join(msgs, "; ")))
	}
	return out, nil
}

// Phase is PhaseIPRestriction: the cheapest refusal runs first.
func (x *Restriction) Phase() policies.Phase { return policies.PhaseIPRestriction }

// Wrap returns next behind the policy.
func (x *Restriction) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !x.Allowed(clientAddr(r)) {
			apierror.Write(w, r, ErrNotAllowed)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Allowed reports whether a passes: not denied, and allowed when an allow list is set. An
// invalid address (which the edge never produces) is refused: failing open would let a bug
// bypass the list.
func (x *Restriction) Allowed(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	if x.deny.contains(a) {
		return false
	}
	return x.allow.empty() || x.allow.contains(a)
}

// clientAddr is Info.ClientIP, or the TCP peer when the edge set no Info (unit tests, embedding).
func clientAddr(r *http.Request) netip.Addr {
	s := ""
	if info := reqctx.From(r.Context()); info != nil {
		s = info.ClientIP
	}
	if s == "" {
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			s = host
		} else {
			s = r.RemoteAddr
		}
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a
}

// prefixSet is a sorted list of disjoint address ranges per family, as integers, so a check is
// one binary search over plain comparisons that allocates nothing however long the list.
type prefixSet struct {
	v4 []range4
	v6 []range6
}

type range4 struct{ lo, hi uint32 }

// u128 is an IPv6 address as two big-endian halves; comparing hi then lo orders addresses.
type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

type range6 struct{ lo, hi u128 }

func (s *prefixSet) empty() bool { return len(s.v4)+len(s.v6) == 0 }

func (s *prefixSet) contains(a netip.Addr) bool {
	if a.Is4() {
		b := a.As4()
		x := binary.BigEndian.Uint32(b[:])
		rs := s.v4
		// The first range ending at or after x; x is inside when it also starts at or before x.
		lo, hi := 0, len(rs)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if rs[m].hi < x {
				lo = m + 1
			} else {
				hi = m
			}
		}
		return lo < len(rs) && rs[lo].lo <= x
	}
	x := to128(a)
	rs := s.v6
	lo, hi := 0, len(rs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if rs[m].hi.less(x) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo < len(rs) && !x.less(rs[lo].lo)
}

func to128(a netip.Addr) u128 {
	b := a.As16()
	return u128{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:])}
}

func to32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func buildSet(path string, entries []string, p *confval.Problems) *prefixSet {
	var v4, v6 []range6
	for i, e := range entries {
		pfx, err := parsePrefix(e)
		if err != nil {
			p.Addf(confval.Index(path, i), "%v", err)
			continue
		}
		lo, hi := pfx.Masked().Addr(), lastAddr(pfx)
		if lo.Is4() {
			v4 = append(v4, range6{lo: u128{lo: uint64(to32(lo))}, hi: u128{lo: uint64(to32(hi))}})
		} else {
			v6 = append(v6, range6{lo: to128(lo), hi: to128(hi)})
		}
	}
	s := &prefixSet{v6: merge(v6)}
	for _, r := range merge(v4) {
		s.v4 = append(s.v4, range4{lo: uint32(r.lo.lo), hi: uint32(r.hi.lo)})
	}
	return s
}

// parsePrefix accepts an address or a CIDR. IPv4-mapped IPv6 forms (::ffff:10.0.0.0/104) become
// plain IPv4, as client addresses are.
func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	var pfx netip.Prefix
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
		}
		if p.Addr().Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q: zones are not allowed", s)
		}
		pfx = p
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
		}
		pfx = netip.PrefixFrom(a, a.BitLen())
	}
	if a := pfx.Addr(); a.Is4In6() {
		if pfx.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("%q: an IPv4-mapped prefix needs at least /96", s)
		}
		pfx = netip.PrefixFrom(a.Unmap(), pfx.Bits()-96)
	}
	return pfx.Masked(), nil
}

// lastAddr is the highest address in p.
func lastAddr(p netip.Prefix) netip.Addr {
	if p.Addr().Is4() {
		b := p.Addr().As4()
		for i := p.Bits(); i < 32; i++ {
			b[i/8] |= 1 << (7 - i%8)
		}
		return netip.AddrFrom4(b)
	}
	b := p.Addr().As16()
	for i := p.Bits(); i < 128; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	return netip.AddrFrom16(b)
}

// merge sorts ranges and joins overlapping or adjacent ones, which keeps them disjoint for the
// binary search.
func merge(rs []range6) []range6 {
	if len(rs) == 0 {
		return nil
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].lo.less(rs[j].lo) })
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		next := u128{hi: last.hi.hi, lo: last.hi.lo + 1}
		if next.lo == 0 {
			next.hi++
		}
		if !last.hi.less(r.lo) || r.lo == next {
			if last.hi.less(r.hi) {
				last.hi = r.hi
			}
			continue
		}
		out = append(out, r)
	}
	return out
}
