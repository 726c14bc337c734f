package bff

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/portico-gw/portico/internal/confval"
)

// Defaults for the GraphQL limits; zero in config means these.
const (
	// DefaultMaxDepth bounds field nesting. The demo's deepest useful query (orders → edges → node
	// → user → orders → …) needs far less; a cycle-walking attack needs far more.
	DefaultMaxDepth = 12
	// DefaultMaxComplexity bounds the @cost score of one operation (see schema/schema.graphql).
	DefaultMaxComplexity = 1000
	// DefaultMaxDocumentBytes bounds the GraphQL document text, checked before it is parsed.
	DefaultMaxDocumentBytes = 32 << 10
	// DefaultMaxTokens bounds the tokens the parser reads. Validation compares fields pairwise
	// (a field merged with another must agree with it), so its time grows with the square of
	// the document: 4,500 copies of `me{id}` fit in 32KiB and took seconds of CPU to reject.
	// 5,000 tokens is several times the largest operation in the demo's stored documents.
	DefaultMaxTokens = 5000
	// DefaultMaxBatch bounds the operations in one batched request when batching is on.
	DefaultMaxBatch = 10
)

// Persisted-query modes for GraphQLConfig.PersistedQueries.
const (
	PersistedQueriesAPQ = "apq"
	PersistedQueriesOff = "off"
)

// Config is one BFF profile under `bffs:` in the YAML, for example
// `bffs: {web: {...}, mobile: {...}}`. Every client team gets one: its own endpoint, limits and
// operation set over the shared schema and upstream layer.
type Config struct {
	// Path is where the profile is mounted ("/web"): it serves Path+"/graphql", its REST routes
	// below Path, Path+"/openapi.json" and, when enabled, Path+"/playground". Required; it starts
	// with "/" and does not end with one.
	Path string `yaml:"path"`
	// GraphQL holds the limits and protocol options of Path+"/graphql".
	GraphQL GraphQLConfig `yaml:"graphql"`
	// REST maps HTTP routes to named operations in schema/operations/<bff>/.
	REST []RESTConfig `yaml:"rest"`
	// Playground serves a GraphiQL page at Path+"/playground" (default off for every BFF). The
	// page loads GraphiQL's JavaScript and CSS from a public CDN (jsdelivr), so the browser
	// needs internet access; the gateway itself does not.
	Playground *bool `yaml:"playground"`
	// Policies names policy instances (from `policies:`) applied to everything under Path, after
	// the global ones. The gateway wiring builds that chain around Handler; bff does not read it.
	Policies []string `yaml:"policies"`
}

// GraphQLConfig holds the per-BFF GraphQL limits. Every limit applies to REST routes too: both
// run through the same executor.
type GraphQLConfig struct {
	// Introspection allows __schema and __type queries (default false). When off they are
	// rejected with 400 INTROSPECTION_DISABLED before anything runs; __typename always works.
	Introspection *bool `yaml:"introspection"`
	// MaxDepth is the deepest field nesting an operation may have, counted through fragments
	// (default 12).
	MaxDepth int `yaml:"max_depth"`
	// MaxComplexity is the highest @cost score an operation may have (default 1000). A field
	// costs its weight (1, or its @cost weight, or FieldCosts) plus its selection's cost, times
	// `first` when the field takes that argument.
	MaxComplexity int `yaml:"max_complexity"`
	// MaxDocumentBytes is the longest GraphQL document accepted, checked before parsing
	// (default 32KiB); longer answers 413. A POST body may be four times as large, for variables.
	MaxDocumentBytes confval.ByteSize `yaml:"max_document_bytes"`
	// MaxTokens is the most lexical tokens (names, punctuation, values) a document may have
	// (default 5000); more answers 400 before validation, whose cost grows with its square.
	MaxTokens int `yaml:"max_tokens"`
	// PersistedQueries is "apq" (automatic persisted queries, the Apollo extensions.persistedQuery
	// protocol, stored in the APQ cache) or "off". Default "apq", except that with
	// TrustedDocumentsOnly nothing can be registered and stored operations answer hashes instead.
	PersistedQueries string `yaml:"persisted_queries"`
	// TrustedDocumentsOnly lets only the documents in schema/operations/<bff>/ run, referenced by
	// operation name, by sha256 hash (extensions.persistedQuery.sha256Hash or documentId) or by
	// sending their exact text. Anything else answers 403 PERSISTED_QUERY_REQUIRED.
	TrustedDocumentsOnly bool `yaml:"trusted_documents_only"`
	// Batching accepts a JSON array of operations in one POST (default false: an array answers
	// 400). Batched operations run concurrently and share the request's dataloaders.
	Batching bool `yaml:"batching"`
	// MaxBatch is the most operations one batch may hold (default 10).
	MaxBatch int `yaml:"max_batch"`
	// FieldCosts overrides the schema's @cost weights for this BFF, by "Type.field"
	// (for example {"Query.orders": 25}).
	FieldCosts map[string]int `yaml:"field_costs"`
}

