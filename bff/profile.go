// Package bff serves Portico's backends-for-frontends: one Profile per client team (web, mobile,
// …), each mounting a GraphQL endpoint, REST routes mapped to stored operations, an OpenAPI
// description of those routes and, when enabled, a GraphiQL page. Both facades run through one
// gqlgen server, executor and set of extensions (limits, persisted queries, trusted documents,
// error masking), so they cannot drift apart.
package bff

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/playground"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/portico-gw/portico/internal/apierror"
	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/resolvers"
)

// Deps are what a Profile needs beyond its config. One set usually serves every profile of a
// config snapshot.
type Deps struct {
	// Schema is the executable schema, from resolvers.NewExecutableSchema. Required.
	Schema graphql.ExecutableSchema
	// Backend is the resolvers' upstream client, for per-request dataloaders. Without it the
	// schema installs loaders per operation, and a batch of operations does not share them.
	Backend resolvers.Backend
	// APQCache stores automatic persisted queries. Nil means an in-memory cache created by New
	// and released by Close; pass one cache (NewRedisAPQCache for several instances) to keep
	// registrations across reloads.
	APQCache graphql.Cache[string]
	// Operations holds the stored operations, one directory per BFF (schema.Operations() embeds
	// schema/operations; os.DirFS reads them from disk). Nil means none.
	Operations fs.FS
	// Logger receives masked internal errors and panics (default slog.Default()).
	Logger *slog.Logger
}

// Profile is one BFF, built and checked once per config snapshot and immutable afterwards.
type Profile struct {
	name    string
	cfg     Config
	backend resolvers.Backend
	log     *slog.Logger
	docs    *documentSet
	routes  []*restRoute
	server  *handler.Server
	handler http.Handler
	openapi []byte
	closers []func()
}

// New builds the profile called name. Everything that can be checked is checked here, not per
// request: the config, that every stored operation parses and validates against the schema, that
// REST routes name existing operations and variables, that the stored operations the profile runs
// fit its depth and complexity limits, and that field costs name real fields.
func New(name string, cfg Config, deps Deps) (*Profile, error) {
	var problems confval.Problems
	cfg.Validate(confval.Key("bffs", name), &problems)
	if len(problems) > 0 {
		msgs := make([]string, len(problems))
		for i, pr := range problems {
			msgs[i] = pr.Path + ": " + pr.Message
		}
		return nil, fmt.Errorf("bff %s: %s", name, strings.Join(msgs, "; "))
	}
	if deps.Schema == nil {
		return nil, fmt.Errorf("bff %s: no executable schema", name)
	}
	p := &Profile{name: name, cfg: cfg, backend: deps.Backend, log: deps.Logger}
	if p.log == nil {
		p.log = slog.Default()
	}
	p.log = p.log.With("bff", name)
	schema := deps.Schema.Schema()
	if err := checkFieldCosts(schema, cfg.GraphQL.FieldCosts); err != nil {
		return nil, fmt.Errorf("bff %s: %w", name, err)
	}
	docs, err := loadDocuments(deps.Operations, name, schema)
	if err != nil {
		return nil, fmt.Errorf("bff %s: stored operations: %w", name, err)
	}
	p.docs = docs
	if len(docs.byName) == 0 && (len(cfg.REST) > 0 || cfg.GraphQL.TrustedDocumentsOnly) {
		return nil, fmt.Errorf("bff %s: rest routes and trusted_documents_only need operations in schema/operations/%s/, and there are none", name, name)
	}
	if p.routes, err = buildRoutes(&cfg, docs, schema, name); err != nil {
		return nil, err
	}
	if err := checkStoredLimits(name, &cfg, withFieldCosts(deps.Schema, cfg.GraphQL.FieldCosts), p.routes, docs); err != nil {
		return nil, err
	}
	if p.openapi, err = openAPIDocument(name, &cfg, p.routes); err != nil {
		return nil, fmt.Errorf("bff %s: openapi: %w", name, err)
	}
	apq := deps.APQCache
	if cfg.GraphQL.apq() && apq == nil {
		c, err := NewAPQCache(nil, 0)
		if err != nil {
			return nil, fmt.Errorf("bff %s: %w", name, err)
		}
		apq = c.WithLogger(p.log)
		p.closers = append(p.closers, c.Close)
	}
	p.server = p.newServer(deps.Schema, apq)
	if p.handler, err = p.newRouter(); err != nil {
		p.Close()
		return nil, fmt.Errorf("bff %s: %w", name, err)
	}
	return p, nil
}

