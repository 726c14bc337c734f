package confval

import (
	"strings"
	"testing"
)

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

func TestByteSizeThatDoesNotFitInt64IsRefused(t *testing.T) {
	for _, in := range []string{"17179869184GiB", "17179869185GiB", "8589934592GiB", "9223372036854775807K", "18446744073709552MB", "9223372036854775808"} {
		var s ByteSize
		err := s.UnmarshalText([]byte(in))
		if err == nil {
			t.Errorf("UnmarshalText(%q) accepted the size as %d bytes", in, int64(s))
		} else if !strings.Contains(err.Error(), "too large") {
			t.Errorf("UnmarshalText(%q): want an error saying the size is too large, got %v", in, err)
		}
	}
	for in, want := range map[string]int64{"8589934591GiB": 8589934591 << 30, "9223372036854775807": 1<<63 - 1, "9223372036854775807B": 1<<63 - 1} {
		var s ByteSize
		if err := s.UnmarshalText([]byte(in)); err != nil || int64(s) != want {
			t.Errorf("UnmarshalText(%q) = %d, %v; want %d", in, int64(s), err, want)
		}
	}
}

func TestNameProblem(t *testing.T) {
	for name, want := range map[string]string{
		"orders": "", "users-api v2": "", "café": "",
		"": "must not be empty", "  \t": "must not be empty",
		"r\xff": "not valid UTF-8", "a\nb": "control character", "a\u0085b": "control character",
	} {
		if got := NameProblem(name); (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("NameProblem(%q) = %q, want %q", name, got, want)
		}
	}
}
