package jwtauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/policies"
)

// Keys are generated once per test binary: RSA generation is slow under -race.
var (
	keysOnce                sync.Once
	rsaA, rsaB, rsaC        *rsa.PrivateKey
	ecP256, ecP384, ecOther *ecdsa.PrivateKey
	edKey                   ed25519.PrivateKey
	hmacSecret              = "0123456789abcdef0123456789abcdef-hs256-secret"
	otherSecret             = "fedcba9876543210fedcba9876543210-other-secret"
)

func keys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		must := func(err error) {
			if err != nil {
				panic(err)
			}
		}
		var err error
		rsaA, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		rsaB, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		rsaC, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		ecP256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		ecP384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		must(err)
		ecOther, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		_, edKey, err = ed25519.GenerateKey(rand.Reader)
		must(err)
	})
}

func pemOf(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// sign makes a token; header entries (such as kid) are added to the JOSE header.
func sign(t testing.TB, m jwt.SigningMethod, key any, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// unsigned builds a token by hand, for headers no library would sign (alg none, odd kids).
func unsigned(t testing.TB, header, claims map[string]any, sig string) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(c) + "." + sig
}

func claims(iss string, extra ...any) jwt.MapClaims {
	c := jwt.MapClaims{"iss": iss, "sub": "user-42", "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()}
	for i := 0; i+1 < len(extra); i += 2 {
		c[extra[i].(string)] = extra[i+1]
	}
	return c
}

func bearer(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}

func serve(h http.Handler, r *http.Request) (*httptest.ResponseRecorder, *reqctx.Info) {
	info := &reqctx.Info{ID: "req-1"}
	r = r.WithContext(reqctx.With(r.Context(), info))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w, info
}

func buildJWT(t testing.TB, c Config, cs *policies.Consumers) *JWT {
	t.Helper()
	p, err := New("tokens", c, policies.Deps{Consumers: cs, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	j := p.(*JWT)
	t.Cleanup(func() { _ = j.Close() })
	return j
}

func rsaKeyOfBits(bits int) (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, bits) }
