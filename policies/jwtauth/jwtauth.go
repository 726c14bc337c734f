// Package jwtauth is the jwt policy: a consumer is identified by a signed JSON Web Token whose
// signature, algorithm, issuer, audience and times are verified against per-issuer settings.
package jwtauth

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/policies"
)

const (
	defaultLeeway          = 30 * time.Second
	defaultMaxTokenSize    = 8 << 10
	defaultRefresh         = time.Hour
	defaultUnknownKIDEvery = time.Minute
	defaultJWKSTimeout     = 5 * time.Second
)

// JWT is a built jwt policy. Per-request state lives only on the stack; the JWKS refreshers are
// the instance's only background work, stopped by Close.
type JWT struct {
	issuers       map[string]*issuer
	parser        *jwt.Parser
	consumerClaim string
	allowUnknown  bool
	// present lists required claims checked for presence (exp and nbf are enforced by the
	// validators themselves).
	present   []string
	cookies   []string
	queries   []string
	maxSize   int
	anonymous string
	challenge string
	consumers *policies.Consumers
	cancel    context.CancelFunc
}

type issuer struct {
	algs map[string]bool
	// byKID holds configured keys with a kid; byAlg the configured keys usable for each
	// algorithm, tried in turn for tokens without a kid.
	byKID map[string]any
	byAlg map[string][]jwt.VerificationKey
	// jwks holds the key set of jwks_url (nil without one); reading it never fetches. refetch
	// reads through it, fetching the set again when the kid is missing, and is only called when
	// unknownKID grants a token: the limiter is asked with Allow, never waited on, so unknown
	// kids between allowed refetches are refused at once, whatever jwks_timeout is.
	jwks       jwkset.Storage
	refetch    jwkset.Storage
	unknownKID *rate.Limiter
	validator  *jwt.Validator
}

var (
	_ policies.Authenticator = (*JWT)(nil)
	_ policies.Anonymous     = (*JWT)(nil)
)

