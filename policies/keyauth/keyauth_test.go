package keyauth_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/policies"
	"github.com/portico-gw/portico/policies/keyauth"
)

func consumers(t testing.TB) *policies.Consumers {
	t.Helper()
	cs, err := policies.NewConsumers([]policies.ConsumerConfig{
		{Name: "web-app", Keys: []string{"web-secret-key"}, Groups: []string{"first-party"}},
		{Name: "partner", Keys: []string{"partner key/with+chars"}, Groups: []string{"partners"}},
		{Name: "guest", Groups: []string{"public"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func build(t testing.TB, c keyauth.Config) *keyauth.KeyAuth {
	t.Helper()
	p, err := keyauth.New("apikey", c, policies.Deps{Consumers: consumers(t)})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*keyauth.KeyAuth)
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  keyauth.Config
		want []string // paths with problems
	}{
		{"defaults", keyauth.Config{}, nil},
		{"good", keyauth.Config{KeyNames: []string{"apikey", "X-API-Key"}, In: []string{"header"}}, nil},
		{"bad names", keyauth.Config{KeyNames: []string{"", "api key", "apikey", "APIKEY"}},
			[]string{"p.key_names[0]", "p.key_names[1]", "p.key_names[3]"}},
		{"bad locations", keyauth.Config{In: []string{"body", "query", "query"}}, []string{"p.in[0]", "p.in[2]"}},
		{"empty location list", keyauth.Config{In: []string{}}, []string{"p.in"}},
		{"realm with quote", keyauth.Config{Realm: `a"b`}, []string{"p.realm"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ps confval.Problems
			tt.cfg.Validate("p", &ps)
			var got []string
			for _, p := range ps {
				got = append(got, p.Path)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Fatalf("problems at %v, want %v (%v)", got, tt.want, ps)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	deps := policies.Deps{Consumers: consumers(t)}
	if _, err := keyauth.New("k", keyauth.Config{Anonymous: "nobody"}, deps); err == nil ||
		!strings.Contains(err.Error(), `anonymous consumer "nobody" is not declared`) {
		t.Fatalf("err = %v", err)
	}
	if _, err := keyauth.New("k", keyauth.Config{In: []string{"cookie"}}, deps); err == nil ||
		!strings.Contains(err.Error(), `unknown location "cookie"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestAuthenticate(t *testing.T) {
	both := keyauth.Config{KeyNames: []string{"apikey", "x-api-key"}}
	tests := []struct {
		name    string
		cfg     keyauth.Config
		url     string
		headers map[string][]string
		want    string // consumer; "" with wantErr false means no credential
		wantErr bool
	}{
		{"header", both, "/", map[string][]string{"Apikey": {"web-secret-key"}}, "web-app", false},
		{"second name in header", both, "/", map[string][]string{"X-Api-Key": {"web-secret-key"}}, "web-app", false},
		{"query", both, "/?a=1&apikey=web-secret-key", nil, "web-app", false},
		{"query escaped value", both, "/?apikey=partner%20key%2Fwith%2Bchars", nil, "partner", false},
		{"query escaped name", both, "/?api%6Bey=web-secret-key", nil, "web-app", false},
		{"query whitespace around key", both, "/?apikey=%20web-secret-key%09", nil, "web-app", false},
		{"one key in header and query", both, "/?apikey=web-secret-key",
			map[string][]string{"Apikey": {"web-secret-key"}}, "web-app", false},
		// The backend may read the query's key, which Portico never checked.
		{"different keys in header and query", both, "/?apikey=wrong",
			map[string][]string{"Apikey": {"web-secret-key"}}, "", true},
		{"different keys in header and query, valid one in the query", both, "/?apikey=web-secret-key",
			map[string][]string{"Apikey": {"wrong"}}, "", true},
		{"different keys in header and escaped query name", both, "/?api%6Bey=other",
			map[string][]string{"Apikey": {"web-secret-key"}}, "", true},
		// The backend could read the second name's key, which nobody checked.
		{"different keys under two names are refused", both, "/?apikey=web-secret-key",
			map[string][]string{"X-Api-Key": {"wrong"}}, "", true},
		{"one key under two names passes", both, "/?apikey=web-secret-key",
			map[string][]string{"X-Api-Key": {"web-secret-key"}}, "web-app", false},
		{"no key", both, "/?other=1", map[string][]string{"Authorization": {"Bearer x"}}, "", false},
		{"wrong key", both, "/", map[string][]string{"Apikey": {"web-secret-kez"}}, "", true},
		{"empty header key", both, "/", map[string][]string{"Apikey": {""}}, "", true},
		{"empty query key", both, "/?apikey=", nil, "", true},
		{"key with inner whitespace", both, "/", map[string][]string{"Apikey": {"web secret-key"}}, "", true},
		{"duplicate header", both, "/", map[string][]string{"Apikey": {"web-secret-key", "web-secret-key"}}, "", true},
		{"duplicate query", both, "/?apikey=web-secret-key&apikey=other", nil, "", true},
		{"malformed escape", both, "/?apikey=%zz", nil, "", true},
		{"huge key", both, "/", map[string][]string{"Apikey": {strings.Repeat("k", 64<<10)}}, "", true},
		{"header only ignores query", keyauth.Config{In: []string{"header"}}, "/?apikey=web-secret-key", nil, "", false},
		{"query only ignores header", keyauth.Config{In: []string{"query"}}, "/",
			map[string][]string{"Apikey": {"web-secret-key"}}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := build(t, tt.cfg)
			r := httptest.NewRequest(http.MethodGet, tt.url, nil)
			for h, vs := range tt.headers {
				r.Header[h] = vs
			}
			id, err := k.Authenticate(r)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("got identity %+v, want an error", id)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			got := ""
			if id != nil {
				got = id.Consumer
				if id.Subject != "" || id.Claims != nil {
					t.Fatalf("key-auth identity has subject/claims: %+v", id)
				}
			}
			if got != tt.want {
				t.Fatalf("consumer %q, want %q", got, tt.want)
			}
		})
	}
}

// upstream records what reached the backend side of the chain.
type upstream struct {
	t      *testing.T
	called bool
	header http.Header
	query  string
	id     *reqctx.Identity
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.called = true
	u.header = r.Header.Clone()
	u.query = r.URL.RawQuery
	if info := reqctx.From(r.Context()); info != nil {
		u.id = info.Identity
	}
	w.WriteHeader(http.StatusNoContent)
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	r = r.WithContext(reqctx.With(r.Context(), &reqctx.Info{ID: "req-1"}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHideCredentials(t *testing.T) {
	tests := []struct {
		name      string
		hide      bool
		url       string
		header    string
		wantQuery string
		wantKey   bool
	}{
		{"hidden from query, other parameters kept in order", true, "/x?b=2&apikey=web-secret-key&a=1&x-api-key=zz", "", "b=2&a=1", false},
		{"hidden from header", true, "/x?a=1", "web-secret-key", "a=1", false},
		{"only parameter removed entirely", true, "/x?apikey=web-secret-key", "", "", false},
		{"escaped name hidden", true, "/x?api%6Bey=web-secret-key&a=1", "", "a=1", false},
		{"kept when not hiding", false, "/x?apikey=web-secret-key", "web-secret-key", "apikey=web-secret-key", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := build(t, keyauth.Config{KeyNames: []string{"apikey", "x-api-key"}, HideCredentials: tt.hide})
			up := &upstream{t: t}
			r := httptest.NewRequest(http.MethodGet, tt.url, nil)
			if tt.header != "" {
				r.Header.Set("apikey", tt.header)
				if tt.hide {
					r.Header.Set("X-Api-Key", "also-hidden") // another name's key: stripped unread
				}
			}
			w := serve(k.Wrap(up), r)
			if w.Code != http.StatusNoContent {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if up.query != tt.wantQuery {
				t.Fatalf("upstream query %q, want %q", up.query, tt.wantQuery)
			}
			_, hasKey := up.header["Apikey"]
			_, hasOther := up.header["X-Api-Key"]
			if hasKey != tt.wantKey || (tt.hide && hasOther) {
				t.Fatalf("upstream headers %v", up.header)
			}
		})
	}
}

// TestHideOnFailure: a rejected key is removed too (nothing reaches upstream anyway, but the
// request object must not keep it for access logs downstream of a custom error handler).
func TestHideOnFailure(t *testing.T) {
	k := build(t, keyauth.Config{HideCredentials: true})
	r := httptest.NewRequest(http.MethodGet, "/?apikey=wrong", nil)
	if _, err := k.Authenticate(r); err == nil {
		t.Fatal("wrong key accepted")
	}
	if r.URL.RawQuery != "" {
		t.Fatalf("query still %q", r.URL.RawQuery)
	}
}

type errorBody struct {
	Error struct {
		Code, Message string
		RequestID     string `json:"request_id"`
	} `json:"error"`
}

func TestWrapAnswers(t *testing.T) {
	tests := []struct {
		name      string
		cfg       keyauth.Config
		key       string
		status    int
		challenge string
		consumer  string
		anonymous bool
	}{
		{"missing key", keyauth.Config{}, "", 401, `Key realm="portico"`, "", false},
		{"wrong key", keyauth.Config{}, "nope", 401, `Key realm="portico"`, "", false},
		{"custom realm", keyauth.Config{Realm: "orders"}, "", 401, `Key realm="orders"`, "", false},
		{"valid key", keyauth.Config{}, "web-secret-key", 204, "", "web-app", false},
		{"anonymous without key", keyauth.Config{Anonymous: "guest"}, "", 204, "", "guest", true},
		{"anonymous does not excuse a wrong key", keyauth.Config{Anonymous: "guest"}, "nope", 401, `Key realm="portico"`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := build(t, tt.cfg)
			up := &upstream{t: t}
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.key != "" {
				r.Header.Set("apikey", tt.key)
			}
			r.Header.Set("X-Consumer-Name", "forged")
			w := serve(k.Wrap(up), r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tt.challenge {
				t.Fatalf("WWW-Authenticate %q, want %q", got, tt.challenge)
			}
			if tt.status == 401 {
				var b errorBody
				if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || b.Error.RequestID != "req-1" {
					t.Fatalf("body %s (%v)", w.Body, err)
				}
				if strings.Contains(w.Body.String(), "nope") {
					t.Fatal("the answer echoes the key")
				}
				if up.called {
					t.Fatal("upstream called on 401")
				}
				return
			}
			if up.id == nil || up.id.Consumer != tt.consumer {
				t.Fatalf("identity %+v, want consumer %q", up.id, tt.consumer)
			}
			if got := up.header.Get("X-Consumer-Name"); got != "" {
				t.Fatalf("client-sent X-Consumer-Name %q reached upstream", got)
			}
			if got := up.header.Get("X-Anonymous-Consumer") == "true"; got != tt.anonymous {
				t.Fatalf("X-Anonymous-Consumer = %v, want %v", got, tt.anonymous)
			}
			if tt.consumer == "web-app" && (len(up.id.Groups) != 1 || up.id.Groups[0] != "first-party") {
				t.Fatalf("groups %v", up.id.Groups)
			}
		})
	}
}

func TestNilInfoIsSafe(t *testing.T) {
	k := build(t, keyauth.Config{})
	r := httptest.NewRequest(http.MethodGet, "/?apikey=web-secret-key", nil)
	w := httptest.NewRecorder()
	k.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})).ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
}

func BenchmarkAuthenticate(b *testing.B) {
	k := build(b, keyauth.Config{KeyNames: []string{"apikey", "x-api-key"}})
	for _, bc := range []struct {
		name, url, header string
	}{
		{"header", "/orders?page=2", "web-secret-key"},
		{"query", "/orders?page=2&apikey=web-secret-key", ""},
		{"missing", "/orders?page=2", ""},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodGet, bc.url, nil)
			if bc.header != "" {
				r.Header.Set("apikey", bc.header)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := k.Authenticate(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestOtherSpellingsOfKeyNamesNeverReachUpstream: PHP, WSGI and Rack read X_Api_Key as
// X-Api-Key, so a spelling the policy never checked must not reach the backend beside (or
// instead of) the key that was checked, whether or not credentials are hidden.
func TestOtherSpellingsOfKeyNamesNeverReachUpstream(t *testing.T) {
	tests := []struct {
		name     string
		cfg      keyauth.Config
		headers  map[string][]string
		consumer string
		want     []string // fields the upstream gets, of those sent
	}{
		{"underscore spelling alone is no key and is dropped",
			keyauth.Config{KeyNames: []string{"x-api-key"}, Anonymous: "guest"},
			map[string][]string{"X_api_key": {"not-validated"}}, "guest", nil},
		{"underscore spelling beside a valid key is dropped",
			keyauth.Config{KeyNames: []string{"x-api-key"}},
			map[string][]string{"X-Api-Key": {"web-secret-key"}, "X_api_key": {"other-tenant"}}, "web-app", []string{"X-Api-Key"}},
		{"dropped when hiding credentials too",
			keyauth.Config{KeyNames: []string{"x-api-key"}, HideCredentials: true, Anonymous: "guest"},
			map[string][]string{"X_api_key": {"not-validated"}, "x_API_KEY": {"x"}}, "guest", nil},
		{"mixed case and mixed separators",
			keyauth.Config{KeyNames: []string{"x-api-key"}},
			map[string][]string{"X-Api-Key": {"web-secret-key"}, "x_API-key": {"other"}}, "web-app", []string{"X-Api-Key"}},
		{"a key name with an underscore: its dash spelling is dropped",
			keyauth.Config{KeyNames: []string{"x_api_key"}},
			map[string][]string{"X_api_key": {"web-secret-key"}, "X-Api-Key": {"other"}}, "web-app", []string{"X_api_key"}},
		{"unrelated underscore fields pass",
			keyauth.Config{KeyNames: []string{"x-api-key"}},
			map[string][]string{"X-Api-Key": {"web-secret-key"}, "X_trace": {"1"}}, "web-app", []string{"X-Api-Key", "X_trace"}},
		{"query-only keys leave headers alone",
			keyauth.Config{KeyNames: []string{"x-api-key"}, In: []string{"query"}, Anonymous: "guest"},
			map[string][]string{"X_api_key": {"header"}}, "guest", []string{"X_api_key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := build(t, tt.cfg)
			up := &upstream{t: t}
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			for h, vs := range tt.headers {
				r.Header[h] = vs
			}
			w := serve(k.Wrap(up), r)
			if w.Code != http.StatusNoContent {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if up.id == nil || up.id.Consumer != tt.consumer {
				t.Fatalf("identity %+v, want consumer %q", up.id, tt.consumer)
			}
			var got []string
			for h := range tt.headers {
				if _, ok := up.header[h]; ok {
					got = append(got, h)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("upstream got %v of the sent fields, want %v", got, tt.want)
			}
		})
	}
}

// Different keys under two of the policy's names are refused when the credentials are kept: the
// backend could read the one Portico did not check. The same key under both passes.
func TestDifferentKeysUnderTwoNames(t *testing.T) {
	k := build(t, keyauth.Config{KeyNames: []string{"apikey", "x-api-key"}})
	for _, tc := range []struct {
		name       string
		url        string
		a, b       string
		wantStatus int
	}{
		{"two headers, two keys", "/x", "web-secret-key", "other-key", http.StatusUnauthorized},
		{"two headers, one key", "/x", "web-secret-key", "web-secret-key", http.StatusNoContent},
		{"header and another name in the query", "/x?x-api-key=other-key", "web-secret-key", "", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tc.url, nil)
			r.Header.Set("apikey", tc.a)
			if tc.b != "" {
				r.Header.Set("X-Api-Key", tc.b)
			}
			if w := serve(k.Wrap(&upstream{t: t}), r); w.Code != tc.wantStatus {
				t.Errorf("status %d, want %d: %s", w.Code, tc.wantStatus, w.Body)
			}
		})
	}
}