// RESTConfig maps one HTTP route to a named operation. Path parameters, query parameters and (for
// methods with a body) top-level JSON body fields become the operation's variables, typed by its
// variable definitions.
type RESTConfig struct {
	// Method is GET, POST, PUT, PATCH or DELETE (default GET). GET routes may only run queries.
	Method string `yaml:"method"`
	// Path is below the profile's Path, with {name} segments for path parameters, each of which
	// must be a variable of the operation: "/orders/{id}".
	Path string `yaml:"path"`
	// Operation names an operation in schema/operations/<bff>/*.graphql.
	Operation string `yaml:"operation"`
	// Result is an optional dot path into the operation's data that becomes the response body,
	// by response key (alias or field name): "order" answers data.order. A null result answers
	// 404 unless a backend failure caused it.
	Result string `yaml:"result"`
}

var (
	pathSegment = regexp.MustCompile(`^[A-Za-z0-9._~-]+$`)
	paramName   = regexp.MustCompile(`^\{([A-Za-z_][A-Za-z0-9_]*)\}$`)
	graphqlName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// restMethods are the methods a REST route may use.
var restMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// reservedPaths are served by the profile itself and cannot be REST routes.
var reservedPaths = []string{"/graphql", "/openapi.json", "/playground"}

// Validate records every problem in c under path ("bffs.web"). Whether operations and variables
// exist is checked by New, which has the schema and the operation files.
func (c *Config) Validate(path string, p *confval.Problems) {
	switch {
	case c.Path == "":
		p.Addf(confval.Join(path, "path"), "is required (for example /web)")
	case c.Path == "/" || !strings.HasPrefix(c.Path, "/") || strings.HasSuffix(c.Path, "/"):
		p.Addf(confval.Join(path, "path"), "%q must start with / and not end with one (for example /web)", c.Path)
	default:
		for _, seg := range strings.Split(c.Path[1:], "/") {
			if !pathSegment.MatchString(seg) {
				p.Addf(confval.Join(path, "path"), "%q has an invalid segment %q (letters, digits and ._~- only)", c.Path, seg)
				break
			}
		}
	}
	c.GraphQL.validate(confval.Join(path, "graphql"), p)
	seen := map[string]int{}
	template := map[string]int{}
	for i := range c.REST {
		rp := confval.Index(confval.Join(path, "rest"), i)
		r := &c.REST[i]
		r.validate(rp, p)
		norm := normalizedPattern(r.Path)
		key := r.method() + " " + norm
		if j, dup := seen[key]; dup {
			p.Addf(rp, "%s %s is already mapped by rest[%d]", r.method(), r.Path, j)
		}
		seen[key] = i
		if j, ok := template[norm]; !ok {
			template[norm] = i
		} else if other := c.REST[j].Path; other != r.Path {
			// One URL, so one path in the OpenAPI document, which must name its parameters
			// once: a document with /orders/{id} and /orders/{orderId} is invalid and client
			// generators refuse it.
			p.Addf(confval.Join(rp, "path"), "%s names its parameters otherwise than rest[%d]'s %s, the same path; use the same names", r.Path, j, other)
		}
	}
}

func (g *GraphQLConfig) validate(path string, p *confval.Problems) {
	for _, lim := range []struct {
		name string
		v    int64
	}{
		{"max_depth", int64(g.MaxDepth)}, {"max_complexity", int64(g.MaxComplexity)},
		{"max_document_bytes", int64(g.MaxDocumentBytes)}, {"max_batch", int64(g.MaxBatch)},
		{"max_tokens", int64(g.MaxTokens)},
	} {
		if lim.v < 0 {
			p.Addf(confval.Join(path, lim.name), "must not be negative (0 means the default)")
		}
	}
	switch g.PersistedQueries {
	case "", PersistedQueriesOff:
	case PersistedQueriesAPQ:
		if g.TrustedDocumentsOnly {
			p.Addf(confval.Join(path, "persisted_queries"),
				"apq registers any document, which trusted_documents_only forbids; use off (stored operations still answer by hash)")
		}
	default:
		p.Addf(confval.Join(path, "persisted_queries"), "unknown mode %q (allowed: apq, off)", g.PersistedQueries)
	}
	keys := make([]string, 0, len(g.FieldCosts))
	for k := range g.FieldCosts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		typ, field, ok := strings.Cut(k, ".")
		if !ok || !graphqlName.MatchString(typ) || !graphqlName.MatchString(field) {
			p.Addf(confval.Key(confval.Join(path, "field_costs"), k), "must be written Type.field (for example Query.orders)")
		}
		if g.FieldCosts[k] < 0 {
			p.Addf(confval.Key(confval.Join(path, "field_costs"), k), "weight %d must not be negative", g.FieldCosts[k])
		}
	}
}

