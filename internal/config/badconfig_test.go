package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// An unknown alias used as a merge source must be reported at its line and field like any other
// unknown alias ("listen: *nope" is), not as "t.yaml: cannot find anchor by alias name zz".
func TestBadConfigUnknownMergeAliasHasLineAndField(t *testing.T) {
	_, err := Parse([]byte(`admin: "off"
upstreams:
  a:
    <<: *zz
    targets: [{url: "http://127.0.0.1:9101"}]
`), "t.yaml")
	if err == nil {
		t.Fatal("an unknown alias must be an error")
	}
	msg := err.Error()
	if !strings.Contains(msg, "t.yaml:4:") || !strings.Contains(msg, "upstreams.a") || !strings.Contains(msg, "zz") {
		t.Errorf("want the line (t.yaml:4:), the field (upstreams.a) and the alias name; got:\n%s", msg)
	}
}

// A merge key's own mapping overrides what it merges (the YAML merge rules, which the loader's
// problem positions follow too), wherever the override is written: overriding one field of a
// shared base is the point of "<<: *base". A list of sources merges the first one first.
func TestMergeKeysFollowTheYAMLRules(t *testing.T) {
	f, err := Parse([]byte(`admin: "off"
upstreams:
  users:
    <<: &base
      balancer: round_robin
    targets: [{url: "http://127.0.0.1:9101"}]
  orders:
    <<: *base
    balancer: least_connections
    targets: [{url: "http://127.0.0.1:9201"}]
  before:
    balancer: random
    <<: *base
    targets: [{url: "http://127.0.0.1:9301"}]
  a: &a {targets: [{url: "http://127.0.0.1:9401"}]}
  b: &b {balancer: round_robin, targets: [{url: "http://127.0.0.1:9402"}]}
  c:
    <<: [*a, *b]
  d: {<<: *b}
`), "t.yaml")
	if err != nil {
		t.Fatalf("merge keys must load; got:\n%v", err)
	}
	for name, want := range map[string]string{"users": "round_robin", "orders": "least_connections", "before": "random", "c": "round_robin", "d": "round_robin"} {
		if got := f.Upstreams[name].Balancer; got != want {
			t.Errorf("%s.balancer = %q, want %q", name, got, want)
		}
	}
	if c := f.Upstreams["c"]; len(c.Targets) != 1 || c.Targets[0].URL != "http://127.0.0.1:9401" {
		t.Errorf("c.targets = %+v, want *a's (the first source wins)", c.Targets)
	}
	if d := f.Upstreams["d"]; len(d.Targets) != 1 || d.Targets[0].URL != "http://127.0.0.1:9402" {
		t.Errorf("d.targets = %+v, want *b's", d.Targets)
	}
}

