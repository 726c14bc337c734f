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
