package config

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Nested aliases multiply: 120 keys aliased into 120 issuers aliased into 120 policies are
// 1.7 million JWT keys from a file of a few hundred lines.
func TestAliasAmplificationIsRefused(t *testing.T) {
	const n = 120
	var b strings.Builder
	b.WriteString("admin: \"off\"\npolicies:\n  p0:\n    jwt:\n      issuers: &is\n        - issuer: i0\n          algorithms: [HS256]\n          keys: &ks\n")
	for j := range n {
		fmt.Fprintf(&b, "            - {kid: k%d, secret: \"0123456789abcdef0123456789abcdef\"}\n", j)
	}
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "        - {issuer: i%d, algorithms: [HS256], keys: *ks}\n", i)
	}
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "  p%d: {jwt: {issuers: *is}}\n", i)
	}
	start := time.Now()
	_, err := Parse([]byte(b.String()), "t.yaml")
	took := time.Since(start)
	if err == nil {
		t.Errorf("a %d-byte file that aliases into %d JWT keys loaded (in %v); want an error about excessive aliasing", b.Len(), n*n*n, took)
	} else if !strings.Contains(err.Error(), "alias") {
		t.Errorf("want an error about aliasing, got (after %v):\n%.500s", took, err)
	} else if !strings.Contains(err.Error(), "alias *is") || !strings.Contains(err.Error(), "t.yaml:256:") {
		// Line 256 is p17's *is: 16 policies' worth of keys fit in the budget, the 17th does not.
		t.Errorf("want the error at the alias that crosses the budget (t.yaml:256, *is), got:\n%.500s", err)
	}
	if took > 2*time.Second {
		t.Errorf("refusing it took %v", took)
	}
}

// The count is what the aliases expand to: the size of the document with every alias written out.
func TestAliasExpansionIsTheWrittenOutSize(t *testing.T) {
	for _, tc := range []struct {
		name, aliased, writtenOut string
	}{
		{"no aliases", "a: [1, 2]\nb: x\n", "a: [1, 2]\nb: x\n"},
		{"alias", "a: &x [1, 2]\nb: *x\n", "a: [1, 2]\nb: [1, 2]\n"},
		{"alias of alias", "a: &x [1, 2]\nb: &y [*x, *x]\nc: *y\n", "a: [1, 2]\nb: [[1, 2], [1, 2]]\nc: [[1, 2], [1, 2]]\n"},
		{"redefined anchor", "a: &x [1]\nb: *x\nc: &x [1, 2, 3]\nd: *x\n", "a: [1]\nb: [1]\nc: [1, 2, 3]\nd: [1, 2, 3]\n"},
		{"merge key", "a: &x {k: 1}\nb: {<<: *x, j: 2}\n", "a: {k: 1}\nb: {<<: {k: 1}, j: 2}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &aliasCount{budget: 1 << 30, anchors: map[string]*ast.AnchorNode{}, size: map[ast.Node]int{}}
			if got, want := c.expanded(body(t, tc.aliased)), countWritten(body(t, tc.writtenOut)); got != want {
				t.Errorf("expanded size %d, want %d", got, want)
			}
		})
	}
}

func body(t *testing.T, src string) ast.Node {
	t.Helper()
	f, err := parser.ParseBytes([]byte(src), 0)
	if err != nil {
		t.Fatal(err)
	}
	return f.Docs[0].Body
}

// A config that shares an anchor widely, as real ones do, loads.
func TestWidelySharedAnchorLoads(t *testing.T) {
	var b strings.Builder
	b.WriteString("admin: \"off\"\nupstreams:\n  u: {targets: [{url: \"http://127.0.0.1:1\"}]}\nx-retry: &m {path_prefix: /p, methods: [GET, POST, PUT, DELETE]}\nroutes:\n")
	for i := range 3000 {
		fmt.Fprintf(&b, "  - {name: r%d, upstream: u, match: {<<: *m, path_prefix: /r%d}}\n", i, i)
	}
	if _, err := Parse([]byte(b.String()), "t.yaml"); err != nil && strings.Contains(err.Error(), "alias") {
		t.Fatalf("a 3000-route file sharing one anchor was refused for aliasing:\n%.500s", err)
	}
}
