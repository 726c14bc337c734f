package policies

import (
	"errors"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/portico-gw/portico/internal/apierror"
	"github.com/portico-gw/portico/internal/reqctx"
)

// Anonymous is implemented by authenticators configured with an anonymous fallback consumer:
// when no authenticator of the scope finds a credential, the request proceeds as that consumer
// instead of failing with 401.
type Anonymous interface {
	AnonymousConsumer() string
}

// Chain wraps h with a scope's policies, in phase order whatever the order of pols. Every
// Authenticator in pols runs as one authentication step (see Authenticator). perConsumer holds,
// for consumers with their own policies, that consumer's full policy list for this scope; after
// authentication the rest of the chain is the identified consumer's variant. Every variant is
// built here, once, so the request path only looks one up.
func Chain(h http.Handler, pols []Policy, perConsumer map[string][]Policy, consumers *Consumers) http.Handler {
	pre, auths, post := split(pols)
	if len(auths) == 0 {
		// Without authentication there is no consumer to vary by.
		return wrap(wrap(h, post), pre)
	}
	base := wrap(h, post)
	variants := make(map[string]http.Handler, len(perConsumer))
	for name, list := range perConsumer {
		_, _, cpost := split(list)
		variants[name] = wrap(h, cpost)
	}
	authn := &authStep{auths: auths, base: base, variants: variants, consumers: consumers}
	for _, a := range auths {
		if an, ok := a.(Anonymous); ok && an.AnonymousConsumer() != "" && authn.anonymous == "" {
			authn.anonymous = an.AnonymousConsumer()
		}
		c := a.Challenge()
		if mc, ok := a.(MissingChallenger); ok {
			c = mc.MissingChallenge()
		}
		if c != "" { // mTLS has no HTTP challenge
			authn.challenges = append(authn.challenges, c)
		}
	}
	return wrap(authn, pre)
}

func split(pols []Policy) (pre []Policy, auths []Authenticator, post []Policy) {
	sorted := append([]Policy(nil), pols...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Phase() < sorted[j].Phase() })
	for _, p := range sorted {
		switch a, ok := p.(Authenticator); {
		case ok:
			auths = append(auths, a)
		case p.Phase() < PhaseAuthentication:
			pre = append(pre, p)
		default:
			post = append(post, p)
		}
	}
	return pre, auths, post
}

// wrap applies pols so that pols[0] is outermost. A VariantKeyed policy is given the
// KeyVariants inside it: pols is one scope's (or one consumer variant's) whole list after
// authentication, so these are exactly the policies its request reaches next.
func wrap(h http.Handler, pols []Policy) http.Handler {
	for i := len(pols) - 1; i >= 0; i-- {
		if vk, ok := pols[i].(VariantKeyed); ok {
			var inner []KeyVariant
			for _, p := range pols[i+1:] {
				if kv, ok := p.(KeyVariant); ok {
					inner = append(inner, kv)
				}
			}
			h = vk.WrapKeyed(h, inner)
			continue
		}
		h = pols[i].Wrap(h)
	}
	return h
}

type authStep struct {
	auths      []Authenticator
	base       http.Handler
	variants   map[string]http.Handler
	consumers  *Consumers
	anonymous  string
	challenges []string
}

// ErrInvalidCredentials is the one answer to every authentication failure, so a client learns
// nothing about which part of a credential was wrong.
var ErrInvalidCredentials = errors.New("invalid credentials")

// ErrNotMine says, through a NotMineError that names the credential, that a credential of an
// authenticator's kind may be another authenticator's: a token from an issuer this jwt policy
// does not know can be the next jwt policy's. The request then fails unless another
// authenticator accepted that very credential (its Identity.Credential), so two jwt policies on
// one route each take their own issuer's tokens, while a token nobody verified (nobody's issuer,
// or one in a cookie only the refusing policy reads) is still a 401, never anonymous. A bare
// ErrNotMine, naming no credential, fails the request.
var ErrNotMine = errors.New("credential is not this authenticator's")

// NotMineError is ErrNotMine for one credential (see ErrNotMine).
type NotMineError struct {
	Credential string
	Err        error // why (an unknown issuer)
}

func (e *NotMineError) Error() string        { return e.Err.Error() }
func (e *NotMineError) Unwrap() error        { return e.Err }
func (e *NotMineError) Is(target error) bool { return target == ErrNotMine }

func (a *authStep) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info := reqctx.From(r.Context())
	var id *reqctx.Identity
	// Every authenticator looks: a present but invalid credential fails the request even when
	// another one was valid, so a client cannot smuggle a bad token past a good key. The first
	// valid credential in list order names the identity.
	var refusedBuf [2]refusal
	refused := refusedBuf[:0] // credentials an authenticator answered ErrNotMine for
	var acceptedBuf [4]string
	accepted := acceptedBuf[:0] // credentials an authenticator accepted
	for _, au := range a.auths {
		got, err := au.Authenticate(r)
		if err != nil {
			var nm *NotMineError
			if errors.As(err, &nm) && nm.Credential != "" {
				refused = append(refused, refusal{cred: nm.Credential, by: au})
				continue
			}
			a.reject(w, r, au.Challenge(), "INVALID_CREDENTIALS", "invalid credentials")
			return
		}
		if got != nil {
			if got.Credential != "" {
				accepted = append(accepted, got.Credential)
			}
			if id == nil {
				id = got
			}
		}
	}
	for _, rf := range refused {
		if !slices.Contains(accepted, rf.cred) {
			a.reject(w, r, rf.by.Challenge(), "INVALID_CREDENTIALS", "invalid credentials")
			return
		}
	}
	anonymous := false
	if id == nil {
		if a.anonymous == "" {
			a.reject(w, r, strings.Join(a.challenges, ", "), "UNAUTHORIZED", "authentication required")
			return
		}
		id = &reqctx.Identity{Consumer: a.anonymous, Anonymous: true}
		if c, ok := a.consumers.ByName(a.anonymous); ok {
			id.Groups = c.Groups
		}
		anonymous = true
	}
	if info != nil {
		info.Identity = id
	}
	// The client's own claims about identity never reach upstreams; Portico's replace them here
	// and again in the proxy (reqctx.SetUpstreamHeaders).
	for _, h := range reqctx.IdentityHeaders {
		r.Header.Del(h)
	}
	// Kong's too, as Kong itself does on an authenticated request: backends moved from Kong
	// trust them. Here, before request transforms, which may set them from the identity.
	for _, h := range reqctx.KongIdentityHeaders {
		r.Header.Del(h)
	}
	// Policies later in the chain (rate limiting by consumer) read this; the proxy writes it
	// again from the identity.
	if anonymous {
		r.Header.Set("X-Anonymous-Consumer", "true")
	}
	if h, ok := a.variants[id.Consumer]; ok {
		h.ServeHTTP(w, r)
		return
	}
	a.base.ServeHTTP(w, r)
}

// refusal is a credential an authenticator answered ErrNotMine for.
type refusal struct {
	cred string
	by   Authenticator
}

func (a *authStep) reject(w http.ResponseWriter, r *http.Request, challenge, code, msg string) {
	err := apierror.New(http.StatusUnauthorized, code, msg)
	if challenge != "" {
		err.Header = http.Header{"Www-Authenticate": {challenge}}
	}
	apierror.Write(w, r, err)
}
