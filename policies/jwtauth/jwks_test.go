package jwtauth

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/policies"
)

// jwksServer is a fake identity provider whose key set can be rotated; it counts fetches.
type jwksServer struct {
	*httptest.Server
	mu    sync.Mutex
	keys  map[string]*rsa.PublicKey
	hits  atomic.Int64
	fails atomic.Bool
}

func newJWKSServer(t *testing.T, keys map[string]*rsa.PublicKey) *jwksServer {
	s := &jwksServer{keys: keys}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/jwks.json" {
			t.Errorf("unexpected JWKS request %s %s", r.Method, r.URL)
		}
		s.hits.Add(1)
		if s.fails.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		var set struct {
			Keys []map[string]string `json:"keys"`
		}
		set.Keys = []map[string]string{}
		for kid, k := range s.keys {
			set.Keys = append(set.Keys, map[string]string{
				"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
				"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
				"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
			})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) rotate(keys map[string]*rsa.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = keys
}

func jwksConfig(url string, mod func(*IssuerConfig)) Config {
	ic := IssuerConfig{Issuer: "idp", Algorithms: []string{"RS256"}, JWKSURL: url + "/jwks.json",
		JWKSUnknownKIDInterval: confval.Duration(time.Hour), JWKSTimeout: confval.Duration(30 * time.Second)}
	if mod != nil {
		mod(&ic)
	}
	return Config{Issuers: []IssuerConfig{ic}, AllowUnknownConsumers: true}
}

