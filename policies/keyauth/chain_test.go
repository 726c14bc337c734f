package keyauth_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/policies"
	"github.com/portico-gw/portico/policies/acl"
	"github.com/portico-gw/portico/policies/jwtauth"
	"github.com/portico-gw/portico/policies/keyauth"
)

const chainSecret = "0123456789abcdef0123456789abcdef-chain"

func chainToken(t *testing.T, iss string, exp time.Time) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": iss, "sub": "u1", "exp": exp.Unix()}).
		SignedString([]byte(chainSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestChainKeyAuthAndJWT runs key-auth and jwt as one authentication step through
// policies.Chain. The rule: either credential is enough; a present but invalid credential fails
// the request even when the other is valid; no credential at all gets both challenges (or the
// anonymous consumer).
func TestChainKeyAuthAndJWT(t *testing.T) {
	cs, err := policies.NewConsumers([]policies.ConsumerConfig{
		{Name: "web-app", Keys: []string{"web-secret-key"}, Groups: []string{"first-party"}},
		{Name: "partner", Keys: []string{"partner-key"}, JWT: &policies.JWTCredential{Key: "acme"}, Groups: []string{"partners"}},
		{Name: "guest", Groups: []string{"public"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	deps := policies.Deps{Consumers: cs}
	newKey := func(anon string) policies.Policy {
		p, err := keyauth.New("apikey", keyauth.Config{Anonymous: anon}, deps)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	jp, err := jwtauth.New("tokens", jwtauth.Config{Issuers: []jwtauth.IssuerConfig{
		{Issuer: "acme", Algorithms: []string{"HS256"}, Keys: []jwtauth.KeyConfig{{Secret: chainSecret}}},
	}}, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = jp.(interface{ Close() error }).Close() })
	partnersOnly, err := acl.New("partners-only", acl.Config{Allow: []string{"partners", "public"}}, deps)
	if err != nil {
		t.Fatal(err)
	}

	good := chainToken(t, "acme", time.Now().Add(time.Hour))
	expired := chainToken(t, "acme", time.Now().Add(-time.Hour))
	keyFirst := []policies.Policy{newKey(""), jp}
	jwtFirst := []policies.Policy{jp, newKey("")}
	// The acl is listed first but runs after authentication: phases, not list order.
	withAnonAndACL := []policies.Policy{partnersOnly, jp, newKey("guest")}

	tests := []struct {
		name      string
		pols      []policies.Policy
		key, tok  string
		status    int
		consumer  string
		challenge string
		skip      string
	}{
		{"key alone", keyFirst, "web-secret-key", "", 204, "web-app", "", ""},
		{"token alone", keyFirst, "", good, 204, "partner", "", ""},
		{"token alone, jwt listed first", jwtFirst, "", good, 204, "partner", "", ""},
		{"wrong key", keyFirst, "nope", "", 401, "", `Key realm="portico"`, ""},
		{"expired token", keyFirst, "", expired, 401, "", `Bearer realm="portico", error="invalid_token"`, ""},
		// No token sent: the Bearer challenge has no error code (RFC 6750 3.1).
		{"nothing: both challenges", keyFirst, "", "", 401, "",
			`Key realm="portico", Bearer realm="portico"`, ""},
		{"wrong key fails though the token is valid", keyFirst, "nope", good, 401, "", `Key realm="portico"`, ""},
		{"expired token fails though the key is valid (jwt first)", jwtFirst, "web-secret-key", expired, 401, "",
			`Bearer realm="portico", error="invalid_token"`, ""},
		{"expired token fails though the key is valid (key first)", keyFirst, "web-secret-key", expired, 401, "",
			`Bearer realm="portico", error="invalid_token"`, ""},
		{"both valid: the first listed wins", keyFirst, "web-secret-key", good, 204, "web-app", "", ""},
		{"anonymous when nothing is sent", withAnonAndACL, "", "", 204, "guest", "", ""},
		{"anonymous does not excuse an invalid token", withAnonAndACL, "", expired, 401, "", `Bearer realm="portico", error="invalid_token"`, ""},
		{"acl after authentication: allowed group", withAnonAndACL, "partner-key", "", 204, "partner", "", ""},
		{"acl after authentication: other group", withAnonAndACL, "web-secret-key", "", 403, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.skip != "" {
				t.Skip(tt.skip)
			}
			var seen *reqctx.Identity
			h := policies.Chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen = reqctx.From(r.Context()).Identity
				w.WriteHeader(http.StatusNoContent)
			}), tt.pols, nil, cs)
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.key != "" {
				r.Header.Set("apikey", tt.key)
			}
			if tt.tok != "" {
				r.Header.Set("Authorization", "Bearer "+tt.tok)
			}
			w := serve(h, r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tt.challenge {
				t.Fatalf("WWW-Authenticate %q, want %q", got, tt.challenge)
			}
			if tt.status == 204 && (seen == nil || seen.Consumer != tt.consumer) {
				t.Fatalf("identity %+v, want %q", seen, tt.consumer)
			}
		})
	}
}
