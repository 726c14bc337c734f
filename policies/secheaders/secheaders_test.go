package secheaders

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/apierror"
	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/policies"
)

func ptr[T any](v T) *T { return &v }

func TestSecurityHeaders(t *testing.T) {
	defaults := map[string]string{
		"Content-Security-Policy":    DefaultCSP,
		"X-Frame-Options":            "DENY",
		"X-Content-Type-Options":     "nosniff",
		"Referrer-Policy":            "no-referrer",
		"Cross-Origin-Opener-Policy": "same-origin",
		"Permissions-Policy":         "",
		"Strict-Transport-Security":  "",
	}
	with := func(extra map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range defaults {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name     string
		cfg      Config
		tls      bool
		forwardH string // X-Forwarded-Proto
		upstream map[string]string
		want     map[string]string
	}{
		{name: "defaults on plain HTTP: no HSTS", want: defaults},
		{name: "HSTS on TLS", tls: true, want: with(map[string]string{"Strict-Transport-Security": "max-age=31536000"})},
		{name: "HSTS when a trusted proxy says https", forwardH: "https", want: with(map[string]string{"Strict-Transport-Security": "max-age=31536000"})},
		{name: "force_hsts on plain HTTP", cfg: Config{ForceHSTS: true, HSTS: HSTS{MaxAge: confval.Duration(2 * 8760 * time.Hour), IncludeSubdomains: true, Preload: true}},
			want: with(map[string]string{"Strict-Transport-Security": "max-age=63072000; includeSubDomains; preload"})},
		{name: "HSTS disabled", cfg: Config{HSTS: HSTS{Enabled: ptr(false)}}, tls: true, want: defaults},
		{name: "upstream's headers win by default", tls: true,
			upstream: map[string]string{"Content-Security-Policy": "default-src 'self'", "X-Frame-Options": "SAMEORIGIN", "Strict-Transport-Security": "max-age=5"},
			want:     with(map[string]string{"Content-Security-Policy": "default-src 'self'", "X-Frame-Options": "SAMEORIGIN", "Strict-Transport-Security": "max-age=5"})},
		{name: "override replaces the upstream's", cfg: Config{Override: true},
			upstream: map[string]string{"Content-Security-Policy": "default-src *", "X-Frame-Options": "SAMEORIGIN"},
			want:     defaults},
		{name: "configured values and off", cfg: Config{ContentSecurityPolicy: "off", FrameOptions: "sameorigin", ReferrerPolicy: "strict-origin, no-referrer",
			PermissionsPolicy: "camera=()", CrossOriginOpenerPolicy: "OFF", ContentTypeOptions: "off"},
			want: map[string]string{"Content-Security-Policy": "", "X-Frame-Options": "SAMEORIGIN", "Referrer-Policy": "strict-origin, no-referrer",
				"Permissions-Policy": "camera=()", "Cross-Origin-Opener-Policy": "", "X-Content-Type-Options": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.upstream {
					w.Header().Set(k, v)
				}
				_, _ = w.Write([]byte("{}"))
			}))
			defer be.Close()
			p, err := New("sec", tt.cfg, policies.Deps{})
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(be.URL)
			h := p.Wrap(httputil.NewSingleHostReverseProxy(u))
			var gw *httptest.Server
			if tt.tls {
				gw = httptest.NewTLSServer(h)
			} else {
				gw = httptest.NewServer(h)
			}
			defer gw.Close()
			req, _ := http.NewRequest("GET", gw.URL, nil)
			if tt.forwardH != "" {
				req.Header.Set("X-Forwarded-Proto", tt.forwardH)
			}
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
			defer client.CloseIdleConnections()
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			for k, v := range tt.want {
				if got := strings.Join(resp.Header.Values(k), "|"); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

// Error answers from inner policies (here a 429) carry the headers too.
func TestErrorAnswers(t *testing.T) {
	p, _ := New("sec", Config{}, policies.Deps{})
	h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apierror.Write(w, r, apierror.New(http.StatusTooManyRequests, "RATE_LIMITED", "API rate limit exceeded"))
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != 429 || w.Header().Get("X-Frame-Options") != "DENY" || w.Header().Get("Content-Security-Policy") != DefaultCSP {
		t.Fatalf("status %d headers %v", w.Code, w.Header())
	}
}

// A handler that writes nothing still gets the headers (the server sends them with its 200).
func TestEmptyAnswer(t *testing.T) {
	p, _ := New("sec", Config{}, policies.Deps{})
	w := httptest.NewRecorder()
	p.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("headers %v", w.Header())
	}
}

// One answer adding to a header must not leak into the next answer.
func TestSharedValuesNotCorrupted(t *testing.T) {
	p, _ := New("sec", Config{}, policies.Deps{})
	h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.Header().Add("X-Frame-Options", "EXTRA")
	}))
	for i := 0; i < 2; i++ {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		if i == 1 && len(w.Header().Values("X-Frame-Options")) != 2 {
			t.Fatalf("headers %v", w.Header())
		}
	}
	w := httptest.NewRecorder()
	p.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if got := w.Header().Values("X-Frame-Options"); len(got) != 1 || got[0] != "DENY" {
		t.Fatalf("X-Frame-Options %q", got)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"zero config is valid", Config{}, nil},
		{"bad enums", Config{FrameOptions: "ALLOW-FROM https://a", ReferrerPolicy: "sometimes", CrossOriginOpenerPolicy: "open", ContentTypeOptions: "yes"},
			[]string{"p.frame_options", "p.content_type_options", "p.referrer_policy", "p.cross_origin_opener_policy"}},
		{"header injection", Config{ContentSecurityPolicy: "a\r\nSet-Cookie: x"}, []string{"p.content_security_policy"}},
		{"frame options list", Config{FrameOptions: "DENY, SAMEORIGIN"}, []string{"p.frame_options"}},
		{"preload needs subdomains and a year", Config{HSTS: HSTS{Preload: true, MaxAge: confval.Duration(time.Hour)}}, []string{"p.hsts.preload"}},
		{"negative max_age", Config{HSTS: HSTS{MaxAge: -1}}, []string{"p.hsts.max_age"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p confval.Problems
			tt.cfg.Validate("p", &p)
			var got []string
			for _, pr := range p {
				got = append(got, pr.Path)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Fatalf("paths %v, want %v (%+v)", got, tt.want, p)
			}
			for _, pr := range p {
				// Each allowed value once: the message added ", off" to lists that had it.
				if strings.Count(strings.ToLower(pr.Message), "off") > 1 {
					t.Errorf("%s: %s", pr.Path, pr.Message)
				}
			}
			if _, err := New("x", tt.cfg, policies.Deps{}); (err != nil) != (len(tt.want) > 0) {
				t.Fatalf("New error %v", err)
			}
		})
	}
}

func BenchmarkSecurityHeaders(b *testing.B) {
	p, _ := New("sec", Config{ForceHSTS: true}, policies.Deps{})
	h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))
	req := httptest.NewRequest("GET", "/", nil)
	d := discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(d.h)
		h.ServeHTTP(d, req)
	}
}

type discard struct{ h http.Header }

func (d discard) Header() http.Header       { return d.h }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}
