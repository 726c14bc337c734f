package iprestrict

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/policies"
)

func TestAllowDeny(t *testing.T) {
	cfg := Config{
		Allow: []string{"10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "::ffff:172.16.0.0/108"},
		Deny:  []string{"10.6.0.0/16", "2001:db8:bad::/48"},
	}
	tests := []struct {
		name, ip string
		want     int
	}{
		{"allowed by CIDR", "10.1.2.3", 200},
		{"allowed single address", "192.168.1.7", 200},
		{"neighbour of a single address", "192.168.1.8", 403},
		{"deny is checked before allow", "10.6.6.6", 403},
		{"outside every list", "203.0.113.1", 403},
		{"IPv6 allowed", "2001:db8:1::5", 200},
		{"IPv6 denied inside an allowed range", "2001:db8:bad::1", 403},
		{"IPv6 outside", "2001:dead::1", 403},
		{"IPv4-mapped client normalized", "::ffff:10.1.2.3", 200},
		{"IPv4-mapped config normalized", "172.16.5.5", 200},
		{"unparseable address refused", "not-an-ip", 403},
		{"first address of a range", "10.0.0.0", 200},
		{"last address of a range", "10.255.255.255", 200},
		{"just past a range", "11.0.0.0", 403},
	}
	p, err := New("office", cfg, policies.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true }))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req = req.WithContext(reqctx.With(req.Context(), &reqctx.Info{ClientIP: tt.ip, ID: "rid-1"}))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d", w.Code, tt.want)
			}
			if called != (tt.want == 200) {
				t.Fatalf("next called = %v", called)
			}
			if tt.want == 403 {
				var e struct {
					Error struct {
						Code, Message string
						RequestID     string `json:"request_id"`
					}
				}
				_ = json.Unmarshal(w.Body.Bytes(), &e)
				if e.Error.Code != "IP_NOT_ALLOWED" || e.Error.Message != "IP address not allowed" || e.Error.RequestID != "rid-1" {
					t.Errorf("body %s", w.Body)
				}
			}
		})
	}
}

func TestDenyOnlyAndAllowOnly(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ip   string
		want bool
	}{
		{"deny only: others pass", Config{Deny: []string{"10.0.0.0/8"}}, "11.0.0.1", true},
		{"deny only: listed refused", Config{Deny: []string{"10.0.0.0/8"}}, "10.0.0.1", false},
		{"allow only: others refused", Config{Allow: []string{"::1"}}, "127.0.0.1", false},
		{"allow only: IPv6 loopback", Config{Allow: []string{"::1"}}, "::1", true},
		{"IPv4 rule never matches IPv6", Config{Allow: []string{"0.0.0.0/0"}}, "2001:db8::1", false},
		{"overlapping and adjacent ranges merge", Config{Allow: []string{"10.0.0.0/9", "10.128.0.0/9", "10.0.0.0/24"}}, "10.200.0.1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New("x", tt.cfg, policies.Deps{})
			if err != nil {
				t.Fatal(err)
			}
			if got := p.(*Restriction).Allowed(netip.MustParseAddr(tt.ip)); got != tt.want {
				t.Fatalf("Allowed(%s) = %v", tt.ip, got)
			}
		})
	}
}

// Without Info (unit use, embedding) the TCP peer is the client.
func TestFallsBackToRemoteAddr(t *testing.T) {
	p, _ := New("x", Config{Allow: []string{"127.0.0.1"}}, policies.Deps{})
	backend := httptest.NewServer(p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "in")
	})))
	defer backend.Close()
	resp, err := http.Get(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "in" {
		t.Fatalf("status %d %q", resp.StatusCode, b)
	}
}

func TestValidate(t *testing.T) {
	var p confval.Problems
	(&Config{Allow: []string{"10.0.0.0/33", "bogus", "fe80::1%eth0"}, Deny: []string{"::ffff:1.2.3.4/64"}}).Validate("policies.x.ip-restriction", &p)
	var got []string
	for _, pr := range p {
		got = append(got, pr.Path)
	}
	want := "policies.x.ip-restriction.allow[0] policies.x.ip-restriction.allow[1] policies.x.ip-restriction.allow[2] policies.x.ip-restriction.deny[0]"
	if strings.Join(got, " ") != want {
		t.Fatalf("paths %v\n%+v", got, p)
	}
	p = nil
	(&Config{}).Validate("x", &p)
	if len(p) != 1 {
		t.Fatalf("empty config: %+v", p)
	}
	if _, err := New("x", Config{Allow: []string{"nope"}}, policies.Deps{}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("New error %v", err)
	}
}

func bigConfig() Config {
	var c Config
	for i := 0; i < 250; i++ {
		c.Allow = append(c.Allow, netip.AddrFrom4([4]byte{10, byte(i), 0, 0}).String()+"/24")
		c.Deny = append(c.Deny, netip.AddrFrom4([4]byte{172, 16, byte(i), 1}).String())
	}
	c.Allow = append(c.Allow, "2001:db8::/32")
	return c
}

func TestCheckAllocatesNothing(t *testing.T) {
	p, _ := New("x", bigConfig(), policies.Deps{})
	h := p.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req = req.WithContext(reqctx.With(req.Context(), &reqctx.Info{ClientIP: "10.77.0.9"}))
	w := httptest.NewRecorder()
	if n := testing.AllocsPerRun(100, func() { h.ServeHTTP(w, req) }); n != 0 {
		t.Fatalf("%v allocations per allowed request", n)
	}
}

func BenchmarkCheck(b *testing.B) {
	p, _ := New("x", bigConfig(), policies.Deps{})
	h := p.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, ip := range []string{"10.77.0.9", "2001:db8::42"} {
		b.Run(ip, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req = req.WithContext(reqctx.With(req.Context(), &reqctx.Info{ClientIP: ip}))
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, req)
			}
		})
	}
}
