package listener

import (
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/testing/certtest"
)

func TestCheckAddress(t *testing.T) {
	tests := []struct{ addr, err string }{
		{":8080", ""},
		{"127.0.0.1:0", ""},
		{"[::1]:443", ""},
		{"localhost:9901", ""},
		{"", "address is required"},
		{"8080", `a port alone is written ":8080"`},
		{"localhost", "use host:port"},
		{":http", "invalid port"},
		{":70000", "invalid port"},
		{":-1", "invalid port"},
		{"::1:80", "use host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := CheckAddress(tt.addr)
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("CheckAddress(%q) = %v, want %q", tt.addr, err, tt.err)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	cert, key := certtest.WriteSelfSigned(t, dir, "a.example.com", "a.example.com", "a.example.com")
	cert2, key2 := certtest.WriteSelfSigned(t, dir, "b.example.com", "b.example.com", "b.example.com")
	pair := []CertConfig{{Cert: cert, Key: key}}

	tests := []struct {
		name string
		cfg  Config
		want []string // "path: message substring"; none for a valid listener
	}{
		{name: "plain", cfg: Config{Address: ":8080"}},
		{name: "h2c", cfg: Config{Address: ":8080", H2C: true}},
		{name: "tls with sni and mtls", cfg: Config{Address: ":8443", TLS: &TLSConfig{
			Certificates: []CertConfig{{Cert: cert, Key: key}, {Cert: cert2, Key: key2}}, ClientCA: cert, ClientAuth: "require", MinVersion: "1.3",
		}}},
		{name: "client ca alone", cfg: Config{Address: ":8443", TLS: &TLSConfig{Certificates: pair, ClientCA: cert, MinVersion: "1.2"}}},
		{name: "no address", cfg: Config{}, want: []string{"l.address: address is required"}},
		{name: "tls and h2c", cfg: Config{Address: ":8443", H2C: true, TLS: &TLSConfig{Certificates: pair}},
			want: []string{"l.h2c: h2c cannot be combined with tls: a TLS listener already offers HTTP/2 over ALPN"}},
		{name: "no certificates", cfg: Config{Address: ":8443", TLS: &TLSConfig{}}, want: []string{"l.tls.certificates: at least one certificate is required"}},
		{name: "certificate halves", cfg: Config{Address: ":8443", TLS: &TLSConfig{Certificates: []CertConfig{{Cert: cert}, {Key: key}, {}}}},
			want: []string{
				"l.tls.certificates[0].key: key is required when cert is set", "l.tls.certificates[1].cert: cert is required when key is set",
				"l.tls.certificates[2].cert: cert and key are required",
			}},
		{name: "missing files", cfg: Config{Address: ":8443", TLS: &TLSConfig{Certificates: []CertConfig{{Cert: filepath.Join(dir, "x.pem"), Key: dir}}}},
			want: []string{"l.tls.certificates[0].cert: does not exist", "l.tls.certificates[0].key: is a directory"}},
		{name: "mismatched pair", cfg: Config{Address: ":8443", TLS: &TLSConfig{Certificates: []CertConfig{{Cert: cert, Key: key2}}}},
			want: []string{"l.tls.certificates[0].cert: are not a usable pair"}},
		{name: "client ca", cfg: Config{Address: ":8443", TLS: &TLSConfig{Certificates: pair, ClientCA: key}},
			want: []string{"l.tls.client_ca: no PEM certificate found"}},
		{name: "client ca missing", cfg: Config{Address: ":8443", TLS: &TLSConfig{Certificates: pair, ClientCA: filepath.Join(dir, "ca.pem")}},
			want: []string{"l.tls.client_ca: does not exist"}},
		{name: "client auth", cfg: Config{Address: ":8443", TLS: &TLSConfig{Certificates: pair, ClientCA: cert, ClientAuth: "optional"}},
			want: []string{"l.tls.client_auth: unknown client_auth \"optional\" (allowed: request, require)"}},
		{name: "client auth without ca", cfg: Config{Address: ":8443", TLS: &TLSConfig{Certificates: pair, ClientAuth: "require"}},
			want: []string{"l.tls.client_auth: client_auth needs client_ca"}},
		{name: "min version", cfg: Config{Address: ":8443", TLS: &TLSConfig{Certificates: pair, MinVersion: "1.1"}},
			want: []string{"l.tls.min_version: unsupported min_version \"1.1\""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p confval.Problems
			tt.cfg.Validate("l", &p)
			assertValidationProblems(t, p, tt.want)
		})
	}
}

func TestServerConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  ServerConfig
		want []string
	}{
		{name: "zero means defaults", cfg: ServerConfig{}},
		{name: "set", cfg: ServerConfig{ReadHeaderTimeout: confval.Duration(time.Second), MaxHeaderBytes: 1 << 20, MaxBodyBytes: 1 << 20}},
		{name: "negative", cfg: ServerConfig{ReadHeaderTimeout: -1, ReadTimeout: -1, WriteTimeout: -1, SendTimeout: -1, IdleTimeout: -1, ShutdownTimeout: -1, MaxHeaderBytes: -1, MaxBodyBytes: -1},
			want: []string{
				"s.read_header_timeout: must not be negative", "s.read_timeout: must not be negative", "s.write_timeout: must not be negative", "s.send_timeout: must not be negative",
				"s.idle_timeout: must not be negative", "s.shutdown_timeout: must not be negative",
				"s.max_header_bytes: must not be negative", "s.max_body_bytes: must not be negative",
			}},
		{name: "at the bounds", cfg: ServerConfig{MaxHeaderBytes: MaxHeaderBytesLimit, Procs: MaxProcs}},
		// net/http adds 4096 bytes of slack to MaxHeaderBytes: near MaxInt64 that overflowed into a
		// negative read limit and every request got 431. 2147483648 procs is negative as the
		// runtime's int32 and killed the process on reload; 100000 stalled it.
		{name: "above the bounds", cfg: ServerConfig{MaxHeaderBytes: math.MaxInt64, Procs: 2147483648},
			want: []string{"s.max_header_bytes: must be at most 67108864", "s.procs: must be at most 1024"}},
		{name: "just above the bounds", cfg: ServerConfig{MaxHeaderBytes: MaxHeaderBytesLimit + 1, Procs: MaxProcs + 1},
			want: []string{"s.max_header_bytes: must be at most", "s.procs: must be at most"}},
		{name: "http1 servers", cfg: ServerConfig{HTTP1Server: HTTP1NetHTTP}},
		{name: "http1 server unknown", cfg: ServerConfig{HTTP1Server: "fasthttp"},
			want: []string{`s.http1_server: unknown server "fasthttp" (known: portico, net/http)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p confval.Problems
			tt.cfg.Validate("s", &p)
			assertValidationProblems(t, p, tt.want)
		})
	}
}

// assertValidationProblems wants exactly one problem per entry of want, in order, each matching
// its "path: message substring".
func assertValidationProblems(t *testing.T, got confval.Problems, want []string) {
	t.Helper()
	if len(got) != len(want) {
		var b strings.Builder
		for _, p := range got {
			b.WriteString("  " + p.Path + ": " + p.Message + "\n")
		}
		t.Fatalf("got %d problems, want %d:\n%s", len(got), len(want), b.String())
	}
	for i, w := range want {
		path, msg, _ := strings.Cut(w, ": ")
		if got[i].Path != path || !strings.Contains(got[i].Message, msg) {
			t.Errorf("problem %d = %s: %s; want %s: …%s…", i, got[i].Path, got[i].Message, path, msg)
		}
	}
}
