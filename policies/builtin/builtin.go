// Package builtin is the catalogue of Portico's policy types: the YAML union that names a
// policy's type by its one key, validation that dispatches to each type, building, and the
// scoping rules that turn global, route/BFF and consumer policy lists into chains.
package builtin

import (
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/policies"
	"github.com/portico-gw/portico/policies/acl"
	"github.com/portico-gw/portico/policies/basicauth"
	"github.com/portico-gw/portico/policies/cache"
	"github.com/portico-gw/portico/policies/cors"
	"github.com/portico-gw/portico/policies/iprestrict"
	"github.com/portico-gw/portico/policies/jwtauth"
	"github.com/portico-gw/portico/policies/keyauth"
	"github.com/portico-gw/portico/policies/mtlsauth"
	"github.com/portico-gw/portico/policies/ratelimit"
	"github.com/portico-gw/portico/policies/secheaders"
	"github.com/portico-gw/portico/policies/sizelimit"
	"github.com/portico-gw/portico/policies/transform"
)

// Config is one named policy. Exactly one field is set; its YAML key is the policy's type:
//
//	policies:
//	  apikey:   {key-auth: {key_names: [apikey, x-api-key], hide_credentials: true}}
//	  per-user: {rate-limit: {strategy: sliding_window, limits: {minute: 100}, by: consumer}}
//
// A key per type (rather than a `type:` field beside the settings) lets the loader check every
// type's settings strictly, with line numbers and "did you mean" hints, like the rest of the file.
type Config struct {
	KeyAuth           *keyauth.Config           `yaml:"key-auth"`
	JWT               *jwtauth.Config           `yaml:"jwt"`
	BasicAuth         *basicauth.Config         `yaml:"basic-auth"`
	MTLSAuth          *mtlsauth.Config          `yaml:"mtls-auth"`
	ACL               *acl.Config               `yaml:"acl"`
	RateLimit         *ratelimit.Config         `yaml:"rate-limit"`
	Cache             *cache.Config             `yaml:"cache"`
	RequestTransform  *transform.RequestConfig  `yaml:"request-transform"`
	ResponseTransform *transform.ResponseConfig `yaml:"response-transform"`
	CORS              *cors.Config              `yaml:"cors"`
	SecurityHeaders   *secheaders.Config        `yaml:"security-headers"`
	IPRestriction     *iprestrict.Config        `yaml:"ip-restriction"`
	RequestSizeLimit  *sizelimit.Config         `yaml:"request-size-limit"`
}

// TypeKeyed marks Config for the config checker: its one key names the type.
func (*Config) TypeKeyed() {}

// validator is what every type's Config implements.
type validator interface {
	Validate(path string, p *confval.Problems)
}

// set returns the type key and settings of the one field that is set, and how many are set.
func (c *Config) set() (key string, v validator, n int) {
	rv := reflect.ValueOf(c).Elem()
	rt := rv.Type()
	for i := 0; i < rt.NumField(); i++ {
		f := rv.Field(i)
		if f.IsNil() {
			continue
		}
		n++
		key = strings.Split(rt.Field(i).Tag.Get("yaml"), ",")[0]
		v = f.Interface().(validator)
	}
	return key, v, n
}

// Types lists the policy type keys.
func Types() []string {
	rt := reflect.TypeFor[Config]()
	out := make([]string, rt.NumField())
	for i := range out {
		out[i] = strings.Split(rt.Field(i).Tag.Get("yaml"), ",")[0]
	}
	return out
}

// Settings returns the set type's settings (a pointer, so callers may adjust them), or nil.
func (c *Config) Settings() any {
	_, v, n := c.set()
	if n != 1 {
		return nil
	}
	return v
}

// Type is the policy's type key ("rate-limit"), "" when none is set.
func (c *Config) Type() string {
	key, _, n := c.set()
	if n != 1 {
		return ""
	}
	return key
}

