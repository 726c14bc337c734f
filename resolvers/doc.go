// Package resolvers implements Portico's GraphQL schema (schema/*.graphql) over the backend
// services. gqlgen generates the executor into resolvers/exec and the types it could not bind into
// resolvers/model; this package holds everything written by hand:
//
//   - resolver.go is the dependency-injection root: NewResolver(backend, options).
//   - *.resolvers.go follow the schema files one to one and stay thin; gqlgen rewrites them on
//     every `make generate`, keeping the bodies and adding stubs for new fields. What resolvers
//     ask of each service lives in services.go, cursor pagination in pagination.go.
//   - schema.go wraps the generated executable schema: @required, complexity from @cost, and
//     per-operation dataloaders (loaders.go).
//
// # Backends
//
// Resolvers reach services only through Backend, which *upstreams.Client satisfies, so
// balancing, retries, timeouts, breakers and identity propagation apply to every call. Fields
// that call a backend are resolvers, which gqlgen runs concurrently: the dashboard's three parts
// are in flight at once, and the answer keeps the query's field order whichever comes back first.
//
// # Errors
//
// A failed backend call nulls the fields that needed it and adds one error per field, with its
// path, a message naming the service but never its address, and extensions
// {"code": UPSTREAM_TIMEOUT | UPSTREAM_UNAVAILABLE | BAD_GATEWAY | ..., "service": "orders"}.
// The cause stays in the error's chain for logs (and apierror.Classify). An object a service does
// not know (a 404, or an ID a batch answer leaves out) makes a single-object field (me, user,
// order, Order.user, Order.payment) null without an error. Arguments resolvers reject (a `first`
// outside 1..100, a malformed cursor, an empty order) give BAD_USER_INPUT without any backend
// call; a cursor whose service part the orders service does not know gives BAD_USER_INPUT after
// its 400. The request ID is the BFF error presenter's to add.
//
// # Required fields
//
// A field marked @required in the schema (Dashboard.me) fails the whole operation when it fails:
// its error gets extensions.required = true and carries the HTTP status of the failure (502, 503
// or 504). FailOnRequired, a gqlgen handler extension, then answers data: null; the BFF reads
// the status with RequiredStatus(resp.Errors) (or IsRequiredFailure per error). Both work on
// errors rebuilt by an error presenter as long as extensions.code and extensions.required
// survive. StableErrors sorts errors by path so their order never depends on timing.
//
// # Viewer
//
// `me`, the dashboard, `orders` without userId, notifications and both mutations act for
// Viewer(ctx): the authenticated subject in reqctx, else DemoViewer (u1), the demo users
// service's default current user. With a subject, `me` is GET /users/{subject}; without one it is
// GET /users/current, so the service decides.
//
// # Dataloaders
//
// Users, orders and payments by ID are fetched through per-operation dataloaders
// (GET /users?ids=, /orders?ids=, /payments?ids=; at most 100 IDs per call, 1ms batch window).
// List resolvers queue the keys of every order's user and payment as soon as the list is known,
// when the query selects them, so a page of 50 orders costs one users call and one payments call
// regardless of goroutine scheduling.
//
// # Complexity
//
// NewExecutableSchema scores each field as weight + n × (its selection), where weight comes from
// @cost (or Options.FieldCosts, default 1) and n is the field's `first` argument for paged fields
// (1 otherwise). Use it with gqlgen's extension.FixedComplexityLimit.
package resolvers
