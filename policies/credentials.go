package policies

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/portico-gw/portico/internal/confval"
)

// dummyBcryptHash is a bcrypt hash (cost 10, bcrypt.DefaultCost) of a random password nobody knows.
// ByBasic compares unknown usernames against it so that an unknown user costs as much as a known
// one with a wrong password; precomputing it spares every NewConsumers 50 ms of hashing.
const dummyBcryptHash = "$2a$10$sjAd3Rpcj5MwgOM65OadcOVWtKKDvfWsbHd4oLjFboO3F0ALI.NO."

// maxBcryptPassword is bcrypt's input limit. CompareHashAndPassword silently ignores bytes past it,
// so two passwords sharing their first 72 bytes would both match; longer ones are refused instead.
const maxBcryptPassword = 72

// credentialIndex holds the lookups from credentials to consumers, built once per snapshot.
type credentialIndex struct {
	// keys maps the SHA-256 digest of an API key to its consumer. Looking up a digest, not the key,
	// means the map's hashing and comparison work on values an attacker cannot steer byte by byte,
	// so the time a lookup takes says nothing about how close a guess was.
	keys  map[[sha256.Size]byte]*Consumer
	basic map[string]basicEntry
	// dummyHash is compared for unknown usernames; its cost is the highest configured cost.
	dummyHash []byte
	jwt       map[jwtRef]*Consumer
	// mtlsSubject and mtlsSAN index certificate subject common names and SANs separately: a
	// subject match wins over a SAN match so a certificate maps to one consumer deterministically.
	mtlsSubject map[string]*Consumer
	mtlsSAN     map[string]*Consumer
}

// jwtRef is a jwt credential's index key; issuer is "" for an unscoped credential.
type jwtRef struct{ issuer, key string }

type basicEntry struct {
	consumer *Consumer
	hash     []byte
	// pad are dummy hashes of costs hash's cost to the highest configured cost minus one:
	// comparing against them too makes this user's check cost what the highest cost does
	// (2^c + 2^c + 2^(c+1) + ... + 2^(max-1) = 2^max rounds), as an unknown user's does.
	pad [][]byte
}

// compareHash is bcrypt's comparison; tests replace it to count the work a check does.
var compareHash = bcrypt.CompareHashAndPassword

func (ci *credentialIndex) build(c *Consumers) error {
	ci.keys = map[[sha256.Size]byte]*Consumer{}
	ci.basic = map[string]basicEntry{}
	ci.jwt = map[jwtRef]*Consumer{}
	ci.mtlsSubject = map[string]*Consumer{}
	ci.mtlsSAN = map[string]*Consumer{}
	ci.dummyHash = []byte(dummyBcryptHash)
	maxCost := 0
	// Every problem, in the file's order: a user fixing the file wants them all at once, and
	// "c9 shares c10's key" read oddly when c10 came later in the file.
	var errs []error
	for _, name := range c.order {
		cons := c.byName[name]
		cfg := cons.Config
		if err := ci.addKeys(cons, cfg); err != nil {
			errs = append(errs, err)
		}
		if b := cfg.BasicAuth; b != nil {
			cost, err := ci.addBasic(cons, b)
			if err != nil {
				errs = append(errs, err)
			}
			maxCost = max(maxCost, cost)
		}
		if j := cfg.JWT; j != nil {
			if err := ci.addJWT(cons, j); err != nil {
				errs = append(errs, err)
			}
		}
		if m := cfg.MTLS; m != nil {
			if err := ci.addMTLS(cons, m); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if maxCost == 0 {
		return nil
	}
	// An unknown user must cost what the slowest known user costs, and a known user with a
	// cheaper hash must be padded to that, or timing tells them apart.
	dummies := map[int][]byte{bcrypt.DefaultCost: []byte(dummyBcryptHash)}
	dummy := func(cost int) ([]byte, error) {
		if h, ok := dummies[cost]; ok {
			return h, nil
		}
		h, err := bcrypt.GenerateFromPassword([]byte(rand.Text()), cost)
		if err != nil {
			return nil, fmt.Errorf("preparing basic-auth: %w", err)
		}
		dummies[cost] = h
		return h, nil
	}
	var err error
	if ci.dummyHash, err = dummy(maxCost); err != nil {
		return err
	}
	for user, e := range ci.basic {
		cost, _ := bcrypt.Cost(e.hash) // checked by addBasic
		for k := cost; k < maxCost; k++ {
			h, err := dummy(k)
			if err != nil {
				return err
			}
			e.pad = append(e.pad, h)
		}
		ci.basic[user] = e
	}
	return nil
}

func (ci *credentialIndex) addKeys(cons *Consumer, cfg ConsumerConfig) error {
	add := func(key, where string) error {
		// Surrounding whitespace is a copy-paste or env-file accident (a trailing newline), never
		// part of a key; presented keys are trimmed the same way.
		key = strings.TrimSpace(key)
		if key == "" {
			return fmt.Errorf("consumer %q: %s: empty API key", cons.Name, where)
		}
		d := sha256.Sum256([]byte(key))
		if other, dup := ci.keys[d]; dup {
			if other == cons {
				return nil
			}
			// Never print the key: errors end up in logs.
			return fmt.Errorf("consumer %q: %s: an API key is also consumer %q's", cons.Name, where, other.Name)
		}
		ci.keys[d] = cons
		return nil
	}
	// Every key is indexed and every problem kept: a key after a bad one may clash too.
	var errs []error
	for i, k := range cfg.Keys {
		if err := add(k, fmt.Sprintf("keys[%d]", i)); err != nil {
			errs = append(errs, err)
		}
	}
	if cfg.KeysFile == "" {
		return errors.Join(errs...)
	}
	keys, err := readKeysFile(cfg.KeysFile)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("consumer %q: %w", cons.Name, err))...)
	}
	for _, k := range keys {
		if err := add(k.key, fmt.Sprintf("keys_file %s line %d", cfg.KeysFile, k.line)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

type fileKey struct {
	key  string
	line int
}

// readKeysFile reads one key per line; blank lines and lines starting with # are skipped.
func readKeysFile(path string) ([]fileKey, error) {
	data, err := confval.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading keys_file: %w", err)
	}
	var keys []fileKey
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		keys = append(keys, fileKey{key: line, line: n})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading keys_file %s: %w", path, err)
	}
	return keys, nil
}