// Validate checks that exactly one type is set and then that type's settings.
func (c *Config) Validate(path string, p *confval.Problems) {
	key, v, n := c.set()
	switch n {
	case 0:
		p.Addf(path, "a policy needs exactly one type key (one of: %s)", strings.Join(Types(), ", "))
	case 1:
		v.Validate(confval.Join(path, key), p)
	default:
		p.Addf(path, "a policy has exactly one type key; this one sets %d", n)
	}
}

// Build constructs the named policy instance.
func Build(name string, c Config, deps policies.Deps) (policies.Policy, error) {
	var (
		p   policies.Policy
		err error
	)
	switch {
	case c.KeyAuth != nil:
		p, err = keyauth.New(name, *c.KeyAuth, deps)
	case c.JWT != nil:
		p, err = jwtauth.New(name, *c.JWT, deps)
	case c.BasicAuth != nil:
		p, err = basicauth.New(name, *c.BasicAuth, deps)
	case c.MTLSAuth != nil:
		p, err = mtlsauth.New(name, *c.MTLSAuth, deps)
	case c.ACL != nil:
		p, err = acl.New(name, *c.ACL, deps)
	case c.RateLimit != nil:
		p, err = ratelimit.New(name, *c.RateLimit, deps)
	case c.Cache != nil:
		p, err = cache.New(name, *c.Cache, deps)
	case c.RequestTransform != nil:
		p, err = transform.NewRequest(name, *c.RequestTransform, deps)
	case c.ResponseTransform != nil:
		p, err = transform.NewResponse(name, *c.ResponseTransform, deps)
	case c.CORS != nil:
		p, err = cors.New(name, *c.CORS, deps)
	case c.SecurityHeaders != nil:
		p, err = secheaders.New(name, *c.SecurityHeaders, deps)
	case c.IPRestriction != nil:
		p, err = iprestrict.New(name, *c.IPRestriction, deps)
	case c.RequestSizeLimit != nil:
		p, err = sizelimit.New(name, *c.RequestSizeLimit, deps)
	default:
		return nil, fmt.Errorf("policy %q: no type set", name)
	}
	if err != nil {
		return nil, fmt.Errorf("policy %q (%s): %w", name, c.Type(), err)
	}
	return p, nil
}

// GlobalRef is one entry of global_policies: a policy name, or {policy, except} to leave some
// routes or BFFs out.
//
//	global_policies: [security-headers, {policy: cors, except: [legacy, mobile]}]
type GlobalRef struct {
	// Policy names a policy under `policies`.
	Policy string `yaml:"policy"`
	// Except names routes and BFFs the global policy does not apply to.
	Except []string `yaml:"except"`
}

// UnmarshalYAML accepts the short form (a bare name) and the long form (a mapping).
func (g *GlobalRef) UnmarshalYAML(b []byte) error {
	var name string
	if err := yaml.Unmarshal(b, &name); err == nil {
		*g = GlobalRef{Policy: name}
		return nil
	}
	type plain GlobalRef
	return yaml.UnmarshalWithOptions(b, (*plain)(g), yaml.DisallowUnknownField())
}

// ScalarShorthand marks GlobalRef for the config checker: a plain string is its short form.
func (GlobalRef) ScalarShorthand() {}

// Instances are a snapshot's built policies by name.
type Instances map[string]policies.Policy

// BuildAll builds every named policy once; a failure names the policy.
func BuildAll(cfgs map[string]Config, deps policies.Deps) (Instances, error) {
	out := Instances{}
	for name, c := range cfgs {
		p, err := Build(name, c, deps)
		if err != nil {
			out.Close()
			return nil, err
		}
		out[name] = p
	}
	return out, nil
}

// Close releases policies that hold background work (janitors, connections).
func (in Instances) Close() {
	for _, p := range in {
		if c, ok := p.(io.Closer); ok {
			_ = c.Close()
		}
	}
}
