package policies

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/reqctx"
)

// recordingPolicy appends its name to the request's trace header when it runs.
type recordingPolicy struct {
	name  string
	phase Phase
}

func (p recordingPolicy) Phase() Phase { return p.phase }
func (p recordingPolicy) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Add("X-Trace", p.name)
		next.ServeHTTP(w, r)
	})
}

// headerAuth authenticates a request carrying its header; "bad" is an invalid credential.
type headerAuth struct {
	header, consumer, anonymous string
}

func (a headerAuth) Phase() Phase { return PhaseAuthentication }
func (a headerAuth) Wrap(next http.Handler) http.Handler {
	panic("authenticators run inside the chain's authentication step, never wrapped")
}
func (a headerAuth) Challenge() string         { return a.header + ` realm="portico"` }
func (a headerAuth) AnonymousConsumer() string { return a.anonymous }
func (a headerAuth) Authenticate(r *http.Request) (*reqctx.Identity, error) {
	switch r.Header.Get(a.header) {
	case "":
		return nil, nil
	case "bad":
		return nil, errors.New("bad credential")
	}
	return &reqctx.Identity{Consumer: a.consumer}, nil
}

// issuerAuth is a jwt-like authenticator: X-Tok carries "issuer:anything"; a token of another
// issuer is ErrNotMine, "issuer:bad" is invalid.
type issuerAuth struct {
	issuer, anonymous string
}

func (a issuerAuth) Phase() Phase                   { return PhaseAuthentication }
func (a issuerAuth) Wrap(http.Handler) http.Handler { panic("not wrapped") }
func (a issuerAuth) Challenge() string              { return `Bearer realm="` + a.issuer + `"` }
func (a issuerAuth) AnonymousConsumer() string      { return a.anonymous }
func (a issuerAuth) Authenticate(r *http.Request) (*reqctx.Identity, error) {
	tok := r.Header.Get("X-Tok")
	if tok == "" {
		return nil, nil
	}
	iss, rest, _ := strings.Cut(tok, ":")
	switch {
	case iss != a.issuer:
		return nil, &NotMineError{Credential: tok, Err: fmt.Errorf("unknown issuer: %w", ErrNotMine)}
	case rest == "bad":
		return nil, errors.New("expired")
	}
	return &reqctx.Identity{Consumer: a.issuer + "-user", Credential: tok}, nil
}

func serve(h http.Handler, r *http.Request) (*httptest.ResponseRecorder, *reqctx.Info) {
	info := &reqctx.Info{ID: "req-1"}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r.WithContext(reqctx.With(r.Context(), info)))
	return w, info
}

func final(seen *[]string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*seen = r.Header.Values("X-Trace")
		w.WriteHeader(http.StatusNoContent)
	})
}

// The phase, not the list order, decides the execution order.
func TestChainRunsByPhaseWhateverTheListOrder(t *testing.T) {
	pols := []Policy{
		recordingPolicy{"response-transform", PhaseResponseTransform},
		recordingPolicy{"rate-limit", PhaseRateLimit},
		recordingPolicy{"cache", PhaseCache},
		headerAuth{header: "X-Key", consumer: "app"},
		recordingPolicy{"acl", PhaseACL},
		recordingPolicy{"request-transform", PhaseRequestTransform},
		recordingPolicy{"cors", PhaseCORS},
		recordingPolicy{"ip-restriction", PhaseIPRestriction},
	}
	var seen []string
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Key", "k")
	w, info := serve(Chain(final(&seen), pols, nil, nil), r)
	want := "ip-restriction,cors,acl,rate-limit,response-transform,cache,request-transform"
	if got := strings.Join(seen, ","); got != want {
		t.Fatalf("order %s, want %s", got, want)
	}
	if w.Code != http.StatusNoContent || info.Identity == nil || info.Identity.Consumer != "app" {
		t.Fatalf("status %d identity %+v", w.Code, info.Identity)
	}
}

