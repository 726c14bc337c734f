package basicauth

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/policies"
)

func hashOf(t testing.TB, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func testConsumers(t testing.TB) *policies.Consumers {
	t.Helper()
	cs, err := policies.NewConsumers([]policies.ConsumerConfig{
		{Name: "alice", Groups: []string{"staff"}, BasicAuth: &policies.BasicCredential{Username: "alice", PasswordHash: hashOf(t, "wonderland")}},
		{Name: "jose", BasicAuth: &policies.BasicCredential{Username: "josé", PasswordHash: hashOf(t, "pa:ss wörd")}},
		{Name: "guest"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func build(t testing.TB, c Config) *BasicAuth {
	t.Helper()
	p, err := New("staff", c, policies.Deps{Consumers: testConsumers(t)})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*BasicAuth)
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestAuthenticate(t *testing.T) {
	b := build(t, Config{DisableCache: true})
	tests := []struct {
		name     string
		headers  []string
		consumer string
		wantErr  error // nil with consumer "" means no credential
	}{
		{"valid", []string{basic("alice", "wonderland")}, "alice", nil},
		{"scheme case-insensitive", []string{"bAsIc " + base64.StdEncoding.EncodeToString([]byte("alice:wonderland"))}, "alice", nil},
		{"UTF-8 and colon in password", []string{basic("josé", "pa:ss wörd")}, "jose", nil},
		{"wrong password", []string{basic("alice", "Wonderland")}, "", errWrong},
		{"unknown user", []string{basic("mallory", "wonderland")}, "", errWrong},
		{"empty password", []string{basic("alice", "")}, "", errWrong},
		{"garbage base64", []string{"Basic !!!notbase64"}, "", errMalformed},
		{"no colon", []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("alice"))}, "", errMalformed},
		{"empty username", []string{basic("", "wonderland")}, "", errMalformed},
		{"empty credentials", []string{"Basic "}, "", errMalformed},
		// What a client's "Basic " becomes once the header parser trims it: still this
		// scheme's credential, never a request without one (which could pass as anonymous).
		{"bare scheme", []string{"Basic"}, "", errMalformed},
		{"bare scheme beside a bearer", []string{"Bearer abc.def.ghi", "basic"}, "", errMalformed},
		{"huge header", []string{"Basic " + strings.Repeat("QUFB", 2<<10)}, "", errMalformed},
		{"two basic headers", []string{basic("alice", "wonderland"), basic("alice", "wonderland")}, "", errDuplicate},
		{"bearer is not ours", []string{"Bearer abc.def.ghi"}, "", nil},
		{"no header", nil, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, h := range tt.headers {
				r.Header.Add("Authorization", h)
			}
			id, err := b.Authenticate(r)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.consumer == "" {
				if id != nil {
					t.Fatalf("identity %+v for no credential", id)
				}
				return
			}
			if id == nil || id.Consumer != tt.consumer || id.Subject == "" {
				t.Fatalf("identity %+v, want %q", id, tt.consumer)
			}
		})
	}
}

// TestHideKeepsOtherSchemes: hiding the Basic credential must leave a Bearer token beside it for
// the jwt policy that runs after basic-auth in the same step. Deleting every Authorization value
// let an expired token through whenever basic-auth was listed first.
func TestHideKeepsOtherSchemes(t *testing.T) {
	b := build(t, Config{HideCredentials: true, DisableCache: true})
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Add("Authorization", basic("alice", "wonderland"))
	r.Header.Add("Authorization", "Bearer expired.token.here")
	id, err := b.Authenticate(r)
	if err != nil || id == nil || id.Consumer != "alice" {
		t.Fatalf("identity %+v, err %v", id, err)
	}
	if got := r.Header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer expired.token.here" {
		t.Fatalf("Authorization after hiding = %q, want only the bearer token", got)
	}
	r = httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", basic("alice", "wonderland"))
	if _, err := b.Authenticate(r); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Header["Authorization"]; ok {
		t.Fatalf("Authorization %q survived hiding", r.Header["Authorization"])
	}
}

func TestWrap(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		auth      string
		status    int
		consumer  string
		upstreams string // Authorization seen upstream
	}{
		{"valid, credentials hidden", Config{HideCredentials: true}, basic("alice", "wonderland"), 204, "alice", ""},
		{"valid, credentials kept", Config{}, basic("alice", "wonderland"), 204, "alice", basic("alice", "wonderland")},
		{"wrong password", Config{}, basic("alice", "x"), 401, "", ""},
		{"missing", Config{}, "", 401, "", ""},
		{"anonymous", Config{Anonymous: "guest"}, "", 204, "guest", ""},
		{"anonymous does not excuse a wrong password", Config{Anonymous: "guest"}, basic("alice", "x"), 401, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := build(t, tt.cfg)
			var seen *reqctx.Identity
			var auth string
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen = reqctx.From(r.Context()).Identity
				auth = r.Header.Get("Authorization")
				w.WriteHeader(http.StatusNoContent)
			})
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			r = r.WithContext(reqctx.With(r.Context(), &reqctx.Info{}))
			w := httptest.NewRecorder()
			b.Wrap(next).ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			if tt.status == 401 {
				if got := w.Header().Get("WWW-Authenticate"); got != `Basic realm="portico", charset="UTF-8"` {
					t.Fatalf("WWW-Authenticate %q", got)
				}
				return
			}
			if seen == nil || seen.Consumer != tt.consumer || auth != tt.upstreams {
				t.Fatalf("identity %+v, upstream Authorization %q", seen, auth)
			}
			if tt.consumer == "alice" && (seen.Subject != "alice" || len(seen.Groups) != 1) {
				t.Fatalf("identity %+v", seen)
			}
		})
	}
}

