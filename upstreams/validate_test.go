package upstreams

import (
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/testing/certtest"
)

func validationInt(n int) *int { return &n }

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	cert, key := certtest.WriteSelfSigned(t, dir, "a", "a")
	_, otherKey := certtest.WriteSelfSigned(t, dir, "b", "b")
	target := []TargetConfig{{URL: "http://127.0.0.1:9101"}}

	tests := []struct {
		name string
		cfg  Config
		want []string // "path: message substring"; none for a valid config
	}{
		{name: "minimal", cfg: Config{Targets: target}},
		{name: "full", cfg: Config{
			Targets:  []TargetConfig{{URL: "https://a.internal:8443", Weight: validationInt(100)}, {URL: "http://10.0.0.2/", Weight: validationInt(0)}},
			Balancer: "consistent_hash", HashOn: "cookie:session",
			Timeouts: TimeoutsConfig{Connect: confval.Duration(time.Second), ResponseHeader: confval.Duration(2 * time.Second), Total: confval.Duration(5 * time.Second)},
			Retries:  RetryConfig{Attempts: validationInt(2), On: []string{"connect_failure", "timeout", "500", "599"}, BudgetPercent: validationInt(100), MinConcurrent: validationInt(0)},
			Health: HealthConfig{
				Active:  &ActiveHealthConfig{Path: "/health", Interval: confval.Duration(5 * time.Second), Timeout: confval.Duration(time.Second)},
				Passive: &PassiveHealthConfig{ConsecutiveFailures: 5, EjectFor: confval.Duration(30 * time.Second)},
			},
			CircuitBreaker: &BreakerConfig{FailureRatio: 1},
			TLS:            &TLSConfig{CAFile: cert, CertFile: cert, KeyFile: key, ServerName: "a.internal"},
		}},
		{name: "no targets", cfg: Config{}, want: []string{"u.targets: at least one target"}},
		{name: "bad urls", cfg: Config{Targets: []TargetConfig{
			{URL: ""}, {URL: "127.0.0.1:80"}, {URL: "ftp://h"}, {URL: "http://"}, {URL: "http://h:99999"},
			{URL: "http://h/api"}, {URL: "http://h?q=1"}, {URL: "http://h#f"}, {URL: "http://[::1"},
		}}, want: []string{
			"u.targets[0].url: url is required", "u.targets[1].url: must start with http://", "u.targets[2].url: must start with http://",
			"u.targets[3].url: has no host", "u.targets[4].url: invalid port", "u.targets[5].url: must not have a path",
			"u.targets[6].url: must not have a path, query", "u.targets[7].url: must not have a path, query or fragment", "u.targets[8].url: invalid url",
		}},
		{name: "duplicate target", cfg: Config{Targets: []TargetConfig{{URL: "http://h:1"}, {URL: "http://h:1"}}},
			want: []string{"u.targets[1].url: duplicate target \"http://h:1\" (also targets[0])"}},
		{name: "weights", cfg: Config{Targets: []TargetConfig{{URL: "http://a", Weight: validationInt(-1)}, {URL: "http://b", Weight: validationInt(0)}}},
			want: []string{"u.targets[0].weight: must not be negative"}},
		{name: "all weights zero", cfg: Config{Targets: []TargetConfig{{URL: "http://a", Weight: validationInt(0)}, {URL: "http://b", Weight: validationInt(0)}}},
			want: []string{"u.targets: all targets have weight 0"}},
		// The weight refused is not counted as 0: "all targets have weight 0" was a false second problem.
		{name: "one weight too large", cfg: Config{Targets: []TargetConfig{{URL: "http://a", Weight: validationInt(99999999999)}}},
			want: []string{"u.targets[0].weight: weight 99999999999 is too large"}},
		{name: "weights at and above the bound", cfg: Config{Targets: []TargetConfig{
			{URL: "http://a", Weight: validationInt(maxTargetWeight)}, {URL: "http://b", Weight: validationInt(maxTargetWeight + 1)}, {URL: "http://c", Weight: validationInt(math.MaxInt)},
		}}, want: []string{
			"u.targets[1].weight: weight 65536 is too large: weights are ratios from 0 to 65535",
			"u.targets[2].weight: weight 9223372036854775807 is too large",
		}},
		{name: "unknown balancer", cfg: Config{Targets: target, Balancer: "fastest"}, want: []string{"u.balancer: unknown balancer \"fastest\" (allowed: round_robin,"}},
		{name: "hash_on without consistent hash", cfg: Config{Targets: target, HashOn: "ip"}, want: []string{"u.hash_on: applies only to balancer consistent_hash"}},
		{name: "hash_on forms", cfg: Config{Targets: target, Balancer: "ip_hash", HashOn: "header:"}, want: []string{"u.hash_on: invalid hash_on \"header:\""}},
		{name: "hash_on header", cfg: Config{Targets: target, Balancer: "ip_hash", HashOn: "header:X-User"}},
		{name: "negative timeouts", cfg: Config{Targets: target, Timeouts: TimeoutsConfig{Connect: -1, ResponseHeader: -1, Total: -1}},
			want: []string{"u.timeouts.connect: must not be negative", "u.timeouts.response_header: must not be negative", "u.timeouts.total: must not be negative"}},
		{name: "timeouts longer than total", cfg: Config{Targets: target, Timeouts: TimeoutsConfig{Connect: confval.Duration(3 * time.Second), ResponseHeader: confval.Duration(3 * time.Second), Total: confval.Duration(time.Second)}},
			want: []string{"u.timeouts.connect: connect (3s) is longer than total (1s)", "u.timeouts.response_header: response_header (3s) is longer than total (1s)"}},
		{name: "retries", cfg: Config{Targets: target, Retries: RetryConfig{
			Attempts: validationInt(11), On: []string{"connect_failure", "502", "404", "600", "5xx", ""}, Backoff: -1, BudgetPercent: validationInt(101), MinConcurrent: validationInt(-1),
		}}, want: []string{
			"u.retries.attempts: from 0 to 10", "u.retries.on[2]: cannot retry on status 404", "u.retries.on[3]: cannot retry on status 600",
			"u.retries.on[4]: unknown retry condition \"5xx\"", "u.retries.on[5]: unknown retry condition \"\"", "u.retries.backoff: must not be negative",
			"u.retries.budget_percent: from 0 to 100", "u.retries.min_concurrent: must not be negative",
		}},
		{name: "active health", cfg: Config{Targets: target, Health: HealthConfig{Active: &ActiveHealthConfig{
			Path: "health", Interval: confval.Duration(time.Second), Timeout: confval.Duration(2 * time.Second), HealthySuccesses: -1, UnhealthyFailures: -1,
		}}}, want: []string{
			"u.health.active.path: must start with \"/\"", "u.health.active.timeout: longer than interval",
			"u.health.active.healthy_successes: must not be negative", "u.health.active.unhealthy_failures: must not be negative",
		}},
		{name: "active health interval too short", cfg: Config{Targets: target, Health: HealthConfig{Active: &ActiveHealthConfig{Interval: confval.Duration(time.Nanosecond)}}},
			want: []string{"u.health.active.interval: interval 1ns is shorter than 100ms"}},
		{name: "active health interval under the default timeout", cfg: Config{Targets: target, Health: HealthConfig{Active: &ActiveHealthConfig{Interval: confval.Duration(500 * time.Millisecond)}}}},
		{name: "active health at the shortest interval", cfg: Config{Targets: target, Health: HealthConfig{Active: &ActiveHealthConfig{
			Interval: confval.Duration(100 * time.Millisecond), Timeout: confval.Duration(100 * time.Millisecond)}}}},
		{name: "passive health", cfg: Config{Targets: target, Health: HealthConfig{Passive: &PassiveHealthConfig{ConsecutiveFailures: -1, EjectFor: -1}}},
			want: []string{"u.health.passive.consecutive_failures: must not be negative", "u.health.passive.eject_for: must not be negative"}},
		{name: "breaker ratio above 1", cfg: Config{Targets: target, CircuitBreaker: &BreakerConfig{FailureRatio: 1.01}}, want: []string{"u.circuit_breaker.failure_ratio: greater than 0 and at most 1"}},
		{name: "breaker ratio negative", cfg: Config{Targets: target, CircuitBreaker: &BreakerConfig{FailureRatio: -0.5, Window: -1, OpenFor: -1}},
			want: []string{"u.circuit_breaker.failure_ratio: greater than 0", "u.circuit_breaker.window: must not be negative", "u.circuit_breaker.open_for: must not be negative"}},
		{name: "breaker ratio NaN", cfg: Config{Targets: target, CircuitBreaker: &BreakerConfig{FailureRatio: math.NaN()}}, want: []string{"u.circuit_breaker.failure_ratio: at most 1"}},
		{name: "tls half pairs", cfg: Config{Targets: target, TLS: &TLSConfig{CertFile: cert}}, want: []string{"u.tls.key_file: key_file is required when cert_file is set"}},
		{name: "tls key without cert", cfg: Config{Targets: target, TLS: &TLSConfig{KeyFile: key}}, want: []string{"u.tls.cert_file: cert_file is required when key_file is set"}},
		{name: "tls missing files", cfg: Config{Targets: target, TLS: &TLSConfig{CAFile: filepath.Join(dir, "nope.pem"), CertFile: dir, KeyFile: key}},
			want: []string{"u.tls.ca_file: does not exist", "u.tls.cert_file: is a directory"}},
		{name: "tls ca without certificates", cfg: Config{Targets: target, TLS: &TLSConfig{CAFile: key}}, want: []string{"u.tls.ca_file: no PEM certificate found"}},
		{name: "tls mismatched pair", cfg: Config{Targets: target, TLS: &TLSConfig{CertFile: cert, KeyFile: otherKey}}, want: []string{"u.tls.cert_file: are not a usable pair"}},
		{name: "tls server name", cfg: Config{Targets: target, TLS: &TLSConfig{ServerName: "https://a.internal"}}, want: []string{"u.tls.server_name: must be a host name"}},
		{name: "pool sizes", cfg: Config{Targets: target, MaxIdleConnsPerTarget: -1, MaxConnsPerTarget: -1},
			want: []string{"u.max_idle_conns_per_target: must not be negative", "u.max_conns_per_target: must not be negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p confval.Problems
			tt.cfg.Validate("u", &p)
			assertProblems(t, p, tt.want)
		})
	}
}