// Anchors that each merge the previous one twice double the work at every line when every use
// is expanded again: 40 lines would never finish. Each mapping is flattened once, so this loads
// at once; the guard only catches a hang.
func TestMergeKeyAliasBombLoadsAtOnce(t *testing.T) {
	var b strings.Builder
	b.WriteString("admin: \"off\"\nupstreams:\n  u0: &m0 {targets: [{url: \"http://127.0.0.1:9101\"}]}\n")
	for i := 1; i < 40; i++ {
		fmt.Fprintf(&b, "  u%d: &m%d {<<: [*m%d, *m%d]}\n", i, i, i-1, i-1)
	}
	done := make(chan error, 1)
	go func() {
		f, err := Parse([]byte(b.String()), "t.yaml")
		if err == nil && len(f.Upstreams["u39"].Targets) != 1 {
			err = fmt.Errorf("u39 = %+v, want the one target of u0", f.Upstreams["u39"])
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a 42-line merge-key alias bomb did not load in 20s: merges are expanded per use")
	}
}

// A secret taken from the environment is redacted in /config; it must not come back in the text
// of a validation error, which ends up in logs and in a rejected reload's answer.
func TestProblemsDoNotRepeatEnvironmentSecrets(t *testing.T) {
	t.Setenv("PORTICO_TEST_PW", "env-s3cret-value")
	_, err := Parse([]byte(`admin: "off"
upstreams:
  a: {targets: [{url: "http://127.0.0.1:9101/${PORTICO_TEST_PW}"}]}
`), "t.yaml")
	if err == nil {
		t.Fatal("a target URL with a path must be refused")
	}
	if msg := err.Error(); strings.Contains(msg, "env-s3cret-value") || !strings.Contains(msg, "[redacted]") || !strings.Contains(msg, "t.yaml:3:") {
		t.Errorf("the problem repeats the secret, or lost its place:\n%s", msg)
	}
}

// A YAML tag other than !!str is refused at its line: goccy converted "!!int x" to 0 without a
// word, and the next error named a value the file does not hold (listen "0").
func TestBadConfigTagsRefused(t *testing.T) {
	_, err := Parse([]byte("admin: \"off\"\nlisten: !!int \"x\"\nserver: {shutdown_timeout: !!float 5s}\n"), "t.yaml")
	if err == nil {
		t.Fatal("tags must be refused")
	}
	msg := err.Error()
	for _, want := range []string{"t.yaml:2:", "listen: YAML tag !!int is not supported", "t.yaml:3:", "YAML tag !!float"} {
		if !strings.Contains(msg, want) {
			t.Errorf("want %q in:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, `"0"`) {
		t.Errorf("the error names a value the file does not hold:\n%s", msg)
	}
	// !!str keeps a value a string, as written.
	f, err := Parse([]byte("admin: \"off\"\nlisten: !!str \"127.0.0.1:9\"\n"), "t.yaml")
	if err != nil || f.Listen != "127.0.0.1:9" {
		t.Fatalf("!!str: listen %q, err %v", f.Listen, err)
	}
}

// Names label metrics and logs: blank names were accepted for policies and BFFs (and listed as
// "known: , p2"), and control characters in any name. A BFF mounted under another's path took
// part of its space.
func TestBadConfigNamesAndNestedBFFs(t *testing.T) {
	up := "upstreams:\n  u: {targets: [{url: \"http://127.0.0.1:9101\"}]}\n"
	for _, tc := range []struct{ name, yaml, want string }{
		{"blank policy", up + "policies:\n  \" \": {cors: {}}\n", `policies." ": policy name must not be empty`},
		{"blank BFF", up + "bffs:\n  \"\": {path: /x}\n", `BFF name must not be empty`},
		{"route name with a control character", up + "routes:\n  - {name: \"r\\tx\", match: {path_prefix: /}, upstream: u}\n", `routes[0].name: name "r\tx" has a control character`},
		{"upstream name with a control character", "upstreams:\n  \"u\\n\": {targets: [{url: \"http://127.0.0.1:9101\"}]}\n", `has a control character`},
		{"consumer name blank", up + "consumers:\n  - {name: \" \"}\n", `consumers[0].name: consumer name must not be empty`},
		{"BFF under another", up + "bffs:\n  web: {path: /web}\n  sub: {path: /web/sub}\n", `bffs.sub.path: path "/web/sub" is under BFF "web"'s path "/web"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte("admin: \"off\"\n"+tc.yaml), "t.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("problems %v; want %q", err, tc.want)
			}
		})
	}
	if _, err := Parse([]byte("admin: \"off\"\n"+up+"bffs:\n  web: {path: /web}\n  webx: {path: /webx}\n"), "t.yaml"); err != nil {
		t.Errorf("BFFs side by side refused: %v", err)
	}
}

// A route with the same match as an earlier one is dead: the first takes every request.
func TestBadConfigDuplicateRouteMatch(t *testing.T) {
	_, err := Parse([]byte(`admin: "off"
upstreams:
  u: {targets: [{url: "http://127.0.0.1:9101"}]}
routes:
  - {name: first, match: {path: /s}, upstream: u}
  - {name: second, match: {path: /s}, upstream: u}
`), "t.yaml")
	if err == nil || !strings.Contains(err.Error(), `t.yaml:6:`) || !strings.Contains(err.Error(), `routes[1].match: route "second" can never match: routes[0] ("first") has the same match`) {
		t.Errorf("problems %v; want the second route named at its line", err)
	}
}

// listen written but empty (often "${LISTEN}" with the variable set to "") fell back to the
// default :8080 on every interface.
func TestBadConfigEmptyListen(t *testing.T) {
	t.Setenv("PORTICO_TEST_LISTEN", "")
	for _, yaml := range []string{`listen: ""`, `listen: "${PORTICO_TEST_LISTEN}"`} {
		_, err := Parse([]byte("admin: \"off\"\n"+yaml+"\n"), "t.yaml")
		if err == nil || !strings.Contains(err.Error(), "t.yaml:2:") || !strings.Contains(err.Error(), "listen: listen is empty (remove it for the default :8080)") {
			t.Errorf("%s: %v", yaml, err)
		}
	}
	if f, err := Parse([]byte("admin: \"off\"\n"), "t.yaml"); err != nil || f.Listen != "" {
		t.Errorf("no listen: %v", err)
	}
}

// An mtls-auth policy needs a listener that asks clients for certificates (tls.client_ca);
// without one it refuses every request it guards.
func TestBadConfigMTLSAuthWithoutClientCA(t *testing.T) {
	_, err := Parse([]byte(`admin: "off"
policies:
  m: {mtls-auth: {}}
`), "t.yaml")
	if err == nil || !strings.Contains(err.Error(), "policies.m.mtls-auth: no listener asks clients for certificates") {
		t.Errorf("problems %v; want the policy named", err)
	}
}
