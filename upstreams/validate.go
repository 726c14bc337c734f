package upstreams

import (
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/portico-gw/portico/internal/confval"
)

// balancerNames lists the accepted values of Config.Balancer ("" means round_robin).
var balancerNames = []string{"round_robin", "weighted_round_robin", "least_connections", "consistent_hash", "ip_hash", "random"}

// maxRetryAttempts bounds retries: beyond a few, retries only multiply load on a failing backend.
const maxRetryAttempts = 10

// maxTargetWeight bounds a target's weight. Weights are ratios, and 65535 (Kong's bound too)
// leaves ratios far finer than any traffic split needs. Without a bound, a weight near
// math.MaxInt overflowed the balancers' sums and products: a panic when the registry was built
// (weighted round robin, consistent hash) or on every request (random). Within it, the largest
// of them — consistent hashing's virtualNodes × targets × weight, and the weight sums — stays
// below 2⁶³ for up to 2³⁹ targets, far more than fit in memory.
const maxTargetWeight = 65535

// Validate records every problem with the upstream under path ("upstreams.users"). It reads the TLS
// files, so a missing CA or a key that does not match its certificate is found at load time.
func (c *Config) Validate(path string, p *confval.Problems) {
	c.validateTargets(path, p)

	switch c.Balancer {
	case "", "round_robin", "weighted_round_robin", "least_connections", "random":
		if c.HashOn != "" {
			p.Addf(confval.Join(path, "hash_on"), "hash_on applies only to balancer consistent_hash (or ip_hash)")
		}
	case "consistent_hash", "ip_hash":
		if err := validateHashOn(c.HashOn); err != nil {
			p.Addf(confval.Join(path, "hash_on"), "%v", err)
		}
	default:
		p.Addf(confval.Join(path, "balancer"), "unknown balancer %q (allowed: %s)", c.Balancer, strings.Join(balancerNames, ", "))
	}

	c.Timeouts.validate(confval.Join(path, "timeouts"), p)
	c.Retries.validate(confval.Join(path, "retries"), p)
	if c.Health.Active != nil {
		c.Health.Active.validate(confval.Join(path, "health.active"), p)
	}
	if c.Health.Passive != nil {
		c.Health.Passive.validate(confval.Join(path, "health.passive"), p)
	}
	if c.CircuitBreaker != nil {
		c.CircuitBreaker.validate(confval.Join(path, "circuit_breaker"), p)
	}
	if c.TLS != nil {
		c.TLS.validate(confval.Join(path, "tls"), p)
	}
	problemIfNegative(p, confval.Join(path, "max_idle_conns_per_target"), c.MaxIdleConnsPerTarget)
	problemIfNegative(p, confval.Join(path, "max_conns_per_target"), c.MaxConnsPerTarget)
}

func (c *Config) validateTargets(path string, p *confval.Problems) {
	tpath := confval.Join(path, "targets")
	if len(c.Targets) == 0 {
		p.Addf(tpath, "at least one target is required")
		return
	}
	seen := map[string]int{}
	total := 0
	badWeight := false // reported already: the sum says nothing then
	for i, t := range c.Targets {
		ipath := confval.Index(tpath, i)
		if err := validateTargetURL(t.URL); err != nil {
			p.Addf(confval.Join(ipath, "url"), "%v", err)
		} else if j, dup := seen[t.URL]; dup {
			p.Addf(confval.Join(ipath, "url"), "duplicate target %q (also targets[%d]); give one target a higher weight instead", t.URL, j)
		} else {
			seen[t.URL] = i
		}
		w := 100
		if t.Weight != nil {
			w = *t.Weight
		}
		if w < 0 {
			p.Addf(confval.Join(ipath, "weight"), "weight must not be negative (0 takes the target out of rotation)")
			badWeight = true
			continue
		}
		if w > maxTargetWeight {
			p.Addf(confval.Join(ipath, "weight"), "weight %d is too large: weights are ratios from 0 to %d", w, maxTargetWeight)
			badWeight = true
			continue
		}
		total += w
	}
	if total == 0 && !badWeight {
		p.Addf(tpath, "all targets have weight 0, so none would get traffic")
	}
}