// TestCacheAnswersRepeatedSuccess proves a remembered success is served without a registry
// lookup (and so without bcrypt), while failures are never remembered.
func TestCacheAnswersRepeatedSuccess(t *testing.T) {
	b := build(t, Config{})
	req := func(user, pass string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", basic(user, pass))
		return r
	}
	if _, err := b.Authenticate(req("alice", "wrong")); err == nil {
		t.Fatal("wrong password accepted")
	}
	if n := b.cache.len(); n != 0 {
		t.Fatalf("a failure was cached (%d entries)", n)
	}
	if _, err := b.Authenticate(req("alice", "wonderland")); err != nil {
		t.Fatal(err)
	}
	b.consumers = nil // from here on, only the cache can say yes
	id, err := b.Authenticate(req("alice", "wonderland"))
	if err != nil || id.Consumer != "alice" || id.Subject != "alice" {
		t.Fatalf("cached success: %+v, %v", id, err)
	}
	if _, err := b.Authenticate(req("alice", "wonderland2")); err == nil {
		t.Fatal("a different password matched the cached entry")
	}
}

func TestCacheBounds(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newCache(3, time.Minute, func() time.Time { return now })
	cons := &policies.Consumer{Name: "c"}
	for _, u := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		c.put(u, "pw", cons)
	}
	if n := c.len(); n != 3 {
		t.Fatalf("%d entries, bound is 3", n)
	}
	if _, ok := c.get("g", "pw"); !ok {
		t.Fatal("the newest entry was evicted")
	}
	now = now.Add(time.Minute)
	if _, ok := c.get("g", "pw"); ok {
		t.Fatal("entry served after its TTL")
	}
	c.put("h", "pw", cons)
	if n := c.len(); n != 1 {
		t.Fatalf("%d entries after inserting into a full cache of expired entries, want 1", n)
	}
	c.put("ab", "c", cons)
	if _, ok := c.get("a", "bc"); ok {
		t.Fatal(`("ab","c") and ("a","bc") share a key`)
	}
}

func TestConcurrencyBoundHonoursCancel(t *testing.T) {
	b := build(t, Config{MaxConcurrentChecks: 1, DisableCache: true})
	b.slots <- struct{}{} // another check is running
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
	r.Header.Set("Authorization", basic("alice", "wonderland"))
	if _, err := b.Authenticate(r); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

func TestValidateAndNew(t *testing.T) {
	var ps confval.Problems
	c := Config{CacheTTL: -1, CacheSize: -1, MaxConcurrentChecks: -1, Realm: "a\nb"}
	c.Validate("policies.staff.basic-auth", &ps)
	if len(ps) != 4 {
		t.Fatalf("problems %v, want 4", ps)
	}
	if _, err := New("staff", c, policies.Deps{}); err == nil {
		t.Fatal("New accepted an invalid config")
	}
	if _, err := New("staff", Config{Anonymous: "nobody"}, policies.Deps{Consumers: testConsumers(t)}); err == nil ||
		!strings.Contains(err.Error(), "not declared") {
		t.Fatalf("err = %v", err)
	}
	if b := build(t, Config{DisableCache: true}); b.cache != nil {
		t.Fatal("disable_cache left a cache")
	}
}

func BenchmarkAuthenticateCached(b *testing.B) {
	p := build(b, Config{})
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", basic("alice", "wonderland"))
	if _, err := p.Authenticate(r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Authenticate(r); err != nil {
			b.Fatal(err)
		}
	}
}
