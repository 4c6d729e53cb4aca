package idp

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/identity"
	"github.com/ssogate/ssogate/store"
)

// maxSAMLBody bounds the ACS's request body (bytes): a SAMLResponse of
// maxSAMLResponse base64 bytes, URL-encoding tripling its "+", "/" and
// "=" at worst, and a RelayState.
const maxSAMLBody = 3*maxSAMLResponse + 16<<10

// samlOrg returns the org named name (ignoring case) when it has SSO
// enabled with protocol saml.
func (f *Flow) samlOrg(name string) (*config.Org, error) {
	org, err := f.ssoOrg(name)
	if err == nil && org.SSO.Protocol != config.ProtocolSAML {
		err = failf(http.StatusNotFound, codeNotConfigured, "The organization %q does not use SAML.", org.Name)
	}
	return org, err
}

// handleSAMLConsume is the assertion consumer service (SAML 2.0 Profiles
// section 4.1.4.3, HTTP-POST binding), for SP- and IdP-initiated logins.
// It is reached by a cross-site POST from the IdP's page, on which
// browsers send no SameSite=Lax cookie (neither the hub's nor ssogate's):
// so it verifies the response, spends its assertion ID and pending login,
// keeps the result server-side under a one-time id, and answers 303 to
// the finish endpoint, where the browser's cookies are back.
func (f *Flow) handleSAMLConsume(w http.ResponseWriter, r *http.Request) {
	org, err := f.samlOrg(r.PathValue("org"))
	if err != nil {
		f.fail(w, r, nil, "", err)
		return
	}
	encoded, relayState, err := readSAMLForm(w, r)
	if err == nil {
		var target string
		if target, err = f.consumeSAML(r.Context(), org, encoded, relayState); err == nil {
			noStore(w)
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
	}
	f.fail(w, r, org, "", err)
}

// readSAMLForm reads the HTTP-POST binding's form (SAML 2.0 Bindings
// section 3.5.4): exactly one non-empty SAMLResponse and at most one
// RelayState. A body over maxSAMLBody bytes, or a SAMLResponse over
// maxSAMLResponse, is 413; anything else wrong is 400.
func readSAMLForm(w http.ResponseWriter, r *http.Request) (encoded, relayState string, err error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxSAMLBody)
	if err := r.ParseForm(); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return "", "", failf(http.StatusRequestEntityTooLarge, codeSAMLTooLarge,
				"The SAML response is larger than %d KiB.", maxSAMLResponse>>10)
		}
		return "", "", malformed("The SAML response form cannot be read.", err)
	}
	responses, relays := r.PostForm["SAMLResponse"], r.PostForm["RelayState"]
	switch {
	case len(responses) != 1 || responses[0] == "":
		return "", "", malformed("The request must carry one SAMLResponse form field.", nil)
	case len(relays) > 1:
		return "", "", malformed("The request carries several RelayState fields.", nil)
	case len(responses[0]) > maxSAMLResponse:
		return "", "", failf(http.StatusRequestEntityTooLarge, codeSAMLTooLarge,
			"The SAML response is larger than %d KiB.", maxSAMLResponse>>10)
	}
	if len(relays) == 1 {
		relayState = relays[0]
	}
	return responses[0], relayState, nil
}

// consumeSAML verifies encoded for org and returns the finish URL. The
// assertion ID is remembered until the assertion expires (plus the clock
// skew), so a replayed response fails even before its pending login is
// looked up. A response to an AuthnRequest (InResponseTo) takes the
// pending login that sent it, once; relayState must be that login's
// state. An unsolicited response (IdP-initiated) has no pending login:
// its relayState, when on public_url's origin, is the return_to.
func (f *Flow) consumeSAML(ctx context.Context, org *config.Org, encoded, relayState string) (string, error) {
	chk, err := f.saml.check(ctx, org)
	if err != nil {
		return "", err
	}
	login, err := verifySAMLResponse(encoded, chk)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(chk.IdPEntityID + "\x00" + login.AssertionID))
	fresh, err := f.store.Remember(ctx, "saml-assertion:"+hex.EncodeToString(sum[:]), login.NotOnOrAfter.Add(chk.ClockSkew))
	if err != nil {
		return "", fmt.Errorf("remembering the SAML assertion ID: %w", err)
	}
	if !fresh {
		return "", failf(http.StatusBadRequest, codeSAMLReplayed, "This SAML assertion was already used.")
	}
	var p *store.PendingLogin
	returnTo := ""
	if login.InResponseTo != "" {
		if p, err = f.takeSAMLRequest(ctx, org, login.InResponseTo, relayState); err != nil {
			return "", err
		}
	} else {
		returnTo, _ = SafeReturnTo(f.cfg.Gateway.PublicURL, relayState)
	}
	id := randomToken()
	rec, err := f.saml.resultRecord(org, id, p, login, returnTo)
	if err != nil {
		return "", err
	}
	if err := f.store.PutPendingLogin(ctx, rec); err != nil {
		return "", fmt.Errorf("storing the SAML result: %w", err)
	}
	return f.saml.finishURL(org.Name, id), nil
}

