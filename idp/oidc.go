package idp

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/identity"
	"github.com/ssogate/ssogate/store"
)

// idTokenLeeway is the clock skew allowed on an ID token's "exp" and "iat".
const idTokenLeeway = time.Minute

// relyingParty is the OpenID Connect relying party of every org whose
// protocol is oidc: the authorization-code flow of OIDC Core 1.0 section
// 3.1 with PKCE S256 (RFC 7636), over go-oidc and x/oauth2.
type relyingParty struct {
	publicURL string
	http      *http.Client
	discovery *discoveryCache
	now       func() time.Time
}

// Assertion is what an IdP asserted about the user at the end of a login,
// in protocol-neutral terms.
type Assertion struct {
	// Subject is the user's id at the IdP (OIDC "sub", SAML NameID).
	Subject string
	// Email is the asserted address, "" when none.
	Email string
	// EmailVerified is true when the IdP vouches for Email (OIDC
	// "email_verified": true; SAML assertions count as verified).
	EmailVerified bool
	// Attributes feed role and resource-group mapping.
	Attributes Attributes
}

// redirectURI is the OIDC redirect URI of org: the consume endpoint on the
// public origin, to be registered at the IdP.
func (rp *relyingParty) redirectURI(org string) string {
	return rp.publicURL + "/organizations/" + org + "/oidc/consume"
}

// clientSecret reads org's OIDC client secret (config.OIDC.ClientSecret)
// when a login needs it, never at start-up: a missing one is a
// codeSecretMissing error naming its source. "" (none configured) makes
// a public client, which relies on PKCE.
func clientSecret(org *config.Org) (string, error) {
	secret, err := org.SSO.OIDC.ClientSecret()
	if err != nil {
		return "", failf(http.StatusInternalServerError, codeSecretMissing,
			"The OIDC client secret of %s is not available: %v. Ask an administrator to provide it.", org.Name, err).with(err)
	}
	return secret, nil
}

// client returns org's OAuth 2.0 client (secret and discovered provider),
// or an error without contacting the IdP when the secret is missing.
func (rp *relyingParty) client(ctx context.Context, org *config.Org) (*oauth2.Config, *provider, error) {
	secret, err := clientSecret(org)
	if err != nil {
		return nil, nil, err
	}
	p, err := rp.discovery.get(ctx, org.SSO.OIDC.Issuer)
	if err != nil {
		return nil, nil, err
	}
	c := org.SSO.OIDC
	ep := p.endpoint
	// RFC 6749 section 2.3.1: client_secret_basic sends the credentials in
	// an Authorization header, client_secret_post in the form body.
	ep.AuthStyle = oauth2.AuthStyleInParams
	if c.TokenAuthMethod == config.AuthClientSecretBasic {
		ep.AuthStyle = oauth2.AuthStyleInHeader
	}
	return &oauth2.Config{
		ClientID:     c.ClientID,
		ClientSecret: secret,
		Endpoint:     ep,
		RedirectURL:  rp.redirectURI(org.Name),
		Scopes:       c.Scopes,
	}, p, nil
}

// start implements protocol: it fills p.Nonce and p.Verifier and returns
// the authorization request URL (RFC 6749 section 4.1.1) carrying
// p.State, the nonce (OIDC Core section 3.1.2.1) and the S256 code
// challenge (RFC 7636 section 4.3).
func (rp *relyingParty) start(ctx context.Context, org *config.Org, p *store.PendingLogin) (string, error) {
	oc, _, err := rp.client(ctx, org)
	if err != nil {
		return "", err
	}
	p.Nonce = randomToken()
	p.Verifier = oauth2.GenerateVerifier()
	return oc.AuthCodeURL(p.State, oidc.Nonce(p.Nonce), oauth2.S256ChallengeOption(p.Verifier)), nil
}

