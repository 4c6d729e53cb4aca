package identity

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unsafe"
)

// Reasons a token is invalid. Each wraps ErrInvalidToken; none contains
// any part of the token. Package-level values keep the failure path free
// of allocations.
var (
	errEmpty       = invalid("empty")
	errTooLarge    = invalid("too large")
	errNotCompact  = invalid("not a JWT in compact serialization")
	errMalformed   = invalid("malformed JWT")
	errAlg         = invalid("signature algorithm not allowed")
	errSignature   = invalid("signature invalid")
	errUnknownKey  = invalid("no signing key matches kid/alg")
	errKeysFailed  = invalid("signing keys unavailable")
	errIssuer      = invalid("wrong issuer")
	errClaims      = invalid("malformed claims")
	errAudience    = invalid("wrong audience")
	errNoSub       = invalid("missing sub")
	errNoExp       = invalid("missing exp")
	errExpired     = invalid("expired")
	errNotYetValid = invalid("not yet valid (nbf)")
	errFutureIat   = invalid("issued in the future (iat)")
	errUnverified  = invalid("verification failed")
)

func invalid(reason string) error { return fmt.Errorf("%w: %s", ErrInvalidToken, reason) }

// cacheable reports whether a verification failure cannot heal as time
// goes forward (see negativeTTL).
func (a *Authenticator) cacheable(err error) bool {
	switch err {
	case errNotYetValid, errFutureIat, errKeysFailed, errUnverified:
		return false
	case errSignature, errUnknownKey:
		return !a.remote // a remote key set may rotate
	}
	return true
}

// extraClaims are the claims read beyond those go-oidc parses.
type extraClaims struct {
	NotBefore     *float64    `json:"nbf"`
	IssuedAt      *float64    `json:"iat"`
	Email         string      `json:"email"`
	EmailVerified flexBool    `json:"email_verified"`
	Emails        flexStrings `json:"emails"`
}

// flexBool accepts a JSON boolean or the strings "true"/"false" (some
// issuers send email_verified as a string); anything else is false.
type flexBool bool

func (b *flexBool) UnmarshalJSON(d []byte) error {
	s := strings.Trim(string(d), `"`)
	*b = flexBool(s == "true")
	return nil
}

// flexStrings accepts a JSON array of strings or a single string; other
// array members are skipped.
type flexStrings []string

func (f *flexStrings) UnmarshalJSON(d []byte) error {
	var one string
	if json.Unmarshal(d, &one) == nil {
		*f = flexStrings{one}
		return nil
	}
	var many []any
	if err := json.Unmarshal(d, &many); err != nil {
		return nil // not a list: ignore the optional claim
	}
	for _, v := range many {
		if s, ok := v.(string); ok {
			*f = append(*f, s)
		}
	}
	return nil
}

// VerifyToken verifies a platform JWT (RFC 7519): compact serialization;
// signature by a key of the configured set with an algorithm of
// AllowedAlgorithms() ("none" and HS* are refused); "iss" equal to
// Options.Issuer; "aud" containing one of Options.Audiences; "sub"
// present; "exp" present and now < exp+ClockSkew (RFC 7519 section
// 4.1.4); now+ClockSkew >= "nbf" and "iat" when present. Errors wrap
// ErrInvalidToken with the reason and never include the token.
//
// Results are cached by SHA-256 of the token: a cached user is returned
// only while the time checks above still hold against Now(), so a cached
// token never outlives exp+ClockSkew. The returned User is a copy with an
// empty Source.
func (a *Authenticator) VerifyToken(ctx context.Context, raw string) (*User, error) {
	u, err := a.verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	c := *u
	return &c, nil
}

// verify is VerifyToken returning the shared (cached) User.
func (a *Authenticator) verify(ctx context.Context, raw string) (*User, error) {
	switch {
	case raw == "":
		return nil, errEmpty
	case len(raw) > maxTokenLen:
		return nil, errTooLarge
	}
	now := a.now()
	var key [32]byte
	if a.cache != nil {
		// The token is only read while hashing, so viewing its bytes in place
		// is safe and avoids copying it on every request.
		key = sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
		if e, ok := a.cache.Get(key); ok {
			if err := a.checkTimes(now, e.user.Expiry, e.nbf, time.Time{}); err == nil {
				return e.user, nil
			}
			a.cache.Remove(key) // past exp+skew: verify again, which fails
		}
		if n, ok := a.negative.Get(key); ok {
			if now.Before(n.until) {
				return nil, n.err
			}
			a.negative.Remove(key)
		}
	}
	// Checked after the cache: a hit is the same token, already checked.
	if err := checkCompact(raw); err != nil {
		return nil, err
	}
	u, nbf, err := a.verifyUncached(ctx, raw, now)
	if a.cache != nil {
		if err == nil {
			a.cache.Add(key, cacheEntry{user: u, nbf: nbf})
		} else if a.cacheable(err) {
			a.negative.Add(key, negativeEntry{err: err, until: now.Add(negativeTTL)})
		}
	}
	return u, err
}

