package idp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/identity"
	"github.com/ssogate/ssogate/internal/accept"
	"github.com/ssogate/ssogate/store"
)

// Mount adds the login flow's endpoints to mux (spec section 6):
//
//	GET  /organizations/{org}/sso/login?return_to=URL  start a login
//	GET  /organizations/{org}/sso/join?return_to=URL   start a login that may make the caller a member
//	GET  /organizations/{org}/oidc/consume             OIDC redirect URI
//	POST /organizations/{org}/saml/consume             SAML assertion consumer service (HTTP-POST)
//	GET  /organizations/{org}/saml/finish?id=ID        where the ACS's 303 leads (docs/saml.md)
//	GET  /organizations/{org}/saml/metadata            SAML SP metadata
//	POST /organizations/{org}/sso/logout               end the caller's SSO session
//
// The GET endpoints that change state refuse HEAD with 405 (see refuseHEAD).
func (f *Flow) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET /organizations/{org}/sso/login", refuseHEAD(f.handleStart(false)))
	mux.HandleFunc("GET /organizations/{org}/sso/join", refuseHEAD(f.handleStart(true)))
	mux.HandleFunc("GET /organizations/{org}/oidc/consume", refuseHEAD(f.handleOIDCConsume))
	mux.HandleFunc("POST /organizations/{org}/saml/consume", f.handleSAMLConsume)
	mux.HandleFunc("GET /organizations/{org}/saml/finish", refuseHEAD(f.handleSAMLFinish))
	mux.HandleFunc("GET /organizations/{org}/saml/metadata", f.handleSAMLMetadata)
	mux.HandleFunc("POST /organizations/{org}/sso/logout", f.handleLogout)
}

// refuseHEAD wraps the handler of a GET endpoint that changes state.
// http.ServeMux routes HEAD to GET patterns, and a HEAD request (a link
// preview, a monitor, a prefetching proxy) must neither start a login nor
// take a pending one: it gets 405 with "allow: GET" and touches nothing.
func refuseHEAD(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			w.Header().Set("allow", http.MethodGet)
			writeError(w, r, failf(http.StatusMethodNotAllowed, codeMethod, "This endpoint answers GET only."), page{})
			return
		}
		h(w, r)
	}
}

// loginCookie is the name of the cookie binding org's pending logins to
// the browser. Its value is a random secret, reused by concurrent logins
// of one browser; the store keeps only its hash.
func loginCookie(org string) string { return "ssogate_login_" + org }

// bindingCookie returns the browser-binding cookie carrying secret:
// HttpOnly, SameSite=Lax (sent on the IdP's top-level redirect back),
// Secure when public_url is https, scoped to the org's login-flow paths,
// and living as long as a pending login.
func (f *Flow) bindingCookie(org, secret string) *http.Cookie {
	return &http.Cookie{
		Name:     loginCookie(org),
		Value:    secret,
		Path:     "/organizations/" + org + "/",
		MaxAge:   int(store.PendingLoginTTL.Seconds()),
		HttpOnly: true,
		Secure:   strings.HasPrefix(f.cfg.Gateway.PublicURL, "https://"),
		SameSite: http.SameSiteLaxMode,
	}
}

// browserSecret returns the value of the org's binding cookie when it is
// one this flow could have set (43 base64url bytes), else "".
func browserSecret(r *http.Request, org string) string {
	c, err := r.Cookie(loginCookie(org))
	if err != nil || len(c.Value) != 43 || strings.Trim(c.Value, base64URLChars) != "" {
		return ""
	}
	return c.Value
}