func TestJWKSRotation(t *testing.T) {
	keys(t)
	idp := newJWKSServer(t, map[string]*rsa.PublicKey{"a": &rsaA.PublicKey})
	j := buildJWT(t, jwksConfig(idp.URL, nil), nil)
	if got := idp.hits.Load(); got != 1 {
		t.Fatalf("%d fetches at build, want 1", got)
	}
	tok := func(key *rsa.PrivateKey, kid string) string {
		return sign(t, jwt.SigningMethodRS256, key, claims("idp"), map[string]any{"kid": kid})
	}
	if _, err := j.Authenticate(bearer(tok(rsaA, "a"))); err != nil {
		t.Fatalf("key a: %v", err)
	}
	// Without a kid every key of the set is tried.
	if _, err := j.Authenticate(bearer(sign(t, jwt.SigningMethodRS256, rsaA, claims("idp"), nil))); err != nil {
		t.Fatalf("no kid: %v", err)
	}

	// The IdP rotates to key b and drops a. The first token with kid b triggers one refetch.
	idp.rotate(map[string]*rsa.PublicKey{"b": &rsaB.PublicKey})
	if _, err := j.Authenticate(bearer(tok(rsaB, "b"))); err != nil {
		t.Fatalf("key b after rotation: %v", err)
	}
	if got := idp.hits.Load(); got != 2 {
		t.Fatalf("%d fetches after rotation, want 2", got)
	}
	// The refetch replaced the set: a revoked key no longer verifies.
	if _, err := j.Authenticate(bearer(tok(rsaA, "a"))); !errors.Is(err, errUnknownKID) {
		t.Fatalf("revoked key a: %v, want errUnknownKID", err)
	}

	// Further unknown kids within the interval are refused without waiting for the limiter
	// (jwks_timeout is 30s here; a wait would show) and without fetching.
	start := time.Now()
	for _, kid := range []string{"c", "d", "e"} {
		if _, err := j.Authenticate(bearer(tok(rsaC, kid))); !errors.Is(err, errUnknownKID) {
			t.Fatalf("kid %s: %v, want errUnknownKID", kid, err)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("unknown kids took %v: requests waited for the refresh limiter", d)
	}
	if got := idp.hits.Load(); got != 2 {
		t.Fatalf("%d fetches after junk kids, want still 2", got)
	}
	// A key-confusion token naming the JWKS key is refused even with HS256 allowed elsewhere.
	if _, err := j.Authenticate(bearer(sign(t, jwt.SigningMethodHS256, []byte(pemOf(t, &rsaB.PublicKey)), claims("idp"), map[string]any{"kid": "b"}))); err == nil {
		t.Fatal("HS256 token with the JWKS RSA key as secret accepted")
	}
}

func TestJWKSRefreshIntervalAndClose(t *testing.T) {
	keys(t)
	idp := newJWKSServer(t, map[string]*rsa.PublicKey{"a": &rsaA.PublicKey})
	p, err := New("tokens", jwksConfig(idp.URL, func(ic *IssuerConfig) {
		ic.JWKSRefreshInterval = confval.Duration(20 * time.Millisecond)
	}), policies.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	j := p.(*JWT)
	// Rotation without any unknown kid is picked up by the periodic refresh.
	idp.rotate(map[string]*rsa.PublicKey{"b": &rsaB.PublicKey})
	deadline := time.Now().Add(5 * time.Second)
	for idp.hits.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d fetches in 5s with a 20ms refresh interval", idp.hits.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = j.Close()
	// Close does not wait for a fetch in flight, which can reach the IdP whenever a loaded
	// machine schedules it: allow that one, not the ten more a running refresher would make.
	after := idp.hits.Load()
	time.Sleep(200 * time.Millisecond) // ten intervals
	if got := idp.hits.Load() - after; got > 1 {
		t.Fatalf("%d fetches after Close, want none", got)
	}
}

func TestJWKSDownAtBuild(t *testing.T) {
	keys(t)
	idp := newJWKSServer(t, map[string]*rsa.PublicKey{"a": &rsaA.PublicKey})
	idp.fails.Store(true)
	// A failing IdP does not fail the build: a reload must not depend on it.
	j := buildJWT(t, jwksConfig(idp.URL, nil), nil)
	idp.fails.Store(false)
	// The first token with a kid the policy lacks fetches the set.
	if _, err := j.Authenticate(bearer(sign(t, jwt.SigningMethodRS256, rsaA, claims("idp"), map[string]any{"kid": "a"}))); err != nil {
		t.Fatalf("after IdP recovery: %v", err)
	}
}

// TestJWKSUnknownKIDsRefusedAtOnceWhateverTheTimeout: with jwks_unknown_kid_interval at or below
// jwks_timeout (2s and the default 5s here), unknown kids between allowed refetches used to wait
// for the refresh limiter and then each fetch the set. They must be refused at once, without a
// fetch, and the next interval must still allow a rotation to be picked up.
func TestJWKSUnknownKIDsRefusedAtOnceWhateverTheTimeout(t *testing.T) {
	keys(t)
	idp := newJWKSServer(t, map[string]*rsa.PublicKey{"a": &rsaA.PublicKey})
	const interval = 2 * time.Second
	j := buildJWT(t, jwksConfig(idp.URL, func(ic *IssuerConfig) {
		ic.JWKSUnknownKIDInterval = confval.Duration(interval)
		ic.JWKSTimeout = 0 // the default, 5s: longer than the interval
	}), nil)
	junk := make([]string, 20)
	for i := range junk {
		junk[i] = sign(t, jwt.SigningMethodRS256, rsaC, claims("idp"), map[string]any{"kid": fmt.Sprintf("junk-%d", i)})
	}
	// The first unknown kid spends the interval's one refetch.
	start := time.Now()
	if _, err := j.Authenticate(bearer(junk[0])); !errors.Is(err, errUnknownKID) {
		t.Fatalf("first junk kid: %v, want errUnknownKID", err)
	}
	if got := idp.hits.Load(); got != 2 {
		t.Fatalf("%d fetches after the first junk kid, want 2 (build and one refetch)", got)
	}
	var wg sync.WaitGroup
	for _, tok := range junk[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			began := time.Now()
			if _, err := j.Authenticate(bearer(tok)); !errors.Is(err, errUnknownKID) {
				t.Errorf("junk kid: %v, want errUnknownKID", err)
			}
			if d := time.Since(began); d > interval/2 {
				t.Errorf("a junk kid took %v: it waited for the refresh limiter", d)
			}
		}()
	}
	wg.Wait()
	if time.Since(start) >= interval {
		t.Skip("the machine is too slow to send the junk kids within one interval")
	}
	if got := idp.hits.Load(); got != 2 {
		t.Fatalf("%d fetches after 20 junk kids, want still 2", got)
	}
	// The next interval allows a refetch again: a real rotation is picked up.
	time.Sleep(interval - time.Since(start) + 100*time.Millisecond)
	idp.rotate(map[string]*rsa.PublicKey{"b": &rsaB.PublicKey})
	if _, err := j.Authenticate(bearer(sign(t, jwt.SigningMethodRS256, rsaB, claims("idp"), map[string]any{"kid": "b"}))); err != nil {
		t.Fatalf("key b after the interval: %v", err)
	}
	if got := idp.hits.Load(); got != 3 {
		t.Fatalf("%d fetches after the rotation, want 3", got)
	}
}
