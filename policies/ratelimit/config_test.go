package ratelimit

import (
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/policies"
)

func TestValidate(t *testing.T) {
	no := false
	tests := []struct {
		name string
		cfg  Config
		want []string // "path: substring"; empty means valid
	}{
		{name: "sliding default with one limit", cfg: Config{Limits: Limits{Minute: 10}}},
		{name: "several windows ascending", cfg: Config{Strategy: FixedWindow, Limits: Limits{Second: 5, Minute: 100, Hour: 1000, Day: 5000, Month: 100000}}},
		{name: "equal limits are fine", cfg: Config{Limits: Limits{Second: 10, Minute: 10}}},
		{name: "token bucket", cfg: Config{Strategy: TokenBucket, Rate: 10, Burst: 20}},
		{name: "leaky bucket queueing", cfg: Config{Strategy: LeakyBucket, Rate: 10, Per: confval.Duration(time.Minute), Queue: 5, MaxWait: confval.Duration(time.Second)}},
		{name: "header key", cfg: Config{Limits: Limits{Minute: 1}, By: "header:X-Tenant-ID", FaultTolerant: &no}},
		{name: "unknown strategy", cfg: Config{Strategy: "gcra"}, want: []string{"p.strategy: unknown strategy \"gcra\""}},
		{name: "window strategy without limits", cfg: Config{Strategy: FixedWindow}, want: []string{"p.limits: fixed_window needs at least one limit"}},
		{
			name: "longer window lower than shorter",
			cfg:  Config{Limits: Limits{Second: 10, Minute: 5, Hour: 100, Day: 50}},
			want: []string{
				"p.limits.minute: limit 5 per minute is lower than 10 per second",
				"p.limits.day: limit 50 per day is lower than 100 per hour",
			},
		},
		{name: "negative limit", cfg: Config{Limits: Limits{Hour: -1}}, want: []string{"p.limits.hour: limit must be positive"}},
		{
			name: "bucket fields on a window strategy",
			cfg:  Config{Limits: Limits{Minute: 1}, Rate: 5, Burst: 2, MaxWait: confval.Duration(time.Second)},
			want: []string{"p.rate: rate applies to token_bucket", "p.burst: burst applies", "p.max_wait: max_wait applies"},
		},
		{
			name: "bucket without rate and with limits",
			cfg:  Config{Strategy: TokenBucket, Limits: Limits{Minute: 1}},
			want: []string{"p.limits: limits apply to fixed_window", "p.rate: token_bucket needs a rate"},
		},
		{name: "negative rate", cfg: Config{Strategy: TokenBucket, Rate: -1}, want: []string{"p.rate: rate must be positive"}},
		{name: "rate too fine", cfg: Config{Strategy: TokenBucket, Rate: 10_000_000}, want: []string{"p.rate: rate 10000000 per 1s is finer"}},
		{name: "negative per", cfg: Config{Strategy: TokenBucket, Rate: 1, Per: -1}, want: []string{"p.per: per must be positive"}},
		{name: "leaky bucket burst", cfg: Config{Strategy: LeakyBucket, Rate: 1, Burst: 3}, want: []string{"p.burst: burst applies to token_bucket"}},
		{
			name: "token bucket queue fields",
			cfg:  Config{Strategy: TokenBucket, Rate: 1, Queue: 3, MaxWait: confval.Duration(time.Second)},
			want: []string{"p.queue: queue applies to leaky_bucket only", "p.max_wait: max_wait applies to leaky_bucket only"},
		},
		{name: "max wait too long", cfg: Config{Strategy: LeakyBucket, Rate: 1, MaxWait: confval.Duration(time.Hour)}, want: []string{"p.max_wait: max_wait 1h0m0s is longer than 1m0s"}},
		{name: "negative queue", cfg: Config{Strategy: LeakyBucket, Rate: 1, Queue: -2}, want: []string{"p.queue: queue must not be negative"}},
		{name: "unknown by", cfg: Config{Limits: Limits{Minute: 1}, By: "user"}, want: []string{"p.by: unknown by \"user\""}},
		{name: "empty header name", cfg: Config{Limits: Limits{Minute: 1}, By: "header:"}, want: []string{"p.by: header: is not a valid header name"}},
		{name: "bad header name", cfg: Config{Limits: Limits{Minute: 1}, By: "header:X Tenant"}, want: []string{"p.by: header:X Tenant is not a valid header name"}},
		{
			name: "negative timeout and keys",
			cfg:  Config{Limits: Limits{Minute: 1}, StoreTimeout: -1, MaxKeys: -5},
			want: []string{"p.store_timeout: store_timeout must be positive", "p.max_keys: max_keys must be positive"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p confval.Problems
			tc.cfg.Validate("p", &p)
			if len(p) != len(tc.want) {
				t.Fatalf("got %d problems %v, want %d %v", len(p), p, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if got := p[i].Path + ": " + p[i].Message; !strings.Contains(got, w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, got, w)
				}
			}
			// New refuses what Validate refuses, with the same messages.
			pol, err := New("p", tc.cfg, policies.Deps{})
			if (err != nil) != (len(tc.want) > 0) {
				t.Fatalf("New error = %v, want error: %v", err, len(tc.want) > 0)
			}
			if err == nil {
				_ = pol.(*Limiter).Close()
			} else if !strings.Contains(err.Error(), strings.TrimPrefix(tc.want[0], "p.")) {
				t.Errorf("New error %q does not carry the problem %q", err, tc.want[0])
			}
		})
	}
}