// New builds the policy named name from c: it loads and checks every configured key and starts
// one JWKS refresher per issuer with a jwks_url (the first fetch happens here, bounded by
// jwks_timeout; a failure is logged and retried, it does not fail the build, so a reload does not
// depend on the identity provider being up). Call Close to stop the refreshers.
func New(name string, c Config, deps policies.Deps) (policies.Policy, error) {
	var ps confval.Problems
	c.Validate("", &ps)
	what := fmt.Sprintf("jwt policy %q", name)
	if err := ps.Err(what); err != nil {
		return nil, err
	}
	if err := deps.CheckAnonymous(what, c.Anonymous); err != nil {
		return nil, err
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.Default()
	}
	realm := c.Realm
	if realm == "" {
		realm = "portico"
	}
	j := &JWT{
		issuers:       map[string]*issuer{},
		consumerClaim: c.ConsumerClaim,
		allowUnknown:  c.AllowUnknownConsumers,
		cookies:       c.CookieNames,
		queries:       c.QueryParams,
		maxSize:       int(c.MaxTokenSize.Or(defaultMaxTokenSize)),
		anonymous:     c.Anonymous,
		challenge:     `Bearer realm="` + realm + `", error="invalid_token"`,
		consumers:     deps.Consumers,
	}
	if j.consumerClaim == "" {
		j.consumerClaim = "iss"
	}
	leeway := defaultLeeway
	if c.Leeway != nil {
		leeway = c.Leeway.Std()
	}
	opts := []jwt.ParserOption{jwt.WithLeeway(leeway), jwt.WithIssuedAt()}
	for _, rc := range c.RequiredClaims {
		switch rc {
		case "exp":
			opts = append(opts, jwt.WithExpirationRequired())
		case "nbf":
			opts = append(opts, jwt.WithNotBeforeRequired())
		default:
			j.present = append(j.present, rc)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	j.cancel = cancel
	for i, ic := range c.Issuers {
		iss, err := buildIssuer(ctx, ic, opts, logger, name)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("jwt policy %q: issuers[%d]: %w", name, i, err)
		}
		j.issuers[ic.Issuer] = iss
		if j.consumerClaim != "iss" && !j.allowUnknown && !deps.Consumers.HasJWTIssuer(ic.Issuer) {
			// Only credentials scoped to the issuer match another claim (see ByJWTKey), so
			// every token from it would be refused.
			cancel()
			return nil, fmt.Errorf("jwt policy %q: issuers[%d]: no consumer has a jwt credential with issuer %q, and consumer_claim %q matches only those (add issuer: %q to the consumers' jwt, or set allow_unknown_consumers)", name, i, ic.Issuer, j.consumerClaim, ic.Issuer)
		}
	}
	// The issuer is known only once the claims are decoded, so the algorithm is checked against
	// that issuer's allow-list in keyFor, before any key is chosen, and each issuer's claims are
	// then checked by its own jwt.Validator: one parse per token instead of a peek at "iss"
	// followed by a full parse. The parser gets no list of valid methods of its own: it would
	// refuse a token from another jwt policy's issuer for its algorithm before keyFor could say
	// the token is not this policy's (policies.ErrNotMine). "none" needs a key keyFor never
	// returns.
	j.parser = jwt.NewParser(jwt.WithoutClaimsValidation())
	// A forgotten Close (a test, a failed reload) must not leave refreshers running for ever: the
	// goroutines reference only ctx, never j, so j becoming unreachable stops them.
	runtime.AddCleanup(j, func(cancel context.CancelFunc) { cancel() }, cancel)
	return j, nil
}

func buildIssuer(ctx context.Context, ic IssuerConfig, opts []jwt.ParserOption, logger *slog.Logger, policy string) (*issuer, error) {
	iss := &issuer{algs: map[string]bool{}, byKID: map[string]any{}, byAlg: map[string][]jwt.VerificationKey{}}
	for _, a := range ic.Algorithms {
		iss.algs[a] = true
	}
	for i, kc := range ic.Keys {
		key, err := loadKey(kc)
		if err != nil {
			return nil, fmt.Errorf("keys[%d]: %w", i, err)
		}
		usable := false
		for _, a := range ic.Algorithms {
			if fits(a, key) {
				iss.byAlg[a] = append(iss.byAlg[a], key)
				usable = true
			}
		}
		if !usable {
			return nil, fmt.Errorf("keys[%d]: %s cannot verify any of %s", i, keyKind(key), strings.Join(ic.Algorithms, ", "))
		}
		if kc.KID != "" {
			iss.byKID[kc.KID] = key
		}
	}
	vopts := append([]jwt.ParserOption{jwt.WithIssuer(ic.Issuer)}, opts...)
	if len(ic.Audience) > 0 {
		vopts = append(vopts, jwt.WithAudience(ic.Audience...))
	}
	iss.validator = jwt.NewValidator(vopts...)
	if ic.JWKSURL == "" {
		return iss, nil
	}
	timeout := ic.JWKSTimeout.Or(defaultJWKSTimeout)
	// jwkset directly rather than keyfunc's default client: that one waits on its refresh
	// limiter for up to RateLimitWaitMax, which also bounds the fetch, so with
	// jwks_unknown_kid_interval at or below jwks_timeout every junk kid queued for its turn and
	// then fetched the set.
	store, err := jwkset.NewStorageFromHTTP(ic.JWKSURL, jwkset.HTTPClientStorageOptions{
		Client:                    &http.Client{Timeout: timeout},
		Ctx:                       ctx,
		HTTPTimeout:               timeout,
		NoErrorReturnFirstHTTPReq: true,
		RefreshInterval:           ic.JWKSRefreshInterval.Or(defaultRefresh),
		RefreshErrorHandler: func(_ context.Context, err error) {
			// Refreshes happen at most once per interval, so this cannot flood the log.
			logger.Warn("jwt: fetching JWKS failed", "policy", policy, "issuer", ic.Issuer, "error", err)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("jwks_url: %w", err)
	}
	refetch, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs: map[string]jwkset.Storage{ic.JWKSURL: store},
		// Never in the way: unknownKID has decided already. RateLimitWaitMax bounds the fetch.
		RefreshUnknownKID: rate.NewLimiter(rate.Inf, 1),
		RateLimitWaitMax:  timeout,
	})
	if err != nil {
		return nil, fmt.Errorf("jwks_url: %w", err)
	}
	iss.jwks, iss.refetch = store, refetch
	iss.unknownKID = rate.NewLimiter(rate.Every(ic.JWKSUnknownKIDInterval.Or(defaultUnknownKIDEvery)), 1)
	return iss, nil
}

// Close stops the JWKS refreshers. The policy keeps verifying with the keys it has.
func (j *JWT) Close() error {
	j.cancel()
	return nil
}

// Phase is authentication.
func (j *JWT) Phase() policies.Phase { return policies.PhaseAuthentication }

// Wrap authenticates alone, for use outside policies.Chain (which runs all of a scope's
// authenticators as one step and never calls Wrap).
func (j *JWT) Wrap(next http.Handler) http.Handler {
	return policies.Chain(next, []policies.Policy{j}, nil, j.consumers)
}

// Challenge is `Bearer realm="portico", error="invalid_token"`.
func (j *JWT) Challenge() string { return j.challenge }

// MissingChallenge is the challenge to a request that sent no token: without an error code,
// as RFC 6750 (3.1) asks.
func (j *JWT) MissingChallenge() string {
	return strings.TrimSuffix(j.challenge, `, error="invalid_token"`)
}

// AnonymousConsumer is the configured fallback consumer, or "".
func (j *JWT) AnonymousConsumer() string { return j.anonymous }

// Errors behind the one 401 a client sees; they are for tests and debugging only.
var (
	errTooLarge        = errors.New("token too large")
	errEmpty           = errors.New("empty token")
	errDuplicate       = errors.New("more than one bearer token")
	errUnknownIssuer   = fmt.Errorf("unknown issuer (%w)", policies.ErrNotMine)
	errAlgorithm       = errors.New("algorithm not allowed for issuer")
	errUnknownKID      = errors.New("unknown key id")
	errNoKey           = errors.New("no key fits the token's algorithm")
	errMissingClaim    = errors.New("required claim missing")
	errUnknownConsumer = errors.New("no consumer for token")
	errBadSubject      = errors.New("sub holds a control character")
	errTimeRange       = errors.New("exp, nbf or iat out of range")
	errCritical        = errors.New("token has critical header extensions (crit), which Portico does not implement")
)

// maxNumericDate bounds exp, nbf and iat: 2^53 seconds, past which a float64 no longer holds
// every second. jwt/v5 converts a NumericDate to int64 unchecked, so an nbf or iat of 1e19 wrapped
// to the far past and a token "not valid before" the year 3e11 was valid now.
const maxNumericDate = 1 << 53

// hasValue reports whether a required claim holds something: null, "" and an empty list or
// object are missing ("sub": null made an identity without a subject).
func hasValue(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

// checkTimeClaims refuses a numeric time claim outside ±maxNumericDate.
func checkTimeClaims(claims jwt.MapClaims) error {
	for _, name := range [...]string{"exp", "nbf", "iat"} {
		v, ok := claims[name]
		if !ok {
			continue
		}
		var f float64
		switch n := v.(type) {
		case float64:
			f = n
		case json.Number:
			var err error
			if f, err = n.Float64(); err != nil {
				return errTimeRange
			}
		default:
			continue // not a number: the validator refuses its type
		}
		if math.IsNaN(f) || math.Abs(f) > maxNumericDate {
			return errTimeRange
		}
	}
	return nil
}

// Authenticate finds a token (Authorization: Bearer, then cookies, then query parameters),
// verifies it and maps it to a consumer.
func (j *JWT) Authenticate(r *http.Request) (*reqctx.Identity, error) {
	tok, found, err := j.token(r)
	if !found {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(tok) > j.maxSize {
		return nil, errTooLarge
	}
	kf := keyLookup{j: j, ctx: r.Context()}
	claims := jwt.MapClaims{}
	if _, err := j.parser.ParseWithClaims(tok, claims, kf.keyFor); err != nil {
		if errors.Is(err, policies.ErrNotMine) {
			return nil, &policies.NotMineError{Credential: tok, Err: err}
		}
		return nil, err
	}
	// keyFor succeeded, so "iss" names a configured issuer.
	issName, _ := claims["iss"].(string)
	if err := checkTimeClaims(claims); err != nil {
		return nil, err
	}
	if err := j.issuers[issName].validator.Validate(claims); err != nil {
		return nil, err
	}
	for _, c := range j.present {
		if !hasValue(claims[c]) {
			return nil, fmt.Errorf("%w: %s", errMissingClaim, c)
		}
	}
	id := &reqctx.Identity{Claims: claims, Credential: tok}
	id.Subject, _ = claims["sub"].(string)
	if !reqctx.SendableValue(id.Subject) {
		// It would go upstream as X-Authenticated-Subject, where a NUL can cut it short.
		return nil, errBadSubject
	}
	key, _ := claims[j.consumerClaim].(string)
	if cons, ok := j.consumers.ByJWTKey(issName, key, j.consumerClaim == "iss"); ok {
		id.Consumer, id.Groups = cons.Name, cons.Groups
	} else if !j.allowUnknown {
		return nil, errUnknownConsumer
	}
	return id, nil
}

// token returns the request's token; found is false when it carries none of the configured kinds.
func (j *JWT) token(r *http.Request) (tok string, found bool, err error) {
	for _, v := range r.Header["Authorization"] {
		var t string
		switch {
		case len(v) >= 7 && strings.EqualFold(v[:7], "bearer "):
			t = strings.TrimSpace(v[7:])
		case strings.EqualFold(v, "bearer"):
			// "Bearer " with its trailing space trimmed by the header parser: a credential of
			// this scheme that is empty, not another scheme's.
		default:
			continue // another scheme, such as Basic, is another authenticator's
		}
		if found {
			return "", true, errDuplicate
		}
		tok, found = t, true
	}
	if found {
		if tok == "" {
			return "", true, errEmpty
		}
		return tok, true, nil
	}
	for _, name := range j.cookies {
		cs := r.CookiesNamed(name)
		switch {
		case len(cs) > 1:
			// As for two bearer headers: Portico would verify the first, and many backends'
			// cookie parsers keep the last.
			return "", true, errDuplicate
		case len(cs) == 1:
			if cs[0].Value == "" {
				return "", true, errEmpty
			}
			return cs[0].Value, true, nil
		}
	}
	if len(j.queries) > 0 && r.URL != nil && r.URL.RawQuery != "" {
		q := r.URL.Query()
		for _, name := range j.queries {
			if vs, ok := q[name]; ok {
				switch {
				case len(vs) > 1:
					return "", true, errDuplicate
				case vs[0] == "":
					return "", true, errEmpty
				}
				return vs[0], true, nil
			}
		}
	}
	return "", false, nil
}

// keyLookup carries the request's context into the key function, so a JWKS refresh triggered by
// an unknown kid is cancelled when the client goes away.
type keyLookup struct {
	j   *JWT
	ctx context.Context
}

// keyFor chooses the verification key(s) for a token whose signature is not yet verified: the
// issuer from "iss", the algorithm checked against that issuer's allow-list, then the key by kid
// (configured keys first, then the JWKS) or, without a kid, every issuer key fitting the algorithm.
func (kl keyLookup) keyFor(t *jwt.Token) (any, error) {
	claims, _ := t.Claims.(jwt.MapClaims)
	issName, _ := claims["iss"].(string)
	iss, ok := kl.j.issuers[issName]
	if !ok {
		return nil, errUnknownIssuer
	}
	alg := t.Method.Alg()
	if !iss.algs[alg] {
		return nil, errAlgorithm
	}
	// RFC 7515 4.1.11: a token whose crit lists an extension the verifier does not understand
	// must be refused, and Portico understands none (nor may crit be empty).
	if _, crit := t.Header["crit"]; crit {
		return nil, errCritical
	}
	rawKID, hasKID := t.Header["kid"]
	if hasKID {
		kid, ok := rawKID.(string)
		if !ok {
			return nil, errUnknownKID
		}
		if key, ok := iss.byKID[kid]; ok {
			if !fits(alg, key) {
				return nil, errNoKey
			}
			return key, nil
		}
		if iss.jwks == nil {
			return nil, errUnknownKID
		}
		jwk, err := iss.jwks.KeyRead(kl.ctx, kid)
		if errors.Is(err, jwkset.ErrKeyNotFound) {
			// A rotation, or junk: one refetch per jwks_unknown_kid_interval, the rest refused
			// without waiting.
			if !iss.unknownKID.Allow() {
				return nil, errUnknownKID
			}
			jwk, err = iss.refetch.KeyRead(kl.ctx, kid)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errUnknownKID, err)
		}
		key, ok := verifier(alg, jwk)
		if !ok {
			return nil, errNoKey
		}
		return key, nil
	}
	keys := iss.byAlg[alg]
	if iss.jwks != nil {
		if set, err := iss.jwks.KeyReadAll(kl.ctx); err == nil {
			keys = keys[:len(keys):len(keys)]
			for _, jwk := range set {
				if key, ok := verifier(alg, jwk); ok {
					keys = append(keys, key)
				}
			}
		}
	}
	if len(keys) == 0 {
		return nil, errNoKey
	}
	if len(keys) == 1 {
		return keys[0], nil
	}
	return jwt.VerificationKeySet{Keys: keys}, nil
}

// verifier returns jwk's public key when it may verify a token signed with alg: a JWK that
// names another algorithm, or is meant for encryption (use "enc"), may not (RFC 7517 4.2, 4.4),
// whether the token picked it by kid or not.
func verifier(alg string, jwk jwkset.JWK) (jwt.VerificationKey, bool) {
	m := jwk.Marshal()
	if a := m.ALG.String(); a != "" && a != alg {
		return nil, false
	}
	if m.USE != "" && m.USE != jwkset.UseSig {
		return nil, false
	}
	key := jwk.Key()
	if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
		key = pk.Public()
	}
	if !fits(alg, key) {
		return nil, false
	}
	return key, true
}
