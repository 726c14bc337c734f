package ratelimit

import (
	"net/http"
	"strings"
	"time"

	"github.com/portico-gw/portico/internal/confval"
)

// Type is the YAML key naming this policy type: `policies: {per-user: {rate-limit: {...}}}`.
const Type = "rate-limit"

// The strategies.
const (
	// FixedWindow counts requests per aligned window (UTC second, minute, hour, day, calendar
	// month); exact within a window, but a client may send a full limit at the end of one window
	// and another at the start of the next.
	FixedWindow = "fixed_window"
	// SlidingWindow weighs the previous window's count by how much of it still overlaps a window
	// ending now (Cloudflare's and Kong's "sliding" algorithm); see README.md for its bound.
	SlidingWindow = "sliding_window"
	// TokenBucket admits bursts up to Burst and refills at Rate per Per (GCRA, exact).
	TokenBucket = "token_bucket"
	// LeakyBucket spaces requests Per/Rate apart, delaying them up to MaxWait (or Queue slots),
	// else rejecting them.
	LeakyBucket = "leaky_bucket"
)

// The by values; ByHeaderPrefix is followed by a header name.
const (
	ByConsumer     = "consumer"
	ByCredential   = "credential"
	ByIP           = "ip"
	ByRoute        = "route"
	ByHeaderPrefix = "header:"
)

// Defaults.
const (
	DefaultStoreTimeout = 20 * time.Millisecond
	DefaultMaxKeys      = 100_000
	// maxMaxWait bounds how long a leaky bucket may hold a request: longer waits tie up
	// connections and are better served by a token bucket and a client retry.
	maxMaxWait = time.Minute
	// minInterval is the finest spacing the stores represent (they count in microseconds).
	minInterval = time.Microsecond
)

// Config is the rate-limit policy's settings, written under its type key:
//
//	policies:
//	  per-user: {rate-limit: {strategy: sliding_window, limits: {minute: 100, hour: 2000}}}
//	  smooth:   {rate-limit: {strategy: leaky_bucket, rate: 10, per: 1s, max_wait: 500ms}}
//
// The zero value of every field is its documented default; window strategies need Limits, bucket
// strategies need Rate.
type Config struct {
	// Strategy is fixed_window, sliding_window (default), token_bucket or leaky_bucket.
	Strategy string `yaml:"strategy"`
	// Limits are the window limits for fixed_window and sliding_window; several may be set, and a
	// longer window may not have a lower limit than a shorter one.
	Limits Limits `yaml:"limits"`
	// Rate is how many requests token_bucket and leaky_bucket admit per Per, on average.
	Rate int64 `yaml:"rate"`
	// Per is the period of Rate (default 1s).
	Per confval.Duration `yaml:"per"`
	// Burst is the token bucket's capacity: how many requests may arrive at once after a quiet
	// spell (default Rate).
	Burst int64 `yaml:"burst"`
	// Queue is how many requests a leaky bucket holds waiting for their slot. With MaxWait unset
	// the longest wait is Queue × Per/Rate.
	Queue int64 `yaml:"queue"`
	// MaxWait is how long a leaky bucket may hold a request for its slot before sending it on;
	// a request that would wait longer is rejected. When both MaxWait and Queue are zero (the
	// default) nothing waits: requests closer than Per/Rate apart are rejected. When both are set
	// the tighter one applies. At most 1m.
	MaxWait confval.Duration `yaml:"max_wait"`
	// By selects what is counted: consumer (default), credential, ip, route or header:<Name>. A
	// request without that identity (no consumer, the anonymous consumer, a missing header) is
	// counted by client IP instead, like Kong.
	By string `yaml:"by"`
	// PerRoute counts separately on each route or BFF the policy is attached to (Kong's counters
	// are per route/service). By default one named policy is one budget wherever it is attached.
	PerRoute bool `yaml:"per_route"`
	// FaultTolerant lets requests through when the counter store fails or does not answer within
	// StoreTimeout (default true). false answers 503 RATE_LIMIT_UNAVAILABLE instead.
	FaultTolerant *bool `yaml:"fault_tolerant"`
	// StoreTimeout bounds one Redis check (default 20ms, like Envoy's global rate limit).
	StoreTimeout confval.Duration `yaml:"store_timeout"`
	// HideHeaders suppresses the RateLimit-* and X-RateLimit-* response headers; Retry-After is
	// still sent with a 429.
	HideHeaders bool `yaml:"hide_headers"`
	// MaxKeys bounds the in-memory store (default 100000 identities per policy instance, about
	// 250 bytes each). When full, expired counters are evicted first, then those closest to
	// expiry. Ignored with Redis, where counters expire by TTL.
	MaxKeys int `yaml:"max_keys"`
}

// Limits are request limits per window; zero leaves a window unused. Windows are aligned in UTC:
// a minute starts at :00, a day at midnight UTC, a month on the 1st at midnight UTC (a calendar
// month, so quotas renew on the same date for everyone, unlike Tyk's drifting periods).
type Limits struct {
	Second int64 `yaml:"second"`
	Minute int64 `yaml:"minute"`
	Hour   int64 `yaml:"hour"`
	Day    int64 `yaml:"day"`
	Month  int64 `yaml:"month"`
}

// windowNames are the windows from shortest to longest, as named in YAML and headers.
var windowNames = [...]string{"second", "minute", "hour", "day", "month"}

func (l Limits) values() [len(windowNames)]int64 {
	return [...]int64{l.Second, l.Minute, l.Hour, l.Day, l.Month}
}