// TestConfigYAML decodes the README's examples strictly, so the documented keys are the real ones.
func TestConfigYAML(t *testing.T) {
	docs := map[string]string{
		"sliding": "{strategy: sliding_window, limits: {second: 10, minute: 100, month: 100000}, by: consumer}",
		"fixed":   "{strategy: fixed_window, limits: {hour: 1000}, by: ip, fault_tolerant: false, store_timeout: 50ms}",
		"token":   "{strategy: token_bucket, rate: 100, per: 1m, burst: 20, by: \"header:X-Tenant\", per_route: true}",
		"leaky":   "{strategy: leaky_bucket, rate: 10, per: 1s, queue: 5, max_wait: 500ms, hide_headers: true, max_keys: 5000}",
	}
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			var c Config
			if err := yaml.UnmarshalWithOptions([]byte(doc), &c, yaml.Strict()); err != nil {
				t.Fatalf("decode: %v", err)
			}
			var p confval.Problems
			c.Validate("p", &p)
			if len(p) > 0 {
				t.Fatalf("problems: %v", p)
			}
		})
	}
	var c Config
	if err := yaml.UnmarshalWithOptions([]byte("{limit: 5}"), &c, yaml.Strict()); err == nil {
		t.Fatal("unknown key decoded without error")
	}
}

func TestBuildSpec(t *testing.T) {
	tests := []struct {
		name               string
		cfg                Config
		interval, tolerate int64
	}{
		{"token bucket burst defaults to rate", Config{Strategy: TokenBucket, Rate: 10}, 100_000, 900_000},
		{"token bucket burst", Config{Strategy: TokenBucket, Rate: 60, Per: confval.Duration(time.Minute), Burst: 1}, 1_000_000, 0},
		{"leaky bucket rejects by default", Config{Strategy: LeakyBucket, Rate: 10}, 100_000, 0},
		{"leaky bucket queue alone", Config{Strategy: LeakyBucket, Rate: 10, Queue: 3}, 100_000, 300_000},
		{"leaky bucket max_wait alone", Config{Strategy: LeakyBucket, Rate: 10, MaxWait: confval.Duration(250 * time.Millisecond)}, 100_000, 250_000},
		{"leaky bucket tighter of both", Config{Strategy: LeakyBucket, Rate: 10, Queue: 2, MaxWait: confval.Duration(time.Second)}, 100_000, 200_000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := buildSpec(&tc.cfg)
			if s.interval != tc.interval || s.tolerance != tc.tolerate {
				t.Fatalf("interval, tolerance = %d, %d; want %d, %d", s.interval, s.tolerance, tc.interval, tc.tolerate)
			}
		})
	}
}
