package config

import (
	"strings"
	"testing"
)

// A secret from the environment is redacted in problems in whatever form the message quotes it:
// %q escapes `"`, `\` and control characters, and url.Parse's errors quote the URL the same way.
func TestProblemsDoNotRepeatEscapedEnvironmentSecrets(t *testing.T) {
	for name, secret := range map[string]string{"quote": `pa"ss-s3cret-value`, "backslash": `pa\ss-s3cret-value`, "tab": "pa\tss-s3cret-value"} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("PORTICO_TEST_PW", secret)
			t.Setenv("PORTICO_TEST_REDIS_PW", secret)
			_, err := Parse([]byte(`admin: "off"
upstreams:
  a: {targets: [{url: "http://u:${PORTICO_TEST_PW}@127.0.0.1:9101"}]}
store: {redis: "redis://:${PORTICO_TEST_REDIS_PW}@127.0.0.1:6379/0"}
`), "t.yaml")
			if err == nil {
				t.Fatal("a URL with an invalid password must be refused")
			}
			if msg := err.Error(); strings.Contains(msg, "ss-s3cret-value") {
				t.Errorf("the problem repeats the secret (escaped):\n%s", msg)
			}
		})
	}
}

// A short value from the environment is redacted as part of the whole value it went into, not
// wherever its text appears: PORT=e turned a message into "[r[r[r[redacted]dact…" and PORT=1
// turned 127.0.0.1 into "[redacted]27.0.0.[redacted]". Each form is replaced once, so no value
// matches inside the "[redacted]" another one left.
func TestShortEnvironmentValuesDoNotGarbleProblems(t *testing.T) {
	for _, tc := range []struct {
		name, env, value, yaml string
		want, not              string
	}{
		{"a letter as a port", "PORTICO_TEST_PORT", "e", `upstreams:
  a: {targets: [{url: "http://127.0.0.1:${PORTICO_TEST_PORT}/x"}]}
`, `"[redacted]"`, "[r["},
		{"a digit as a port", "PORTICO_TEST_PORT", "1", `upstreams:
  a: {targets: [{url: "http://127.0.0.1:${PORTICO_TEST_PORT}/x"}]}
`, `"[redacted]"`, "27.0.0."},
		{"a whole value of one digit", "PORTICO_TEST_V", "1", `listeners:
  - {address: "127.0.0.1:0", tls: {min_version: "${PORTICO_TEST_V}", certificates: [{cert: c.pem, key: k.pem}]}}
`, `min_version [redacted] (allowed: "1.2", "1.3")`, "[redacted].2"},
		{"a whole value of one letter", "PORTICO_TEST_M", "e", `server: {http1_server: "${PORTICO_TEST_M}"}
`, `unknown server [redacted] (known: portico, net/http)`, "s[redacted]"},
		{"a letter in a name", "PORTICO_TEST_UP", "a", `upstreams:
  b: {targets: [{url: "http://127.0.0.1:81"}]}
routes:
  - {name: r, match: {path_prefix: /}, upstream: "u${PORTICO_TEST_UP}"}
`, "unknown upstream", "[red[red"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(tc.env, tc.value)
			_, err := Parse([]byte("admin: \"off\"\n"+tc.yaml), "t.yaml")
			if err == nil {
				t.Fatal("want a problem")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) || strings.Contains(msg, tc.not) || strings.Count(msg, "[redacted]") > 2 {
				t.Errorf("problem %q; want it to hold %q, not %q, and at most two redactions", msg, tc.want, tc.not)
			}
		})
	}
}

// A Redis URL that does not parse is quoted in the problem without its password, even when the
// password was written in the file; one whose port is out of range is refused (go-redis takes it,
// and every dial fails later while rate limits fail open).
func TestRedisURLProblems(t *testing.T) {
	for _, tc := range []struct{ url, want, not string }{
		{"redis://:hunter2@127.0.0.1:abc/0", "not a valid URL", "hunter2"},
		{"redis://:zq/ss-hunter2@127.0.0.1:6379/0", "not a valid URL", "zq"},
		{"redis://:zq?ss-hunter2@127.0.0.1:6379/0", "not a valid URL", "zq"},
		{"redis://:zq#ss-hunter2@127.0.0.1:6379/0", "not a valid URL", "zq"},
		{"redis://:hunter2@127.0.0.1:6379/db", "not a valid Redis URL", "hunter2"},
		// An unescaped "/" ends the host: go-redis then quotes "word@127.0.0.1:6379" as the
		// database, the password's tail.
		{"redis://:p@ss/word@127.0.0.1:6379", "not a valid Redis URL", "word@127"},
		{"redis://127.0.0.1:6379/db", "invalid database", ""},
		{"redis://user:hunter2@127.0.0.1:99999/0", `port "99999" is out of range`, "hunter2"},
		{"redis://127.0.0.1:0/0", `port "0" is out of range`, ""},
	} {
		_, err := Parse([]byte("admin: \"off\"\nstore: {redis: \""+tc.url+"\"}\n"), "t.yaml")
		if err == nil {
			t.Errorf("%s: accepted", tc.url)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, tc.want) || (tc.not != "" && strings.Contains(msg, tc.not)) || !strings.Contains(msg, "t.yaml:2:") {
			t.Errorf("%s: problem %q; want %q at line 2 without %q", tc.url, msg, tc.want, tc.not)
		}
	}
	if _, err := Parse([]byte("admin: \"off\"\nstore: {redis: \"redis://:pw@127.0.0.1:6379/0\"}\n"), "t.yaml"); err != nil {
		t.Errorf("a good Redis URL refused: %v", err)
	}
}

// A target URL with a user and password parses, so it passed validation and was refused only
// when the upstreams were built, where the message quoted it whole: the password from the
// environment reached the log. Validation refuses it now, naming only the host.
func TestTargetCredentialsAreRefusedWithoutBeingShown(t *testing.T) {
	t.Setenv("PORTICO_TEST_TURL", "http://bob:s3cretpw@127.0.0.1:18100")
	for _, url := range []string{"${PORTICO_TEST_TURL}", "http://bob:hunter2@127.0.0.1:18100"} {
		_, err := Parse([]byte("admin: \"off\"\nupstreams:\n  a: {targets: [{url: \""+url+"\"}]}\n"), "t.yaml")
		if err == nil {
			t.Fatalf("%s: accepted", url)
		}
		if msg := err.Error(); !strings.Contains(msg, "must not carry a user or password") || strings.Contains(msg, "s3cretpw") || strings.Contains(msg, "hunter2") {
			t.Errorf("%s: problem %q", url, msg)
		}
	}
}
