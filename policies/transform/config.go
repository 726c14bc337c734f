// Package transform implements the request-transform and response-transform policies: header and
// query-parameter edits in Kong's order (remove → rename → replace → add → append), JSON body
// edits (remove or rename fields, wrap responses in {"data": …, "meta": {…}}), and template
// values such as $(request_id) parsed once when the policy is built.
package transform

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/portico-gw/portico/internal/confval"
)

// DefaultMaxBodyBytes is the largest body a transform edits when max_body_bytes is unset; larger
// bodies pass through untouched, so a transform never holds a big upload or download in memory.
const DefaultMaxBodyBytes = 1 << 20

// RequestConfig is the request-transform policy's settings:
//
//	policies:
//	  tag-upstream:
//	    request-transform:
//	      headers: {remove: [Cookie], add: {X-Request-Source: portico, X-Trace: $(request_id)}}
//	      query:   {rename: {q: search}}
//	      body:    {remove: [user.password]}
type RequestConfig struct {
	// Headers edits request headers before the upstream sees them.
	Headers Operations `yaml:"headers"`
	// Query edits query parameters. The edited query string is re-encoded with parameters sorted
	// by name.
	Query Operations `yaml:"query"`
	// Body edits JSON request bodies.
	Body RequestBody `yaml:"body"`
}

// ResponseConfig is the response-transform policy's settings:
//
//	policies:
//	  tidy:
//	    response-transform:
//	      headers: {remove: [Server, X-Powered-By]}
//	      body:    {remove: [internal_id], wrap: true, meta: {request_id: $(request_id), latency_ms: $(latency_ms)}}
type ResponseConfig struct {
	// Headers edits response headers before the client sees them.
	Headers Operations `yaml:"headers"`
	// Body edits JSON response bodies. Only when a body edit is configured is the answer
	// buffered; header-only transforms stream.
	Body ResponseBody `yaml:"body"`
}

// Operations are the five edits, applied in Kong's order whatever their order in the YAML:
// remove, then rename, then replace (only names already present), then add (only names absent),
// then append (always). Within one operation, names are applied in sorted order. Values are
// templates (see the package README).
type Operations struct {
	// Remove deletes these names.
	Remove []string `yaml:"remove"`
	// Rename moves each present name's values to a new name (old: new), replacing any values the
	// new name had.
	Rename map[string]string `yaml:"rename"`
	// Replace sets names that are present to a new value; absent names stay absent.
	Replace map[string]string `yaml:"replace"`
	// Add sets names that are absent; present names keep their values.
	Add map[string]string `yaml:"add"`
	// Append adds a value to a name whether or not it is present.
	Append map[string]string `yaml:"append"`
}

// RequestBody edits JSON request bodies. A body is JSON when its Content-Type is
// application/json or ends in +json and it decodes; anything else, or a body over MaxBodyBytes,
// reaches the upstream untouched and whole.
type RequestBody struct {
	// Remove deletes fields by dot path ("user.password"). Arrays on the way are entered element
	// by element, so "items.secret" removes the field from every item.
	Remove []string `yaml:"remove"`
	// Rename renames fields: the key is a dot path, the value the new field name (or a dot path
	// with the same parent), e.g. {user.name: full_name}.
	Rename map[string]string `yaml:"rename"`
	// MaxBodyBytes is the largest body edited (default 1MiB).
	MaxBodyBytes confval.ByteSize `yaml:"max_body_bytes"`
}

// ResponseBody edits JSON response bodies; like RequestBody, with a wrapper.
type ResponseBody struct {
	// Remove deletes fields by dot path, as in RequestBody.
	Remove []string `yaml:"remove"`
	// Rename renames fields, as in RequestBody.
	Rename map[string]string `yaml:"rename"`
	// Wrap returns {"data": <body>, "meta": {…}} instead of the body.
	Wrap bool `yaml:"wrap"`
	// Meta are the wrapper's meta fields; values are templates. A value that is exactly
	// $(latency_ms) is written as a JSON number, every other value as a string. Requires wrap.
	Meta map[string]string `yaml:"meta"`
	// MaxBodyBytes is the largest body buffered and edited (default 1MiB); a larger answer is
	// streamed untouched.
	MaxBodyBytes confval.ByteSize `yaml:"max_body_bytes"`
}

