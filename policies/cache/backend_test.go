package cache

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/policies"
	"github.com/portico-gw/portico/upstreams"
)

// newUpstreamClient is the real upstreams client over one upstream "users" pointing at be.
func newUpstreamClient(t *testing.T, be *backend) *upstreams.Client {
	t.Helper()
	reg, err := upstreams.NewRegistry(map[string]upstreams.Config{
		"users": {Targets: []upstreams.TargetConfig{{URL: be.URL}}},
	}, upstreams.Options{Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	return upstreams.NewClient(reg)
}

func viewer(consumer, subject string) context.Context {
	info := &reqctx.Info{ID: "r"}
	if consumer != "" {
		info.Identity = &reqctx.Identity{Consumer: consumer, Subject: subject}
	}
	return reqctx.With(context.Background(), info)
}

func newBackendCache(t *testing.T, next Backend, rules BackendRules, deps policies.Deps) Backend {
	t.Helper()
	b, err := NewBackend(next, rules, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := b.(*backendCache).PurgePrefix(context.Background(), backendKeyPrefix+"users:"); err != nil {
			t.Errorf("cleaning up: %v", err)
		}
	})
	return b
}

type user struct {
	ID   string `json:"id"`
	Seen string `json:"seen"`
	Call int64  `json:"call"`
}

func TestBackendCache(t *testing.T) {
	storeKinds(t, func(t *testing.T, deps policies.Deps) {
		// Each run gets its own path so that runs sharing Redis cannot see each other's entries.
		id := uniqueName(t)
		var be *backend
		be = newBackend(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			if r.URL.Path == "/fail/"+id {
				w.WriteHeader(404)
				return
			}
			w.Write([]byte(`{"id":"` + strings.TrimPrefix(r.URL.Path, "/users/") + `","seen":"` +
				r.Header.Get("X-Consumer-Name") + `","call":` + itoa(be.calls.Load()) + `}`))
		})
		client := newUpstreamClient(t, be)
		c := newBackendCache(t, client, BackendRules{{Upstream: "users", PathPrefix: "/users/"}}, deps)
		alice := viewer("alice", "")

		var a, b user
		if err := c.GetJSON(alice, "users", "users/"+id, &a); err != nil {
			t.Fatal(err)
		}
		if err := c.GetJSON(alice, "users", "/users/"+id, &b); err != nil {
			t.Fatal(err)
		}
		if be.calls.Load() != 1 || a != b || a.ID != id || a.Seen != "alice" {
			t.Fatalf("two GetJSON for users/%s: %d backend calls, %+v and %+v", id, be.calls.Load(), a, b)
		}
		t.Run("another viewer is another entry", func(t *testing.T) {
			var u user
			if err := c.GetJSON(viewer("bob", ""), "users", "/users/"+id, &u); err != nil {
				t.Fatal(err)
			}
			if u.Seen != "bob" || be.calls.Load() != 2 {
				t.Fatalf("bob got %+v after %d calls", u, be.calls.Load())
			}
			if err := c.GetJSON(viewer("alice", "other-user"), "users", "/users/"+id, &u); err != nil {
				t.Fatal(err)
			}
			if be.calls.Load() != 3 {
				t.Fatalf("another subject of alice shared an entry: %d calls", be.calls.Load())
			}
		})
		t.Run("SendJSON is never cached", func(t *testing.T) {
			before := be.calls.Load()
			for i := 0; i < 2; i++ {
				if err := c.SendJSON(alice, "users", "GET", "/users/"+id, nil, &user{}); err != nil {
					t.Fatal(err)
				}
			}
			if be.calls.Load()-before != 2 {
				t.Fatalf("SendJSON calls reached the backend %d times, want 2", be.calls.Load()-before)
			}
		})
		t.Run("paths outside the rules are not cached", func(t *testing.T) {
			before := be.calls.Load()
			for i := 0; i < 2; i++ {
				if err := c.GetJSON(alice, "users", "/orders/"+id, &user{}); err != nil {
					t.Fatal(err)
				}
			}
			if be.calls.Load()-before != 2 {
				t.Fatalf("uncached path: %d calls, want 2", be.calls.Load()-before)
			}
		})
		t.Run("errors are not cached", func(t *testing.T) {
			c := newBackendCache(t, client, BackendRules{{Upstream: "users"}}, deps)
			before := be.calls.Load()
			for i := 0; i < 2; i++ {
				var se *upstreams.StatusError
				if err := c.GetJSON(alice, "users", "/fail/"+id, &user{}); !errors.As(err, &se) || se.Status != 404 {
					t.Fatalf("error = %v, want the upstream's 404", err)
				}
			}
			if be.calls.Load()-before != 2 {
				t.Fatalf("failing call: %d calls, want 2", be.calls.Load()-before)
			}
		})
		t.Run("concurrent calls share one", func(t *testing.T) {
			path := "/users/" + id + "-concurrent"
			before := be.calls.Load()
			var wg sync.WaitGroup
			errs := make(chan error, 20)
			for i := 0; i < 20; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var u user
					errs <- c.GetJSON(viewer("carol", ""), "users", path, &u)
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if be.calls.Load()-before != 1 {
				t.Fatalf("20 concurrent GetJSON: %d calls, want 1", be.calls.Load()-before)
			}
		})
		t.Run("purge", func(t *testing.T) {
			cache := c.(*backendCache)
			n, err := cache.PurgePrefix(context.Background(), backendKeyPrefix+"users:")
			if err != nil || n == 0 {
				t.Fatalf("PurgePrefix = %d, %v", n, err)
			}
			before := be.calls.Load()
			if err := c.GetJSON(alice, "users", "/users/"+id, &user{}); err != nil {
				t.Fatal(err)
			}
			if be.calls.Load()-before != 1 {
				t.Fatal("entry survived the purge")
			}
		})
	})
}

func TestBackendRulesValidate(t *testing.T) {
	tests := []struct {
		name  string
		rules BackendRules
		want  []string
	}{
		{"valid", BackendRules{{Upstream: "users", PathPrefix: "/users/", TTL: confval.Duration(1e9)}}, nil},
		{"missing upstream", BackendRules{{PathPrefix: "/x"}}, []string{"rules[0].upstream: is required"}},
		{"relative prefix and negative ttl", BackendRules{{Upstream: "u", PathPrefix: "x", TTL: -1}},
			[]string{"rules[0].path_prefix: must start with /", "rules[0].ttl: must not be negative"}},
		{"duplicate", BackendRules{{Upstream: "u"}, {Upstream: "u"}}, []string{`rules[1]: repeats the rule for upstream "u" and path_prefix ""`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p confval.Problems
			tc.rules.Validate("rules", &p)
			var got []string
			for _, pr := range p {
				got = append(got, pr.Path+": "+pr.Message)
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			_, err := NewBackend(failingBackend{t}, tc.rules, policies.Deps{})
			if (err != nil) != (len(tc.want) > 0) {
				t.Fatalf("NewBackend error = %v", err)
			}
		})
	}
	if _, err := NewBackend(nil, nil, policies.Deps{}); err == nil {
		t.Fatal("nil backend accepted")
	}
}

// failingBackend fails the test if it is ever called.
type failingBackend struct{ t *testing.T }

func (f failingBackend) GetJSON(context.Context, string, string, any) error {
	f.t.Error("backend called")
	return nil
}

func (f failingBackend) SendJSON(context.Context, string, string, string, any, any) error {
	f.t.Error("backend called")
	return nil
}
