// Package idp is ssogate's login flow (spec section 6): the HTTP endpoints
// under /organizations/{org}/ where a member proves, at the organisation's
// identity provider, that they may hold an SSO session.
//
// The flow is protocol-neutral around one protocol-specific step:
//
//   - begin (flow.go): the caller's platform token, the pending login
//     (store.PendingLogin: state, nonce, PKCE verifier or AuthnRequest
//     ID, user, org, return_to) kept server-side for
//     store.PendingLoginTTL and bound to the browser by a cookie, then
//     the redirect to the IdP (oidc.go, saml.go);
//   - OIDC: resume (flow.go): the callback takes the pending login once
//     (a replayed callback fails even with its original cookies) and
//     checks that the same platform user finishes;
//   - SAML: the ACS (samlhttp.go) verifies the response (samlverify.go)
//     without cookies, takes the pending login by InResponseTo, and hands
//     the result over a 303 to a same-site finish endpoint that checks
//     the browser and the platform user (docs/saml.md);
//   - complete (flow.go): matching email domains, role and resource-group
//     mapping (mapping.go), the membership and SSO session writes, an
//     audit record, and the redirect to return_to (returnto.go).
//
// An IdP that cannot be reached never stops ssogate from starting: OIDC
// discovery and SAML metadata URLs are fetched on first use, cached and
// retried (discovery.go, samlidp.go).
package idp

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/identity"
	"github.com/ssogate/ssogate/store"
)

// Store is what the login flow reads and writes.
type Store interface {
	store.Memberships
	store.Sessions
	store.PendingLogins
	store.Replays
}

// protocol is one SSO protocol's side of a login start.
type protocol interface {
	// start fills the protocol fields of p (p.State and p.ID are already
	// set) and returns the IdP URL to send the browser to. A protocol
	// whose callback cannot present the browser cookie re-keys p.ID
	// (SAML's ACS is a cross-site POST: saml.go).
	start(ctx context.Context, org *config.Org, p *store.PendingLogin) (string, error)
}

// Options tune a Flow; the zero value is usable.
type Options struct {
	// Auth finds the platform user of a request; nil builds one from the
	// configuration's identity block (identity.FromConfig).
	Auth *identity.Authenticator
	// HTTPClient makes the calls to IdPs (OIDC discovery, JWKS, token,
	// userinfo; SAML metadata); nil means a client with a 10-second
	// timeout.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives audit records (Info, message "audit") and failures
	// (Warn); nil discards them. Tokens, codes, cookies and secrets are
	// never logged.
	Logger *slog.Logger
	// StartBurst is how many logins one platform user may start at one org
	// at once; afterwards one more every 6 seconds (429 too_many_logins
	// beyond). 0 means 10.
	StartBurst int
}

// Flow serves the login flow. It is safe for concurrent use.
type Flow struct {
	cfg       *config.Config
	store     Store
	auth      *identity.Authenticator
	now       func() time.Time
	log       *slog.Logger
	oidc      *relyingParty
	saml      *serviceProvider
	protocols map[string]protocol
	starts    *startLimiter
	tagKey    [32]byte // HMAC key of subjectTag, random per process
}

// subjectTag is HMAC-SHA256(tagKey, subject), 16 base64url characters.
func (f *Flow) subjectTag(subject string) string {
	m := hmac.New(sha256.New, f.tagKey[:])
	m.Write([]byte(subject))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))[:16]
}

