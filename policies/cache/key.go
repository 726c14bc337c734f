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
// public), method, host, the scheme and forwarding fields the upstream is told, path, sorted
// query (or its allow-listed part), vary header values and what the policies inside the cache
// will render from the request (variants).
// Fields are length-prefixed so that no two different requests hash the same input.
func (p *Policy) key(r *http.Request, info *reqctx.Info, method string, edits *edits) string {
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
	b = appendForwarding(b, r)
	b = appendField(b, r.URL.EscapedPath())
	s.pairs = p.queryPairs(s.pairs[:0], r.URL.RawQuery)
	b = appendValues(b, s.pairs)
	for _, h := range p.varyHeaders {
		b = appendValues(b, r.Header[h])
	}
	if edits != nil {
		b = edits.appendTo(b, r)
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

// appendIdentity adds the identity Portico forwards upstream (X-Consumer-Name,
// X-Authenticated-Subject, X-Consumer-Groups, X-Anonymous-Consumer; see
// reqctx.SetUpstreamHeaders) and the token issuer the subject belongs to, so two requests that
// share a key cannot have looked different to the upstream. The resolver cache's backendKey uses
// it too.
func appendIdentity(b []byte, info *reqctx.Info) []byte {
	if info == nil || info.Identity == nil {
		return append(b, 0)
	}
	id := info.Identity
	// The anonymous fallback consumer may also be a real consumer with the same name and
	// groups; only X-Anonymous-Consumer tells the upstream the two apart.
	if id.Anonymous {
		b = append(b, 2)
	} else {
		b = append(b, 1)
	}
	b = appendField(b, id.Consumer)
	b = appendField(b, id.Subject)
	// The subject is the issuer's: "sub": "1" at one identity provider is not "sub": "1" at
	// another, and the upstream tells them apart by their tokens (two jwt policies on a route,
	// or allow_unknown_consumers, leave the consumer empty for both).
	iss, _ := id.Claims["iss"].(string)
	b = appendField(b, iss)
	b = binary.AppendUvarint(b, uint64(len(id.Groups)))
	for _, g := range id.Groups {
		b = appendField(b, g)
	}
	return b
}

// appendForwarding adds what the forwarder (routes/proxy.go, rewriter.apply and forwarded)
// tells the upstream about the original request besides r.Host, so that an answer built from
// it (an http→https redirect, absolute links) is never replayed to a request that told the
// upstream something else:
//   - the scheme of this hop, from r.TLS: it is Forwarded's proto=, and X-Forwarded-Proto when
//     no trusted proxy sent one;
//   - X-Forwarded-Host, X-Forwarded-Proto and X-Forwarded-Port as a trusted proxy sent them (the
//     edge drops them from anyone else; the forwarder passes them on unchanged);
//   - the host= and proto= parameters of a trusted proxy's Forwarded elements, which the
//     forwarder extends.
//
// The client addresses (X-Forwarded-For, X-Real-Ip, Forwarded for=) are left out: they differ
// per client, and keying them would leave nothing to share.
func appendForwarding(b []byte, r *http.Request) []byte {
	if r.TLS != nil {
		b = append(b, 's')
	} else {
		b = append(b, 'p')
	}
	b = appendValues(b, r.Header["X-Forwarded-Host"])
	b = appendValues(b, r.Header["X-Forwarded-Proto"])
	b = appendValues(b, r.Header["X-Forwarded-Port"])
	for _, line := range r.Header["Forwarded"] {
		b = appendForwardedLine(b, line)
	}
	return append(b, fwdEnd)
}

// Tags of the Forwarded projection appendForwardedLine writes: a tag byte, then for host and
// proto a length-prefixed value, so that no two projections encode alike.
const (
	fwdEnd byte = iota
	fwdElement
	fwdHost
	fwdProto
)

// appendForwardedLine adds the host= and proto= parameters of one Forwarded field line (RFC
// 7239: elements separated by ',', pairs by ';', values tokens or quoted strings), raw and in
// order, with a mark at each element. It allocates nothing.
func appendForwardedLine(b []byte, line string) []byte {
	b = append(b, fwdElement)
	for i := 0; i < len(line); {
		switch c := line[i]; c {
		case ',':
			b = append(b, fwdElement)
			i++
			continue
		case ';', ' ', '\t':
			i++
			continue
		}
		start := i
		for i < len(line) && line[i] != '=' && line[i] != ';' && line[i] != ',' {
			i++
		}
		name := strings.TrimSpace(line[start:i])
		if i >= len(line) || line[i] != '=' {
			continue // a malformed pair without a value
		}
		i++
		vstart := i
		if i < len(line) && line[i] == '"' {
			for i++; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' {
					i++
				}
			}
			i = min(i+1, len(line))
		} else {
			for i < len(line) && line[i] != ';' && line[i] != ',' {
				i++
			}
		}
		switch {
		case strings.EqualFold(name, "host"):
			b = appendField(append(b, fwdHost), line[vstart:i])
		case strings.EqualFold(name, "proto"):
			b = appendField(append(b, fwdProto), line[vstart:i])
		}
	}
	return b
}

// appendValues adds a header's values (or any list) with their count.
func appendValues(b []byte, vs []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(vs)))
	for _, v := range vs {
		b = appendField(b, v)
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

// appendTo replays the edits of the policies inside the cache (request transforms) on a copy of
// r and adds what they leave: each policy's name, the query pairs they add or remove, and the
// values of the headers they touch. The replay runs them in order, so one that renames X-Foo to
// X-Lang feeds another that renders $(header.X-Lang), as on the way to the upstream. Only the
// headers they read or change are copied.
func (e *edits) appendTo(b []byte, r *http.Request) []byte {
	c := *r
	c.Header = make(http.Header, len(e.headers))
	for _, h := range e.headers {
		if v, ok := r.Header[h]; ok {
			c.Header[h] = slices.Clone(v)
		}
	}
	u := *r.URL
	c.URL = &u
	c.Body, c.GetBody = nil, nil
	for _, v := range e.variants {
		v.EditForKey(&c)
	}
	b = append(b, 1) // a key with edits differs from one without, whatever the fields before
	if e.query && c.URL.RawQuery != r.URL.RawQuery {
		// The pairs the edits added and those they took away, not the whole query: the key
		// already holds the query as sent (or its allow-listed part, which a whole edited query
		// would undo).
		added, removed := queryDiff(r.URL.RawQuery, c.URL.RawQuery)
		b = appendValues(b, added)
		b = appendValues(b, removed)
	} else {
		b = appendValues(appendValues(b, nil), nil)
	}
	for _, v := range e.variants {
		b = appendField(b, v.KeyName())
		for _, h := range v.KeyHeaders() {
			b = appendValues(b, c.Header[h])
		}
	}
	return b
}

// queryDiff returns the raw pairs of after that before lacks and those of before that after
// lacks, each sorted, counting repeats.
func queryDiff(before, after string) (added, removed []string) {
	b, a := strings.Split(before, "&"), strings.Split(after, "&")
	slices.Sort(b)
	slices.Sort(a)
	i, j := 0, 0
	for i < len(b) || j < len(a) {
		switch {
		case j == len(a) || i < len(b) && b[i] < a[j]:
			if b[i] != "" {
				removed = append(removed, b[i])
			}
			i++
		case i == len(b) || a[j] < b[i]:
			if a[j] != "" {
				added = append(added, a[j])
			}
			j++
		default:
			i++
			j++
		}
	}
	return added, removed
}
