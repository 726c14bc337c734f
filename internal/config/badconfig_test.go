package config

import (
	"strings"
	"testing"
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
