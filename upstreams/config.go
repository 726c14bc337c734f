package upstreams

import "github.com/portico-gw/portico/internal/confval"

// Config declares one upstream: a named set of targets and how Portico talks to them. The zero
// value of every optional field means the documented default.
type Config struct {
	// Targets are the backend instances. At least one is required.
	Targets []TargetConfig `yaml:"targets"`
	// Balancer picks a target per request: round_robin (default; smooth weighted when weights
	// differ), weighted_round_robin (the same), least_connections, consistent_hash (alias ip_hash),
	// random (weighted random with two choices, the less loaded wins).
	Balancer string `yaml:"balancer"`
	// HashOn is the key for consistent_hash: "ip" (default), "header:<Name>" or "cookie:<name>".
	HashOn string `yaml:"hash_on"`
	// Timeouts bound each call.
	Timeouts TimeoutsConfig `yaml:"timeouts"`
	// Retries says when a failed call is tried again on another target.
	Retries RetryConfig `yaml:"retries"`
	// Health configures active probes and passive ejection.
	Health HealthConfig `yaml:"health"`
	// CircuitBreaker, when set, stops calls to the whole upstream while it keeps failing.
	CircuitBreaker *BreakerConfig `yaml:"circuit_breaker"`
	// TLS configures https targets: CA bundle, client certificate, SNI.
	TLS *TLSConfig `yaml:"tls"`
	// MaxIdleConnsPerTarget is the keep-alive pool size per target (default 256).
	MaxIdleConnsPerTarget int `yaml:"max_idle_conns_per_target"`
	// MaxConnsPerTarget caps open connections per target; 0 means no cap.
	MaxConnsPerTarget int `yaml:"max_conns_per_target"`
}

// TargetConfig is one backend instance.
type TargetConfig struct {
	// URL is the scheme, host and port ("http://10.0.0.5:8080"); a path is not allowed.
	URL string `yaml:"url"`
	// Weight is the relative share of traffic, from 0 to 65535 (default 100; 0 takes the target
	// out of rotation).
	Weight *int `yaml:"weight"`
}

// TimeoutsConfig bounds one upstream call.
type TimeoutsConfig struct {
	// Connect bounds the TCP (and TLS) handshake (default 2s).
	Connect confval.Duration `yaml:"connect"`
	// ResponseHeader bounds the wait for response headers after the request is sent (default 15s).
	ResponseHeader confval.Duration `yaml:"response_header"`
	// Total bounds the whole call including retries and reading the body (default 30s; 0 in config
	// means the default, set a large value for long streams).
	Total confval.Duration `yaml:"total"`
}

// RetryConfig controls retries. A retry always goes to a different target when one is available.
type RetryConfig struct {
	// Attempts is the number of retries after the first try (default 1; 0 with Disabled for none).
	Attempts *int `yaml:"attempts"`
	// On lists what is retried: connect_failure, timeout, and status codes (default
	// [connect_failure, 502, 503, 504]).
	On []string `yaml:"on"`
	// IdempotentOnly restricts retries to GET, HEAD, OPTIONS, PUT, DELETE, TRACE (default true).
	// Connect failures are retried for any method, since the request never reached a backend.
	IdempotentOnly *bool `yaml:"idempotent_only"`
	// Backoff is the base of the jittered exponential backoff between tries (default 25ms, capped at
	// ten times the base).
	Backoff confval.Duration `yaml:"backoff"`
	// BudgetPercent caps concurrent retries at this share of in-flight requests (default 20), with
	// at least MinConcurrent (default 3), so a failing backend is not hammered by retry storms.
	BudgetPercent *int `yaml:"budget_percent"`
	MinConcurrent *int `yaml:"min_concurrent"`
}

// HealthConfig groups the two kinds of health checking.
type HealthConfig struct {
	Active  *ActiveHealthConfig  `yaml:"active"`
	Passive *PassiveHealthConfig `yaml:"passive"`
}

// ActiveHealthConfig probes every target on a timer.
type ActiveHealthConfig struct {
	// Path is requested with GET (default /health); a 2xx or 3xx answer is healthy.
	Path string `yaml:"path"`
	// Interval between probes (default 5s) and Timeout of one probe (default 1s).
	Interval confval.Duration `yaml:"interval"`
	Timeout  confval.Duration `yaml:"timeout"`
	// HealthySuccesses in a row mark an unhealthy target healthy again (default 2).
	HealthySuccesses int `yaml:"healthy_successes"`
	// UnhealthyFailures in a row mark a target unhealthy (default 3).
	UnhealthyFailures int `yaml:"unhealthy_failures"`
}

// PassiveHealthConfig ejects a target after consecutive failed calls (connect errors, timeouts and
// 5xx from the target), for EjectFor, without any probe traffic.
type PassiveHealthConfig struct {
	// ConsecutiveFailures that eject a target (default 5).
	ConsecutiveFailures int `yaml:"consecutive_failures"`
	// EjectFor is how long an ejected target gets no traffic (default 30s).
	EjectFor confval.Duration `yaml:"eject_for"`
}

// BreakerConfig configures the per-upstream circuit breaker (sony/gobreaker).
type BreakerConfig struct {
	// FailureRatio of calls in the window that opens the circuit (default 0.5).
	FailureRatio float64 `yaml:"failure_ratio"`
	// MinRequests in the window before the ratio is considered (default 20).
	MinRequests uint32 `yaml:"min_requests"`
	// Window over which counts are kept while closed (default 10s).
	Window confval.Duration `yaml:"window"`
	// OpenFor is how long the circuit stays open before a half-open probe (default 10s).
	OpenFor confval.Duration `yaml:"open_for"`
	// HalfOpenRequests allowed through while half-open (default 1).
	HalfOpenRequests uint32 `yaml:"half_open_requests"`
}

// TLSConfig configures TLS toward https targets.
type TLSConfig struct {
	// CAFile is a PEM bundle of CAs to trust instead of the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate for mutual TLS with the service.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the SNI and the name verified in the target's certificate.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify disables certificate verification; for tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}