// newServer assembles the one gqlgen server both facades use. Extensions run in the order added:
// parameter mutators (integral numbers, size, stored documents, APQ lookup) before parsing, then
// context mutators (introspection, variables, depth, complexity, APQ registration) after
// validation and before any resolver.
func (p *Profile) newServer(es graphql.ExecutableSchema, apq graphql.Cache[string]) *handler.Server {
	g := &p.cfg.GraphQL
	srv := handler.New(es)
	srv.AddTransport(restTransport{p})
	srv.AddTransport(graphqlTransport{p})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.SetParserTokenLimit(g.maxTokens())
	srv.SetValidationRulesFn(cappedRules(g.introspection()))
	srv.SetErrorPresenter(p.presentError)
	srv.SetRecoverFunc(p.recoverPanic)
	// Response interceptors: a failed @required field nulls data; errors come out sorted by path,
	// so the answer never depends on which backend failed first. A field interceptor makes an Int
	// result outside 32 bits a field error, as the spec's output coercion requires.
	srv.Use(resolvers.FailOnRequired{})
	srv.Use(resolvers.StableErrors{})
	srv.Use(resolvers.Int32Results{})
	srv.Use(integralNumbers{})
	srv.Use(documentSize{max: g.maxDocumentBytes()})
	srv.Use(storedDocuments{docs: p.docs, trustedOnly: g.TrustedDocumentsOnly, apq: g.apq()})
	var apqCache graphql.Cache[string]
	if g.apq() {
		apqCache = sizedCache{Cache: apq, max: g.maxDocumentBytes()}
		srv.Use(automaticPersistedQueries{cache: apqCache, docs: p.docs})
	}
	if g.introspection() {
		srv.Use(extension.Introspection{})
	} else {
		srv.Use(introspectionGate{})
		// "Did you mean …?" hints would describe the schema that introspection hides.
		srv.SetDisableSuggestion(true)
	}
	srv.Use(strictVariables{schema: es.Schema()})
	srv.Use(depthLimit{max: g.maxDepth()})
	srv.Use(complexityLimit{max: g.maxComplexity(), es: withFieldCosts(es, g.FieldCosts), scores: lru.New[int](scoreCacheSize)})
	if apqCache != nil {
		// Last: a document sent with its hash is registered only once everything above accepted it.
		srv.Use(apqRegistration{cache: apqCache})
	}
	return srv
}

// newRouter maps the profile's paths: /graphql, the REST routes, /openapi.json and /playground.
// Paths are full request paths (the gateway does not strip the profile's prefix).
func (p *Profile) newRouter() (h http.Handler, err error) {
	defer func() {
		// ServeMux panics on conflicting patterns (/a/{x}/b and /a/b/{y}); that is a config error.
		if v := recover(); v != nil {
			err = fmt.Errorf("rest routes conflict: %v", v)
		}
	}()
	mux := http.NewServeMux()
	mux.Handle(p.cfg.Path+"/graphql", p.server)
	mux.Handle(p.cfg.Path+"/openapi.json", methods(serveOpenAPI(p.openapi), http.MethodGet, http.MethodHead))
	if p.cfg.playground() {
		mux.Handle(p.cfg.Path+"/playground", methods(withPageCSP(playground.Handler("Portico "+p.name, p.cfg.Path+"/graphql")),
			http.MethodGet, http.MethodHead))
	}
	// Routes sharing a path (GET and POST /orders) share one pattern; the mux's wildcard names
	// come from the first, so each route reads its parameters by position.
	type group struct {
		names  []string
		routes map[string]*restRoute
		allow  []string
	}
	groups := map[string]*group{}
	var order []string
	for _, rt := range p.routes {
		key := normalizedPattern(strings.TrimPrefix(rt.path, p.cfg.Path))
		g := groups[key]
		if g == nil {
			g = &group{names: rt.params, routes: map[string]*restRoute{}}
			groups[key] = g
			order = append(order, rt.path)
		}
		g.routes[rt.method] = rt
		g.allow = append(g.allow, rt.method)
	}
	for _, path := range order {
		g := groups[normalizedPattern(strings.TrimPrefix(path, p.cfg.Path))]
		if slices.Contains(g.allow, http.MethodGet) && !slices.Contains(g.allow, http.MethodHead) {
			g.allow = append(g.allow, http.MethodHead) // served as GET, below
		}
		g.allow = append(g.allow, http.MethodOptions) // answered below, as /graphql answers it
		pattern := path
		if strings.HasSuffix(pattern, "/") {
			// Only the route at "/" ends in a slash ("/web/"), which ServeMux reads as the whole
			// subtree: {$} keeps it to its own path, so unknown paths under the profile stay 404.
			pattern += "{$}"
		}
		mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rt := g.routes[r.Method]
			if rt == nil && r.Method == http.MethodHead {
				rt = g.routes[http.MethodGet]
			}
			if rt == nil && r.Method == http.MethodOptions {
				// Not a CORS preflight (a cors policy answers those before the BFF): a client
				// asking what the path takes.
				w.Header().Set("Allow", strings.Join(g.allow, ", "))
				w.WriteHeader(http.StatusNoContent)
				return
			}
			if rt == nil {
				allow := strings.Join(g.allow, ", ")
				apierror.Write(w, r, &apierror.Error{Status: http.StatusMethodNotAllowed, Code: codeMethodNotAllowed,
					Message: "method " + r.Method + " is not allowed here (allowed: " + allow + ")", Header: http.Header{"Allow": {allow}}})
				return
			}
			values := make(map[string]string, len(rt.params))
			for i, name := range rt.params {
				values[name] = r.PathValue(g.names[i])
			}
			ctx := context.WithValue(r.Context(), restMatchKey{}, &restMatch{route: rt, values: values})
			p.server.ServeHTTP(w, r.WithContext(ctx))
		}))
	}
	return ensureRequestInfo(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			apierror.Write(w, r, apierror.New(http.StatusNotFound, codeNotFound, "no route for "+r.Method+" "+r.URL.Path))
			return
		}
		mux.ServeHTTP(w, r)
	})), nil
}

