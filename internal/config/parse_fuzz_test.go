package config

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"testing"
)

// FuzzParseProblems checks what Parse promises about its answer on any input: it is
// deterministic (the same bytes give the same File or the same problems), every problem but the
// empty-file one is placed on a line of the file, the problems come sorted by line, and Error()
// prints one line per problem.
func FuzzParseProblems(f *testing.F) {
	for _, name := range []string{"valid", "many_problems", "anchors", "wrong_types", "env_missing", "multi_doc",
		"quoted_keys", "unknown_keys", "syntax", "missing_required", "listeners", "bad_values"} {
		data, err := os.ReadFile("testdata/" + name + ".yaml")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("{}"))
	f.Add([]byte("~"))
	f.Add([]byte("%YAML 1.2\n---\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("routes:\n  - <<: *missing\n"))
	f.Add([]byte("\r0"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file1, err1 := Parse(data, "fuzz.yaml")
		file2, err2 := Parse(data, "fuzz.yaml")
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("not deterministic: %v, then %v", err1, err2)
		}
		if err1 != nil {
			if err1.Error() != err2.Error() {
				t.Fatalf("not deterministic:\n%v\nthen\n%v", err1, err2)
			}
			var e *Error
			if !errors.As(err1, &e) {
				t.Fatalf("error %T, want *Error: %v", err1, err1)
			}
			if len(e.Problems) == 0 {
				t.Fatal("an *Error without problems")
			}
			// YAML breaks lines at LF, CRLF and a lone CR.
			lines := bytes.Count(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n")), []byte("\n")) +
				bytes.Count(data, []byte("\r")) - bytes.Count(data, []byte("\r\n")) + 1
			for i, p := range e.Problems {
				if p.Message == errEmpty {
					continue
				}
				if p.Line < 1 || p.Line > lines || p.Column < 0 {
					t.Errorf("problem %+v is not placed in the file's %d lines", p, lines)
				}
				if i > 0 && e.Problems[i-1].Line > p.Line && p.Line > 0 {
					t.Errorf("problems not sorted by line: %+v before %+v", e.Problems[i-1], p)
				}
			}
			return
		}
		if !reflect.DeepEqual(Redacted(file1), Redacted(file2)) {
			t.Fatalf("not deterministic: %#v, then %#v", Redacted(file1), Redacted(file2))
		}
	})
}
