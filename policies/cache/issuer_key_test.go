package cache

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/policies"
)

// A jwt policy with two issuers and allow_unknown_consumers yields identities with no consumer
// and only sub: user "1" of issuer A and user "1" of issuer B are different people, and the
// upstream tells them apart by the token in Authorization. The cache key held only consumer,
// subject and groups, not the issuer, so B was served A's private answer.
func TestCacheKeyHoldsTheTokenIssuer(t *testing.T) {
	storeKinds(t, func(t *testing.T, deps policies.Deps) {
		p := newPolicy(t, Config{}, deps)
		up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"owner":"` + r.Header.Get("Authorization") + `"}`))
		})
		h := p.Wrap(up)
		send := func(tok, iss string) (string, string) {
			r := httptest.NewRequest(http.MethodGet, "http://api.example/me", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			info := &reqctx.Info{ID: "x", Route: "me", Identity: &reqctx.Identity{
				Subject: "1", Credential: tok, Claims: map[string]any{"iss": iss, "sub": "1"}}}
			r = r.WithContext(reqctx.With(r.Context(), info))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			return w.Body.String(), w.Header().Get(headerStatus)
		}
		a, sa := send("token-of-A", "https://idp-a.example")
		b, sb := send("token-of-B", "https://idp-b.example")
		if b == a {
			t.Fatalf("issuer B's user got issuer A's answer %s (statuses %s, %s)", b, sa, sb)
		}
	})
}