// maxBcryptCost bounds the cost of a configured bcrypt hash. Every cost step doubles the work:
// 14 is about a second of CPU per check on a current core, already more than a gateway should
// spend per login, while the 31 bcrypt allows would hang the build (which pads every cheaper
// hash up to the dearest) and hand anyone who guesses usernames a CPU-exhaustion lever.
const maxBcryptCost = 14

func (ci *credentialIndex) addBasic(cons *Consumer, b *BasicCredential) (int, error) {
	switch {
	case b.Username == "":
		return 0, fmt.Errorf("consumer %q: basic_auth.username is empty", cons.Name)
	case strings.Contains(b.Username, ":"):
		// RFC 7617: the user-id cannot contain a colon, so such a user could never log in.
		return 0, fmt.Errorf("consumer %q: basic_auth.username cannot contain ':'", cons.Name)
	}
	if other, dup := ci.basic[b.Username]; dup {
		return 0, fmt.Errorf("consumer %q: basic_auth.username %q is also consumer %q's", cons.Name, b.Username, other.consumer.Name)
	}
	hash := []byte(strings.TrimSpace(b.PasswordHash))
	cost, err := bcrypt.Cost(hash)
	if err != nil {
		return 0, fmt.Errorf("consumer %q: basic_auth.password_hash is not a bcrypt hash (make one with: htpasswd -nbBC 10 '' PASSWORD | tr -d ':\\n')", cons.Name)
	}
	if cost > maxBcryptCost {
		return 0, fmt.Errorf("consumer %q: basic_auth.password_hash has bcrypt cost %d, above the %d Portico accepts: each check would take seconds of CPU (make one with: htpasswd -nbBC 12 '' PASSWORD | tr -d ':\\n')", cons.Name, cost, maxBcryptCost)
	}
	ci.basic[b.Username] = basicEntry{consumer: cons, hash: hash}
	return cost, nil
}

func (ci *credentialIndex) addJWT(cons *Consumer, j *JWTCredential) error {
	if j.Key == "" {
		return fmt.Errorf("consumer %q: jwt.key is empty", cons.Name)
	}
	ref := jwtRef{j.Issuer, j.Key}
	other, dup := ci.jwt[ref]
	if !dup {
		// An unscoped key K and a key K scoped to issuer K both name the consumer of a token
		// from issuer K under consumer_claim: iss.
		switch {
		case j.Issuer == "":
			other, dup = ci.jwt[jwtRef{j.Key, j.Key}]
		case j.Issuer == j.Key:
			other, dup = ci.jwt[jwtRef{"", j.Key}]
		}
	}
	if dup {
		return fmt.Errorf("consumer %q: jwt.key %q is also consumer %q's", cons.Name, j.Key, other.Name)
	}
	ci.jwt[ref] = cons
	return nil
}

