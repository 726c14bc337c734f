package cache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/portico-gw/portico/internal/reqctx"
)

// keyScratch is reused across requests so building a key allocates only the key string.
type keyScratch struct {
	buf   []byte
	pairs []string
}

var keyScratchPool = sync.Pool{New: func() any { return &keyScratch{buf: make([]byte, 0, 512)} }}

// keyPrefix is the readable part of a key, "<policy>:<route>:", which purge by prefix uses.
func keyPrefix(policy, route string) string { return policy + ":" + route + ":" }

// key computes "<policy>:<route>:<sha256 hex>" over the policy, route, identity (unless
// public), method, host, path, sorted query (or its allow-listed part) and vary header values.
// Fields are length-prefixed so that no two different requests hash the same input.
func (p *Policy) key(r *http.Request, info *reqctx.Info, method string) string {
	s := keyScratchPool.Get().(*keyScratch)
	b := s.buf[:0]
	route := ""
	if info != nil {
		route = info.Route
	}
	b = appendField(b, p.name)
	b = appendField(b, route)
	if !p.public {
		b = appendIdentity(b, info)
	}
	b = appendField(b, method)
	b = appendField(b, strings.ToLower(r.Host))
	b = appendField(b, r.URL.EscapedPath())
	s.pairs = p.queryPairs(s.pairs[:0], r.URL.RawQuery)
	b = binary.AppendUvarint(b, uint64(len(s.pairs)))
	for _, q := range s.pairs {
		b = appendField(b, q)
	}
	for _, h := range p.varyHeaders {
		vs := r.Header[h]
		b = binary.AppendUvarint(b, uint64(len(vs)))
		for _, v := range vs {
			b = appendField(b, v)
		}
	}
	sum := sha256.Sum256(b)
	s.buf = b
	clear(s.pairs)
	keyScratchPool.Put(s)

	var out strings.Builder
	out.Grow(len(p.name) + len(route) + 2 + 2*sha256.Size)
	out.WriteString(p.name)
	out.WriteByte(':')
	out.WriteString(route)
	out.WriteByte(':')
	var hx [2 * sha256.Size]byte
	hex.Encode(hx[:], sum[:])
	out.Write(hx[:])
	return out.String()
}

// appendIdentity adds exactly the identity Portico forwards upstream (X-Consumer-Name,
// X-Authenticated-Subject, X-Consumer-Groups), so two requests that share a key cannot have
// looked different to the upstream.
func appendIdentity(b []byte, info *reqctx.Info) []byte {
	if info == nil || info.Identity == nil {
		return append(b, 0)
	}
	id := info.Identity
	b = append(b, 1)
	b = appendField(b, id.Consumer)
	b = appendField(b, id.Subject)
	b = binary.AppendUvarint(b, uint64(len(id.Groups)))
	for _, g := range id.Groups {
		b = appendField(b, g)
	}
	return b
}

func appendField(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// queryPairs returns the raw "name=value" pairs of the query that belong in the key, sorted by
// name. Repeated names keep their order, since a backend may read them as an ordered list.
func (p *Policy) queryPairs(pairs []string, raw string) []string {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		if p.varyQuery != nil {
			if _, ok := p.varyQuery[queryName(pair)]; !ok {
				continue
			}
		}
		pairs = append(pairs, pair)
	}
	slices.SortStableFunc(pairs, func(a, b string) int {
		return strings.Compare(queryName(a), queryName(b))
	})
	return pairs
}

// queryName is a pair's parameter name, unescaped only when it needs to be.
func queryName(pair string) string {
	name, _, _ := strings.Cut(pair, "=")
	if strings.ContainsAny(name, "%+") {
		if u, err := url.QueryUnescape(name); err == nil {
			return u
		}
	}
	return name
}
