package builtin

import (
	"net/http"
	"slices"

	"github.com/portico-gw/portico/policies"
)

// Catalog is a snapshot's policies: their configs (for types), built instances, global list and
// consumers. It turns a scope's policy names into its chain.
type Catalog struct {
	Configs   map[string]Config
	Built     Instances
	Globals   []GlobalRef
	Consumers *policies.Consumers
}

// Stacking are the types whose global and scope policies both apply rather than the scope's
// replacing the global one: access restrictions only ever add up, so a route's allow list can
// never lift a global deny.
var Stacking = map[string]bool{"acl": true, "ip-restriction": true}

// Names returns the policy names that apply to a scope (a route or BFF named scope with its own
// list local), in order: the global policies that do not except it, then its own. A scope's own
// policy replaces a global policy of the same type, as in Kong, where a route's plugin takes
// precedence over the global one, except for the Stacking types.
func (c *Catalog) Names(scope string, local []string) []string {
	localTypes := map[string]bool{}
	for _, n := range local {
		if t := c.typeOf(n); !Stacking[t] {
			localTypes[t] = true
		}
	}
	var out []string
	seen := map[string]bool{}
	for _, g := range c.Globals {
		if slices.Contains(g.Except, scope) || localTypes[c.typeOf(g.Policy)] || seen[g.Policy] {
			continue
		}
		seen[g.Policy] = true
		out = append(out, g.Policy)
	}
	for _, n := range local {
		// A policy named twice runs once: twice would, for example, count each request twice.
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// Overridable are the policy types a consumer's own policy may replace in a scope: its limits,
// caching and transformations. Any other type a consumer names (validation allows none) is
// added beside the scope's, never instead of it, so a consumer's config can never loosen a
// route's authorization.
var Overridable = map[string]bool{"rate-limit": true, "cache": true, "request-transform": true, "response-transform": true}

// ForConsumer returns names with the consumer's own policies replacing those of the same
// overridable type, and added where the scope has none of that type.
func (c *Catalog) ForConsumer(names, own []string) []string {
	ownTypes := map[string]bool{}
	for _, n := range own {
		if t := c.typeOf(n); Overridable[t] {
			ownTypes[t] = true
		}
	}
	var out []string
	for _, n := range names {
		if !ownTypes[c.typeOf(n)] {
			out = append(out, n)
		}
	}
	return append(out, own...)
}

func (c *Catalog) typeOf(name string) string {
	cfg, ok := c.Configs[name]
	if !ok {
		return "unknown:" + name
	}
	return cfg.Type()
}

// Wrap puts the scope's chain around h. Consumers with their own policies get their variant,
// built here once.
func (c *Catalog) Wrap(scope string, local []string, h http.Handler) http.Handler {
	names := c.Names(scope, local)
	var perConsumer map[string][]policies.Policy
	for _, cname := range c.Consumers.Names() {
		cons, _ := c.Consumers.ByName(cname)
		if len(cons.Policies) == 0 {
			continue
		}
		if perConsumer == nil {
			perConsumer = map[string][]policies.Policy{}
		}
		perConsumer[cname] = c.instances(c.ForConsumer(names, cons.Policies))
	}
	base := c.instances(names)
	if len(base) == 0 && len(perConsumer) == 0 {
		return h
	}
	return policies.Chain(h, base, perConsumer, c.Consumers)
}

func (c *Catalog) instances(names []string) []policies.Policy {
	out := make([]policies.Policy, 0, len(names))
	for _, n := range names {
		if p, ok := c.Built[n]; ok {
			out = append(out, p)
		}
	}
	return out
}
