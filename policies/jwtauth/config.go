package jwtauth

import (
	"net/url"
	"strings"

	"github.com/portico-gw/portico/internal/confval"
)

// Config is the jwt policy's settings, written under its type key:
//
//	policies:
//	  tokens:
//	    jwt:
//	      issuers:
//	        - issuer: https://id.example.com/
//	          algorithms: [RS256]
//	          jwks_url: https://id.example.com/.well-known/jwks.json
//	          audience: [orders-api]
//	      consumer_claim: azp
type Config struct {
	// Issuers are the token issuers this policy trusts, each with its own algorithm allow-list and
	// keys. A token's "iss" claim picks its issuer; a token from any other issuer is refused.
	Issuers []IssuerConfig `yaml:"issuers"`
	// ConsumerClaim is the claim whose value is matched against consumers' jwt.key. Default "iss"
	// (Kong's key_claim_name).
	ConsumerClaim string `yaml:"consumer_claim"`
	// AllowUnknownConsumers accepts a valid token whose consumer claim matches no consumer: the
	// identity then has no consumer name, only the token's subject and claims. Default false: 401.
	AllowUnknownConsumers bool `yaml:"allow_unknown_consumers"`
	// Leeway is the clock skew allowed when checking exp, nbf and iat. Default 30s; an explicit
	// 0s means none. A pointer, because confval.Duration reads 0 as unset everywhere else.
	Leeway *confval.Duration `yaml:"leeway"`
	// RequiredClaims must be present in every token. "exp" and "nbf" here also make those
	// claims mandatory for the time checks; other names must hold a value (null, "" and an empty
	// list or object count as missing).
	RequiredClaims []string `yaml:"required_claims"`
	// CookieNames are cookies a token may come in, tried in order after the Authorization header.
	// Default none.
	CookieNames []string `yaml:"cookie_names"`
	// QueryParams are query parameters a token may come in, tried after cookies. Default none:
	// tokens in URLs end up in access logs and Referer headers (Kong's default is "jwt").
	QueryParams []string `yaml:"query_params"`
	// MaxTokenSize refuses longer tokens with 401 before any parsing. Default 8KiB.
	MaxTokenSize confval.ByteSize `yaml:"max_token_size"`
	// Anonymous names a consumer that requests without any token proceed as, instead of being
	// refused with 401. An invalid token is still refused.
	Anonymous string `yaml:"anonymous"`
	// Realm is the realm of the WWW-Authenticate challenge. Default "portico".
	Realm string `yaml:"realm"`
}

// IssuerConfig is one trusted issuer.
type IssuerConfig struct {
	// Issuer is the exact "iss" value of this issuer's tokens.
	Issuer string `yaml:"issuer"`
	// Algorithms this issuer signs with; a token with any other "alg" is refused before a key is
	// chosen. One of HS256 HS384 HS512 RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA.
	Algorithms []string `yaml:"algorithms"`
	// Audience, when set, requires the token's "aud" to contain at least one of these values.
	Audience []string `yaml:"audience"`
	// Keys are verification keys given in the config (public keys as PEM, HMAC secrets).
	Keys []KeyConfig `yaml:"keys"`
	// JWKSURL is a JSON Web Key Set to fetch keys from (use https). Keys and JWKSURL may be
	// combined; a kid found among Keys wins.
	JWKSURL string `yaml:"jwks_url"`
	// JWKSRefreshInterval is how often the key set is fetched again. Default 1h.
	JWKSRefreshInterval confval.Duration `yaml:"jwks_refresh_interval"`
	// JWKSUnknownKIDInterval limits refetches caused by tokens with an unknown kid (a key
	// rotation) to one per interval, so junk tokens cannot hammer the identity provider. Tokens
	// with unknown kids arriving in between are refused at once. Default 1m.
	JWKSUnknownKIDInterval confval.Duration `yaml:"jwks_unknown_kid_interval"`
	// JWKSTimeout bounds one key-set fetch. Default 5s.
	JWKSTimeout confval.Duration `yaml:"jwks_timeout"`
}

// KeyConfig is one verification key: exactly one of PEMFile, PEM and Secret.
type KeyConfig struct {
	// KID is the key ID tokens name in their "kid" header. Optional: a token without kid is
	// tried against every key of its issuer that fits its algorithm.
	KID string `yaml:"kid"`
	// PEMFile is a file with a PEM public key (PKIX "PUBLIC KEY", PKCS#1 "RSA PUBLIC KEY") or a
	// certificate whose public key is used. RSA keys need at least 2048 bits.
	PEMFile string `yaml:"pem_file"`
	// PEM is the same as PEMFile, inline.
	PEM string `yaml:"pem"`
	// Secret is an HMAC secret for HS256/384/512, at least as long as the hash (32, 48, 64
	// bytes; RFC 7518 3.2). Write it as ${ENV}, never literally.
	Secret string `yaml:"secret"`
}

// supported lists the algorithms Portico verifies. "none" is deliberately absent.
var supported = map[string]bool{
	"HS256": true, "HS384": true, "HS512": true,
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "EdDSA": true,
}

const supportedList = "HS256 HS384 HS512 RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA"

// hmacSize is the minimum secret length for each HMAC algorithm (RFC 7518 3.2).
var hmacSize = map[string]int{"HS256": 32, "HS384": 48, "HS512": 64}

