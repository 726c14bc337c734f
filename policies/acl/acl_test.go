package acl_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/policies"
	"github.com/portico-gw/portico/policies/acl"
)

func TestACL(t *testing.T) {
	tests := []struct {
		name   string
		cfg    acl.Config
		groups []string
		want   int
	}{
		{"allowed group", acl.Config{Allow: []string{"partners"}}, []string{"partners"}, 204},
		{"one of several groups allowed", acl.Config{Allow: []string{"partners"}}, []string{"web", "partners"}, 204},
		{"not in allow list", acl.Config{Allow: []string{"partners"}}, []string{"web"}, 403},
		{"no groups, allow list", acl.Config{Allow: []string{"partners"}}, nil, 403},
		{"denied group", acl.Config{Deny: []string{"suspended"}}, []string{"suspended"}, 403},
		{"not denied", acl.Config{Deny: []string{"suspended"}}, []string{"web"}, 204},
		{"no groups, deny list only", acl.Config{Deny: []string{"suspended"}}, nil, 204},
		{"deny checked before allow", acl.Config{Allow: []string{"partners"}, Deny: []string{"suspended"}},
			[]string{"partners", "suspended"}, 403},
		{"group names are exact", acl.Config{Allow: []string{"partners"}}, []string{"Partners"}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := acl.New("partners-only", tt.cfg, policies.Deps{})
			if err != nil {
				t.Fatal(err)
			}
			if p.Phase() != policies.PhaseACL {
				t.Fatalf("phase %d", p.Phase())
			}
			called := false
			h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true; w.WriteHeader(204) }))
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r = r.WithContext(reqctx.With(r.Context(), &reqctx.Info{ID: "r1",
				Identity: &reqctx.Identity{Consumer: "c", Groups: tt.groups}}))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want || called != (tt.want == 204) {
				t.Fatalf("status %d (upstream called %v), want %d", w.Code, called, tt.want)
			}
			if tt.want == 403 {
				var b struct {
					Error struct{ Code, Message string }
				}
				if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil ||
					b.Error.Code != "FORBIDDEN" || b.Error.Message != "you cannot consume this service" {
					t.Fatalf("body %s", w.Body)
				}
				// Which group was missing or denied is not the client's business.
				if strings.Contains(w.Body.String(), "partners") || strings.Contains(w.Body.String(), "suspended") {
					t.Fatalf("body names a group: %s", w.Body)
				}
			}
		})
	}
}

// TestWithoutAuthentication: an acl with no authenticator before it is a config mistake; every
// request gets 403 (no credential would help, so not 401) and the mistake is logged once.
func TestWithoutAuthentication(t *testing.T) {
	var logs bytes.Buffer
	p, err := acl.New("partners-only", acl.Config{Allow: []string{"partners"}},
		policies.Deps{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Error("upstream called") }))
	for _, withInfo := range []bool{true, false, true} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if withInfo {
			r = r.WithContext(reqctx.With(r.Context(), &reqctx.Info{}))
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusForbidden {
			t.Fatalf("status %d, want 403", w.Code)
		}
	}
	if n := strings.Count(logs.String(), "acl policy without authentication"); n != 1 {
		t.Fatalf("logged %d times, want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "policy=partners-only") {
		t.Fatalf("log does not name the policy: %s", logs.String())
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  acl.Config
		want []string
	}{
		{"neither list", acl.Config{}, []string{"p"}},
		{"bad entries", acl.Config{Allow: []string{"a", "", "a"}, Deny: []string{""}}, []string{"p.allow[1]", "p.allow[2]", "p.deny[0]"}},
		{"both lists", acl.Config{Allow: []string{"a"}, Deny: []string{"b"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ps confval.Problems
			tt.cfg.Validate("p", &ps)
			var got []string
			for _, p := range ps {
				got = append(got, p.Path)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("problems %v, want %v", ps, tt.want)
			}
		})
	}
	if _, err := acl.New("x", acl.Config{}, policies.Deps{}); err == nil || !strings.Contains(err.Error(), `acl policy "x"`) {
		t.Fatalf("err = %v", err)
	}
}