// methods answers OPTIONS with 204 and 405 for methods other than allowed, both with Allow.
func methods(h http.Handler, allowed ...string) http.Handler {
	allow := strings.Join(append(allowed, http.MethodOptions), ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, m := range allowed {
			if r.Method == m {
				h.ServeHTTP(w, r)
				return
			}
		}
		if r.Method == http.MethodOptions {
			w.Header().Set("Allow", allow)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		apierror.Write(w, r, &apierror.Error{Status: http.StatusMethodNotAllowed, Code: codeMethodNotAllowed,
			Message: "method " + r.Method + " is not allowed here", Header: http.Header{"Allow": {allow}}})
	})
}

// Handler serves everything under the profile's Path. Requests keep their full path.
func (p *Profile) Handler() http.Handler { return p.handler }

// MarkGraphQL wraps the profile's handler with its policies in front (next): a request to the
// GraphQL endpoint is marked as one first, so that an error a policy answers with (401, 429) is a
// GraphQL response in the media type the client accepts, as the BFF's own refusals are.
func (p *Profile) MarkGraphQL(next http.Handler) http.Handler {
	endpoint := p.cfg.Path + "/graphql"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == endpoint {
			if info := reqctx.From(r.Context()); info != nil {
				media, ok := negotiate(r.Header.Values("Accept"))
				if !ok {
					media = mediaJSON // the endpoint's own 406 is application/json too
				}
				info.GraphQL = media
			}
		}
		next.ServeHTTP(w, r)
	})
}

// Name is the profile's key under `bffs:`.
func (p *Profile) Name() string { return p.name }

// Path is where the profile is mounted.
func (p *Profile) Path() string { return p.cfg.Path }

// OpenAPI returns the generated OpenAPI 3.1 document of the REST routes (also served at
// Path+"/openapi.json").
func (p *Profile) OpenAPI() []byte { return p.openapi }

// Close releases what New created itself: the in-memory APQ cache of a Profile built without
// Deps.APQCache. The gateway always passes its shared cache (persisted queries outlive a reload)
// and calls Close when a snapshot is retired, with requests possibly still in flight on it.
func (p *Profile) Close() {
	for _, c := range p.closers {
		c()
	}
	p.closers = nil
}

// playgroundCSP lets the GraphiQL page run: its inline script and the scripts, styles and fonts
// it loads from jsdelivr, talking only to this origin. A security-headers policy keeps a CSP the
// page sets, and its default ("default-src 'none'") left the page blank.
const playgroundCSP = "default-src 'none'; script-src 'unsafe-inline' https://cdn.jsdelivr.net; " +
	"style-src 'unsafe-inline' https://cdn.jsdelivr.net; font-src https://cdn.jsdelivr.net data:; " +
	"img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func withPageCSP(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", playgroundCSP)
		h.ServeHTTP(w, r)
	})
}
