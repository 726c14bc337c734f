package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/portico-gw/portico/internal/listener"
	"github.com/portico-gw/portico/upstreams"
)

func TestExpand(t *testing.T) {
	t.Setenv("PT_SET", "value")
	t.Setenv("PT_EMPTY", "")
	os.Unsetenv("PT_UNSET")
	tests := []struct {
		name, in, want string
		fromEnv        bool
		err            string
	}{
		{name: "no reference", in: "plain $text", want: "plain $text"},
		{name: "set", in: "a-${PT_SET}-b", want: "a-value-b", fromEnv: true},
		{name: "two references", in: "${PT_SET}${PT_SET}", want: "valuevalue", fromEnv: true},
		{name: "default unused", in: "${PT_SET:-other}", want: "value", fromEnv: true},
		{name: "default for unset", in: "${PT_UNSET:-fallback}", want: "fallback"},
		{name: "default for empty, as in the shell", in: "${PT_EMPTY:-fallback}", want: "fallback"},
		{name: "empty default", in: "x${PT_UNSET:-}y", want: "xy"},
		{name: "set to empty without default", in: "x${PT_EMPTY}y", want: "xy", fromEnv: true},
		{name: "default with colon", in: "${PT_UNSET:-:8080}", want: ":8080"},
		{name: "escaped", in: "$${PT_SET}", want: "${PT_SET}"},
		{name: "escaped then real", in: "$${A} ${PT_SET}", want: "${A} value", fromEnv: true},
		{name: "unset", in: "${PT_UNSET}", err: "environment variable PT_UNSET is not set"},
		{name: "unterminated", in: "${PT_SET", err: "unterminated"},
		{name: "bad name", in: "${PT-SET}", err: "invalid variable reference"},
		{name: "empty name", in: "${}", err: "invalid variable reference"},
		{name: "digit first", in: "${1A}", err: "invalid variable reference"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, fromEnv, err := expand(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want || fromEnv != tt.fromEnv {
				t.Fatalf("expand(%q) = %q, %v, %v; want %q, %v", tt.in, got, fromEnv, err, tt.want, tt.fromEnv)
			}
		})
	}
}