// forbiddenHeaders belong to the transport: their values follow from the body and connection,
// which the transform itself keeps consistent (Content-Length after body edits).
var forbiddenHeaders = map[string]bool{"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Connection": true}

// Validate reports every problem under path ("policies.tag.request-transform").
func (c *RequestConfig) Validate(path string, p *confval.Problems) {
	c.compile(path, p)
}

// Validate reports every problem under path ("policies.tidy.response-transform").
func (c *ResponseConfig) Validate(path string, p *confval.Problems) {
	c.compile(path, p)
}

func (c *RequestConfig) compile(path string, p *confval.Problems) (headers, query opSet, body *bodyEdits) {
	if c.Headers.empty() && c.Query.empty() && len(c.Body.Remove) == 0 && len(c.Body.Rename) == 0 {
		p.Addf(path, "configures nothing: set headers, query or body")
	}
	headers = c.Headers.compile(confval.Join(path, "headers"), true, false, p)
	query = c.Query.compile(confval.Join(path, "query"), false, false, p)
	body = compileBody(confval.Join(path, "body"), c.Body.Remove, c.Body.Rename, c.Body.MaxBodyBytes, p)
	return headers, query, body
}

func (c *ResponseConfig) compile(path string, p *confval.Problems) (headers opSet, body *bodyEdits) {
	b := c.Body
	if c.Headers.empty() && len(b.Remove) == 0 && len(b.Rename) == 0 && !b.Wrap {
		p.Addf(path, "configures nothing: set headers or body")
	}
	headers = c.Headers.compile(confval.Join(path, "headers"), true, true, p)
	bpath := confval.Join(path, "body")
	body = compileBody(bpath, b.Remove, b.Rename, b.MaxBodyBytes, p)
	if len(b.Meta) > 0 && !b.Wrap {
		p.Addf(confval.Join(bpath, "meta"), "meta needs wrap: true")
	}
	if b.Wrap {
		if body == nil {
			body = &bodyEdits{max: b.MaxBodyBytes.Or(DefaultMaxBodyBytes)}
		}
		body.wrap = true
		for _, k := range sortedKeys(b.Meta) {
			t, err := parseTemplate(b.Meta[k], true)
			if err != nil {
				p.Addf(confval.Key(confval.Join(bpath, "meta"), k), "%v", err)
				continue
			}
			body.meta = append(body.meta, metaField{name: k, value: t})
		}
	}
	return headers, body
}

// opSet is a compiled Operations: canonical names, sorted, templates parsed.
type opSet struct {
	remove  []string
	rename  [][2]string
	replace []namedValue
	add     []namedValue
	append  []namedValue
	// dynamic is set when some value has a variable, so values are rendered per request.
	dynamic bool
	// spellings are, for header sets, the removed names and rename sources as backends that read
	// underscores as dashes see them; other spellings of these are dropped too.
	spellings []spelling
	// underscoreNames is set when a configured spelling has an underscore, so that even keys
	// without one (X-Foo for a configured X_Foo) must be checked.
	underscoreNames bool
}

type namedValue struct {
	name  string
	value template
}

func (o opSet) empty() bool {
	return len(o.remove)+len(o.rename)+len(o.replace)+len(o.add)+len(o.append) == 0
}

func (o Operations) empty() bool {
	return len(o.Remove)+len(o.Rename)+len(o.Replace)+len(o.Add)+len(o.Append) == 0
}

