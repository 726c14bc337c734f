package jwtauth

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portico-gw/portico/policies"
)

// Two jwt policies reading different cookies: a forged token in one policy's cookie is not
// excused by a valid token in the other's, which the other policy accepted and the first never
// verified (it answered ErrNotMine for a token the other did not even read).
func TestUnverifiedTokenBesideAnotherPolicysValidOne(t *testing.T) {
	keys(t)
	cs, err := policies.NewConsumers([]policies.ConsumerConfig{
		{Name: "alice-at-h", JWT: &policies.JWTCredential{Key: "alice", Issuer: "hmac-iss"}},
		{Name: "alice-at-e", JWT: &policies.JWTCredential{Key: "alice", Issuer: "ec-iss"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	only := func(name, cookie string) Config {
		for _, ic := range testConfig(t).Issuers {
			if ic.Issuer == name {
				return Config{Issuers: []IssuerConfig{ic}, ConsumerClaim: "sub", CookieNames: []string{cookie}}
			}
		}
		t.Fatalf("no issuer %s", name)
		return Config{}
	}
	a, b := buildJWT(t, only("hmac-iss", "a_token"), cs), buildJWT(t, only("ec-iss", "b_token"), cs)
	route := policies.Chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }),
		[]policies.Policy{a, b}, nil, cs)
	valid := sign(t, jwt.SigningMethodES256, ecP256, claims("ec-iss", "sub", "alice"), nil)
	for name, forged := range map[string]string{
		"iss of the other policy, bad signature": unsigned(t, map[string]any{"alg": "ES256", "typ": "JWT"}, map[string]any{"iss": "ec-iss", "sub": "admin"}, "AAAA"),
		"iss of nobody":                          unsigned(t, map[string]any{"alg": "HS256", "typ": "JWT"}, map[string]any{"iss": "evil", "sub": "admin"}, "AAAA"),
		"iss a JSON array":                       unsigned(t, map[string]any{"alg": "HS256", "typ": "JWT"}, map[string]any{"iss": []string{"hmac-iss"}, "sub": "admin"}, "AAAA"),
	} {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.AddCookie(&http.Cookie{Name: "a_token", Value: forged})
			r.AddCookie(&http.Cookie{Name: "b_token", Value: valid})
			w, _ := serve(route, r)
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("status %d: an unverified token in a_token passed beside a valid b_token (a present but invalid credential must fail the request)", w.Code)
			}
		})
	}
}
