package policies

import (
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestByBasicCostsTheSameForEveryUsername shows that with hashes of several costs configured,
// every check does 2^max bcrypt rounds: an unknown user against the dummy hash, a user with a
// cheaper hash padded with dummy comparisons. Without the padding the cost-4 user answers 4x
// faster than anyone else, and an attacker timing logins learns which accounts are old.
func TestByBasicCostsTheSameForEveryUsername(t *testing.T) {
	gen := func(pw string, cost int) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	cs, err := NewConsumers([]ConsumerConfig{
		{Name: "old", BasicAuth: &BasicCredential{Username: "old", PasswordHash: gen("pw-old", 4)}},
		{Name: "new", BasicAuth: &BasicCredential{Username: "new", PasswordHash: gen("pw-new", 6)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var rounds int
	real := compareHash
	compareHash = func(hash, pw []byte) error {
		cost, err := bcrypt.Cost(hash)
		if err != nil {
			t.Fatalf("compared against a non-bcrypt hash: %v", err)
		}
		rounds += 1 << cost
		return real(hash, pw)
	}
	t.Cleanup(func() { compareHash = real })
	tests := []struct {
		user, pw string
		ok       bool
	}{
		{"old", "pw-old", true},
		{"old", "wrong", false},
		{"new", "pw-new", true},
		{"new", "wrong", false},
		{"nobody", "pw-old", false},
	}
	for _, tt := range tests {
		rounds = 0
		_, ok := cs.ByBasic(tt.user, tt.pw)
		if ok != tt.ok {
			t.Errorf("ByBasic(%q, %q) = %v, want %v", tt.user, tt.pw, ok, tt.ok)
		}
		if rounds != 1<<6 {
			t.Errorf("ByBasic(%q) did %d bcrypt rounds, want %d like every other username", tt.user, rounds, 1<<6)
		}
	}
}