const base64URLChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// handleStart serves /sso/login (join false) and /sso/join (join true): a
// caller without a platform token goes to the hub's login_url; otherwise
// the pending login is stored, the binding cookie set, and the browser
// sent to the IdP.
func (f *Flow) handleStart(join bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		org, err := f.ssoOrg(r.PathValue("org"))
		if err != nil {
			f.fail(w, r, nil, "", err)
			return
		}
		user, err := f.platformUser(r)
		if err != nil {
			f.fail(w, r, org, "", err)
			return
		}
		if user == nil {
			noStore(w)
			http.Redirect(w, r, f.cfg.Gateway.Identity.LoginURL, http.StatusFound)
			return
		}
		if !f.starts.allow(org.Name, user.Sub) {
			w.Header().Set("retry-after", "6")
			f.fail(w, r, org, user.Sub, failf(http.StatusTooManyRequests, codeTooManyLogins,
				"Too many sign-in attempts for %s. Wait a few seconds and try again.", org.Name))
			return
		}
		secret := browserSecret(r, org.Name)
		if secret == "" {
			secret = randomToken()
		}
		target, err := f.begin(r.Context(), org, user, join, r.URL.Query().Get("return_to"), secret)
		if err != nil {
			f.fail(w, r, org, user.Sub, err)
			return
		}
		http.SetCookie(w, f.bindingCookie(org.Name, secret))
		noStore(w)
		http.Redirect(w, r, target, http.StatusFound)
	}
}

// handleOIDCConsume is the OIDC redirect URI (RFC 6749 section 4.1.2):
// an error response ends the pending login and shows the IdP's message;
// otherwise the pending login is resumed, the code redeemed once, the ID
// token verified and the login completed with a redirect to return_to.
func (f *Flow) handleOIDCConsume(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	org, err := f.ssoOrg(r.PathValue("org"))
	if err == nil && org.SSO.Protocol != config.ProtocolOIDC {
		err = failf(http.StatusNotFound, codeNotConfigured, "The organization %q does not use OpenID Connect.", org.Name)
	}
	if err != nil {
		f.fail(w, r, nil, "", err)
		return
	}
	q := r.URL.Query()
	state, secret := q.Get("state"), browserSecret(r, org.Name)
	if idpErr := q.Get("error"); idpErr != "" {
		if state != "" && secret != "" {
			// End the pending login so that it cannot be finished later;
			// a missing one (ErrNotFound) is fine.
			_, _ = f.store.TakePendingLogin(ctx, pendingID(secret, state))
		}
		f.fail(w, r, org, "", authorizationError(idpErr, q.Get("error_description")))
		return
	}
	user, ok := f.requireUser(w, r, org)
	if !ok {
		return
	}
	target, err := f.consumeOIDC(ctx, org, user, state, secret, q.Get("code"), q.Get("iss"))
	if err != nil {
		f.fail(w, r, org, user.Sub, err)
		return
	}
	noStore(w)
	http.Redirect(w, r, target, http.StatusFound)
}

// consumeOIDC finishes an OIDC login of user: resume the pending login,
// redeem code once, verify the ID token and complete. It returns where to
// redirect.
func (f *Flow) consumeOIDC(ctx context.Context, org *config.Org, user *identity.User, state, secret, code, iss string) (string, error) {
	p, err := f.resume(ctx, org, user, state, secret)
	if err != nil {
		return "", err
	}
	if code == "" {
		return "", failf(http.StatusBadRequest, codeCodeMissing, "The identity provider's answer has no code parameter.")
	}
	// Codes are single use (spec section 6); the pending login already
	// is, so this guards against a code injected into another login.
	sum := sha256.Sum256([]byte(code))
	fresh, err := f.store.Remember(ctx, "oidc-code:"+hex.EncodeToString(sum[:]), f.now().Add(store.PendingLoginTTL))
	if err != nil {
		return "", fmt.Errorf("remembering the authorization code: %w", err)
	}
	if !fresh {
		return "", failf(http.StatusBadRequest, codeCodeReplayed, "This authorization code was already used.")
	}
	a, err := f.oidc.finish(ctx, org, p, code, iss)
	if err != nil {
		return "", err
	}
	return f.complete(ctx, org, p, user, a)
}

