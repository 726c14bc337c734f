package config

import (
	"strings"
	"testing"
)

func TestScanLimits(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for _, tc := range []struct {
		name string
		yaml string
		line int // 0: not too deep
	}{
		{"a real config", "upstreams:\n  a: {targets: [{url: \"http://h\"}]}\n", 0},
		{"at the limit", "x: " + deep(maxFlowNesting) + "\n", 0},
		{"past the limit", "a: 1\nx: " + deep(maxFlowNesting+1) + "\n", 2},
		{"mappings past the limit", "x: " + strings.Repeat("{a: ", maxFlowNesting+1) + "1" + strings.Repeat("}", maxFlowNesting+1) + "\n", 1},
		{"closed and reopened", strings.Repeat("x: "+deep(maxFlowNesting)+"\n", 3), 0},
		{"brackets in a double-quoted scalar", `x: "` + strings.Repeat("[", 100) + `\" [["` + "\n", 0},
		{"brackets in a single-quoted scalar", `x: '` + strings.Repeat("{", 100) + `'' {{'` + "\n", 0},
		{"brackets in a comment", "x: 1 # " + strings.Repeat("[", 100) + "\n", 0},
		{"an apostrophe in a plain scalar opens nothing", "x: it's\ny: " + deep(maxFlowNesting+1) + "\n", 2},
		{"brackets inside a plain scalar are text", "x: a#" + strings.Repeat("[", maxFlowNesting+1) + "\n", 0},
		{"a quoted scalar over lines counts them", "x: \"a\n b\"\ny: " + deep(maxFlowNesting+1) + "\n", 3},
		{"sequences in sequences on one line", "x:\n" + strings.Repeat("- ", 200) + "1\n", 2},
		{"a few sequences in sequences", "x:\n" + strings.Repeat("- ", 10) + "1\n", 0},
		{"mappings indented past the column bound", "a:\n" + strings.Repeat(" ", maxBlockColumn) + "b: 1\n", 2},
		{"a long flow line is not block nesting", "x: [" + strings.Repeat("1, ", 1000) + "1]\n", 0},
		{"a long key is not block nesting", strings.Repeat("k", 1000) + ": 1\n", 0},
		{"a literal block scalar's lines are not nesting", "x: |\n" + strings.Repeat(" ", 300) + "text\n", 0},
		{"nor a folded one's after a comment", "x: > # c\n" + strings.Repeat(" ", 300) + "text\n", 0},
		{"a closing bracket far in", "x: [1,\n" + strings.Repeat(" ", 300) + "]\n", 0},
		{"a flow collection opening far in, inside another", "x: [1,\n" + strings.Repeat(" ", 300) + "[2]]\n", 0},
		{"a comment far in", "x: 1\n" + strings.Repeat(" ", 300) + "# c\n", 0},
		{"too many tokens", strings.Repeat("- 1\n", maxConfigTokens/2+1), maxConfigTokens/2 + 1},
		{"a token that is not YAML", "a: 1\nb: @x\n", 2},
	} {
		if got, _, _ := scanLimits([]byte(tc.yaml)); got != tc.line {
			t.Errorf("%s: line %d, want %d", tc.name, got, tc.line)
		}
	}
}

// A file of deeply nested brackets is refused with its line before the parser, whose memory grows
// with the square of the depth (100,000 levels took more than 8 GB), sees it; a file over the size
// limit is refused before either.
func TestNestedAndOversizedFilesAreRefused(t *testing.T) {
	_, err := Parse([]byte("admin: \"off\"\nx: "+strings.Repeat("[", 100_000)), "t.yaml")
	if err == nil || !strings.Contains(err.Error(), "t.yaml:2:68: invalid YAML: collections ([…], {…}) nested more than 64 deep") {
		t.Errorf("100,000 brackets: %v", err)
	}
	_, err = Parse([]byte("admin: \"off\"\nx: \""+strings.Repeat("a", maxConfigBytes)+"\"\n"), "t.yaml")
	if err == nil || !strings.Contains(err.Error(), "the limit is 1 MiB") {
		t.Errorf("a file over the limit: %v", err)
	}
	_, err = Parse([]byte("admin: \"off\"\nx:\n"+strings.Repeat("- ", 100_000)+"1\n"), "t.yaml")
	if err == nil || !strings.Contains(err.Error(), "t.yaml:3:257: invalid YAML: nested too deep: a line in block context starts past column 256") {
		t.Errorf("100,000 sequences in sequences: %v", err)
	}
}
