package jwtauth

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/golang-jwt/jwt/v5"

	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/policies"
)

func testConsumers(t testing.TB) *policies.Consumers {
	t.Helper()
	cs, err := policies.NewConsumers([]policies.ConsumerConfig{
		{Name: "rsa-partner", JWT: &policies.JWTCredential{Key: "rsa-iss"}, Groups: []string{"partners"}},
		{Name: "hmac-app", JWT: &policies.JWTCredential{Key: "hmac-iss"}},
		{Name: "ec-app", JWT: &policies.JWTCredential{Key: "ec-iss"}},
		{Name: "ed-app", JWT: &policies.JWTCredential{Key: "ed-iss"}},
		{Name: "mixed-app", JWT: &policies.JWTCredential{Key: "mixed"}},
		{Name: "azp-app", JWT: &policies.JWTCredential{Key: "client-7", Issuer: "hmac-iss"}},
		{Name: "guest"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// testConfig trusts five issuers, one per key family, plus "mixed", which allows both HS256 and
// RS256 so key confusion is tried where the algorithm allow-list alone would not stop it.
func testConfig(t testing.TB) Config {
	t.Helper()
	keys(t)
	ecFile := filepath.Join(t.TempDir(), "ec.pem")
	if err := os.WriteFile(ecFile, []byte(pemOf(t, &ecP256.PublicKey)), 0o600); err != nil {
		t.Fatal(err)
	}
	return Config{Issuers: []IssuerConfig{
		{Issuer: "rsa-iss", Algorithms: []string{"RS256", "PS256"}, Audience: []string{"orders-api", "users-api"},
			Keys: []KeyConfig{{KID: "r1", PEM: pemOf(t, &rsaA.PublicKey)}}},
		{Issuer: "hmac-iss", Algorithms: []string{"HS256"}, Keys: []KeyConfig{{KID: "h1", Secret: hmacSecret}}},
		{Issuer: "ec-iss", Algorithms: []string{"ES256"}, Keys: []KeyConfig{{PEMFile: ecFile}}},
		{Issuer: "ed-iss", Algorithms: []string{"EdDSA"}, Keys: []KeyConfig{{PEM: pemOf(t, edKey.Public())}}},
		{Issuer: "mixed", Algorithms: []string{"HS256", "RS256"}, Keys: []KeyConfig{
			{KID: "rsa", PEM: pemOf(t, &rsaA.PublicKey)}, {KID: "hs", Secret: hmacSecret}}},
	}}
}

func TestAuthenticateTokens(t *testing.T) {
	keys(t)
	j := buildJWT(t, testConfig(t), testConsumers(t))
	rsaPEM := []byte(pemOf(t, &rsaA.PublicKey))
	now := time.Now()
	aud := []any{"orders-api"}
	valid := sign(t, jwt.SigningMethodRS256, rsaA, claims("rsa-iss", "aud", aud), map[string]any{"kid": "r1"})
	tests := []struct {
		name     string
		tok      string
		consumer string
		wantErr  error // nil: valid; errAny: any error
	}{
		{"RS256", valid, "rsa-partner", nil},
		{"PS256", sign(t, jwt.SigningMethodPS256, rsaA, claims("rsa-iss", "aud", "users-api"), map[string]any{"kid": "r1"}), "rsa-partner", nil},
		{"RS256 without kid tries the issuer's keys", sign(t, jwt.SigningMethodRS256, rsaA, claims("rsa-iss", "aud", aud), nil), "rsa-partner", nil},
		{"HS256", sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), claims("hmac-iss"), map[string]any{"kid": "h1"}), "hmac-app", nil},
		{"ES256 from pem_file", sign(t, jwt.SigningMethodES256, ecP256, claims("ec-iss"), nil), "ec-app", nil},
		{"EdDSA", sign(t, jwt.SigningMethodEdDSA, edKey, claims("ed-iss"), nil), "ed-app", nil},
		{"expired within leeway", sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), claims("hmac-iss", "exp", now.Add(-10*time.Second).Unix()), nil), "hmac-app", nil},
		{"nbf within leeway", sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), claims("hmac-iss", "nbf", now.Add(10*time.Second).Unix()), nil), "hmac-app", nil},

		{"malformed: one part", "abc", "", jwt.ErrTokenMalformed},
		{"malformed: two parts", "abc.def", "", jwt.ErrTokenMalformed},
		{"malformed: four parts", valid + ".x", "", jwt.ErrTokenMalformed},
		{"truncated", valid[:len(valid)-12], "", jwt.ErrTokenSignatureInvalid},
		{"garbage base64", "!!!.@@@.###", "", jwt.ErrTokenMalformed},
		{"header not JSON", "bm90IGpzb24.e30.c2ln", "", jwt.ErrTokenMalformed},
		{"whitespace inside", valid[:20] + " " + valid[20:], "", errAny},
		{"wrong signature", sign(t, jwt.SigningMethodRS256, rsaB, claims("rsa-iss", "aud", aud), map[string]any{"kid": "r1"}), "", jwt.ErrTokenSignatureInvalid},
		{"signature of another token", strings.Join(append(strings.Split(valid, ".")[:2],
			strings.Split(sign(t, jwt.SigningMethodRS256, rsaA, claims("rsa-iss", "aud", aud, "sub", "admin"), map[string]any{"kid": "r1"}), ".")[2]), "."), "", jwt.ErrTokenSignatureInvalid},
		{"HS256 wrong secret", sign(t, jwt.SigningMethodHS256, []byte(otherSecret), claims("hmac-iss"), nil), "", jwt.ErrTokenSignatureInvalid},
		{"ES256 wrong key", sign(t, jwt.SigningMethodES256, ecOther, claims("ec-iss"), nil), "", jwt.ErrTokenSignatureInvalid},
		{"expired", sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), claims("hmac-iss", "exp", now.Add(-time.Hour).Unix()), nil), "", jwt.ErrTokenExpired},
		{"not yet valid", sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), claims("hmac-iss", "nbf", now.Add(time.Hour).Unix()), nil), "", jwt.ErrTokenNotValidYet},
		{"issued in the future", sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), claims("hmac-iss", "iat", now.Add(time.Hour).Unix()), nil), "", jwt.ErrTokenUsedBeforeIssued},
		{"exp not a number", sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), claims("hmac-iss", "exp", "tomorrow"), nil), "", jwt.ErrInvalidType},
		{"wrong issuer", sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), claims("evil-iss"), nil), "", errUnknownIssuer},
		{"no issuer", sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), claims("", "iss", nil), nil), "", errUnknownIssuer},
		{"issuer not a string", sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), claims("", "iss", 7), nil), "", errUnknownIssuer},
		{"wrong audience", sign(t, jwt.SigningMethodRS256, rsaA, claims("rsa-iss", "aud", "payments-api"), map[string]any{"kid": "r1"}), "", jwt.ErrTokenInvalidAudience},
		{"missing audience", sign(t, jwt.SigningMethodRS256, rsaA, claims("rsa-iss"), map[string]any{"kid": "r1"}), "", jwt.ErrTokenRequiredClaimMissing},
		{"algorithm of another issuer", sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), claims("rsa-iss", "aud", aud), nil), "", errAlgorithm},
		{"algorithm nobody allows", sign(t, jwt.SigningMethodHS512, []byte(hmacSecret+hmacSecret), claims("hmac-iss"), nil), "", errAlgorithm},
		{"alg none", unsigned(t, map[string]any{"alg": "none", "typ": "JWT"}, claims("hmac-iss"), ""), "", errAlgorithm},
		{"alg none with kid", unsigned(t, map[string]any{"alg": "none", "kid": "h1"}, claims("hmac-iss"), ""), "", errAlgorithm},
		{"alg NONE", unsigned(t, map[string]any{"alg": "NONE"}, claims("hmac-iss"), ""), "", jwt.ErrTokenUnverifiable},
		{"no alg", unsigned(t, map[string]any{"typ": "JWT"}, claims("hmac-iss"), "c2ln"), "", errAny},
		// Key confusion: an HS256 token whose "secret" is the issuer's RSA public key, which an
		// attacker knows. The allow-list stops it where HS256 is not allowed...
		{"HS/RS confusion, HS256 not allowed", sign(t, jwt.SigningMethodHS256, rsaPEM, claims("rsa-iss", "aud", aud), map[string]any{"kid": "r1"}), "", errAlgorithm},
		// ...and the key-type check where it is: the RSA key is never used as an HMAC secret.
		{"HS/RS confusion, HS256 allowed, kid of the RSA key", sign(t, jwt.SigningMethodHS256, rsaPEM, claims("mixed"), map[string]any{"kid": "rsa"}), "", errNoKey},
		{"HS/RS confusion, HS256 allowed, no kid", sign(t, jwt.SigningMethodHS256, rsaPEM, claims("mixed"), nil), "", jwt.ErrTokenSignatureInvalid},
		{"RS256 in mixed issuer with kid of the secret", sign(t, jwt.SigningMethodRS256, rsaA, claims("mixed"), map[string]any{"kid": "hs"}), "", errNoKey},
		{"unknown kid", sign(t, jwt.SigningMethodRS256, rsaA, claims("rsa-iss", "aud", aud), map[string]any{"kid": "r9"}), "", errUnknownKID},
		{"kid not a string", sign(t, jwt.SigningMethodRS256, rsaA, claims("rsa-iss", "aud", aud), map[string]any{"kid": 1}), "", errUnknownKID},
		{"huge token", "eyJ" + strings.Repeat("A", 9<<10), "", errTooLarge},
		{"mixed RS256 by kid", sign(t, jwt.SigningMethodRS256, rsaA, claims("mixed"), map[string]any{"kid": "rsa"}), "mixed-app", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := j.Authenticate(bearer(tt.tok))
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if id == nil || id.Consumer != tt.consumer || id.Subject != "user-42" || id.Claims["iss"] == nil {
					t.Fatalf("identity %+v, want consumer %q", id, tt.consumer)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, identity %+v", id)
			}
			if tt.wantErr != errAny && !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestConsumerMapping(t *testing.T) {
	keys(t)
	cs := testConsumers(t)
	tok := func(c ...any) string {
		return sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), claims("hmac-iss", c...), nil)
	}
	tests := []struct {
		name         string
		claim        string
		allowUnknown bool
		tok          string
		consumer     string
		wantErr      error
	}{
		{"by iss (default)", "", false, tok(), "hmac-app", nil},
		{"by configured claim", "azp", false, tok("azp", "client-7"), "azp-app", nil},
		// ec-app's unscoped credential is for consumer_claim: iss; under azp any identity
		// provider could put "ec-iss" in the claim.
		{"unscoped credential under another claim", "azp", false, tok("azp", "ec-iss"), "", errUnknownConsumer},
		{"configured claim missing", "azp", false, tok(), "", errUnknownConsumer},
		{"configured claim not a string", "azp", false, tok("azp", 12), "", errUnknownConsumer},
		{"unknown consumer", "azp", false, tok("azp", "stranger"), "", errUnknownConsumer},
		{"unknown consumer allowed", "azp", true, tok("azp", "stranger"), "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig(t)
			c.ConsumerClaim, c.AllowUnknownConsumers = tt.claim, tt.allowUnknown
			if tt.claim != "" {
				// Every issuer of a policy with another claim needs consumers scoped to it.
				for _, iss := range c.Issuers {
					if iss.Issuer == "hmac-iss" {
						c.Issuers = []IssuerConfig{iss}
						break
					}
				}
			}
			j := buildJWT(t, c, cs)
			id, err := j.Authenticate(bearer(tt.tok))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || id.Consumer != tt.consumer || id.Subject != "user-42" {
				t.Fatalf("identity %+v, err %v", id, err)
			}
		})
	}
}