// validateTargetURL accepts scheme, host and optional port: the request path comes from the route.
func validateTargetURL(raw string) error {
	if raw == "" {
		return errors.New("url is required (e.g. \"http://10.0.0.5:8080\")")
	}
	if !strings.HasPrefix(raw, "http://") && !strings.HasPrefix(raw, "https://") {
		return fmt.Errorf("url %q must start with http:// or https://", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid url %q: %v", raw, errors.Unwrap(err))
	}
	if u.User != nil {
		// Refused here, at validation, where every message is redacted, and not quoted: the
		// build step refused it too, but printed it whole, password and all.
		return fmt.Errorf("url for host %q must not carry a user or password (send credentials with a request-transform header)", u.Host)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("url %q has no host", raw)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("url %q has an invalid port", raw)
		}
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return fmt.Errorf("url %q must not have a path, query or fragment: only scheme, host and port (use the route's add_prefix or rewrite for paths)", raw)
	}
	return nil
}

// validateHashOn validates the consistent-hash key: "ip", "header:<Name>" or "cookie:<name>".
func validateHashOn(s string) error {
	if s == "" || s == "ip" {
		return nil
	}
	kind, name, ok := strings.Cut(s, ":")
	if ok && (kind == "header" || kind == "cookie") && confval.IsToken(name) {
		return nil
	}
	return fmt.Errorf("invalid hash_on %q (allowed: ip, header:<Name>, cookie:<name>)", s)
}

func (t *TimeoutsConfig) validate(path string, p *confval.Problems) {
	problemIfNegativeDuration(p, confval.Join(path, "connect"), t.Connect)
	problemIfNegativeDuration(p, confval.Join(path, "response_header"), t.ResponseHeader)
	problemIfNegativeDuration(p, confval.Join(path, "total"), t.Total)
	if t.Total > 0 && t.Connect > t.Total {
		p.Addf(confval.Join(path, "connect"), "connect (%v) is longer than total (%v), so it could never fire", t.Connect.Std(), t.Total.Std())
	}
	if t.Total > 0 && t.ResponseHeader > t.Total {
		p.Addf(confval.Join(path, "response_header"), "response_header (%v) is longer than total (%v), so it could never fire", t.ResponseHeader.Std(), t.Total.Std())
	}
}

func (r *RetryConfig) validate(path string, p *confval.Problems) {
	if r.Attempts != nil && (*r.Attempts < 0 || *r.Attempts > maxRetryAttempts) {
		p.Addf(confval.Join(path, "attempts"), "attempts must be from 0 to %d", maxRetryAttempts)
	}
	for i, on := range r.On {
		if err := validateRetryOn(on); err != nil {
			p.Addf(confval.Index(confval.Join(path, "on"), i), "%v", err)
		}
	}
	problemIfNegativeDuration(p, confval.Join(path, "backoff"), r.Backoff)
	if r.BudgetPercent != nil && (*r.BudgetPercent < 0 || *r.BudgetPercent > 100) {
		p.Addf(confval.Join(path, "budget_percent"), "budget_percent must be from 0 to 100")
	}
	if r.MinConcurrent != nil {
		problemIfNegative(p, confval.Join(path, "min_concurrent"), *r.MinConcurrent)
	}
}

// validateRetryOn accepts connect_failure, timeout, or a 5xx status: a 4xx is the client's fault
// and would fail the same way on every target.
func validateRetryOn(s string) error {
	switch s {
	case "connect_failure", "timeout":
		return nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n >= 500 && n <= 599 {
			return nil
		}
		return fmt.Errorf("cannot retry on status %d: only 500-599 are retried", n)
	}
	return fmt.Errorf("unknown retry condition %q (allowed: connect_failure, timeout, or a status 500-599)", s)
}

// minHealthInterval is the shortest active health-check interval: Envoy and Kong check every few
// seconds by default, and a probe more often than ten times a second is load, not a check.
const minHealthInterval = 100 * time.Millisecond

