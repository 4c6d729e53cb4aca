// Package identity finds the platform user of a request: the hub's own login
// ("platform tokens", JWTs per RFC 7519) that organisation SSO sits on top of.
//
// A platform user comes from, in this order (spec section 5, "Identity"):
// Envoy jwt_authn filter metadata (already verified by Envoy), an
// "authorization: Bearer" token (RFC 6750 section 2.1) or the password of
// "authorization: Basic" credentials (RFC 7617), and the platform cookie.
// Verified tokens are cached in a bounded LRU keyed by the SHA-256 of the
// token; tokens never appear in errors or logs.
package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	lru "github.com/hashicorp/golang-lru/v2"
)

// Options configures platform-token verification (spec section 2, "identity").
type Options struct {
	// Issuer is the exact "iss" value required in tokens (RFC 7519 section
	// 4.1.1). Required.
	Issuer string
	// Audiences lists accepted audiences: a token's "aud" (a string or an
	// array, RFC 7519 section 4.1.3) must contain at least one. Required.
	Audiences []string
	// JWKS is a JSON Web Key Set document (RFC 7517 section 5) holding the
	// public signing keys. Exactly one of JWKS and JWKSURL must be set.
	JWKS []byte
	// JWKSURL is an http(s) URL of a JWKS, fetched lazily (on first use and
	// when a token names an unknown "kid") by go-oidc's RemoteKeySet.
	JWKSURL string
	// Cookie is the name of the platform cookie (case-sensitive, as in RFC
	// 6265). "" disables the cookie as a credential.
	Cookie string
	// MetadataNamespace and MetadataKey locate the payload that Envoy's
	// jwt_authn filter stores with payload_in_metadata. When either is ""
	// metadata is not a credential and Authenticate ignores its md argument.
	MetadataNamespace, MetadataKey string
	// ClockSkew is the leeway applied to "exp", "nbf" and "iat". Must not be
	// negative.
	ClockSkew time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// CacheSize bounds the cache of verified tokens (entries). 0 means
	// DefaultCacheSize; a negative value disables caching (positive and
	// negative).
	CacheSize int
}

// DefaultCacheSize is the number of verified tokens cached when
// Options.CacheSize is 0.
const DefaultCacheSize = 10000

// Negative cache: tokens that failed for a reason that cannot change with
// time going forward (bad signature with a static key set, wrong iss/aud,
// missing sub, expired, malformed) are remembered for negativeTTL so that a
// client replaying a stale cookie does not cost a signature check per
// request. Failures that may heal (nbf/iat in the future, key fetch errors,
// any signature failure against a remote key set, which may rotate) are
// never cached.
const (
	negativeTTL       = time.Minute
	negativeCacheSize = 1024
	// maxTokenLen refuses absurd tokens before hashing or parsing them.
	maxTokenLen = 16 << 10
)

// AllowedAlgorithms returns the JWS "alg" values (RFC 7518 section 3.1)
// accepted in platform tokens. "none" and the HMAC algorithms (HS*) are
// refused: a JWKS holds public keys only.
func AllowedAlgorithms() []string { return slices.Clone(allowedAlgs) }

var allowedAlgs = []string{
	oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.RS256, oidc.RS384, oidc.RS512,
	oidc.PS256, oidc.PS384, oidc.PS512,
	oidc.EdDSA,
}

var joseAlgs = func() []jose.SignatureAlgorithm {
	algs := make([]jose.SignatureAlgorithm, len(allowedAlgs))
	for i, a := range allowedAlgs {
		algs[i] = jose.SignatureAlgorithm(a)
	}
	return algs
}()