// Validate reports every problem in c under path (e.g. "policies.tokens.jwt").
func (c *Config) Validate(path string, p *confval.Problems) {
	if len(c.Issuers) == 0 {
		p.Addf(confval.Join(path, "issuers"), "at least one issuer is required")
	}
	seen := map[string]bool{}
	for i := range c.Issuers {
		at := confval.Index(confval.Join(path, "issuers"), i)
		iss := &c.Issuers[i]
		if iss.Issuer == "" {
			p.Addf(confval.Join(at, "issuer"), "issuer is required (the tokens' exact \"iss\" value)")
		} else if seen[iss.Issuer] {
			p.Addf(confval.Join(at, "issuer"), "issuer %q is listed twice", iss.Issuer)
		}
		seen[iss.Issuer] = true
		iss.validate(at, p)
	}
	for i, n := range c.RequiredClaims {
		if n == "" {
			p.Addf(confval.Index(confval.Join(path, "required_claims"), i), "empty claim name")
		}
	}
	for i, n := range c.CookieNames {
		if !confval.IsToken(n) {
			p.Addf(confval.Index(confval.Join(path, "cookie_names"), i), "invalid cookie name %q", n)
		}
	}
	for i, n := range c.QueryParams {
		if n == "" {
			p.Addf(confval.Index(confval.Join(path, "query_params"), i), "empty parameter name")
		}
	}
	if c.Leeway != nil && *c.Leeway < 0 {
		p.Addf(confval.Join(path, "leeway"), "leeway cannot be negative")
	}
	if !confval.IsQuotable(c.Realm) {
		p.Addf(confval.Join(path, "realm"), "realm cannot contain quotes, backslashes or control characters")
	}
}

func (iss *IssuerConfig) validate(at string, p *confval.Problems) {
	algsAt := confval.Join(at, "algorithms")
	if len(iss.Algorithms) == 0 {
		p.Addf(algsAt, "list the algorithms this issuer signs with (%s)", supportedList)
	}
	hasHMAC, hasPublic, minSecret := false, false, 0
	seen := map[string]bool{}
	for j, a := range iss.Algorithms {
		aat := confval.Index(algsAt, j)
		switch {
		case strings.EqualFold(a, "none"):
			p.Addf(aat, "unsigned tokens (alg none) are never accepted")
		case !supported[a]:
			p.Addf(aat, "unknown algorithm %q (allowed: %s)", a, supportedList)
		case seen[a]:
			p.Addf(aat, "algorithm %q is listed twice", a)
		case hmacSize[a] > 0:
			hasHMAC, minSecret = true, max(minSecret, hmacSize[a])
		default:
			hasPublic = true
		}
		seen[a] = true
	}
	for j, a := range iss.Audience {
		if a == "" {
			p.Addf(confval.Index(confval.Join(at, "audience"), j), "empty audience")
		}
	}
	if len(iss.Keys) == 0 && iss.JWKSURL == "" {
		p.Addf(at, "give keys, a jwks_url, or both")
	}
	if iss.JWKSURL != "" {
		u, err := url.Parse(iss.JWKSURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			p.Addf(confval.Join(at, "jwks_url"), "jwks_url must be an absolute http(s) URL")
		}
	}
	for _, d := range []struct {
		name string
		v    confval.Duration
	}{
		{"jwks_refresh_interval", iss.JWKSRefreshInterval},
		{"jwks_unknown_kid_interval", iss.JWKSUnknownKIDInterval},
		{"jwks_timeout", iss.JWKSTimeout},
	} {
		if d.v < 0 {
			p.Addf(confval.Join(at, d.name), "cannot be negative")
		}
	}
	kids := map[string]bool{}
	for j, k := range iss.Keys {
		kat := confval.Index(confval.Join(at, "keys"), j)
		n := 0
		for _, s := range []string{k.PEMFile, k.PEM, k.Secret} {
			if s != "" {
				n++
			}
		}
		if n != 1 {
			p.Addf(kat, "give exactly one of pem_file, pem and secret")
		}
		if k.KID != "" {
			if kids[k.KID] {
				p.Addf(confval.Join(kat, "kid"), "kid %q is listed twice", k.KID)
			}
			kids[k.KID] = true
		}
		if k.Secret != "" {
			switch {
			case !hasHMAC:
				p.Addf(confval.Join(kat, "secret"), "a secret needs an HS256/HS384/HS512 algorithm in this issuer's algorithms")
			case len(k.Secret) < minSecret:
				// Never echo the secret.
				p.Addf(confval.Join(kat, "secret"), "secret is %d bytes; the issuer's HMAC algorithms need at least %d (RFC 7518 3.2)", len(k.Secret), minSecret)
			}
		}
		if (k.PEMFile != "" || k.PEM != "") && !hasPublic {
			p.Addf(kat, "a public key needs an RS, PS, ES or EdDSA algorithm in this issuer's algorithms")
		}
	}
}

// ResolvePaths lets the config loader make pem_file paths relative to the config file's
// directory, like every other path in the config.
func (c *Config) ResolvePaths(abs func(*string)) {
	for i := range c.Issuers {
		for j := range c.Issuers[i].Keys {
			abs(&c.Issuers[i].Keys[j].PEMFile)
		}
	}
}