func (ci *credentialIndex) addMTLS(cons *Consumer, m *MTLSCredential) error {
	if m.Subject == "" && len(m.SANs) == 0 {
		return fmt.Errorf("consumer %q: mtls needs a subject or sans", cons.Name)
	}
	if m.Subject != "" {
		if other, dup := ci.mtlsSubject[m.Subject]; dup {
			return fmt.Errorf("consumer %q: mtls.subject %q is also consumer %q's", cons.Name, m.Subject, other.Name)
		}
		ci.mtlsSubject[m.Subject] = cons
	}
	for i, san := range m.SANs {
		if san == "" {
			return fmt.Errorf("consumer %q: mtls.sans[%d] is empty", cons.Name, i)
		}
		if other, dup := ci.mtlsSAN[san]; dup && other != cons {
			return fmt.Errorf("consumer %q: mtls.sans[%d] %q is also consumer %q's", cons.Name, i, san, other.Name)
		}
		ci.mtlsSAN[san] = cons
	}
	return nil
}

// ByKey returns the consumer owning an API key. The key is trimmed of surrounding whitespace and
// looked up by its SHA-256 digest, so the lookup time does not depend on how much of a guess was
// right.
func (c *Consumers) ByKey(key string) (*Consumer, bool) {
	if c == nil {
		return nil, false
	}
	key = strings.TrimSpace(key)
	if key == "" {
		return nil, false
	}
	cons, ok := c.creds.keys[sha256.Sum256([]byte(key))]
	return cons, ok
}

// ByBasic returns the consumer whose basic-auth username and password these are. It always runs
// one bcrypt comparison, against a dummy hash for an unknown username, so the answer takes as
// long whether or not the user exists. It costs tens of milliseconds: callers cache successes.
func (c *Consumers) ByBasic(username, password string) (*Consumer, bool) {
	if c == nil || len(c.creds.basic) == 0 {
		// Nobody can log in, so there is no username to protect.
		return nil, false
	}
	if len(password) > maxBcryptPassword {
		// Refused before looking at the username: the time taken reveals nothing about it.
		return nil, false
	}
	e, known := c.creds.basic[username]
	hash := e.hash
	if !known {
		hash = c.creds.dummyHash
	}
	err := compareHash(hash, []byte(password))
	for _, p := range e.pad {
		_ = compareHash(p, []byte(password))
	}
	if !known || err != nil {
		return nil, false
	}
	return e.consumer, true
}

// HasBasic reports whether any consumer has a basic-auth credential.
func (c *Consumers) HasBasic() bool { return c != nil && len(c.creds.basic) > 0 }

// ByJWTKey returns the consumer whose jwt.key equals v (the value of a jwt policy's consumer
// claim in a verified token from issuer). A credential scoped to issuer matches; an unscoped one
// matches only when unscoped is true, which a jwt policy passes only for consumer_claim: iss
// (where v is the issuer itself, so it cannot name another issuer's consumer).
func (c *Consumers) ByJWTKey(issuer, v string, unscoped bool) (*Consumer, bool) {
	if c == nil || v == "" {
		return nil, false
	}
	if cons, ok := c.creds.jwt[jwtRef{issuer, v}]; ok {
		return cons, true
	}
	if !unscoped {
		return nil, false
	}
	cons, ok := c.creds.jwt[jwtRef{"", v}]
	return cons, ok
}

// HasJWTIssuer reports whether some consumer's jwt credential is scoped to issuer.
func (c *Consumers) HasJWTIssuer(issuer string) bool {
	if c == nil {
		return false
	}
	for ref := range c.creds.jwt {
		if ref.issuer == issuer {
			return true
		}
	}
	return false
}

// ByCertificate returns the consumer a client certificate belongs to: by subject common name
// first, then by the first SAN (DNS name, email address, URI, IP address) some consumer lists.
// The caller must pass only a certificate the TLS stack verified.
func (c *Consumers) ByCertificate(cert *x509.Certificate) (*Consumer, bool) {
	if c == nil || cert == nil {
		return nil, false
	}
	if cn := cert.Subject.CommonName; cn != "" {
		if cons, ok := c.creds.mtlsSubject[cn]; ok {
			return cons, true
		}
	}
	if len(c.creds.mtlsSAN) == 0 {
		return nil, false
	}
	for _, s := range cert.DNSNames {
		if cons, ok := c.creds.mtlsSAN[s]; ok {
			return cons, true
		}
	}
	for _, s := range cert.EmailAddresses {
		if cons, ok := c.creds.mtlsSAN[s]; ok {
			return cons, true
		}
	}
	for _, u := range cert.URIs {
		if cons, ok := c.creds.mtlsSAN[u.String()]; ok {
			return cons, true
		}
	}
	for _, ip := range cert.IPAddresses {
		if cons, ok := c.creds.mtlsSAN[ip.String()]; ok {
			return cons, true
		}
	}
	return nil, false
}