// finish redeems code at the token endpoint (RFC 6749 section 4.1.3, with
// the PKCE code_verifier of RFC 7636 section 4.5) and validates the ID
// token as OIDC Core section 3.1.3.7 requires: signature by a key of the
// issuer's JWKS with an allowed algorithm (never "none", never HMAC),
// "iss" equal to the discovered issuer, "aud" containing the client id,
// "azp" equal to the client id when present and required with several
// audiences, "exp" in the future and "iat" not in the future (one minute
// leeway), "nonce" equal to the pending login's, and "at_hash" when
// present. iss is the authorization response's "iss" parameter (RFC 9207),
// checked when present. Claims the ID token lacks are taken from the
// userinfo endpoint when one is published and the ID token has no
// "email" (OIDC Core section 5.3; its "sub" must match). An
// "email_verified" of false is refused.
func (rp *relyingParty) finish(ctx context.Context, org *config.Org, p *store.PendingLogin, code, iss string) (*Assertion, error) {
	oc, prov, err := rp.client(ctx, org)
	if err != nil {
		return nil, err
	}
	if iss != "" && iss != prov.issuer {
		return nil, failf(http.StatusBadRequest, codeIdPError,
			"The authorization response came from issuer %q, not %q.", iss, prov.issuer)
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, rp.http)
	tok, err := oc.Exchange(ctx, code, oauth2.VerifierOption(p.Verifier))
	if err != nil {
		return nil, tokenEndpointError(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, failf(http.StatusBadGateway, codeTokenEndpoint, "The token response holds no ID token.")
	}
	idt, err := rp.verify(ctx, prov, org.SSO.OIDC.ClientID, raw)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(p.Nonce)) != 1 {
		return nil, invalidIDToken(errors.New("nonce does not match the login's"))
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return nil, invalidIDToken(err)
		}
	}
	claims := Claims{}
	if err := idt.Claims(&claims); err != nil {
		return nil, invalidIDToken(err)
	}
	if _, ok := claims["email"]; !ok && prov.userinfo {
		if err := rp.mergeUserinfo(ctx, prov, tok, idt.Subject, claims); err != nil {
			return nil, err
		}
	}
	a := &Assertion{Subject: idt.Subject, Attributes: claims}
	a.Email, _ = claims["email"].(string)
	switch v := claims["email_verified"]; v {
	case true, "true":
		a.EmailVerified = true
	case false, "false":
		return nil, failf(http.StatusForbidden, codeEmailUnverified,
			"The identity provider says your email address %s is not verified.", a.Email)
	}
	return a, nil
}

// verify checks the ID token's signature, iss, aud, exp, iat and azp.
func (rp *relyingParty) verify(ctx context.Context, prov *provider, clientID, raw string) (*oidc.IDToken, error) {
	v := oidc.NewVerifier(prov.issuer, prov.keys, &oidc.Config{
		ClientID:             clientID,
		SupportedSigningAlgs: identity.AllowedAlgorithms(),
		Now:                  func() time.Time { return rp.now().Add(-idTokenLeeway) },
	})
	idt, err := v.Verify(ctx, raw)
	if err != nil {
		return nil, invalidIDToken(err)
	}
	if idt.IssuedAt.After(rp.now().Add(idTokenLeeway)) {
		return nil, invalidIDToken(errors.New("issued in the future (iat)"))
	}
	var azp struct {
		AuthorizedParty string `json:"azp"`
	}
	if err := idt.Claims(&azp); err != nil {
		return nil, invalidIDToken(err)
	}
	switch {
	case azp.AuthorizedParty != "" && azp.AuthorizedParty != clientID:
		return nil, invalidIDToken(fmt.Errorf("azp %q is not the client id", azp.AuthorizedParty))
	case azp.AuthorizedParty == "" && len(idt.Audience) > 1:
		return nil, invalidIDToken(errors.New("several audiences and no azp"))
	}
	return idt, nil
}

// mergeUserinfo adds the userinfo claims that claims lacks.
func (rp *relyingParty) mergeUserinfo(ctx context.Context, prov *provider, tok *oauth2.Token, sub string, claims Claims) error {
	ui, err := prov.oidc.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		return failf(http.StatusBadGateway, codeTokenEndpoint, "The identity provider's userinfo endpoint failed.").with(err)
	}
	if ui.Subject != sub {
		return invalidIDToken(errors.New("userinfo sub differs from the ID token's"))
	}
	more := map[string]any{}
	if err := ui.Claims(&more); err != nil {
		return failf(http.StatusBadGateway, codeTokenEndpoint, "The identity provider's userinfo response is malformed.").with(err)
	}
	for k, v := range more {
		if _, ok := claims[k]; !ok {
			claims[k] = v
		}
	}
	return nil
}

func invalidIDToken(err error) *Error {
	return failf(http.StatusUnauthorized, codeIDTokenInvalid,
		"The ID token from the identity provider failed verification.").with(err)
}

// tokenEndpointError describes a failed code redemption. An OAuth error
// response (RFC 6749 section 5.2) is quoted; its body is not logged, as it
// might echo credentials.
func tokenEndpointError(err error) *Error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		msg := re.ErrorCode
		if re.ErrorDescription != "" {
			msg += ": " + re.ErrorDescription
		}
		if msg == "" {
			msg = "HTTP " + re.Response.Status
		}
		return failf(http.StatusBadGateway, codeTokenEndpoint,
			"The identity provider's token endpoint refused the sign-in (%s).", msg).
			with(fmt.Errorf("token endpoint: HTTP %d %s", re.Response.StatusCode, re.ErrorCode))
	}
	return failf(http.StatusBadGateway, codeTokenEndpoint,
		"The identity provider's token endpoint could not be reached.").with(err)
}

// authorizationError describes an error response of the authorization
// endpoint (RFC 6749 section 4.1.2.1): access_denied is 403, others 502.
func authorizationError(code, description string) *Error {
	status := http.StatusBadGateway
	if code == "access_denied" {
		status = http.StatusForbidden
	}
	msg := code
	if description != "" {
		msg += ": " + description
	}
	return failf(status, codeIdPError, "The identity provider answered: %s", truncate(msg, 300))
}
