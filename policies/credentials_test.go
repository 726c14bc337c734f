package policies_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/portico-gw/portico/policies"
)

func hash(t testing.TB, pw string, cost int) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestByKey(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "keys")
	content := "# partner keys\n\n  file-key-1  \nfile-key-2\r\n#not-a-key\n"
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	cs, err := policies.NewConsumers([]policies.ConsumerConfig{
		{Name: "web", Keys: []string{"web-key", " padded-key\n"}, Groups: []string{"first-party"}},
		{Name: "partner", KeysFile: file},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, key, want string
	}{
		{"configured key", "web-key", "web"},
		{"configured key trimmed at build", "padded-key", "web"},
		{"presented key trimmed", "  web-key\t", "web"},
		{"file key trimmed", "file-key-1", "partner"},
		{"file key with CRLF", "file-key-2", "partner"},
		{"comment is no key", "#not-a-key", ""},
		{"unknown", "web-kex", ""},
		{"prefix of a key", "web-", ""},
		{"empty", "", ""},
		{"whitespace only", "   ", ""},
		{"inner whitespace differs", "web -key", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := cs.ByKey(tt.key)
			if tt.want == "" {
				if ok {
					t.Fatalf("ByKey(%q) found %q, want nothing", tt.key, c.Name)
				}
				return
			}
			if !ok || c.Name != tt.want {
				t.Fatalf("ByKey(%q) = %v, %v; want %q", tt.key, c, ok, tt.want)
			}
		})
	}
}

func TestCredentialErrors(t *testing.T) {
	good := hash(t, "pw", bcrypt.MinCost)
	tests := []struct {
		name    string
		cfgs    []policies.ConsumerConfig
		want    string
		secrets []string // must not appear in the error
	}{
		{"key shared by two consumers", []policies.ConsumerConfig{
			{Name: "a", Keys: []string{"s3cr3t-key"}}, {Name: "b", Keys: []string{"s3cr3t-key "}},
		}, `consumer "b": keys[0]: an API key is also consumer "a"'s`, []string{"s3cr3t-key"}},
		{"empty key", []policies.ConsumerConfig{{Name: "a", Keys: []string{" "}}}, "empty API key", nil},
		{"missing keys file", []policies.ConsumerConfig{{Name: "a", KeysFile: "/nonexistent/keys"}}, "reading keys_file", nil},
		// A device would be read until memory ran out.
		{"keys file that is a device", []policies.ConsumerConfig{{Name: "a", KeysFile: "/dev/zero"}}, "is a device or a socket", nil},
		{"bad bcrypt hash", []policies.ConsumerConfig{
			{Name: "a", BasicAuth: &policies.BasicCredential{Username: "u", PasswordHash: "plain-password"}},
		}, "not a bcrypt hash", []string{"plain-password"}},
		// The cost is read from the hash's text, so a cost-31 hash is refused without hashing.
		{"bcrypt cost above the bound", []policies.ConsumerConfig{
			{Name: "a", BasicAuth: &policies.BasicCredential{Username: "u", PasswordHash: strings.Replace(good, "$04$", "$31$", 1)}},
		}, "bcrypt cost 31, above the 14 Portico accepts", nil},
		{"username with colon", []policies.ConsumerConfig{
			{Name: "a", BasicAuth: &policies.BasicCredential{Username: "u:x", PasswordHash: good}},
		}, "cannot contain ':'", nil},
		{"empty username", []policies.ConsumerConfig{
			{Name: "a", BasicAuth: &policies.BasicCredential{PasswordHash: good}},
		}, "username is empty", nil},
		{"shared username", []policies.ConsumerConfig{
			{Name: "a", BasicAuth: &policies.BasicCredential{Username: "u", PasswordHash: good}},
			{Name: "b", BasicAuth: &policies.BasicCredential{Username: "u", PasswordHash: good}},
		}, `is also consumer "a"'s`, nil},
		{"shared jwt key", []policies.ConsumerConfig{
			{Name: "a", JWT: &policies.JWTCredential{Key: "acme"}}, {Name: "b", JWT: &policies.JWTCredential{Key: "acme"}},
		}, `jwt.key "acme" is also consumer "a"'s`, nil},
		{"empty jwt key", []policies.ConsumerConfig{{Name: "a", JWT: &policies.JWTCredential{}}}, "jwt.key is empty", nil},
		{"shared scoped jwt key", []policies.ConsumerConfig{
			{Name: "a", JWT: &policies.JWTCredential{Key: "alice", Issuer: "idp"}}, {Name: "b", JWT: &policies.JWTCredential{Key: "alice", Issuer: "idp"}},
		}, `jwt.key "alice" is also consumer "a"'s`, nil},
		// Both would name the consumer of a token from issuer "acme" under consumer_claim: iss.
		{"unscoped key beside the same key scoped to itself", []policies.ConsumerConfig{
			{Name: "a", JWT: &policies.JWTCredential{Key: "acme", Issuer: "acme"}}, {Name: "b", JWT: &policies.JWTCredential{Key: "acme"}},
		}, `jwt.key "acme" is also consumer "a"'s`, nil},
		{"scoped key beside the same key unscoped", []policies.ConsumerConfig{
			{Name: "a", JWT: &policies.JWTCredential{Key: "acme"}}, {Name: "b", JWT: &policies.JWTCredential{Key: "acme", Issuer: "acme"}},
		}, `jwt.key "acme" is also consumer "a"'s`, nil},
		{"empty mtls", []policies.ConsumerConfig{{Name: "a", MTLS: &policies.MTLSCredential{}}}, "needs a subject or sans", nil},
		{"shared mtls subject", []policies.ConsumerConfig{
			{Name: "a", MTLS: &policies.MTLSCredential{Subject: "cn"}}, {Name: "b", MTLS: &policies.MTLSCredential{Subject: "cn"}},
		}, `mtls.subject "cn" is also`, nil},
		{"shared mtls san", []policies.ConsumerConfig{
			{Name: "a", MTLS: &policies.MTLSCredential{SANs: []string{"x.example"}}},
			{Name: "b", MTLS: &policies.MTLSCredential{SANs: []string{"x.example"}}},
		}, `mtls.sans[0] "x.example" is also`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policies.NewConsumers(tt.cfgs)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			for _, s := range tt.secrets {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("error %q leaks a secret", err)
				}
			}
		})
	}
}