// New returns the login flow of cfg over st. It contacts no IdP.
func New(ctx context.Context, cfg *config.Config, st Store, o Options) (*Flow, error) {
	f := &Flow{cfg: cfg, store: st, auth: o.Auth, now: o.Now, log: o.Logger}
	if f.now == nil {
		f.now = time.Now
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.auth == nil {
		a, err := identity.FromConfig(ctx, cfg.Gateway.Identity, f.now)
		if err != nil {
			return nil, fmt.Errorf("login flow: identity: %w", err)
		}
		f.auth = a
	}
	client := o.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	f.oidc = &relyingParty{
		publicURL: cfg.Gateway.PublicURL,
		http:      client,
		discovery: newDiscoveryCache(client, f.now, f.log),
		now:       f.now,
	}
	f.saml = &serviceProvider{
		publicURL: cfg.Gateway.PublicURL,
		idps:      newIdPCache(client, f.now, f.log),
		now:       f.now,
	}
	f.protocols = map[string]protocol{config.ProtocolOIDC: f.oidc, config.ProtocolSAML: f.saml}
	f.starts = newStartLimiter(f.now, o.StartBurst)
	rand.Read(f.tagKey[:])
	for _, org := range cfg.Orgs {
		s := org.SSO.SAML
		if !org.SSO.Enabled || org.SSO.Protocol != config.ProtocolSAML || s == nil {
			continue
		}
		if s.SignOnURL != "" && s.IdPEntityID == "" {
			f.log.Warn("saml: idp_entity_id is required with sign_on_url; logins will fail until it is set",
				"org", org.Name, "file", org.File)
		}
		if strings.HasPrefix(s.IdPMetadataURL, "http://") {
			f.log.Warn("saml: idp_metadata_url is plain http, so the IdP certificates it carries can be swapped in transit; use https",
				"org", org.Name, "file", org.File)
		}
	}
	return f, nil
}

// ssoOrg returns the org named name (ignoring case) when it has SSO enabled
// with a protocol this flow serves.
func (f *Flow) ssoOrg(name string) (*config.Org, error) {
	org := f.cfg.Org(name)
	if org == nil || !org.SSO.Enabled || f.protocols[org.SSO.Protocol] == nil {
		return nil, failf(http.StatusNotFound, codeNotConfigured,
			"The organization %q does not use single sign-on through ssogate.", name)
	}
	return org, nil
}

// platformUser returns the hub user of r (platform cookie or bearer
// token), nil when anonymous.
func (f *Flow) platformUser(r *http.Request) (*identity.User, error) {
	u, err := f.auth.Authenticate(r.Context(), r.Header, nil)
	switch {
	case errors.Is(err, identity.ErrAmbiguousIdentity):
		return nil, failf(http.StatusBadRequest, codeAmbiguous,
			"Your request carries hub credentials of different users. Sign out of the hub and sign in again.").with(err)
	case errors.Is(err, identity.ErrInvalidToken):
		return nil, failf(http.StatusUnauthorized, codeInvalidToken,
			"Your hub token is not valid. Sign in to the hub again.").with(err)
	case err != nil:
		return nil, err
	}
	return u, nil
}

// begin starts a login of user at org's IdP and returns the IdP URL.
// secret is the browser-binding cookie value. join: started from the SSO
// join link, so user need not be a member yet; otherwise a non-member is
// refused with codeNotMember.
func (f *Flow) begin(ctx context.Context, org *config.Org, user *identity.User, join bool, returnTo, secret string) (string, error) {
	if !join {
		if _, err := f.store.Membership(ctx, org.Name, user.Sub); errors.Is(err, store.ErrNotFound) {
			return "", failf(http.StatusForbidden, codeNotMember,
				"Only members of %s sign in with its single sign-on. To join %s, use its SSO join link: %s",
				org.Name, org.Name, f.cfg.Gateway.PublicURL+"/organizations/"+org.Name+"/sso/join")
		} else if err != nil {
			return "", fmt.Errorf("loading membership of %s in %s: %w", user.Sub, org.Name, err)
		}
	}
	now := f.now()
	p := store.PendingLogin{
		Org:       org.Name,
		User:      user.Sub,
		Protocol:  org.SSO.Protocol,
		Join:      join,
		State:     randomToken(),
		Browser:   hashToken(secret),
		CreatedAt: now,
		ExpiresAt: now.Add(store.PendingLoginTTL),
	}
	p.ReturnTo, _ = SafeReturnTo(f.cfg.Gateway.PublicURL, returnTo)
	p.ID = pendingID(secret, p.State)
	target, err := f.protocols[org.SSO.Protocol].start(ctx, org, &p)
	if err != nil {
		return "", err
	}
	if err := f.store.PutPendingLogin(ctx, p); err != nil {
		return "", fmt.Errorf("storing pending login: %w", err)
	}
	return target, nil
}

// resume takes the pending login of org named by state and the browser
// cookie secret: it can be taken once. user must be the platform user
// who began it. A missing state, a missing or different cookie, an
// unknown, expired or used login all fail without telling which.
func (f *Flow) resume(ctx context.Context, org *config.Org, user *identity.User, state, secret string) (*store.PendingLogin, error) {
	if state == "" {
		return nil, failf(http.StatusBadRequest, codeStateMissing,
			"The identity provider's answer has no state parameter.")
	}
	unknown := failf(http.StatusBadRequest, codeLoginUnknown,
		"This sign-in is unknown, has expired, was already used, or was started in another browser. Please start again.")
	if secret == "" {
		return nil, unknown
	}
	p, err := f.store.TakePendingLogin(ctx, pendingID(secret, state))
	if errors.Is(err, store.ErrNotFound) {
		return nil, unknown
	} else if err != nil {
		return nil, fmt.Errorf("taking pending login: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(p.Browser), []byte(hashToken(secret))) != 1 ||
		p.Org != org.Name || p.Protocol != org.SSO.Protocol || !f.now().Before(p.ExpiresAt) {
		return nil, unknown
	}
	if p.User != user.Sub {
		return nil, failf(http.StatusForbidden, codeUserMismatch,
			"This sign-in was started by another hub account than the one you are signed in with.")
	}
	return p, nil
}

// complete finishes a login of user at org from the IdP's assertion a
// (spec section 6) and returns where to send the browser: p.ReturnTo, or
// the org page.
//
// When org has email_domains, a.Email must be verified, in one of them,
// and equal (domain ignoring case) to one of user's verified emails. A
// non-member is refused unless p.Join, which makes them a member. Role
// and resource-group mapping update the membership; the session starts
// now. An audit record "sso_login" (or "sso_join" for a new member) is
// logged with the email's domain only.
func (f *Flow) complete(ctx context.Context, org *config.Org, p *store.PendingLogin, user *identity.User, a *Assertion) (string, error) {
	if err := checkEmail(org, user, a); err != nil {
		return "", err
	}
	existing, err := f.store.Membership(ctx, org.Name, user.Sub)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if !p.Join {
			return "", failf(http.StatusForbidden, codeNotMember,
				"You are no longer a member of %s. Use its SSO join link to join.", org.Name)
		}
		existing = nil
	case err != nil:
		return "", fmt.Errorf("loading membership of %s in %s: %w", user.Sub, org.Name, err)
	}
	m := applyMapping(org.SSO, org.Name, user.Sub, existing, a.Attributes)
	if existing == nil || !reflect.DeepEqual(*existing, m) {
		if err := f.store.PutMembership(ctx, m); err != nil {
			return "", fmt.Errorf("writing membership of %s in %s: %w", user.Sub, org.Name, err)
		}
	}
	now := f.now()
	s := store.Session{Org: org.Name, User: user.Sub, AuthenticatedAt: now, ExpiresAt: now.Add(store.MaxSessionTimeout)}
	if a.EmailVerified {
		s.Email = a.Email
	}
	if err := f.store.PutSession(ctx, s); err != nil {
		return "", fmt.Errorf("writing SSO session of %s in %s: %w", user.Sub, org.Name, err)
	}
	event := "sso_login"
	if existing == nil {
		event = "sso_join"
	}
	effective := m.Role
	if effective == "" {
		effective = org.DefaultRole.String()
	}
	f.log.LogAttrs(ctx, slog.LevelInfo, "audit",
		slog.String("event", event), slog.String("org", org.Name), slog.String("user", user.Sub),
		slog.String("protocol", p.Protocol), slog.String("email_domain", emailDomain(a.Email)),
		// Which IdP account was used, without logging it (a SAML NameID is an
		// email): a keyed hash, so that a list of likely addresses cannot be
		// checked against the logs. The key is made at start, so values
		// compare within one process's logs only.
		slog.String("idp_subject_tag", f.subjectTag(a.Subject)),
		slog.String("role", effective), slog.Any("resource_groups", m.ResourceGroups))
	if p.ReturnTo != "" {
		return p.ReturnTo, nil
	}
	return orgPage(f.cfg.Gateway.PublicURL, org.Name), nil
}

// checkEmail applies matching email domains (spec section 6).
func checkEmail(org *config.Org, user *identity.User, a *Assertion) error {
	if len(org.SSO.EmailDomains) == 0 {
		return nil
	}
	switch {
	case a.Email == "":
		return failf(http.StatusForbidden, codeEmailDomain,
			"The identity provider sent no email address; %s requires one in %v.", org.Name, org.SSO.EmailDomains)
	case !a.EmailVerified:
		return failf(http.StatusForbidden, codeEmailUnverified,
			"The identity provider does not say that your email address %s is verified.", a.Email)
	case !slices.Contains(org.SSO.EmailDomains, emailDomain(a.Email)):
		return failf(http.StatusForbidden, codeEmailDomain,
			"Your email address %s is not in the domains of %s (%v).", a.Email, org.Name, org.SSO.EmailDomains)
	case !slices.ContainsFunc(user.Emails, func(e string) bool { return sameEmail(e, a.Email) }):
		return failf(http.StatusForbidden, codeEmailMismatch,
			"The identity provider's address %s is not one of the verified email addresses of your hub account.", a.Email)
	}
	return nil
}

// randomToken returns 256 random bits, base64url without padding (43 bytes).
func randomToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// hashToken returns the SHA-256 of s, base64url without padding.
func hashToken(s string) string {
	h := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// pendingID derives a pending login's store key from the browser secret
// and the state: a callback finds its login only with both, so a leaked
// state alone cannot even consume someone else's login.
func pendingID(secret, state string) string {
	return hashToken("ssogate pending login\x00" + secret + "\x00" + state)
}