// assertProblems wants exactly one problem per entry of want, in order, each matching its
// "path: message substring".
func assertProblems(t *testing.T, got confval.Problems, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%s", len(got), len(want), listProblems(got))
	}
	for i, w := range want {
		path, msg, _ := strings.Cut(w, ": ")
		if got[i].Path != path || !strings.Contains(got[i].Message, msg) {
			t.Errorf("problem %d = %s: %s; want %s: …%s…", i, got[i].Path, got[i].Message, path, msg)
		}
	}
}

func listProblems(ps confval.Problems) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString("  " + p.Path + ": " + p.Message + "\n")
	}
	return b.String()
}

// NewRegistry refuses what validation refuses, for callers that build one without validating: a
// weight above the bound used to panic in the balancers (math.MaxInt: makeslice when the
// registry was built, rand.Int64N on every request).
func TestNewRegistryRefusesWeightAboveTheBound(t *testing.T) {
	for _, bal := range []string{BalancerRoundRobin, BalancerWeightedRoundRobin, BalancerLeastConnections, BalancerConsistentHash, BalancerRandom} {
		t.Run(bal, func(t *testing.T) {
			_, err := NewRegistry(map[string]Config{"svc": {
				Balancer: bal,
				Targets:  []TargetConfig{{URL: "http://127.0.0.1:1", Weight: validationInt(math.MaxInt)}, {URL: "http://127.0.0.1:2", Weight: validationInt(1)}},
			}}, Options{Logger: quietLogger})
			if err == nil || !strings.Contains(err.Error(), "targets[0]: weight 9223372036854775807 is above 65535") {
				t.Fatalf("err = %v, want the weight refused", err)
			}
		})
	}
}