func TestByBasic(t *testing.T) {
	long := strings.Repeat("p", 72)
	cs, err := policies.NewConsumers([]policies.ConsumerConfig{
		{Name: "alice", BasicAuth: &policies.BasicCredential{Username: "alice", PasswordHash: hash(t, "wonderland", bcrypt.MinCost)}},
		{Name: "bob", BasicAuth: &policies.BasicCredential{Username: "bob", PasswordHash: hash(t, long, bcrypt.MinCost)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, user, pass, want string
	}{
		{"right password", "alice", "wonderland", "alice"},
		{"wrong password", "alice", "wonderlanD", ""},
		{"unknown user", "mallory", "wonderland", ""},
		{"username is case-sensitive", "Alice", "wonderland", ""},
		{"empty password", "alice", "", ""},
		{"72-byte password", "bob", long, "bob"},
		// bcrypt ignores bytes past 72; accepting this would let any suffix in.
		{"password past bcrypt's limit", "bob", long + "x", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := cs.ByBasic(tt.user, tt.pass)
			got := ""
			if ok {
				got = c.Name
			}
			if got != tt.want {
				t.Fatalf("ByBasic(%q, %q) = %q, want %q", tt.user, tt.pass, got, tt.want)
			}
		})
	}
}

// TestByBasicUnknownUserPaysForBcrypt shows an unknown username costs a bcrypt comparison like a
// known one: without the dummy comparison it would return in microseconds and reveal that the
// user does not exist. Only a lower bound is asserted, which a slow machine cannot break.
func TestByBasicUnknownUserPaysForBcrypt(t *testing.T) {
	cs, err := policies.NewConsumers([]policies.ConsumerConfig{
		{Name: "alice", BasicAuth: &policies.BasicCredential{Username: "alice", PasswordHash: hash(t, "pw", 8)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, ok := cs.ByBasic("mallory", "pw"); ok {
		t.Fatal("unknown user accepted")
	}
	// Cost 8 is 256 Blowfish key expansions: a few milliseconds on any current CPU, against
	// well under a microsecond for a map miss.
	if d := time.Since(start); d < time.Millisecond {
		t.Fatalf("unknown user answered in %v: no bcrypt comparison ran", d)
	}
}

func newCert(t testing.TB, cn string, dns, emails []string, uris []string, ips []net.IP) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: dns, EmailAddresses: emails, IPAddresses: ips,
	}
	for _, u := range uris {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestByCertificate(t *testing.T) {
	cs, err := policies.NewConsumers([]policies.ConsumerConfig{
		{Name: "by-cn", MTLS: &policies.MTLSCredential{Subject: "billing-service"}},
		{Name: "by-dns", MTLS: &policies.MTLSCredential{SANs: []string{"orders.internal"}}},
		{Name: "by-email", MTLS: &policies.MTLSCredential{SANs: []string{"ops@example.com"}}},
		{Name: "by-uri", MTLS: &policies.MTLSCredential{SANs: []string{"spiffe://example.org/payments"}}},
		{Name: "by-ip", MTLS: &policies.MTLSCredential{SANs: []string{"10.0.0.7"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cert *x509.Certificate
		want string
	}{
		{"subject CN", newCert(t, "billing-service", nil, nil, nil, nil), "by-cn"},
		{"DNS SAN", newCert(t, "x", []string{"other", "orders.internal"}, nil, nil, nil), "by-dns"},
		{"email SAN", newCert(t, "", nil, []string{"ops@example.com"}, nil, nil), "by-email"},
		{"URI SAN", newCert(t, "", nil, nil, []string{"spiffe://example.org/payments"}, nil), "by-uri"},
		{"IP SAN", newCert(t, "", nil, nil, nil, []net.IP{net.ParseIP("10.0.0.7")}), "by-ip"},
		{"subject wins over SAN", newCert(t, "billing-service", []string{"orders.internal"}, nil, nil, nil), "by-cn"},
		{"CN is not a SAN", newCert(t, "orders.internal", nil, nil, nil, nil), ""},
		{"unknown", newCert(t, "stranger", []string{"stranger.example"}, nil, nil, nil), ""},
		{"nil certificate", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := cs.ByCertificate(tt.cert)
			got := ""
			if ok {
				got = c.Name
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestByJWTKeyAndNilRegistry(t *testing.T) {
	cs, err := policies.NewConsumers([]policies.ConsumerConfig{
		{Name: "acme", JWT: &policies.JWTCredential{Key: "acme-issuer"}},
		{Name: "alice-a", JWT: &policies.JWTCredential{Key: "alice", Issuer: "idp-a"}},
		{Name: "alice-b", JWT: &policies.JWTCredential{Key: "alice", Issuer: "idp-b"}},
		{Name: "bob", JWT: &policies.JWTCredential{Key: "bob"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		issuer, value string
		unscoped      bool
		want          string // "" for no consumer
	}{
		{"acme-issuer", "acme-issuer", true, "acme"},
		{"idp-a", "alice", false, "alice-a"},
		{"idp-b", "alice", false, "alice-b"},
		{"idp-b", "alice", true, "alice-b"},
		{"idp-c", "alice", false, ""},
		// An unscoped credential names no subject of any issuer: under consumer_claim: sub an
		// identity provider could otherwise mint bob's tokens.
		{"idp-a", "bob", false, ""},
		{"idp-a", "bob", true, "bob"},
		{"acme-issuer", "", true, ""},
	}
	for _, tt := range tests {
		c, ok := cs.ByJWTKey(tt.issuer, tt.value, tt.unscoped)
		got := ""
		if ok {
			got = c.Name
		}
		if got != tt.want {
			t.Errorf("ByJWTKey(%q, %q, %v) = %q, want %q", tt.issuer, tt.value, tt.unscoped, got, tt.want)
		}
	}
	if !cs.HasJWTIssuer("idp-a") || cs.HasJWTIssuer("acme-issuer") {
		t.Error("HasJWTIssuer counts only credentials scoped to the issuer")
	}
	var none *policies.Consumers
	if _, ok := none.ByKey("k"); ok {
		t.Fatal("nil registry found a key")
	}
	if _, ok := none.ByBasic("u", "p"); ok {
		t.Fatal("nil registry found a user")
	}
	if _, ok := none.ByJWTKey("k", "k", true); ok {
		t.Fatal("nil registry found a jwt key")
	}
	if _, ok := none.ByCertificate(&x509.Certificate{}); ok {
		t.Fatal("nil registry found a certificate")
	}
}

func BenchmarkByKey(b *testing.B) {
	cs, err := policies.NewConsumers([]policies.ConsumerConfig{{Name: "web", Keys: []string{"0123456789abcdef0123456789abcdef"}}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := cs.ByKey("0123456789abcdef0123456789abcdef"); !ok {
			b.Fatal("not found")
		}
	}
}

// Every credential problem is reported, in the file's order: the first alone made a user fix the
// file once per problem, and name order reported c9 as sharing c10's key when c10 came later.
func TestNewConsumersReportsEveryProblemInFileOrder(t *testing.T) {
	_, err := policies.NewConsumers([]policies.ConsumerConfig{
		{Name: "c9", Keys: []string{"k1"}},
		{Name: "c10", Keys: []string{"k1", "k2"}},
		{Name: "c11", Keys: []string{" "}},
		{Name: "c12", Keys: []string{"k2"}}, // indexed under c10 although c10's first key failed
	})
	if err == nil {
		t.Fatal("want errors")
	}
	msg := err.Error()
	first, second := strings.Index(msg, `consumer "c10": keys[0]: an API key is also consumer "c9"'s`), strings.Index(msg, `consumer "c11": keys[0]: empty API key`)
	third := strings.Index(msg, `consumer "c12": keys[0]: an API key is also consumer "c10"'s`)
	if first < 0 || second < 0 || third < 0 || first > second || second > third {
		t.Errorf("errors %q; want c10's duplicate, c11's empty key, then c12's duplicate", msg)
	}
}