func leeway(d time.Duration) *confval.Duration {
	v := confval.Duration(d)
	return &v
}

// TestLeewayZeroIsSet: "leeway: 0s" in the config must decode as set (no leeway), not as the
// unset default, which an explicit 0 used to become.
func TestLeewayZeroIsSet(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want *confval.Duration
	}{
		{"unset", "realm: r", nil},
		{"explicit zero", "leeway: 0s", leeway(0)},
		{"explicit value", "leeway: 5s", leeway(5 * time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			if err := yaml.Unmarshal([]byte(tt.yaml), &c); err != nil {
				t.Fatal(err)
			}
			if (c.Leeway == nil) != (tt.want == nil) || c.Leeway != nil && *c.Leeway != *tt.want {
				t.Fatalf("leeway %v, want %v", c.Leeway, tt.want)
			}
		})
	}
}

func TestRequiredClaimsAndLeeway(t *testing.T) {
	keys(t)
	cs := testConsumers(t)
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), c, nil) }
	noExp := claims("hmac-iss")
	delete(noExp, "exp")
	tests := []struct {
		name     string
		required []string
		leeway   *confval.Duration // nil: unset
		tok      string
		wantErr  error
	}{
		{"exp optional by default", nil, nil, hs(noExp), nil},
		{"exp required", []string{"exp"}, nil, hs(noExp), jwt.ErrTokenRequiredClaimMissing},
		{"nbf required", []string{"nbf"}, nil, hs(claims("hmac-iss")), jwt.ErrTokenRequiredClaimMissing},
		{"custom claim present", []string{"scope"}, nil, hs(claims("hmac-iss", "scope", "orders:read")), nil},
		{"custom claim missing", []string{"scope"}, nil, hs(claims("hmac-iss")), errMissingClaim},
		{"required claim null", []string{"sub"}, nil, hs(claims("hmac-iss", "sub", nil)), errMissingClaim},
		{"required claim empty", []string{"sub"}, nil, hs(claims("hmac-iss", "sub", "")), errMissingClaim},
		{"required claim an empty list", []string{"scope"}, nil, hs(claims("hmac-iss", "scope", []any{})), errMissingClaim},
		{"required claim a number", []string{"tenant"}, nil, hs(claims("hmac-iss", "tenant", 0)), nil},
		{"default leeway 30s accepts 10s past exp", nil, nil, hs(claims("hmac-iss", "exp", time.Now().Add(-10*time.Second).Unix())), nil},
		{"small leeway refuses 10s past exp", nil, leeway(time.Second), hs(claims("hmac-iss", "exp", time.Now().Add(-10*time.Second).Unix())), jwt.ErrTokenExpired},
		{"default leeway accepts 20s past exp", nil, nil, hs(claims("hmac-iss", "exp", time.Now().Add(-20*time.Second).Unix())), nil},
		{"explicit 0s leeway refuses 20s past exp", nil, leeway(0), hs(claims("hmac-iss", "exp", time.Now().Add(-20*time.Second).Unix())), jwt.ErrTokenExpired},
		{"large leeway accepts 2m past exp", nil, leeway(5 * time.Minute), hs(claims("hmac-iss", "exp", time.Now().Add(-2*time.Minute).Unix())), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig(t)
			c.RequiredClaims, c.Leeway = tt.required, tt.leeway
			j := buildJWT(t, c, cs)
			_, err := j.Authenticate(bearer(tt.tok))
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestTokenSources(t *testing.T) {
	keys(t)
	c := testConfig(t)
	c.CookieNames = []string{"session", "access_token"}
	c.QueryParams = []string{"jwt"}
	j := buildJWT(t, c, testConsumers(t))
	good := sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), claims("hmac-iss"), nil)
	bad := good[:len(good)-4] + "AAAA"
	tests := []struct {
		name  string
		build func(r *http.Request)
		url   string
		want  string // "ok", "none" or "error"
	}{
		{"bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+good) }, "/", "ok"},
		{"bearer scheme is case-insensitive", func(r *http.Request) { r.Header.Set("Authorization", "bEaReR  "+good) }, "/", "ok"},
		{"cookie", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "access_token", Value: good}) }, "/", "ok"},
		{"query", func(r *http.Request) {}, "/?jwt=" + good, "ok"},
		{"bearer before cookie", func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+bad)
			r.AddCookie(&http.Cookie{Name: "session", Value: good})
		}, "/", "error"},
		{"cookie before query", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "session", Value: good}) }, "/?jwt=" + bad, "ok"},
		{"first cookie name first", func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: "access_token", Value: good})
			r.AddCookie(&http.Cookie{Name: "session", Value: bad})
		}, "/", "error"},
		{"basic scheme is not ours", func(r *http.Request) { r.SetBasicAuth("u", "p") }, "/", "none"},
		{"no token", func(r *http.Request) {}, "/?other=1", "none"},
		{"unconfigured query parameter", func(r *http.Request) {}, "/?token=" + good, "none"},
		{"empty bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer   ") }, "/", "error"},
		// What a client's "Bearer " becomes once the header parser trims it.
		{"bare bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer") }, "/", "error"},
		{"bare bearer beside basic", func(r *http.Request) {
			r.Header.Add("Authorization", "Basic dTpw")
			r.Header.Add("Authorization", "bearer")
		}, "/", "error"},
		{"two bearer headers", func(r *http.Request) {
			r.Header.Add("Authorization", "Bearer "+good)
			r.Header.Add("Authorization", "Bearer "+good)
		}, "/", "error"},
		{"two query tokens", func(r *http.Request) {}, "/?jwt=" + good + "&jwt=" + good, "error"},
		{"empty cookie", func(r *http.Request) { r.Header.Set("Cookie", "session=") }, "/", "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tt.url, nil)
			tt.build(r)
			id, err := j.Authenticate(r)
			got := "ok"
			switch {
			case err != nil:
				got = "error"
			case id == nil:
				got = "none"
			}
			if got != tt.want {
				t.Fatalf("got %s (%v), want %s", got, err, tt.want)
			}
		})
	}
}

