package jwtauth

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portico-gw/portico/policies"
)

// TestTwoPoliciesOneRoute is the documented way to trust two identity providers that map
// consumers by subject: one jwt policy per provider, both on the route. Each takes its own
// issuer's tokens (even one signed with an algorithm the other policy does not allow), a token
// of neither is a 401 even with an anonymous fallback, and the same subject at two providers
// names two consumers.
func TestTwoPoliciesOneRoute(t *testing.T) {
	keys(t)
	cs, err := policies.NewConsumers([]policies.ConsumerConfig{
		{Name: "alice-at-h", JWT: &policies.JWTCredential{Key: "alice", Issuer: "hmac-iss"}},
		{Name: "alice-at-e", JWT: &policies.JWTCredential{Key: "alice", Issuer: "ec-iss"}},
		{Name: "bob", JWT: &policies.JWTCredential{Key: "bob"}},
		{Name: "guest"},
	})
	if err != nil {
		t.Fatal(err)
	}
	all := testConfig(t).Issuers
	only := func(name string) Config {
		for _, ic := range all {
			if ic.Issuer == name {
				return Config{Issuers: []IssuerConfig{ic}, ConsumerClaim: "sub", Anonymous: "guest"}
			}
		}
		t.Fatalf("no issuer %s", name)
		return Config{}
	}
	hp, ep := buildJWT(t, only("hmac-iss"), cs), buildJWT(t, only("ec-iss"), cs)
	route := policies.Chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }),
		[]policies.Policy{hp, ep}, nil, cs)
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), c, nil) }
	es := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodES256, ecP256, c, nil) }
	tests := []struct {
		name     string
		auth     string
		status   int
		consumer string
	}{
		{"first provider", "Bearer " + hs(claims("hmac-iss", "sub", "alice")), 204, "alice-at-h"},
		{"second provider, an algorithm the first does not allow", "Bearer " + es(claims("ec-iss", "sub", "alice")), 204, "alice-at-e"},
		{"expired at the second provider", "Bearer " + es(claims("ec-iss", "sub", "alice", "exp", time.Now().Add(-time.Hour).Unix())), 401, ""},
		{"a provider on neither policy", "Bearer " + sign(t, jwt.SigningMethodRS256, rsaA, claims("rsa-iss", "sub", "alice"), map[string]any{"kid": "r1"}), 401, ""},
		{"no iss at all", "Bearer " + hs(jwt.MapClaims{"sub": "alice"}), 401, ""},
		// bob's credential is unscoped: a subject "bob" at either provider is not bob.
		{"unscoped credential", "Bearer " + hs(claims("hmac-iss", "sub", "bob")), 401, ""},
		{"bare Bearer is not an anonymous request", "Bearer", 401, ""},
		{"no token: anonymous", "", 204, "guest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			w, info := serve(route, r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.status == 204 && (info.Identity == nil || info.Identity.Consumer != tt.consumer) {
				t.Fatalf("identity %+v, want consumer %s", info.Identity, tt.consumer)
			}
		})
	}
}

func TestConsumerClaimNeedsScopedConsumers(t *testing.T) {
	keys(t)
	c := testConfig(t)
	c.Issuers, c.ConsumerClaim = c.Issuers[:1], "sub" // rsa-iss: no consumer is scoped to it
	_, err := New("tokens", c, policies.Deps{Consumers: testConsumers(t)})
	if err == nil {
		t.Fatal("a sub-mapped policy no consumer is scoped to was accepted: it would refuse every token")
	}
	c.AllowUnknownConsumers = true
	p, err := New("tokens", c, policies.Deps{Consumers: testConsumers(t)})
	if err != nil {
		t.Fatal(err)
	}
	_ = p.(*JWT).Close()
}

// TestJWKSKeyUse: a JWKS key is used only for the algorithm it names and never when meant for
// encryption, whether a token picks it by kid or is tried against every key (no kid).
func TestJWKSKeyUse(t *testing.T) {
	keys(t)
	jwk := func(kid string, k *rsa.PublicKey, alg, use string) map[string]string {
		m := map[string]string{"kty": "RSA", "kid": kid,
			"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes())}
		if alg != "" {
			m["alg"] = alg
		}
		if use != "" {
			m["use"] = use
		}
		return m
	}
	set := map[string]any{"keys": []map[string]string{
		jwk("enc", &rsaA.PublicKey, "", "enc"),
		jwk("ps", &rsaB.PublicKey, "PS256", "sig"),
		jwk("plain", &rsaC.PublicKey, "", ""),
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	defer srv.Close()
	c := jwksConfig(srv.URL, func(ic *IssuerConfig) { ic.Algorithms = []string{"RS256", "PS256"} })
	j := buildJWT(t, c, nil)
	tests := []struct {
		name string
		m    jwt.SigningMethod
		key  *rsa.PrivateKey
		kid  string
		ok   bool
	}{
		{"no kid, encryption key", jwt.SigningMethodRS256, rsaA, "", false},
		{"kid, encryption key", jwt.SigningMethodRS256, rsaA, "enc", false},
		{"no kid, key for another algorithm", jwt.SigningMethodRS256, rsaB, "", false},
		{"kid, key for another algorithm", jwt.SigningMethodRS256, rsaB, "ps", false},
		{"no kid, the key's own algorithm", jwt.SigningMethodPS256, rsaB, "", true},
		{"kid, the key's own algorithm", jwt.SigningMethodPS256, rsaB, "ps", true},
		{"no kid, key without alg or use", jwt.SigningMethodRS256, rsaC, "", true},
		{"kid, key without alg or use", jwt.SigningMethodRS256, rsaC, "plain", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h map[string]any
			if tt.kid != "" {
				h = map[string]any{"kid": tt.kid}
			}
			_, err := j.Authenticate(bearer(sign(t, tt.m, tt.key, claims("idp"), h)))
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// A sub with a control byte is refused: it would go upstream as X-Authenticated-Subject, where a
// backend reading C strings takes "admin\x00.evil" for "admin".
func TestSubjectWithControlBytesRefused(t *testing.T) {
	keys(t)
	j := buildJWT(t, testConfig(t), testConsumers(t))
	for _, sub := range []string{"admin\x00.evil", "a\nb", "a\x7f"} {
		tok := sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), claims("hmac-iss", "sub", sub), nil)
		if id, err := j.Authenticate(bearer(tok)); err == nil {
			t.Errorf("sub %q accepted as %+v", sub, id)
		}
	}
	tok := sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), claims("hmac-iss", "sub", "tab\there"), nil)
	if _, err := j.Authenticate(bearer(tok)); err != nil {
		t.Errorf("a sub with a tab refused: %v", err)
	}
}