// checkCompact accepts only JWS compact serialization (RFC 7515 section
// 7.1): three base64url parts. go-jose would also parse the JSON
// serialization, which is not a JWT (RFC 7519 section 7.2).
func checkCompact(raw string) error {
	dots := 0
	for i := 0; i < len(raw); i++ {
		switch compactChar[raw[i]] {
		case 0:
			return errNotCompact
		case 2:
			dots++
		}
	}
	if dots != 2 {
		return errNotCompact
	}
	return nil
}

// compactChar classifies bytes of a compact JWS: 1 base64url, 2 '.', 0 other.
var compactChar = func() (t [256]byte) {
	for c := range t {
		switch {
		case c == '.':
			t[c] = 2
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
			t[c] = 1
		}
	}
	return t
}()

// verifyUncached verifies raw and returns its user and "nbf" (zero when
// absent).
func (a *Authenticator) verifyUncached(ctx context.Context, raw string, now time.Time) (*User, time.Time, error) {
	tok, err := a.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, time.Time{}, classify(err)
	}
	var x extraClaims
	if err := tok.Claims(&x); err != nil {
		return nil, time.Time{}, errClaims
	}
	if !a.audienceOK(tok.Audience) {
		return nil, time.Time{}, errAudience
	}
	if tok.Subject == "" {
		return nil, time.Time{}, errNoSub
	}
	if tok.Expiry.IsZero() {
		return nil, time.Time{}, errNoExp
	}
	var nbf, iat time.Time
	if x.NotBefore != nil {
		if nbf, err = numericDate(*x.NotBefore); err != nil {
			return nil, time.Time{}, errClaims
		}
	}
	if x.IssuedAt != nil {
		if iat, err = numericDate(*x.IssuedAt); err != nil {
			return nil, time.Time{}, errClaims
		}
	}
	if err := a.checkTimes(now, tok.Expiry, nbf, iat); err != nil {
		return nil, time.Time{}, err
	}
	return &User{
		Sub:           tok.Subject,
		Email:         x.Email,
		EmailVerified: bool(x.EmailVerified),
		Emails:        mergeEmails(x.Email, bool(x.EmailVerified), x.Emails),
		Expiry:        tok.Expiry,
	}, nbf, nil
}

// classify maps a go-oidc verification error to a fixed reason, so that
// nothing derived from the token reaches the caller.
func classify(err error) error {
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "oidc: id token issued by a different provider"):
		return errIssuer
	case strings.HasPrefix(msg, "oidc: malformed jwt"):
		if strings.Contains(msg, "unexpected signature algorithm") {
			return errAlg
		}
		return errMalformed
	case strings.HasPrefix(msg, "oidc: id token not signed"),
		strings.HasPrefix(msg, "oidc: multiple signatures"):
		return errMalformed
	case strings.HasPrefix(msg, "failed to verify signature"):
		switch {
		case strings.HasSuffix(msg, errNoKey.Error()):
			return errUnknownKey
		case strings.Contains(msg, "fetching keys"):
			return errKeysFailed
		}
		return errSignature
	case strings.HasPrefix(msg, "oidc: failed to unmarshal claims"),
		strings.HasPrefix(msg, "oidc: failed to obtain source"),
		strings.HasPrefix(msg, "oidc: source does not exist"):
		return errClaims
	}
	return errUnverified
}

func (a *Authenticator) audienceOK(aud []string) bool {
	for _, got := range aud {
		for _, want := range a.audiences {
			if got == want {
				return true
			}
		}
	}
	return false
}

// checkTimes applies RFC 7519 sections 4.1.4-4.1.6 with ClockSkew; zero
// nbf/iat are absent.
func (a *Authenticator) checkTimes(now, exp, nbf, iat time.Time) error {
	skew := a.opts.ClockSkew
	if !now.Before(exp.Add(skew)) {
		return errExpired
	}
	if !nbf.IsZero() && now.Add(skew).Before(nbf) {
		return errNotYetValid
	}
	if !iat.IsZero() && now.Add(skew).Before(iat) {
		return errFutureIat
	}
	return nil
}

// numericDate converts an RFC 7519 NumericDate (seconds since the epoch,
// possibly fractional) to a time.
func numericDate(f float64) (time.Time, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1<<40 {
		return time.Time{}, errors.New("numeric date out of range")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}

// mergeEmails lists verified emails: email first when verified, then the
// "emails" claim, skipping empty strings and case-insensitive duplicates.
func mergeEmails(email string, verified bool, more []string) []string {
	var out []string
	add := func(e string) {
		if e == "" {
			return
		}
		for _, have := range out {
			if strings.EqualFold(have, e) {
				return
			}
		}
		out = append(out, e)
	}
	if verified {
		add(email)
	}
	for _, e := range more {
		add(e)
	}
	return out
}
