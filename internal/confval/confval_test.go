package confval

import "testing"

func TestProblemsErrListsEveryProblem(t *testing.T) {
	var p Problems
	if err := p.Err("policy \"x\""); err != nil {
		t.Fatalf("no problems gave %v", err)
	}
	p.Addf("limits.minute", "must be positive")
	p.Addf("", "needs a type")
	want := `policy "x": limits.minute: must be positive; needs a type`
	if err := p.Err(`policy "x"`); err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

func TestIsToken(t *testing.T) {
	for s, want := range map[string]bool{"GET": true, "X-Api-Key": true, "": false, "a b": false, "a:b": false, "é": false} {
		if IsToken(s) != want {
			t.Errorf("IsToken(%q) = %v", s, !want)
		}
		if IsTokenBytes([]byte(s)) != want {
			t.Errorf("IsTokenBytes(%q) = %v", s, !want)
		}
	}
}