func (a *ActiveHealthConfig) validate(path string, p *confval.Problems) {
	if a.Path != "" && !strings.HasPrefix(a.Path, "/") {
		p.Addf(confval.Join(path, "path"), "path %q must start with \"/\"", a.Path)
	}
	problemIfNegativeDuration(p, confval.Join(path, "interval"), a.Interval)
	problemIfNegativeDuration(p, confval.Join(path, "timeout"), a.Timeout)
	if a.Interval > 0 && a.Interval.Std() < minHealthInterval {
		// 1ns made about 3,000 probes a second to each target.
		p.Addf(confval.Join(path, "interval"), "interval %v is shorter than %v: probes would load the target like traffic", a.Interval.Std(), minHealthInterval)
	} else if a.Interval > 0 && a.Timeout > a.Interval {
		p.Addf(confval.Join(path, "timeout"), "timeout (%v) is longer than interval (%v): probes would overlap", a.Timeout.Std(), a.Interval.Std())
	}
	problemIfNegative(p, confval.Join(path, "healthy_successes"), a.HealthySuccesses)
	problemIfNegative(p, confval.Join(path, "unhealthy_failures"), a.UnhealthyFailures)
}

func (ph *PassiveHealthConfig) validate(path string, p *confval.Problems) {
	problemIfNegative(p, confval.Join(path, "consecutive_failures"), ph.ConsecutiveFailures)
	problemIfNegativeDuration(p, confval.Join(path, "eject_for"), ph.EjectFor)
}

func (b *BreakerConfig) validate(path string, p *confval.Problems) {
	// 0 is the unset value and means the default 0.5.
	if math.IsNaN(b.FailureRatio) || b.FailureRatio < 0 || b.FailureRatio > 1 {
		p.Addf(confval.Join(path, "failure_ratio"), "failure_ratio must be greater than 0 and at most 1 (e.g. 0.5)")
	}
	problemIfNegativeDuration(p, confval.Join(path, "window"), b.Window)
	problemIfNegativeDuration(p, confval.Join(path, "open_for"), b.OpenFor)
}

func (t *TLSConfig) validate(path string, p *confval.Problems) {
	if t.CAFile != "" && p.RequireFile(confval.Join(path, "ca_file"), t.CAFile) {
		if data, err := confval.ReadFile(t.CAFile); err != nil {
			p.Addf(confval.Join(path, "ca_file"), "reading %q: %v", t.CAFile, err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(data) {
			p.Addf(confval.Join(path, "ca_file"), "no PEM certificate found in %q", t.CAFile)
		}
	}
	certPath, keyPath := confval.Join(path, "cert_file"), confval.Join(path, "key_file")
	switch {
	case t.CertFile == "" && t.KeyFile == "":
	case t.CertFile == "":
		p.Addf(certPath, "cert_file is required when key_file is set")
	case t.KeyFile == "":
		p.Addf(keyPath, "key_file is required when cert_file is set")
	default:
		certOK := p.RequireFile(certPath, t.CertFile)
		keyOK := p.RequireFile(keyPath, t.KeyFile)
		if certOK && keyOK {
			if _, err := confval.LoadKeyPair(t.CertFile, t.KeyFile); err != nil {
				p.Addf(certPath, "cert_file %q and key_file %q are not a usable pair: %v", t.CertFile, t.KeyFile, err)
			}
		}
	}
	if t.ServerName != "" && strings.ContainsAny(t.ServerName, " /:") {
		p.Addf(confval.Join(path, "server_name"), "server_name %q must be a host name, without scheme, port or path", t.ServerName)
	}
}

func problemIfNegative(p *confval.Problems, path string, n int) {
	if n < 0 {
		p.Addf(path, "must not be negative")
	}
}

func problemIfNegativeDuration(p *confval.Problems, path string, d confval.Duration) {
	if d < 0 {
		p.Addf(path, "must not be negative (0 means the default)")
	}
}