func TestMaxTokenSize(t *testing.T) {
	keys(t)
	c := testConfig(t)
	c.MaxTokenSize = 512
	j := buildJWT(t, c, testConsumers(t))
	padded := sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), claims("hmac-iss", "pad", strings.Repeat("x", 600)), nil)
	if _, err := j.Authenticate(bearer(padded)); !errors.Is(err, errTooLarge) {
		t.Fatalf("error %v, want errTooLarge", err)
	}
	small := sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), claims("hmac-iss"), nil)
	if _, err := j.Authenticate(bearer(small)); err != nil {
		t.Fatal(err)
	}
}

func TestWrapAnswers(t *testing.T) {
	keys(t)
	c := testConfig(t)
	j := buildJWT(t, c, testConsumers(t))
	c.Anonymous = "guest"
	anon := buildJWT(t, c, testConsumers(t))
	good := sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), claims("hmac-iss", "scope", "read"), nil)
	expired := sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), claims("hmac-iss", "exp", time.Now().Add(-time.Hour).Unix()), nil)
	tests := []struct {
		name     string
		p        *JWT
		tok      string
		status   int
		consumer string
	}{
		{"valid", j, good, 204, "hmac-app"},
		{"missing", j, "", 401, ""},
		{"expired", j, expired, 401, ""},
		{"anonymous without token", anon, "", 204, "guest"},
		{"anonymous does not excuse a bad token", anon, expired, 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true; w.WriteHeader(204) })
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.tok != "" {
				r.Header.Set("Authorization", "Bearer "+tt.tok)
			}
			w, info := serve(tt.p.Wrap(next), r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			if tt.status == 401 {
				// RFC 6750 3.1: an error code only when a token was sent.
				want := `Bearer realm="portico", error="invalid_token"`
				if tt.tok == "" {
					want = `Bearer realm="portico"`
				}
				if got := w.Header().Get("WWW-Authenticate"); got != want {
					t.Fatalf("WWW-Authenticate %q, want %q", got, want)
				}
				var body map[string]map[string]string
				_ = json.Unmarshal(w.Body.Bytes(), &body)
				// One message whatever was wrong: nothing says "expired" or "signature".
				if msg := body["error"]["message"]; strings.Contains(msg, "expir") || called {
					t.Fatalf("body %s, upstream called %v", w.Body, called)
				}
				return
			}
			if info.Identity == nil || info.Identity.Consumer != tt.consumer {
				t.Fatalf("identity %+v", info.Identity)
			}
			if tt.consumer == "hmac-app" && (info.Identity.Claims["scope"] != "read" || info.Identity.Subject != "user-42") {
				t.Fatalf("claims %v", info.Identity.Claims)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	iss := func(mod func(*IssuerConfig)) Config {
		ic := IssuerConfig{Issuer: "acme", Algorithms: []string{"RS256"}, JWKSURL: "https://id.example/jwks"}
		mod(&ic)
		return Config{Issuers: []IssuerConfig{ic}}
	}
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of problem messages, in order
	}{
		{"good", iss(func(*IssuerConfig) {}), nil},
		{"no issuers", Config{}, []string{"at least one issuer"}},
		{"alg none", iss(func(i *IssuerConfig) { i.Algorithms = []string{"none"} }), []string{"never accepted"}},
		{"unknown alg", iss(func(i *IssuerConfig) { i.Algorithms = []string{"RS256", "XS1", "RS256"} }), []string{"unknown algorithm \"XS1\"", "listed twice"}},
		{"no algorithms", iss(func(i *IssuerConfig) { i.Algorithms = nil }), []string{"list the algorithms"}},
		{"no keys", iss(func(i *IssuerConfig) { i.JWKSURL = "" }), []string{"give keys, a jwks_url, or both"}},
		{"bad jwks url", iss(func(i *IssuerConfig) { i.JWKSURL = "/relative" }), []string{"absolute http(s) URL"}},
		{"secret without HS alg", iss(func(i *IssuerConfig) { i.Keys = []KeyConfig{{Secret: hmacSecret}} }), []string{"needs an HS256"}},
		{"short secret", iss(func(i *IssuerConfig) {
			i.Algorithms = []string{"HS512"}
			i.Keys = []KeyConfig{{Secret: hmacSecret}}
		}), []string{"need at least 64"}},
		{"pem with only HS", iss(func(i *IssuerConfig) {
			i.Algorithms = []string{"HS256"}
			i.Keys = []KeyConfig{{PEM: "x"}}
		}), []string{"needs an RS, PS, ES or EdDSA"}},
		{"two key sources", iss(func(i *IssuerConfig) { i.Keys = []KeyConfig{{PEM: "x", PEMFile: "y"}} }), []string{"exactly one of"}},
		{"duplicate kid", iss(func(i *IssuerConfig) { i.Keys = []KeyConfig{{KID: "a", PEM: "x"}, {KID: "a", PEM: "y"}} }), []string{"kid \"a\" is listed twice"}},
		{"negative durations", iss(func(i *IssuerConfig) { i.JWKSTimeout = -1 }), []string{"cannot be negative"}},
		{"duplicate issuer", Config{Issuers: []IssuerConfig{
			{Issuer: "a", Algorithms: []string{"RS256"}, JWKSURL: "https://x/j"},
			{Issuer: "a", Algorithms: []string{"RS256"}, JWKSURL: "https://x/j"},
		}}, []string{"listed twice"}},
		// Safe since credentials under a claim other than iss are scoped to their issuer.
		{"consumer claim across issuers", Config{ConsumerClaim: "sub", Issuers: []IssuerConfig{
			{Issuer: "a", Algorithms: []string{"RS256"}, JWKSURL: "https://x/j"},
			{Issuer: "b", Algorithms: []string{"RS256"}, JWKSURL: "https://y/j"},
		}}, nil},
		{"consumer claim with one issuer", Config{ConsumerClaim: "sub", Issuers: iss(func(*IssuerConfig) {}).Issuers}, nil},
		{"policy-level problems", Config{Issuers: iss(func(*IssuerConfig) {}).Issuers, CookieNames: []string{"bad cookie"},
			QueryParams: []string{""}, RequiredClaims: []string{""}, Leeway: leeway(-1), Realm: "a\"b"},
			[]string{"empty claim name", "invalid cookie name", "empty parameter name", "leeway cannot be negative", "realm cannot contain"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ps confval.Problems
			tt.cfg.Validate("policies.tokens.jwt", &ps)
			if len(ps) != len(tt.want) {
				t.Fatalf("problems %v, want %d", ps, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(ps[i].Message, w) || !strings.HasPrefix(ps[i].Path, "policies.tokens.jwt") {
					t.Fatalf("problem %d = %+v, want %q", i, ps[i], w)
				}
				if strings.Contains(ps[i].Message, hmacSecret) {
					t.Fatal("a problem echoes the secret")
				}
			}
		})
	}
}

func TestNewKeyErrors(t *testing.T) {
	keys(t)
	small, err := rsaKeyOfBits(1024)
	if err != nil {
		t.Fatal(err)
	}
	privPEM := "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"
	tests := []struct {
		name string
		ic   IssuerConfig
		want string
	}{
		{"not PEM", IssuerConfig{Algorithms: []string{"RS256"}, Keys: []KeyConfig{{PEM: "hello"}}}, "no PEM block"},
		{"private key", IssuerConfig{Algorithms: []string{"EdDSA"}, Keys: []KeyConfig{{PEM: privPEM}}}, "give the public key only"},
		{"missing file", IssuerConfig{Algorithms: []string{"RS256"}, Keys: []KeyConfig{{PEMFile: "/nonexistent.pem"}}}, "reading pem_file"},
		{"small RSA key", IssuerConfig{Algorithms: []string{"RS256"}, Keys: []KeyConfig{{PEM: pemOf(t, &small.PublicKey)}}}, "at least 2048"},
		{"EC key for RS256", IssuerConfig{Algorithms: []string{"RS256"}, Keys: []KeyConfig{{PEM: pemOf(t, &ecP256.PublicKey)}}}, "an EC P-256 key cannot verify any of RS256"},
		{"P-384 key for ES256", IssuerConfig{Algorithms: []string{"ES256"}, Keys: []KeyConfig{{PEM: pemOf(t, &ecP384.PublicKey)}}}, "cannot verify any of ES256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.ic.Issuer = "x"
			_, err := New("tokens", Config{Issuers: []IssuerConfig{tt.ic}}, policies.Deps{})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `jwt policy "tokens": issuers[0]: keys[0]`) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := New("tokens", Config{Issuers: testConfig(t).Issuers, Anonymous: "nobody"}, policies.Deps{Consumers: testConsumers(t)}); err == nil ||
		!strings.Contains(err.Error(), "not declared") {
		t.Fatalf("err = %v", err)
	}
}

func benchmarkAlg(b *testing.B, tok string) {
	keys(b)
	j := buildJWT(b, testConfig(b), testConsumers(b))
	r := bearer(tok)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := j.Authenticate(r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAuthenticateRS256(b *testing.B) {
	keys(b)
	benchmarkAlg(b, sign(b, jwt.SigningMethodRS256, rsaA, claims("rsa-iss", "aud", "orders-api"), map[string]any{"kid": "r1"}))
}

func BenchmarkAuthenticateES256(b *testing.B) {
	keys(b)
	benchmarkAlg(b, sign(b, jwt.SigningMethodES256, ecP256, claims("ec-iss"), nil))
}

func BenchmarkAuthenticateHS256(b *testing.B) {
	keys(b)
	benchmarkAlg(b, sign(b, jwt.SigningMethodHS256, []byte(hmacSecret), claims("hmac-iss"), map[string]any{"kid": "h1"}))
}

func TestResolvePaths(t *testing.T) {
	c := Config{Issuers: []IssuerConfig{{Keys: []KeyConfig{{PEMFile: "keys/a.pem"}, {Secret: "s"}}}}}
	c.ResolvePaths(func(p *string) {
		if *p != "" {
			*p = "/etc/portico/" + *p
		}
	})
	if got := c.Issuers[0].Keys[0].PEMFile; got != "/etc/portico/keys/a.pem" {
		t.Fatalf("pem_file %q", got)
	}
	if c.Issuers[0].Keys[1].PEMFile != "" {
		t.Fatal("an unset path was set")
	}
}

// Validly signed tokens a verifier must still refuse: time claims past int64 seconds wrapped to
// the far past in jwt/v5's conversion (an nbf of 1e19 was valid now), and RFC 7515 4.1.11 makes
// a crit extension that is not understood fatal.
func TestTokensWithUnusableHeaderOrTimesRefused(t *testing.T) {
	keys(t)
	j := buildJWT(t, testConfig(t), testConsumers(t))
	hs := func(c jwt.MapClaims, h map[string]any) string {
		return sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), c, h)
	}
	tests := []struct {
		name string
		tok  string
		want error
	}{
		{"nbf 1e19", hs(claims("hmac-iss", "nbf", 1e19), nil), errTimeRange},
		{"nbf 1e300", hs(claims("hmac-iss", "nbf", 1e300), nil), errTimeRange},
		{"iat 1e19", hs(claims("hmac-iss", "iat", 1e19), nil), errTimeRange},
		{"exp -1e19", hs(claims("hmac-iss", "exp", -1e19), nil), errTimeRange},
		{"exp as a string", hs(claims("hmac-iss", "exp", "2099-01-01"), nil), jwt.ErrInvalidType},
		{"nbf an hour ahead", hs(claims("hmac-iss", "nbf", time.Now().Add(time.Hour).Unix()), nil), jwt.ErrTokenNotValidYet},
		{"crit naming an extension", hs(claims("hmac-iss"), map[string]any{"crit": []any{"exp-ext"}, "exp-ext": 1}), errCritical},
		{"empty crit", hs(claims("hmac-iss"), map[string]any{"crit": []any{}}), errCritical},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := j.Authenticate(bearer(tt.tok))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Authenticate = %+v, %v; want %v", id, err, tt.want)
			}
		})
	}
	// Ordinary times still pass.
	now := time.Now().Unix()
	if _, err := j.Authenticate(bearer(hs(claims("hmac-iss", "nbf", now-60, "iat", now-60, "exp", now+3600), nil))); err != nil {
		t.Fatalf("a token with ordinary times was refused: %v", err)
	}
}

// Two cookies of a token name are refused like two bearer headers: Portico verified the first,
// while many backends' cookie parsers (Python's http.cookies, Rack) keep the last, unverified one.
func TestDuplicateTokenCookiesRefused(t *testing.T) {
	keys(t)
	c := testConfig(t)
	c.CookieNames = []string{"session"}
	j := buildJWT(t, c, testConsumers(t))
	good := sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), claims("hmac-iss"), nil)
	forged := good[:len(good)-4] + "AAAA"
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Cookie", "session="+good+"; session="+forged)
	if _, err := j.Authenticate(r); !errors.Is(err, errDuplicate) {
		t.Fatalf("two session cookies: err = %v, want errDuplicate", err)
	}
	r = httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Cookie", "other=1; session="+good)
	if _, err := j.Authenticate(r); err != nil {
		t.Fatalf("one session cookie beside another cookie: %v", err)
	}
}
