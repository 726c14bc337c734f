package policies

import (
	"errors"
	"net/http"
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
	authn.sameScheme = make([]uint64, len(auths))
	for i, a := range auths {
		for j, b := range auths {
			if j < 64 && scheme(a.Challenge()) == scheme(b.Challenge()) {
				authn.sameScheme[i] |= 1 << j
			}
		}
		if an, ok := a.(Anonymous); ok && an.AnonymousConsumer() != "" && authn.anonymous == "" {
			authn.anonymous = an.AnonymousConsumer()
		}
		if c := a.Challenge(); c != "" { // mTLS has no HTTP challenge
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

// wrap applies pols so that pols[0] is outermost.
func wrap(h http.Handler, pols []Policy) http.Handler {
	for i := len(pols) - 1; i >= 0; i-- {
		h = pols[i].Wrap(h)
	}
	return h
}

// scheme is the auth scheme a challenge names ("Bearer", "Basic"), case-folded.
func scheme(challenge string) string {
	s, _, _ := strings.Cut(challenge, " ")
	return strings.ToLower(s)
}

type authStep struct {
	auths []Authenticator
	// sameScheme[i] has bit j set when auths[j] challenges with auths[i]'s scheme: the
	// authenticators that may own a credential auths[i] answered ErrNotMine for.
	sameScheme []uint64
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
// authenticator's kind may be another authenticator's of the same scheme: a token from an
// issuer this jwt policy does not know can be the next jwt policy's. The request then fails
// unless an authenticator of that scheme accepted that very credential, so two jwt policies on
// one route each take their own issuer's tokens, while a token nobody verified (nobody's issuer,
// or one in a cookie only the refusing policy reads) is still a 401, never anonymous. A bare
// ErrNotMine, naming no credential, fails the request.
var ErrNotMine = errors.New("credential is not this authenticator's")

// NotMineError is ErrNotMine for one credential: the request passes only when an authenticator
// of the same scheme accepted that very credential (its Identity.Credential), not merely some
// other credential of the scheme (a second jwt policy's cookie).
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
	var notMine, accepted uint64
	var credBuf [4]string
	notMineCred := credBuf[:0] // notMineCred[k] is the credential of the k-th notMine bit
	var ids [64]*reqctx.Identity
	for i, au := range a.auths {
		got, err := au.Authenticate(r)
		if err != nil {
			var nm *NotMineError
			if errors.As(err, &nm) && i < 64 && nm.Credential != "" {
				notMine |= 1 << i
				notMineCred = append(notMineCred, nm.Credential)
				continue
			}
			a.reject(w, r, au.Challenge(), "INVALID_CREDENTIALS", "invalid credentials")
			return
		}
		if got != nil {
			if i < 64 {
				accepted |= 1 << i
				ids[i] = got
			}
			if id == nil {
				id = got
			}
		}
	}
	for i, k := 0, 0; notMine != 0; i++ {
		if notMine&(1<<i) == 0 {
			continue
		}
		notMine &^= 1 << i
		cred := notMineCred[k]
		k++
		owned := false
		for j, cand := 0, a.sameScheme[i]&accepted; cand != 0 && !owned; j++ {
			if cand&(1<<j) != 0 {
				cand &^= 1 << j
				owned = ids[j].Credential == cred
			}
		}
		if !owned {
			a.reject(w, r, a.auths[i].Challenge(), "INVALID_CREDENTIALS", "invalid credentials")
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

func (a *authStep) reject(w http.ResponseWriter, r *http.Request, challenge, code, msg string) {
	err := apierror.New(http.StatusUnauthorized, code, msg)
	if challenge != "" {
		err.Header = http.Header{"Www-Authenticate": {challenge}}
	}
	apierror.Write(w, r, err)
}
