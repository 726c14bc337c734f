package builtin

import (
	"strings"
	"testing"

	"github.com/portico-gw/portico/policies"
	"github.com/portico-gw/portico/policies/acl"
	"github.com/portico-gw/portico/policies/ratelimit"
)

func TestScopePrecedence(t *testing.T) {
	consumers, err := policies.NewConsumers(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &Catalog{
		Configs: map[string]Config{
			"global-limit":  {RateLimit: &ratelimit.Config{}},
			"route-limit":   {RateLimit: &ratelimit.Config{}},
			"partner-limit": {RateLimit: &ratelimit.Config{}},
			"global-deny":   {ACL: &acl.Config{Deny: []string{"suspended"}}},
			"route-allow":   {ACL: &acl.Config{Allow: []string{"partners"}}},
			"partner-acl":   {ACL: &acl.Config{Allow: []string{"partners"}}},
		},
		Globals:   []GlobalRef{{Policy: "global-limit"}, {Policy: "global-deny"}, {Policy: "global-limit"}},
		Consumers: consumers,
	}
	tests := []struct {
		name, scope string
		local, own  []string
		want        string
	}{
		{"globals apply, listed once", "r", nil, nil, "global-limit,global-deny"},
		{"a route's limit replaces the global limit", "r", []string{"route-limit"}, nil, "global-deny,route-limit"},
		{"a route's acl stacks on the global acl", "r", []string{"route-allow"}, nil, "global-limit,global-deny,route-allow"},
		{"a policy listed twice runs once", "r", []string{"route-limit", "route-limit"}, nil, "global-deny,route-limit"},
		{"a consumer's limit replaces the route's", "r", []string{"route-limit"}, []string{"partner-limit"}, "global-deny,partner-limit"},
		{"a consumer's acl never replaces the route's", "r", []string{"route-allow"}, []string{"partner-acl"}, "global-limit,global-deny,route-allow,partner-acl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			names := c.Names(tt.scope, tt.local)
			if tt.own != nil {
				names = c.ForConsumer(names, tt.own)
			}
			if got := strings.Join(names, ","); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
	c.Globals = []GlobalRef{{Policy: "global-limit", Except: []string{"health"}}}
	if got := c.Names("health", nil); len(got) != 0 {
		t.Errorf("an excepted scope got %v", got)
	}
}
