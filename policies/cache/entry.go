package cache

import (
	"encoding/binary"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/portico-gw/portico/internal/reqctx"
)

// entry is a stored response. It is immutable once stored: the memory store hands the same entry
// to concurrent hits, so every header slice is clipped (len == cap) and an append by a later
// handler copies instead of writing into the shared array.
type entry struct {
	status int
	header http.Header
	body   []byte
	// stored is when the response was generated: the store time minus the upstream's Age.
	stored time.Time
	// contentLength is the Content-Length value, computed once so a hit does not format it.
	contentLength []string
}

func newEntry(status int, h http.Header, body []byte, stored time.Time) *entry {
	return &entry{status: status, header: h, body: body, stored: stored,
		contentLength: []string{strconv.Itoa(len(body))}}
}

// cost approximates the entry's memory in bytes, for ristretto's capacity.
func (e *entry) cost() int64 {
	n := len(e.body) + 64
	for k, vs := range e.header {
		n += len(k) + 16
		for _, v := range vs {
			n += len(v) + 16
		}
	}
	return int64(n)
}

// hopHeaders are connection-level headers (RFC 9110 §7.6.1) that never belong in a stored
// response; the cache's own and Age are recomputed for each answer. X-Request-Id is the request's
// own: replayed, a hit would show the ID of the request that filled the cache, another client's.
var hopHeaders = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true,
	"Upgrade": true, "Set-Cookie": true, "Age": true, "Content-Length": true,
	headerStatus: true, headerKey: true, reqctx.RequestIDKey: true,
}

// storableHeader copies h without hop-by-hop headers (also those named in Connection), with
// every value slice clipped.
func storableHeader(h http.Header) http.Header {
	out := make(http.Header, len(h))
	var named map[string]bool
	for _, v := range h["Connection"] {
		eachDirective(v, func(name, _ string) {
			if named == nil {
				named = map[string]bool{}
			}
			named[http.CanonicalHeaderKey(name)] = true
		})
	}
	for k, vs := range h {
		if hopHeaders[k] || named[k] {
			continue
		}
		c := make([]string, len(vs))
		copy(c, vs)
		out[k] = c
	}
	return out
}

// The Redis encoding: a version byte, the status, the stored time, the headers and the body.
// A custom binary form rather than JSON or gob keeps a Redis hit to one pass over the bytes.
const encodingVersion = 1

var errCorrupt = errors.New("corrupt cache entry")

func (e *entry) encode() []byte {
	n := 32 + len(e.body)
	for k, vs := range e.header {
		n += len(k) + 4
		for _, v := range vs {
			n += len(v) + 4
		}
	}
	b := make([]byte, 0, n)
	b = append(b, encodingVersion)
	b = binary.AppendUvarint(b, uint64(e.status))
	b = binary.AppendVarint(b, e.stored.UnixNano())
	b = binary.AppendUvarint(b, uint64(len(e.header)))
	for k, vs := range e.header {
		b = appendString(b, k)
		b = binary.AppendUvarint(b, uint64(len(vs)))
		for _, v := range vs {
			b = appendString(b, v)
		}
	}
	return append(b, e.body...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeEntry parses encode's output. The body aliases b.
func decodeEntry(b []byte) (*entry, error) {
	d := decoder{b: b}
	if len(b) == 0 || b[0] != encodingVersion {
		return nil, errCorrupt
	}
	d.b = d.b[1:]
	status := d.uvarint()
	stored := d.varint()
	nh := d.uvarint()
	if d.err != nil || status < 100 || status > 599 || nh > uint64(len(d.b)) {
		return nil, errCorrupt
	}
	h := make(http.Header, nh)
	for i := uint64(0); i < nh; i++ {
		k := d.string()
		nv := d.uvarint()
		if d.err != nil || nv > uint64(len(d.b)) {
			return nil, errCorrupt
		}
		vs := make([]string, nv)
		for j := range vs {
			vs[j] = d.string()
		}
		h[k] = vs
	}
	if d.err != nil {
		return nil, errCorrupt
	}
	return newEntry(int(status), h, d.b, time.Unix(0, stored)), nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = errCorrupt
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