func (r *RESTConfig) validate(path string, p *confval.Problems) {
	if r.Method != "" && !slices.Contains(restMethods, r.Method) {
		p.Addf(confval.Join(path, "method"), "unknown method %q (allowed: %s)", r.Method, strings.Join(restMethods, ", "))
	}
	if _, err := parseRoutePath(r.Path); err != nil {
		p.Addf(confval.Join(path, "path"), "%v", err)
	}
	if r.Operation == "" {
		p.Addf(confval.Join(path, "operation"), "is required: the name of an operation in schema/operations/<bff>/")
	} else if !graphqlName.MatchString(r.Operation) {
		p.Addf(confval.Join(path, "operation"), "%q is not a GraphQL operation name", r.Operation)
	}
	if r.Result != "" {
		for _, seg := range strings.Split(r.Result, ".") {
			if !graphqlName.MatchString(seg) {
				p.Addf(confval.Join(path, "result"), "%q must be a dot path of response keys (for example order or dashboard.me)", r.Result)
				break
			}
		}
	}
}

func (r *RESTConfig) method() string {
	if r.Method == "" {
		return http.MethodGet
	}
	return r.Method
}

// routePath is a parsed REST path: its segments and the names of its parameters in order.
type routePath struct {
	segments []string // literal segments, or "{name}"
	params   []string
}

// parseRoutePath checks a REST route path: it starts with "/", each segment is a literal or a
// whole-segment {param}, parameters are unique, and it does not shadow the profile's own paths.
func parseRoutePath(s string) (routePath, error) {
	var rp routePath
	if s == "" {
		return rp, fmt.Errorf("is required (for example /orders/{id})")
	}
	if !strings.HasPrefix(s, "/") || (len(s) > 1 && strings.HasSuffix(s, "/")) {
		return rp, fmt.Errorf("%q must start with / and not end with one", s)
	}
	if slices.Contains(reservedPaths, s) {
		return rp, fmt.Errorf("%q is served by the profile itself (reserved: %s)", s, strings.Join(reservedPaths, ", "))
	}
	if s == "/" {
		return rp, nil
	}
	for _, seg := range strings.Split(s[1:], "/") {
		if m := paramName.FindStringSubmatch(seg); m != nil {
			if slices.Contains(rp.params, m[1]) {
				return rp, fmt.Errorf("%q names parameter {%s} twice", s, m[1])
			}
			rp.params = append(rp.params, m[1])
		} else if !pathSegment.MatchString(seg) {
			return rp, fmt.Errorf("%q has an invalid segment %q (a literal, or {name} for a parameter)", s, seg)
		}
		rp.segments = append(rp.segments, seg)
	}
	return rp, nil
}

// normalizedPattern replaces parameter names so that /orders/{id} and /orders/{oid} collide.
func normalizedPattern(s string) string {
	rp, err := parseRoutePath(s)
	if err != nil {
		return s
	}
	out := make([]string, len(rp.segments))
	for i, seg := range rp.segments {
		if paramName.MatchString(seg) {
			seg = "{}"
		}
		out[i] = seg
	}
	return "/" + strings.Join(out, "/")
}

func (c *Config) playground() bool { return c.Playground != nil && *c.Playground }

func (g *GraphQLConfig) introspection() bool { return g.Introspection != nil && *g.Introspection }

func (g *GraphQLConfig) maxDepth() int { return orDefault(g.MaxDepth, DefaultMaxDepth) }

func (g *GraphQLConfig) maxComplexity() int { return orDefault(g.MaxComplexity, DefaultMaxComplexity) }

func (g *GraphQLConfig) maxDocumentBytes() int64 {
	return g.MaxDocumentBytes.Or(DefaultMaxDocumentBytes)
}

func (g *GraphQLConfig) maxBatch() int { return orDefault(g.MaxBatch, DefaultMaxBatch) }

func (g *GraphQLConfig) maxTokens() int { return orDefault(g.MaxTokens, DefaultMaxTokens) }

func (g *GraphQLConfig) apq() bool {
	switch g.PersistedQueries {
	case PersistedQueriesAPQ:
		return true
	case "":
		return !g.TrustedDocumentsOnly
	}
	return false
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}