func TestSplitPath(t *testing.T) {
	tests := []struct {
		path string
		want []segment
	}{
		{"", nil},
		{"listen", []segment{{key: "listen"}}},
		{"routes[2].match.path", []segment{{key: "routes"}, {index: 2, isIdx: true}, {key: "match"}, {key: "path"}}},
		{`upstreams."my.svc".targets[0]`, []segment{{key: "upstreams"}, {key: "my.svc"}, {key: "targets"}, {index: 0, isIdx: true}}},
		{keyPath("upstreams", `we"ird[0]`), []segment{{key: "upstreams"}, {key: `we"ird[0]`}}},
		{"broken[x].a", []segment{{key: "broken"}}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got := splitPath(tt.path)
			if len(got) != len(tt.want) {
				t.Fatalf("splitPath(%q) = %+v, want %+v", tt.path, got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("splitPath(%q) = %+v, want %+v", tt.path, got, tt.want)
				}
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"balancer", "hash_on", "targets", "timeouts", "retries"}
	tests := []struct{ key, want string }{
		{"balncer", "balancer"},
		{"Targets", "targets"},
		{"timeout", "timeouts"},
		{"retry", "retries"},
		{"frobnicate", ""},
		{"x", ""},
	}
	for _, tt := range tests {
		if got := suggest(tt.key, known); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

func TestErrorFormat(t *testing.T) {
	e := &Error{File: "p.yaml", Problems: []LineProblem{
		{Line: 14, Column: 5, Path: "routes[2].upstream", Message: `unknown upstream "order" (known: orders, users)`},
		{Message: "no place"},
		{Line: 3, Column: 1, Message: "no path"},
		{Line: 14, Column: 2, Path: "routes[2]", Message: "earlier column"},
	}}
	want := strings.Join([]string{
		"p.yaml:3:1: no path",
		"p.yaml:14:2: routes[2]: earlier column",
		`p.yaml:14:5: routes[2].upstream: unknown upstream "order" (known: orders, users)`,
		"p.yaml: no place",
	}, "\n")
	if got := e.Error(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if e.Problems[0].Line != 14 {
		t.Error("Error() reordered the caller's slice")
	}
}

func TestDecodeProblemHasPosition(t *testing.T) {
	var v struct{ A int }
	err := yaml.Unmarshal([]byte("a: 1\na: 2\n"), &v)
	p := decodeProblem(err)
	if p.Line != 2 || p.Column != 1 || !strings.Contains(p.Message, "already defined") {
		t.Errorf("problem = %+v", p)
	}
	if p := decodeProblem(errors.New("plain")); p.Line != 0 || p.Message != "plain" {
		t.Errorf("problem = %+v", p)
	}
}

func TestDefaults(t *testing.T) {
	off, on := false, true
	tests := []struct {
		name      string
		file      File
		listeners []string
		admin     string
		accessLog bool
		output    string
	}{
		{name: "empty", listeners: []string{":8080"}, admin: "127.0.0.1:9901", accessLog: true, output: "stdout"},
		{name: "listen shorthand", file: File{Listen: ":9000"}, listeners: []string{":9000"}, admin: "127.0.0.1:9901", accessLog: true, output: "stdout"},
		{
			name:      "explicit",
			file:      File{Admin: "off", AccessLog: AccessLogConfig{Enabled: &off, Output: "stderr"}, Listeners: []listener.Config{{Address: ":1"}, {Address: ":2"}}},
			listeners: []string{":1", ":2"}, admin: "", accessLog: false, output: "stderr",
		},
		{name: "admin and log on", file: File{Admin: ":9999", AccessLog: AccessLogConfig{Enabled: &on}}, listeners: []string{":8080"}, admin: ":9999", accessLog: true, output: "stdout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var addrs []string
			for _, l := range tt.file.EffectiveListeners() {
				addrs = append(addrs, l.Address)
			}
			if strings.Join(addrs, ",") != strings.Join(tt.listeners, ",") {
				t.Errorf("listeners = %v, want %v", addrs, tt.listeners)
			}
			if got := tt.file.AdminAddr(); got != tt.admin {
				t.Errorf("AdminAddr = %q, want %q", got, tt.admin)
			}
			if got := tt.file.AccessLogEnabled(); got != tt.accessLog {
				t.Errorf("AccessLogEnabled = %v, want %v", got, tt.accessLog)
			}
			if got := tt.file.AccessLogOutput(); got != tt.output {
				t.Errorf("AccessLogOutput = %q, want %q", got, tt.output)
			}
		})
	}
	f := File{Listeners: []listener.Config{{Address: ":1"}}}
	f.EffectiveListeners()[0].Address = ":2"
	if f.Listeners[0].Address != ":1" {
		t.Error("EffectiveListeners returned the File's own slice")
	}
}

func TestRedacted(t *testing.T) {
	t.Setenv("PT_BACKEND", "10.0.0.7")
	keysFile := filepath.Join(t.TempDir(), "c.keys")
	if err := os.WriteFile(keysFile, []byte("file-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := `
upstreams:
  token-service:
    targets: [{url: "http://${PT_BACKEND}:80"}, {url: "http://127.0.0.1:81"}]
routes:
  - name: r
    match: {path_prefix: /, headers: {Authorization: "*", X-Env: plain}}
    upstream: token-service
    request_headers:
      set: {X-Api-Key: literal-secret, Cookie: "a=b", X-Plain: visible, X-Upstream-Auth: "Bearer bearer-s3cret", X-Passwd: passwd-s3cret, X-Session: session-s3cret}
policies:
  tokens: {jwt: {issuers: [{issuer: idp, algorithms: [RS256], jwks_url: "https://idp.example/jwks?access_token=jwks-s3cret&tenant=acme"}]}}
  keys: {key-auth: {key_names: [x-partner-header], hide_credentials: true}}
consumers: [{name: c, keys: [consumer-s3cret], keys_file: "` + keysFile + `"}]
`
	f, err := Parse([]byte(cfg), "r.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(Redacted(f))
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, secret := range []string{"10.0.0.7", "literal-secret", "passwd-s3cret", "session-s3cret", "a=b", "bearer-s3cret", "jwks-s3cret", "consumer-s3cret"} {
		if strings.Contains(got, secret) {
			t.Errorf("redacted view shows %q: %s", secret, got)
		}
	}
	for _, visible := range []string{`"token-service"`, `"visible"`, `"http://127.0.0.1:81"`, `"plain"`,
		`"https://idp.example/jwks?access_token=[redacted]\u0026tenant=acme"`,
		// Named like secrets, holding none: what key-auth reads and hides, where keys live.
		`"x-partner-header"`, `"hide_credentials":true`, `"` + keysFile + `"`} {
		if !strings.Contains(got, visible) {
			t.Errorf("redacted view lacks %s: %s", visible, got)
		}
	}
	// The File itself keeps the real values.
	if f.Upstreams["token-service"].Targets[0].URL != "http://10.0.0.7:80" {
		t.Errorf("File was changed: %+v", f.Upstreams["token-service"].Targets)
	}
}

// TestAliasedValuesAreCopied: goccy decodes every use of an alias into one shared value; each use
// must be interpolated once and recorded under its own path.
func TestAliasedValuesAreCopied(t *testing.T) {
	t.Setenv("PT_HEALTH", "/$${not-expanded-twice}")
	cfg := `
upstreams:
  a:
    targets: [{url: "http://h"}]
    health: {active: &h {path: "${PT_HEALTH}"}}
    retries: {on: &on [connect_failure]}
  b:
    targets: [{url: "http://g"}]
    health: {active: *h}
    retries: {on: *on}
`
	f, err := Parse([]byte(cfg), "alias.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, b := f.Upstreams["a"], f.Upstreams["b"]
	if a.Health.Active == b.Health.Active {
		t.Error("aliased pointer still shared")
	}
	for name, u := range map[string]upstreams.Config{"a": a, "b": b} {
		if got := u.Health.Active.Path; got != "/$${not-expanded-twice}" {
			t.Errorf("%s path = %q, want the variable's value as is", name, got)
		}
	}
	a.Retries.On[0] = "changed"
	if b.Retries.On[0] != "connect_failure" {
		t.Error("aliased slice still shared")
	}
	b2, _ := json.Marshal(Redacted(f))
	if strings.Contains(string(b2), "not-expanded") {
		t.Errorf("an aliased use of an interpolated value is not redacted: %s", b2)
	}
}

// TestParseOddInputs feeds shapes a config never should have: each gives problems or loads, never
// panics.
func TestParseOddInputs(t *testing.T) {
	tests := []struct {
		name, in, want string // want: a substring of the error, or "" for success
	}{
		{name: "null document", in: "~\n"},
		// An empty file loaded as a config without routes: a reload that caught a file truncated
		// by its writer dropped every route.
		{name: "empty file", in: "", want: "config file is empty"},
		{name: "whitespace only", in: "\n  \n\t\n", want: "config file is empty"},
		{name: "comments only", in: "# routes are added later\n", want: "config file is empty"},
		{name: "document markers only", in: "---\n...\n", want: "config file is empty"},
		{name: "directive only", in: "%YAML 1.2\n---\n", want: "config file is empty"},
		{name: "byte order mark only", in: "\ufeff", want: "config file is empty"},
		// Editors on Windows save UTF-8 with a byte order mark.
		{name: "byte order mark", in: "\ufefflisten: \":1\"\n"},
		{name: "byte order mark before a problem", in: "\ufefflisten: \"8\"\n", want: "odd.yaml:1:1: listen: invalid address"},
		{name: "top-level list", in: "- a\n- b\n", want: "expected a mapping, got a list"},
		{name: "top-level scalar", in: "hello\n", want: "expected a mapping"},
		{name: "unknown alias", in: "listen: *nope\n", want: "nope"},
		{name: "self-referencing alias", in: "upstreams: &a {u: {targets: [*a]}}\n", want: "targets[0]"},
		{name: "complex key", in: "? [a, b]\n: c\n", want: "invalid YAML"},
		{name: "map key in a map of names", in: "upstreams: {[a]: {}}\n", want: "invalid YAML"},
		{name: "explicit key", in: "? listen\n: \":1\"\n"},
		{name: "tagged values", in: "listen: !!str \":8080\"\nadmin: !!str off\n"},
		{name: "block scalar", in: "listen: |\n  :8080\n", want: "invalid port"},
		{name: "folded block scalar", in: "listen: >-\n  :8080\n"},
		{name: "merge of a list of aliases", in: "upstreams:\n  u:\n    <<: [&a {balancer: random}, &b {bogus: 1}]\n    targets: [{url: \"http://h\"}]\n", want: `unknown key "bogus"`},
		{name: "merge into a struct from a scalar", in: "server:\n  <<: nope\n", want: "expected a mapping"},
		{name: "negative int64 min", in: "upstreams: {u: {max_conns_per_target: -9223372036854775808, targets: [{url: \"http://h\"}]}}\n", want: "must not be negative"},
		{name: "anchor merged into itself twice", in: "server: &a {<<: [*a, *a]}\n", want: "an anchor cannot be used inside its own definition"},
		{name: "anchor merged into itself", in: "server: &a\n  <<: *a\n", want: "an anchor cannot be used inside its own definition"},
		{name: "list of itself", in: "routes: &a [*a, *a]\n", want: "routes[0]: expected a mapping, got a list"},
		{name: "shared anchor reported per use", in: "upstreams:\n  a: {targets: [{url: \"http://h\"}], circuit_breaker: &cb {failure_ratio: 2}}\n  b: {targets: [{url: \"http://g\"}], circuit_breaker: *cb}\n", want: "upstreams.b.circuit_breaker.failure_ratio"},
		{name: "empty document first", in: "~\n---\nlisten: \"8\"\n", want: "a port alone"},
		{name: "directive", in: "%YAML 1.2\n---\nlisten: \":1\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in), "odd.yaml")
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// FuzzParse checks that no input makes Parse panic; `go test` runs the seeds only.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"valid", "many_problems", "anchors", "wrong_types", "env_missing"} {
		data, err := os.ReadFile("testdata/" + name + ".yaml")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data, "fuzz.yaml")
		if (file == nil) == (err == nil) {
			t.Fatalf("Parse returned file %v and error %v", file != nil, err)
		}
		if file != nil {
			Redacted(file)
		}
	})
}