func TestAuthenticationStep(t *testing.T) {
	key := headerAuth{header: "X-Key", consumer: "key-app"}
	jwt := headerAuth{header: "X-Jwt", consumer: "jwt-app"}
	anonKey := headerAuth{header: "X-Key", consumer: "key-app", anonymous: "guest"}
	idpA, idpB := issuerAuth{issuer: "idp-a"}, issuerAuth{issuer: "idp-b", anonymous: "guest"}
	bearerKey := headerAuth{header: "Bearer", consumer: "bearer-key-app"}
	tests := []struct {
		name         string
		auths        []Policy
		headers      map[string]string
		wantStatus   int
		wantConsumer string
		wantChalls   []string
	}{
		{"no credential: 401 with every challenge", []Policy{key, jwt}, nil, 401, "", []string{"X-Key", "X-Jwt"}},
		{"first scheme", []Policy{key, jwt}, map[string]string{"X-Key": "k"}, 204, "key-app", nil},
		{"second scheme", []Policy{key, jwt}, map[string]string{"X-Jwt": "t"}, 204, "jwt-app", nil},
		{"an invalid credential fails even if another would pass", []Policy{key, jwt}, map[string]string{"X-Key": "bad", "X-Jwt": "t"}, 401, "", []string{"X-Key"}},
		{"anonymous fallback", []Policy{anonKey}, nil, 204, "guest", nil},
		{"anonymous does not excuse an invalid credential", []Policy{anonKey}, map[string]string{"X-Key": "bad"}, 401, "", nil},
		// Two jwt policies, one per identity provider: each takes its own issuer's tokens.
		{"token of the first of two issuers", []Policy{idpA, idpB}, map[string]string{"X-Tok": "idp-a:t"}, 204, "idp-a-user", nil},
		{"token of the second of two issuers", []Policy{idpA, idpB}, map[string]string{"X-Tok": "idp-b:t"}, 204, "idp-b-user", nil},
		{"invalid token of the second issuer", []Policy{idpA, idpB}, map[string]string{"X-Tok": "idp-b:bad"}, 401, "", nil},
		{"token nobody's: 401, not anonymous", []Policy{idpA, idpB}, map[string]string{"X-Tok": "idp-c:t"}, 401, "", []string{"idp-a"}},
		{"token nobody's alone", []Policy{idpA}, map[string]string{"X-Tok": "idp-c:t"}, 401, "", nil},
		// Another scheme accepting its own credential does not vouch for an unknown token.
		{"token nobody's beside a valid key", []Policy{key, idpA}, map[string]string{"X-Key": "k", "X-Tok": "idp-c:t"}, 401, "", nil},
		{"token nobody's, only another Bearer-scheme authenticator accepted", []Policy{idpA, bearerKey}, map[string]string{"Bearer": "k", "X-Tok": "idp-c:t"}, 401, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen []string
			r := httptest.NewRequest("GET", "/", nil)
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			r.Header.Set("X-Consumer-Name", "forged")
			var upstreamSaw http.Header
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				upstreamSaw = r.Header.Clone()
				final(&seen).ServeHTTP(w, r)
			})
			w, info := serve(Chain(h, tt.auths, nil, nil), r)
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.wantStatus, w.Body)
			}
			if tt.wantStatus == 401 {
				if !strings.Contains(w.Body.String(), `"request_id":"req-1"`) || strings.Contains(w.Body.String(), "bad credential") {
					t.Errorf("401 body %s: want the JSON error with the request ID and no detail", w.Body)
				}
				for _, c := range tt.wantChalls {
					if !strings.Contains(w.Header().Get("WWW-Authenticate"), c) {
						t.Errorf("WWW-Authenticate %q lacks %s", w.Header().Get("WWW-Authenticate"), c)
					}
				}
				return
			}
			if info.Identity == nil || info.Identity.Consumer != tt.wantConsumer {
				t.Fatalf("identity %+v, want %s", info.Identity, tt.wantConsumer)
			}
			if upstreamSaw.Get("X-Consumer-Name") == "forged" {
				t.Error("a client-sent X-Consumer-Name survived authentication")
			}
			if anon := upstreamSaw.Get("X-Anonymous-Consumer"); (anon == "true") != (tt.wantConsumer == "guest") {
				t.Errorf("X-Anonymous-Consumer = %q", anon)
			}
		})
	}
}

// A consumer with its own policies runs its variant of the post-authentication chain.
func TestConsumerVariant(t *testing.T) {
	base := []Policy{headerAuth{header: "X-Key", consumer: "partner"}, recordingPolicy{"route-limit", PhaseRateLimit}}
	partner := []Policy{headerAuth{header: "X-Key", consumer: "partner"}, recordingPolicy{"partner-limit", PhaseRateLimit}}
	var seen []string
	h := Chain(final(&seen), base, map[string][]Policy{"partner": partner}, nil)
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Key", "k")
	serve(h, r)
	if got := strings.Join(seen, ","); got != "partner-limit" {
		t.Fatalf("partner ran %q, want its own limit only", got)
	}
	other := Chain(final(&seen), []Policy{headerAuth{header: "X-Key", consumer: "someone"}, recordingPolicy{"route-limit", PhaseRateLimit}}, map[string][]Policy{"partner": partner}, nil)
	r = httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Key", "k")
	serve(other, r)
	if got := strings.Join(seen, ","); got != "route-limit" {
		t.Fatalf("another consumer ran %q, want the route's limit", got)
	}
}

// setHeader is a request-transform stand-in: it sets one header in its phase.
type setHeader struct{ name, value string }

func (s setHeader) Phase() Phase { return PhaseRequestTransform }
func (s setHeader) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Set(s.name, s.value)
		next.ServeHTTP(w, r)
	})
}

// On an authenticated request the client's copies of Kong's identity headers go, as Kong removes
// them, before request transforms: one that sets X-Consumer-Username for a backend moved from
// Kong is what arrives.
func TestClientKongIdentityHeadersGoBeforeTransforms(t *testing.T) {
	var got http.Header
	h := Chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }),
		[]Policy{headerAuth{header: "X-Key", consumer: "app"}, setHeader{"X-Consumer-Username", "app"}}, nil, nil)
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Key", "k")
	for _, k := range reqctx.KongIdentityHeaders {
		r.Header.Set(k, "forged")
	}
	serve(h, r)
	for _, k := range reqctx.KongIdentityHeaders {
		want := ""
		if k == "X-Consumer-Username" {
			want = "app"
		}
		if v := got.Get(k); v != want {
			t.Errorf("%s: %q reached the handler, want %q", k, v, want)
		}
	}
}
