// Package config loads Portico's one YAML file into an immutable snapshot: strict decoding (unknown
// keys are errors), ${ENV} interpolation in string values, and validation that reports every
// problem at once with its file, line and field.
package config

import (
	"github.com/portico-gw/portico/bff"
	"github.com/portico-gw/portico/internal/listener"
	"github.com/portico-gw/portico/policies"
	"github.com/portico-gw/portico/policies/builtin"
	"github.com/portico-gw/portico/policies/cache"
	"github.com/portico-gw/portico/routes"
	"github.com/portico-gw/portico/upstreams"
)

// File is the whole configuration. A loaded File is never mutated: reload builds a new one.
type File struct {
	// Listen is shorthand for one plain HTTP listener (default ":8080" when Listeners is empty).
	Listen string `yaml:"listen"`
	// Listeners declares several listeners, with TLS or h2c. Listener changes need a restart;
	// certificates are re-read on reload.
	Listeners []listener.Config `yaml:"listeners"`
	// Server bounds client connections.
	Server listener.ServerConfig `yaml:"server"`
	// Admin is the admin listener address (default "127.0.0.1:9901"; "off" disables it).
	Admin string `yaml:"admin"`
	// TrustedProxies are CIDRs of proxies in front of Portico (load balancers, CDNs). Only when the
	// TCP peer is one of them are the client's X-Forwarded-For/-Proto/-Host and Forwarded headers
	// believed and extended; otherwise they are replaced, so a client cannot forge its address.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// AccessLog configures the per-request JSON log line.
	AccessLog AccessLogConfig `yaml:"access_log"`
	// Upstreams by name.
	Upstreams map[string]upstreams.Config `yaml:"upstreams"`
	// Routes are the pass-through routes.
	Routes []routes.Config `yaml:"routes"`
	// BFFs are the client-specific GraphQL and REST facades by name (web, mobile, …), each mounted
	// at its path. A BFF's name shares the namespace of route names (it labels metrics and logs).
	BFFs map[string]bff.Config `yaml:"bffs"`
	// Store selects where shared state lives: in memory (default) or Redis.
	Store StoreConfig `yaml:"store"`
	// Consumers are the API's known callers and their credentials.
	Consumers []policies.ConsumerConfig `yaml:"consumers"`
	// Policies are named, reusable policy instances; routes, BFFs, consumers and global_policies
	// refer to them by name.
	Policies map[string]builtin.Config `yaml:"policies"`
	// GlobalPolicies apply to every route and BFF, except those an entry excludes. A route's or
	// BFF's own policy replaces a global one of the same type.
	GlobalPolicies []builtin.GlobalRef `yaml:"global_policies"`
	// BackendCache caches resolvers' GET calls to upstreams per upstream path prefix, so two
	// fields needing users/42 within the TTL cost one call. Keys include the caller's identity.
	BackendCache cache.BackendRules `yaml:"backend_cache"`

	// Path is the file this was loaded from ("" for an embedded config); not part of the YAML.
	Path string `yaml:"-"`

	// interpolated holds the paths ("upstreams.users.tls.key_file") of values that took text from
	// ${ENV}, so that Redacted hides them: secrets are what interpolation is for.
	interpolated map[string]bool
	// inputs are the files the config reads (InputFiles), collected once it is built.
	inputs []string
}

// StoreConfig selects the backing store of rate-limit counters, the response cache and persisted
// queries.
type StoreConfig struct {
	// Redis is a redis:// or rediss:// URL ("redis://127.0.0.1:6379/0"). Empty keeps every store in
	// this process's memory, which is right for a single instance; several replicas need Redis to
	// share limits, cache entries and APQ documents.
	Redis string `yaml:"redis"`
}

// AccessLogConfig configures the access log.
type AccessLogConfig struct {
	// Enabled writes one JSON line per request (default true).
	Enabled *bool `yaml:"enabled"`
	// Output is "stdout" (default), "stderr" or a file path.
	Output string `yaml:"output"`
}