// compile checks names and parses values. Header names are canonicalized; query names are kept
// as written since parameters are case-sensitive.
func (o Operations) compile(path string, header, response bool, p *confval.Problems) opSet {
	var s opSet
	name := func(at, n string) (string, bool) {
		if !header {
			if n == "" {
				p.Addf(at, "empty parameter name")
				return "", false
			}
			return n, true
		}
		if !confval.IsToken(n) {
			p.Addf(at, "%q is not a valid header name", n)
			return "", false
		}
		c := http.CanonicalHeaderKey(n)
		if forbiddenHeaders[c] {
			p.Addf(at, "%s cannot be transformed: it follows from the body and connection (Portico keeps it consistent)", c)
			return "", false
		}
		return c, true
	}
	for i, n := range o.Remove {
		if c, ok := name(confval.Index(confval.Join(path, "remove"), i), n); ok {
			s.remove = append(s.remove, c)
		}
	}
	rpath := confval.Join(path, "rename")
	for _, k := range sortedKeys(o.Rename) {
		from, ok1 := name(confval.Key(rpath, k), k)
		to, ok2 := name(confval.Key(rpath, k), o.Rename[k])
		if ok1 && ok2 {
			s.rename = append(s.rename, [2]string{from, to})
		}
	}
	values := func(op string, m map[string]string) []namedValue {
		var out []namedValue
		opath := confval.Join(path, op)
		for _, k := range sortedKeys(m) {
			at := confval.Key(opath, k)
			c, ok := name(at, k)
			t, err := parseTemplate(m[k], response)
			if err != nil {
				p.Addf(at, "%v", err)
				continue
			}
			if ok {
				out = append(out, namedValue{name: c, value: t})
				s.dynamic = s.dynamic || !t.static
			}
		}
		return out
	}
	s.replace = values("replace", o.Replace)
	s.add = values("add", o.Add)
	s.append = values("append", o.Append)
	if header {
		for _, n := range s.remove {
			s.spellings = append(s.spellings, spelling{norm: headerSpelling(n)})
			s.underscoreNames = s.underscoreNames || strings.IndexByte(n, '_') >= 0
		}
		for _, rn := range s.rename {
			s.spellings = append(s.spellings, spelling{norm: headerSpelling(rn[0]), keep: rn[0]})
			s.underscoreNames = s.underscoreNames || strings.IndexByte(rn[0], '_') >= 0
		}
	}
	return s
}

// bodyEdits is a compiled body section.
type bodyEdits struct {
	remove [][]string
	rename []fieldRename
	wrap   bool
	meta   []metaField
	max    int64
}

type fieldRename struct {
	path []string
	to   string
}

type metaField struct {
	name  string
	value template
}

// edits reports whether the body must be decoded (wrapping alone only needs a validity check).
func (b *bodyEdits) edits() bool { return len(b.remove)+len(b.rename) > 0 }

func compileBody(path string, remove []string, rename map[string]string, max confval.ByteSize, p *confval.Problems) *bodyEdits {
	if len(remove) == 0 && len(rename) == 0 {
		return nil
	}
	b := &bodyEdits{max: max.Or(DefaultMaxBodyBytes)}
	for i, r := range remove {
		segs, err := splitPath(r)
		if err != nil {
			p.Addf(confval.Index(confval.Join(path, "remove"), i), "%v", err)
			continue
		}
		b.remove = append(b.remove, segs)
	}
	rpath := confval.Join(path, "rename")
	for _, k := range sortedKeys(rename) {
		at := confval.Key(rpath, k)
		from, err := splitPath(k)
		if err != nil {
			p.Addf(at, "%v", err)
			continue
		}
		to, err := splitPath(rename[k])
		if err != nil {
			p.Addf(at, "new name: %v", err)
			continue
		}
		if len(to) > 1 {
			// A dot path target must stay in the same object: moving values between objects is
			// not a rename.
			if len(to) != len(from) || strings.Join(to[:len(to)-1], ".") != strings.Join(from[:len(from)-1], ".") {
				p.Addf(at, "new name %q must be a field name or a path with the same parent as %q", rename[k], k)
				continue
			}
		}
		b.rename = append(b.rename, fieldRename{path: from, to: to[len(to)-1]})
	}
	return b
}

func splitPath(s string) ([]string, error) {
	if s == "" {
		return nil, errors.New("empty field path")
	}
	segs := strings.Split(s, ".")
	for _, seg := range segs {
		if seg == "" {
			return nil, fmt.Errorf("field path %q has an empty segment", s)
		}
	}
	return segs, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// problemsError joins build-time problems into one error for New.
func problemsError(p confval.Problems) error {
	if len(p) == 0 {
		return nil
	}
	msgs := make([]string, len(p))
	for i, pr := range p {
		msgs[i] = pr.Message
		if pr.Path != "" {
			msgs[i] = pr.Path + ": " + pr.Message
		}
	}
	return errors.New(strings.Join(msgs, "; "))
}