// takeSAMLRequest takes the pending login of org that sent the
// AuthnRequest requestID (once), and checks that relayState is its state.
func (f *Flow) takeSAMLRequest(ctx context.Context, org *config.Org, requestID, relayState string) (*store.PendingLogin, error) {
	p, err := f.store.TakePendingLogin(ctx, samlPendingID(requestID))
	if errors.Is(err, store.ErrNotFound) {
		return nil, samlUnknownRequest()
	} else if err != nil {
		return nil, fmt.Errorf("taking pending login: %w", err)
	}
	if p.Org != org.Name || p.Protocol != config.ProtocolSAML || !f.now().Before(p.ExpiresAt) ||
		subtle.ConstantTimeCompare([]byte(p.RequestID), []byte(requestID)) != 1 {
		return nil, samlUnknownRequest()
	}
	if subtle.ConstantTimeCompare([]byte(p.State), []byte(relayState)) != 1 {
		return nil, failf(http.StatusBadRequest, codeLoginUnknown,
			"The RelayState of this SAML response does not belong to its sign-in. Please start again.")
	}
	return p, nil
}

// handleSAMLFinish is where the ACS's 303 leads: a same-site GET, so the
// platform cookie and the browser-binding cookie are sent. It takes the
// verified result once and completes the login (spec section 6) with a
// 302 to return_to.
func (f *Flow) handleSAMLFinish(w http.ResponseWriter, r *http.Request) {
	org, err := f.samlOrg(r.PathValue("org"))
	if err != nil {
		f.fail(w, r, nil, "", err)
		return
	}
	user, ok := f.requireUser(w, r, org)
	if !ok {
		return
	}
	target, err := f.finishSAML(r.Context(), org, user, r.URL.Query().Get("id"), browserSecret(r, org.Name))
	if err != nil {
		f.fail(w, r, org, user.Sub, err)
		return
	}
	noStore(w)
	http.Redirect(w, r, target, http.StatusFound)
}

// finishSAML takes the result id of org and completes user's login. An
// SP-initiated result needs the browser that started it (secret) and the
// same platform user. An IdP-initiated one has neither: anyone's browser
// can be made to post an unsolicited response (login CSRF), so its NameID
// must be one of user's verified emails, whether or not the org has
// matching email domains.
func (f *Flow) finishSAML(ctx context.Context, org *config.Org, user *identity.User, id, secret string) (string, error) {
	unknown := failf(http.StatusBadRequest, codeLoginUnknown,
		"This sign-in is unknown, has expired, was already used, or was started in another browser. Please start again.")
	if len(id) != 43 || strings.Trim(id, base64URLChars) != "" {
		return "", unknown
	}
	rec, err := f.store.TakePendingLogin(ctx, samlResultID(id))
	if errors.Is(err, store.ErrNotFound) {
		return "", unknown
	} else if err != nil {
		return "", fmt.Errorf("taking the SAML result: %w", err)
	}
	if rec.Org != org.Name || rec.Protocol != protocolSAMLResult || !f.now().Before(rec.ExpiresAt) {
		return "", unknown
	}
	var res samlResult
	if err := json.Unmarshal([]byte(rec.State), &res); err != nil {
		return "", fmt.Errorf("decoding the SAML result: %w", err)
	}
	a := res.assertion()
	if rec.RequestID != "" {
		if secret == "" || subtle.ConstantTimeCompare([]byte(rec.Browser), []byte(hashToken(secret))) != 1 {
			return "", unknown
		}
		if rec.User != user.Sub {
			return "", failf(http.StatusForbidden, codeUserMismatch,
				"This sign-in was started by another hub account than the one you are signed in with.")
		}
	} else if !slices.ContainsFunc(user.Emails, func(e string) bool { return sameEmail(e, a.Email) }) {
		return "", failf(http.StatusForbidden, codeEmailMismatch,
			"A sign-in started at the identity provider needs its address %s to be one of the verified email addresses of your hub account. Start the sign-in from the hub instead.",
			a.Email)
	}
	p := *rec
	p.Protocol = config.ProtocolSAML
	return f.complete(ctx, org, &p, user, a)
}

// handleSAMLMetadata serves org's SP metadata (SAML 2.0 Metadata section
// 2.4.4) for the IdP's administrator. It is served as soon as the org
// file has protocol saml, before SSO is enabled, and needs no IdP.
func (f *Flow) handleSAMLMetadata(w http.ResponseWriter, r *http.Request) {
	org := f.cfg.Org(r.PathValue("org"))
	if org == nil || org.SSO.Protocol != config.ProtocolSAML || org.SSO.SAML == nil {
		f.fail(w, r, nil, "", failf(http.StatusNotFound, codeNotConfigured,
			"The organization %q does not use SAML.", r.PathValue("org")))
		return
	}
	body, err := f.saml.metadata(org)
	if err != nil {
		f.fail(w, r, org, "", err)
		return
	}
	h := w.Header()
	h.Set("content-type", metadataContentType)
	h.Set("cache-control", "public, max-age=300")
	h.Set("x-content-type-options", "nosniff")
	w.Write(body)
}