// User is the platform user of a request. Treat it as read-only.
type User struct {
	// Sub is the "sub" claim, the hub's user id.
	Sub string
	// Email is the "email" claim, verified or not.
	Email string
	// EmailVerified is the "email_verified" claim (a boolean, or the string
	// "true").
	EmailVerified bool
	// Emails holds all verified emails: Email when EmailVerified, then the
	// optional "emails" claim (a string array, or one string), without
	// empty and duplicate (ignoring case) entries.
	Emails []string
	// Expiry is the "exp" claim.
	Expiry time.Time
	// Source names where the user came from: "metadata", "bearer", "basic"
	// or "cookie"; "" for users returned by VerifyToken.
	Source string
}

// Headers gives request header values by lower-case name, one entry per
// value as received (Envoy may already have joined repeated headers).
type Headers interface {
	Values(name string) []string
}

// HeaderMap is a Headers backed by a map from lower-case name to values.
type HeaderMap map[string][]string

// Values returns the values of the header name (lower case).
func (h HeaderMap) Values(name string) []string { return h[name] }

// ErrAmbiguousIdentity means valid credentials of one request name
// different users, or the request carries two platform cookies with
// different values. Answer 400 {"error":"ambiguous_identity"}.
var ErrAmbiguousIdentity = errors.New("ambiguous identity")

// ErrInvalidToken means a platform token is not valid. Errors returned by
// this package wrap it (test with errors.Is) with a reason such as
// "bearer token: invalid token: signature invalid"; they never contain
// the token. Answer 401 with `www-authenticate: Bearer
// error="invalid_token"` (RFC 6750 section 3.1) and {"error":"invalid_token"}.
var ErrInvalidToken = errors.New("invalid token")

// Authenticator verifies platform tokens and finds the user of a request.
// It is safe for concurrent use.
type Authenticator struct {
	opts      Options
	now       func() time.Time
	verifier  *oidc.IDTokenVerifier
	remote    bool
	audiences []string
	cache     *lru.Cache[[32]byte, cacheEntry]
	negative  *lru.Cache[[32]byte, negativeEntry]
}

// cacheEntry is a verified token: its user and "nbf" (zero when absent).
type cacheEntry struct {
	user *User
	nbf  time.Time
}

// negativeEntry is a token that failed verification, with the reason.
type negativeEntry struct {
	err   error
	until time.Time
}

// New returns an Authenticator for o. It fails when Issuer or Audiences is
// missing, when neither or both of JWKS and JWKSURL are set, when JWKSURL is
// not an absolute http(s) URL, when ClockSkew is negative, or when the JWKS
// is malformed, empty, or holds a key that is symmetric, private, not for
// signing ("use" other than "sig") or declares an algorithm not in
// AllowedAlgorithms (the error names the key by index and "kid").
// With JWKSURL nothing is fetched here; ctx configures later fetches (see
// oidc.ClientContext) and its cancellation is ignored.
func New(ctx context.Context, o Options) (*Authenticator, error) {
	if o.Issuer == "" {
		return nil, errors.New("identity: issuer is required")
	}
	var auds []string
	for _, a := range o.Audiences {
		if a != "" && !slices.Contains(auds, a) {
			auds = append(auds, a)
		}
	}
	if len(auds) == 0 {
		return nil, errors.New("identity: at least one audience is required")
	}
	if o.ClockSkew < 0 {
		return nil, fmt.Errorf("identity: clock skew %s is negative", o.ClockSkew)
	}
	a := &Authenticator{opts: o, now: o.Now, audiences: auds}
	if a.now == nil {
		a.now = time.Now
	}
	var ks oidc.KeySet
	switch {
	case len(o.JWKS) > 0 && o.JWKSURL != "":
		return nil, errors.New("identity: set either a JWKS document or a JWKS URL, not both")
	case len(o.JWKS) > 0:
		s, err := parseJWKS(o.JWKS)
		if err != nil {
			return nil, err
		}
		ks = s
	case o.JWKSURL != "":
		u, err := url.Parse(o.JWKSURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("identity: JWKS URL %q is not an absolute http(s) URL", o.JWKSURL)
		}
		ks = oidc.NewRemoteKeySet(ctx, o.JWKSURL)
		a.remote = true
	default:
		return nil, errors.New("identity: a JWKS document or a JWKS URL is required")
	}
	a.verifier = oidc.NewVerifier(o.Issuer, ks, &oidc.Config{
		SkipClientIDCheck:    true, // aud is checked against several audiences below
		SkipExpiryCheck:      true, // exp/nbf/iat are checked below, with ClockSkew
		SupportedSigningAlgs: allowedAlgs,
	})
	if o.CacheSize >= 0 {
		size := o.CacheSize
		if size == 0 {
			size = DefaultCacheSize
		}
		var err error
		if a.cache, err = lru.New[[32]byte, cacheEntry](size); err != nil {
			return nil, fmt.Errorf("identity: token cache: %w", err)
		}
		if a.negative, err = lru.New[[32]byte, negativeEntry](min(size, negativeCacheSize)); err != nil {
			return nil, fmt.Errorf("identity: token cache: %w", err)
		}
	}
	return a, nil
}

