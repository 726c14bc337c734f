package routes

import "github.com/portico-gw/portico/internal/confval"

// Config declares one pass-through route: what it matches and where the request goes untouched.
type Config struct {
	// Name identifies the route in logs, metrics and errors; unique.
	Name string `yaml:"name"`
	// Match says which requests the route takes. All set fields must match.
	Match MatchConfig `yaml:"match"`
	// Upstream receives every matched request. Exactly one of Upstream and Split is set.
	Upstream string `yaml:"upstream"`
	// Split spreads requests across upstreams by weight (canary percentages).
	Split []SplitConfig `yaml:"split"`
	// Sticky keeps one client on one side of a Split, keyed by a header or cookie value.
	Sticky *StickyConfig `yaml:"sticky"`
	// Mirror sends a copy of requests to a shadow upstream, fire and forget.
	Mirror *MirrorConfig `yaml:"mirror"`
	// StripPrefix is removed from the front of the path before the upstream sees it.
	StripPrefix string `yaml:"strip_prefix"`
	// AddPrefix is put in front of the path (after StripPrefix).
	AddPrefix string `yaml:"add_prefix"`
	// Rewrite replaces the path with a regular expression substitution (after the prefixes).
	Rewrite *RewriteConfig `yaml:"rewrite"`
	// PreserveHost sends the client's Host header instead of the target's host.
	PreserveHost bool `yaml:"preserve_host"`
	// RequestHeaders edits the headers sent upstream.
	RequestHeaders HeaderOps `yaml:"request_headers"`
	// MaxBodyBytes caps the request body (default: the server-wide max_body_bytes); larger → 413.
	MaxBodyBytes confval.ByteSize `yaml:"max_body_bytes"`
	// Policies names the policies for this route (see `policies`); order does not matter, each
	// runs in its phase.
	Policies []string `yaml:"policies"`
}

// MatchConfig is the route's predicate. Path precedence across routes: exact > longest prefix >
// regex in declared order. Path, PathPrefix and PathRegex see the path with each segment's
// ";parameters" removed ("/admin;x/users" is "/admin/users"), as Tomcat and Spring map it; an
// encoded ";" (%3B) stays, as data.
type MatchConfig struct {
	// Hosts are exact host names or "*.example.com" wildcards; empty matches any host.
	Hosts []string `yaml:"hosts"`
	// Path matches the path exactly.
	Path string `yaml:"path"`
	// PathPrefix matches the path and anything below it, on segment boundaries: "/api" takes
	// "/api" and "/api/x" but not "/apix" (end the prefix with "/" to require a sub-path).
	PathPrefix string `yaml:"path_prefix"`
	// PathRegex is an RE2 expression matched against the whole path (anchored).
	PathRegex string `yaml:"path_regex"`
	// Methods allowed; empty allows all. A path match with a disallowed method answers 405.
	Methods []string `yaml:"methods"`
	// Headers that must be present with the exact value, or present at all when the value is "*".
	Headers map[string]string `yaml:"headers"`
}

// MaxSplitWeight bounds a split side's weight, as upstreams bounds a target's (Kong's 65535):
// weights are ratios, and unbounded ones summed past the int range and broke the pick of every
// request.
const MaxSplitWeight = 65535

// SplitConfig is one side of a weighted split.
type SplitConfig struct {
	Upstream string `yaml:"upstream"`
	Weight   int    `yaml:"weight"`
	// StripPrefix and AddPrefix, when either is set, replace the route's for this side only: a new
	// service rarely serves the monolith's URL layout (/api/v1/orders/7 on the monolith is
	// /orders/7 on the orders service).
	StripPrefix string `yaml:"strip_prefix"`
	AddPrefix   string `yaml:"add_prefix"`
}

// StickyConfig names the request value that pins a client to one side of a split. Exactly one of
// Header and Cookie is set. Requests without the value are split by weight at random.
type StickyConfig struct {
	Header string `yaml:"header"`
	Cookie string `yaml:"cookie"`
}

// MirrorConfig shadows traffic to another upstream.
type MirrorConfig struct {
	// Upstream receives the copies.
	Upstream string `yaml:"upstream"`
	// Percent of requests mirrored (default 100).
	Percent *float64 `yaml:"percent"`
	// Compare counts whether the shadow's status and body match the primary's.
	Compare bool `yaml:"compare"`
	// MaxBodyBytes: requests or responses with larger bodies are not mirrored or compared (default 1MiB).
	MaxBodyBytes confval.ByteSize `yaml:"max_body_bytes"`
	// MaxConcurrent shadow calls in flight; beyond it copies are dropped and counted (default 64).
	MaxConcurrent int `yaml:"max_concurrent"`
	// Timeout of one shadow call (default 5s).
	Timeout confval.Duration `yaml:"timeout"`
	// StripPrefix and AddPrefix, when either is set, replace the route's for the shadow only, so
	// a monolith path can be compared with the new service's layout.
	StripPrefix string `yaml:"strip_prefix"`
	AddPrefix   string `yaml:"add_prefix"`
}

// RewriteConfig replaces the path: every match of Regex becomes Replacement ($1 for groups).
type RewriteConfig struct {
	Regex       string `yaml:"regex"`
	Replacement string `yaml:"replacement"`
}

// HeaderOps edits request headers toward the upstream: Remove, then Set (replace or add), then Add
// (append).
type HeaderOps struct {
	Remove []string          `yaml:"remove"`
	Set    map[string]string `yaml:"set"`
	Add    map[string]string `yaml:"add"`
}
