package httpfield

import "testing"

func TestListContains(t *testing.T) {
	for _, tc := range []struct {
		lines []string
		token string
		want  bool
	}{
		{nil, "Origin", false},
		{[]string{"Origin"}, "Origin", true},
		{[]string{"accept, origin"}, "Origin", true},
		{[]string{"Accept", " ORIGIN "}, "origin", true},
		{[]string{"Origins, X-Origin"}, "Origin", false},
		{[]string{"keep-alive, Upgrade"}, "upgrade", true},
	} {
		if got := ListContains(tc.lines, tc.token); got != tc.want {
			t.Errorf("%q has %q: %v, want %v", tc.lines, tc.token, got, tc.want)
		}
	}
}