// handleLogout ends the caller's SSO session of the org: 303 to the org
// page for browsers, 204 for API clients. The caller needs a platform
// token. A request authenticated by a credential the browser attaches on
// its own (the platform cookie, Basic credentials) must come from
// public_url's origin, as its Origin header (or, without one, its
// Referer) shows: a cross-site form cannot end sessions (CSRF). A bearer
// token is never attached by a browser, so it needs no such check.
func (f *Flow) handleLogout(w http.ResponseWriter, r *http.Request) {
	org := f.cfg.Org(r.PathValue("org"))
	if org == nil {
		f.fail(w, r, nil, "", failf(http.StatusNotFound, codeNotConfigured, "There is no organization %q.", r.PathValue("org")))
		return
	}
	user, err := f.platformUser(r)
	if err == nil && user == nil {
		err = failf(http.StatusUnauthorized, codeLoginRequired, "Sign in to the hub to sign out of %s.", org.Name)
	}
	if err == nil && user.Source != "bearer" && !f.sameOrigin(r) {
		err = failf(http.StatusForbidden, codeCrossOrigin,
			"Signing out must be requested from %s.", f.cfg.Gateway.PublicURL)
	}
	if err != nil {
		sub := ""
		if user != nil {
			sub = user.Sub
		}
		f.fail(w, r, org, sub, err)
		return
	}
	if err := f.store.DeleteSession(r.Context(), org.Name, user.Sub); err != nil {
		f.fail(w, r, org, user.Sub, err)
		return
	}
	f.log.LogAttrs(r.Context(), slog.LevelInfo, "audit", slog.String("event", "sso_logout"),
		slog.String("org", org.Name), slog.String("user", user.Sub))
	noStore(w)
	if accept.HTML(r.Header.Get("accept")) {
		http.Redirect(w, r, orgPage(f.cfg.Gateway.PublicURL, org.Name), http.StatusSeeOther)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// sameOrigin reports whether r's Origin header, or without one its
// Referer, is public_url's origin (RFC 6454).
func (f *Flow) sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("origin"); o != "" {
		return strings.EqualFold(o, f.cfg.Gateway.PublicURL)
	}
	ref, err := url.Parse(r.Header.Get("referer"))
	if err != nil || ref.Host == "" {
		return false
	}
	pub, err := url.Parse(f.cfg.Gateway.PublicURL)
	return err == nil && strings.EqualFold(ref.Scheme, pub.Scheme) && strings.EqualFold(ref.Host, pub.Host)
}

// fail logs err (with its cause, never credentials) and answers it.
func (f *Flow) fail(w http.ResponseWriter, r *http.Request, org *config.Org, user string, err error) {
	var e *Error
	level, code := slog.LevelError, codeUnavailable
	if errors.As(err, &e) {
		level, code = slog.LevelWarn, e.Code
	}
	attrs := []slog.Attr{slog.String("reason", code), slog.String("path", r.URL.Path), slog.String("user", user)}
	var p page
	if org != nil {
		attrs = append(attrs, slog.String("org", org.Name))
		p = page{Org: org.Name, Back: orgPage(f.cfg.Gateway.PublicURL, org.Name),
			Retry: f.cfg.Gateway.PublicURL + "/organizations/" + org.Name + "/sso/login"}
	}
	if e != nil && e.Err != nil {
		attrs = append(attrs, slog.String("error", truncate(e.Err.Error(), 500)))
	} else if e == nil {
		attrs = append(attrs, slog.String("error", truncate(err.Error(), 500)))
	}
	f.log.LogAttrs(r.Context(), level, "sso login flow failed", attrs...)
	writeError(w, r, err, p)
}

func noStore(w http.ResponseWriter) { w.Header().Set("cache-control", "no-store") }

// requireUser returns the platform user of a request that finishes a
// login, or answers 401 login_required (or the identity error) and
// returns false.
func (f *Flow) requireUser(w http.ResponseWriter, r *http.Request, org *config.Org) (*identity.User, bool) {
	user, err := f.platformUser(r)
	if err == nil && user == nil {
		err = failf(http.StatusUnauthorized, codeLoginRequired,
			"Sign in to the hub, then start the single sign-on of %s again.", org.Name)
	}
	if err != nil {
		f.fail(w, r, org, "", err)
		return nil, false
	}
	return user, true
}
