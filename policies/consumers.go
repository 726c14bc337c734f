package policies

import (
	"fmt"
	"slices"
	"sort"
)

// ConsumerConfig declares one API consumer (an app, a partner, a team) and its credentials.
type ConsumerConfig struct {
	// Name identifies the consumer in logs, metrics, rate-limit keys and the X-Consumer-Name header.
	Name string `yaml:"name"`
	// Groups are matched by acl policies and forwarded as X-Consumer-Groups.
	Groups []string `yaml:"groups"`
	// Keys are API keys for key-auth. Use ${ENV} for secrets, or KeysFile.
	Keys []string `yaml:"keys"`
	// KeysFile is a file with one API key per line (blank lines and # comments ignored).
	KeysFile string `yaml:"keys_file"`
	// BasicAuth is a username and bcrypt password hash for basic-auth.
	BasicAuth *BasicCredential `yaml:"basic_auth"`
	// JWT ties tokens to this consumer: a token whose consumer claim (the jwt policy's
	// consumer_claim, default "iss") equals Key is this consumer's.
	JWT *JWTCredential `yaml:"jwt"`
	// MTLS ties client certificates to this consumer by subject common name or SAN.
	MTLS *MTLSCredential `yaml:"mtls"`
	// Policies are named policies for this consumer alone. They replace the route's or BFF's
	// policies of the same type (a partner's own rate limit overrides the route's).
	Policies []string `yaml:"policies"`
}

// BasicCredential is a basic-auth username with a bcrypt hash (never a plain password).
type BasicCredential struct {
	Username     string `yaml:"username"`
	PasswordHash string `yaml:"password_hash"`
}

// JWTCredential maps a claim value to the consumer.
type JWTCredential struct {
	// Key is the value of the jwt policy's consumer claim ("iss" by default) that names this
	// consumer.
	Key string `yaml:"key"`
	// Issuer scopes Key to tokens from that issuer. A jwt policy whose consumer_claim is not
	// "iss" matches only scoped credentials: a subject is unique only within its issuer, so an
	// unscoped "sub: alice" would let every identity provider on the route mint alice's tokens.
	Issuer string `yaml:"issuer"`
}

// MTLSCredential matches a verified client certificate.
type MTLSCredential struct {
	// Subject is the certificate subject's common name.
	Subject string `yaml:"subject"`
	// SANs are DNS names, email addresses or URIs; any one matching is enough.
	SANs []string `yaml:"sans"`
}

// Consumer is a built consumer.
type Consumer struct {
	Name     string
	Groups   []string
	Policies []string
	Config   ConsumerConfig
}

// Consumers is a snapshot's consumer registry. Credential indexes (keys, basic, jwt, mtls) are
// built by NewConsumers and read by the authentication policies; it is immutable after building.
type Consumers struct {
	byName map[string]*Consumer
	names  []string // sorted
	order  []string // as configured
	// creds holds the credential indexes; see credentials.go.
	creds credentialIndex
}

// NewConsumers builds the registry, reading key files and indexing every credential. Duplicate
// names or credentials shared by two consumers are errors, since either would make identity
// ambiguous.
func NewConsumers(cfgs []ConsumerConfig) (*Consumers, error) {
	c := &Consumers{byName: map[string]*Consumer{}}
	for _, cfg := range cfgs {
		if cfg.Name == "" {
			return nil, fmt.Errorf("consumer without a name")
		}
		if _, dup := c.byName[cfg.Name]; dup {
			return nil, fmt.Errorf("consumer %q declared twice", cfg.Name)
		}
		cons := &Consumer{Name: cfg.Name, Groups: cfg.Groups, Policies: cfg.Policies, Config: cfg}
		c.byName[cfg.Name] = cons
		c.names = append(c.names, cfg.Name)
	}
	c.order = slices.Clone(c.names)
	sort.Strings(c.names)
	if err := c.creds.build(c); err != nil {
		return nil, err
	}
	return c, nil
}

// ByName returns the named consumer.
func (c *Consumers) ByName(name string) (*Consumer, bool) {
	if c == nil {
		return nil, false
	}
	cons, ok := c.byName[name]
	return cons, ok
}

// Names lists consumer names, sorted.
func (c *Consumers) Names() []string {
	if c == nil {
		return nil
	}
	return c.names
}