// staticKeySet is an oidc.KeySet over a fixed JWKS. Unlike
// oidc.StaticKeySet it honours "kid" (RFC 7515 section 4.1.4) and each
// key's "alg", so a token is checked only against the keys that may have
// signed it.
type staticKeySet struct {
	keys []jose.JSONWebKey
}

var (
	errNoKey        = errors.New("no key matches the token's kid and alg")
	errBadSignature = errors.New("signature invalid")
)

// VerifySignature implements oidc.KeySet. The signature algorithm has
// already been checked against AllowedAlgorithms() by the oidc verifier.
func (s *staticKeySet) VerifySignature(_ context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSigned(raw, joseAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, errors.New("malformed JWS")
	}
	h := jws.Signatures[0].Header
	tried := false
	for i := range s.keys {
		k := &s.keys[i]
		if (h.KeyID != "" && k.KeyID != "" && k.KeyID != h.KeyID) ||
			(k.Algorithm != "" && k.Algorithm != h.Algorithm) {
			continue
		}
		tried = true
		if payload, err := jws.Verify(k.Key); err == nil {
			return payload, nil
		}
	}
	if !tried {
		return nil, errNoKey
	}
	return nil, errBadSignature
}

// parseJWKS parses and checks a JWKS document of public signing keys.
func parseJWKS(doc []byte) (*staticKeySet, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("identity: JWKS: %v", err)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New(`identity: JWKS: no keys (want {"keys":[...]})`)
	}
	for i, k := range set.Keys {
		name := fmt.Sprintf("identity: JWKS key %d (kid %q)", i, k.KeyID)
		switch k.Key.(type) {
		case *ecdsa.PublicKey, *rsa.PublicKey, ed25519.PublicKey:
		case []byte:
			return nil, fmt.Errorf("%s: symmetric keys (kty oct) are not allowed", name)
		case *ecdsa.PrivateKey, *rsa.PrivateKey, ed25519.PrivateKey:
			return nil, fmt.Errorf("%s: holds private key material; publish only the public key", name)
		default:
			return nil, fmt.Errorf("%s: unsupported key type %T", name, k.Key)
		}
		if pk, ok := k.Key.(*rsa.PublicKey); ok && pk.N.BitLen() < 2048 {
			return nil, fmt.Errorf("%s: RSA key of %d bits is too small (minimum 2048)", name, pk.N.BitLen())
		}
		if !k.Valid() {
			return nil, fmt.Errorf("%s: invalid key", name)
		}
		if k.Use != "" && k.Use != "sig" {
			return nil, fmt.Errorf("%s: use is %q, want \"sig\"", name, k.Use)
		}
		if k.Algorithm != "" && !slices.Contains(allowedAlgs, k.Algorithm) {
			return nil, fmt.Errorf("%s: alg %q is not allowed (allowed: %v)", name, k.Algorithm, allowedAlgs)
		}
	}
	return &staticKeySet{keys: set.Keys}, nil
}
