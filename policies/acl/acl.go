// Package acl is the acl policy: after authentication, it lets a request through or refuses it
// with 403 by the consumer's groups.
package acl

import (
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/portico-gw/portico/internal/apierror"
	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/policies"
)

// Config is the acl policy's settings, written under its type key:
//
//	policies:
//	  partners-only: {acl: {allow: [partners], deny: [suspended]}}
type Config struct {
	// Allow lists the groups that may pass; when set, a consumer in none of them is refused.
	Allow []string `yaml:"allow"`
	// Deny lists groups that are refused. It is checked first: a consumer in both lists is
	// refused.
	Deny []string `yaml:"deny"`
}

// Validate reports every problem in c under path (e.g. "policies.partners-only.acl").
func (c *Config) Validate(path string, p *confval.Problems) {
	if len(c.Allow) == 0 && len(c.Deny) == 0 {
		p.Addf(path, "give allow, deny or both (an acl with neither would let everyone through)")
	}
	for _, l := range []struct {
		name   string
		groups []string
	}{{"allow", c.Allow}, {"deny", c.Deny}} {
		seen := map[string]bool{}
		for i, g := range l.groups {
			at := confval.Index(confval.Join(path, l.name), i)
			switch {
			case g == "":
				p.Addf(at, "empty group name")
			case seen[g]:
				p.Addf(at, "group %q is listed twice", g)
			}
			seen[g] = true
		}
	}
}

// ACL is a built acl policy.
type ACL struct {
	name   string
	allow  map[string]bool
	deny   map[string]bool
	logger *slog.Logger
	// warned makes the "no authentication before acl" log line appear once per instance: the
	// mistake is in the config, and every request would repeat it.
	warned atomic.Bool
}

var _ policies.Policy = (*ACL)(nil)

// New builds the policy named name from c.
func New(name string, c Config, deps policies.Deps) (policies.Policy, error) {
	var ps confval.Problems
	c.Validate("", &ps)
	if len(ps) > 0 {
		return nil, &configError{name: name, p: ps[0]}
	}
	a := &ACL{name: name, allow: set(c.Allow), deny: set(c.Deny), logger: deps.Logger}
	if a.logger == nil {
		a.logger = slog.Default()
	}
	return a, nil
}

type configError struct {
	name string
	p    confval.Problem
}

func (e *configError) Error() string {
	if e.p.Path == "" {
		return "acl policy \"" + e.name + "\": " + e.p.Message
	}
	return "acl policy \"" + e.name + "\": " + e.p.Path + ": " + e.p.Message
}

func set(list []string) map[string]bool {
	m := make(map[string]bool, len(list))
	for _, g := range list {
		m[g] = true
	}
	return m
}

// Phase is ACL, right after authentication.
func (a *ACL) Phase() policies.Phase { return policies.PhaseACL }

// Wrap refuses requests whose consumer's groups the lists do not allow. Kong's message and status
// (403 "You cannot consume this service"), so clients need not tell the two apart.
func (a *ACL) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var id *reqctx.Identity
		if info := reqctx.From(r.Context()); info != nil {
			id = info.Identity
		}
		if id == nil {
			// No authenticator ran before this acl: a config mistake, not the client's. 403, not
			// 401, because no credential the client could send would help.
			if a.warned.CompareAndSwap(false, true) {
				a.logger.Error("acl policy without authentication in the same scope: every request is refused",
					"policy", a.name)
			}
			forbid(w, r)
			return
		}
		if !a.permits(id.Groups) {
			forbid(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (a *ACL) permits(groups []string) bool {
	for _, g := range groups {
		if a.deny[g] {
			return false
		}
	}
	if len(a.allow) == 0 {
		return true
	}
	for _, g := range groups {
		if a.allow[g] {
			return true
		}
	}
	return false
}

func forbid(w http.ResponseWriter, r *http.Request) {
	apierror.Write(w, r, apierror.New(http.StatusForbidden, "FORBIDDEN", "you cannot consume this service"))
}