func (l Limits) any() bool {
	for _, v := range l.values() {
		if v != 0 {
			return true
		}
	}
	return false
}

func (c *Config) strategy() string {
	if c.Strategy == "" {
		return SlidingWindow
	}
	return c.Strategy
}

func (c *Config) by() string {
	if c.By == "" {
		return ByConsumer
	}
	return c.By
}

// Validate reports every problem in c under path (e.g. "policies.per-user.rate-limit").
func (c *Config) Validate(path string, p *confval.Problems) {
	strategy := c.strategy()
	windowed := strategy == FixedWindow || strategy == SlidingWindow
	switch strategy {
	case FixedWindow, SlidingWindow, TokenBucket, LeakyBucket:
	default:
		p.Addf(confval.Join(path, "strategy"), "unknown strategy %q (use fixed_window, sliding_window, token_bucket or leaky_bucket)", c.Strategy)
	}
	vals := c.Limits.values()
	if windowed {
		if !c.Limits.any() {
			p.Addf(confval.Join(path, "limits"), "%s needs at least one limit (second, minute, hour, day or month)", strategy)
		}
		prev, prevName := int64(0), ""
		for i, v := range vals {
			wp := confval.Join(confval.Join(path, "limits"), windowNames[i])
			switch {
			case v < 0:
				p.Addf(wp, "limit must be positive, got %d", v)
			case v > 0 && v < prev:
				p.Addf(wp, "limit %d per %s is lower than %d per %s; a longer window may not have a lower limit", v, windowNames[i], prev, prevName)
			}
			if v > 0 {
				prev, prevName = v, windowNames[i]
			}
		}
		for _, f := range []struct {
			name string
			set  bool
		}{{"rate", c.Rate != 0}, {"per", c.Per != 0}, {"burst", c.Burst != 0}, {"queue", c.Queue != 0}, {"max_wait", c.MaxWait != 0}} {
			if f.set {
				p.Addf(confval.Join(path, f.name), "%s applies to token_bucket and leaky_bucket only, not %s", f.name, strategy)
			}
		}
	}
	if strategy == TokenBucket || strategy == LeakyBucket {
		if c.Limits.any() {
			p.Addf(confval.Join(path, "limits"), "limits apply to fixed_window and sliding_window; %s uses rate and per", strategy)
		}
		switch {
		case c.Rate == 0:
			p.Addf(confval.Join(path, "rate"), "%s needs a rate (requests per `per`, default per second)", strategy)
		case c.Rate < 0:
			p.Addf(confval.Join(path, "rate"), "rate must be positive, got %d", c.Rate)
		}
		if c.Per < 0 {
			p.Addf(confval.Join(path, "per"), "per must be positive, got %s", c.Per.Std())
		} else if c.Rate > 0 && c.interval() < minInterval {
			p.Addf(confval.Join(path, "rate"), "rate %d per %s is finer than one request per microsecond", c.Rate, c.Per.Or(time.Second))
		}
		if c.Burst < 0 {
			p.Addf(confval.Join(path, "burst"), "burst must be positive, got %d", c.Burst)
		}
		if strategy == LeakyBucket && c.Burst != 0 {
			p.Addf(confval.Join(path, "burst"), "burst applies to token_bucket; a leaky_bucket absorbs bursts with queue or max_wait")
		}
		if strategy == TokenBucket {
			if c.Queue != 0 {
				p.Addf(confval.Join(path, "queue"), "queue applies to leaky_bucket only")
			}
			if c.MaxWait != 0 {
				p.Addf(confval.Join(path, "max_wait"), "max_wait applies to leaky_bucket only")
			}
		}
		if c.Queue < 0 {
			p.Addf(confval.Join(path, "queue"), "queue must not be negative, got %d", c.Queue)
		}
		switch {
		case c.MaxWait < 0:
			p.Addf(confval.Join(path, "max_wait"), "max_wait must not be negative, got %s", c.MaxWait.Std())
		case c.MaxWait.Std() > maxMaxWait:
			p.Addf(confval.Join(path, "max_wait"), "max_wait %s is longer than %s; holding requests that long ties up connections", c.MaxWait.Std(), maxMaxWait)
		}
	}
	by := c.by()
	switch {
	case by == ByConsumer, by == ByCredential, by == ByIP, by == ByRoute:
	case strings.HasPrefix(by, ByHeaderPrefix):
		if name := strings.TrimSpace(strings.TrimPrefix(by, ByHeaderPrefix)); !validHeaderName(name) {
			p.Addf(confval.Join(path, "by"), "header:%s is not a valid header name", name)
		}
	default:
		p.Addf(confval.Join(path, "by"), "unknown by %q (use consumer, credential, ip, route or header:<Name>)", c.By)
	}
	if c.StoreTimeout < 0 {
		p.Addf(confval.Join(path, "store_timeout"), "store_timeout must be positive, got %s", c.StoreTimeout.Std())
	}
	if c.MaxKeys < 0 {
		p.Addf(confval.Join(path, "max_keys"), "max_keys must be positive, got %d", c.MaxKeys)
	}
}

// interval is the spacing between requests at Rate, the GCRA emission interval.
func (c *Config) interval() time.Duration {
	if c.Rate <= 0 {
		return 0
	}
	return c.Per.Or(time.Second) / time.Duration(c.Rate)
}

func validHeaderName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return http.CanonicalHeaderKey(s) != ""
}
