package idp

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"testing"

	"github.com/crewjam/saml"

	"github.com/ssogate/ssogate/config"
)

// acsToFinish posts f and returns the finish URL of the ACS's 303.
func (s *samlHarness) acsToFinish(f samlForm) string {
	s.t.Helper()
	resp := s.post(f)
	loc, err := resp.Location()
	if resp.StatusCode != http.StatusSeeOther || err != nil {
		s.t.Fatalf("ACS: %d %s, want 303", resp.StatusCode, resp.Header.Get("x-body"))
	}
	return loc.String()
}

// TestSAMLFinishRefused: the same-site step checks the browser and the
// platform user that started the login, and works once.
func TestSAMLFinishRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		before func(s *samlHarness) // between the ACS and the finish
		status int
		code   string
	}{
		{"another browser", func(s *samlHarness) {
			s.client.Jar, _ = cookiejar.New(nil)
			s.setPlatformToken(s.platformToken("u-alice", aliceEmail))
		}, http.StatusBadRequest, codeLoginUnknown},
		{"another platform user", func(s *samlHarness) {
			s.setPlatformToken(s.platformToken("u-bob", aliceEmail))
		}, http.StatusForbidden, codeUserMismatch},
		{"no platform token", func(s *samlHarness) { s.setPlatformToken("") }, http.StatusUnauthorized, codeLoginRequired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSAMLHarness(t, nil)
			finish := s.acsToFinish(s.toACS(s.hub.URL + loginPath))
			tc.before(s)
			s.wantFailure(finish, tc.status, tc.code)
		})
	}
}

// TestSAMLFinishOnce: a finish URL works once; a forged id finds nothing.
func TestSAMLFinishOnce(t *testing.T) {
	t.Parallel()
	s := newSAMLHarness(t, nil)
	finish := s.acsToFinish(s.toACS(s.hub.URL + loginPath))
	if resp := s.get(finish); resp.StatusCode != http.StatusFound {
		t.Fatalf("finish: %d", resp.StatusCode)
	}
	first := s.session("u-alice")
	must(t, s.store.DeleteSession(t.Context(), "acme", "u-alice"))
	s.wantFailure(finish, http.StatusBadRequest, codeLoginUnknown)
	for _, id := range []string{"", "short", randomToken(), "../" + randomToken()[3:]} {
		s.wantFailure(s.hub.URL+"/organizations/acme/saml/finish?id="+url.QueryEscape(id), http.StatusBadRequest, codeLoginUnknown)
	}
	if first == nil {
		t.Error("no session after the first finish")
	}
}

// TestSAMLIdPInitiatedNeedsMatchingEmail: an unsolicited response has no
// browser binding, so its NameID must be a verified email of the platform
// user even when the org has no matching email domains.
func TestSAMLIdPInitiatedNeedsMatchingEmail(t *testing.T) {
	t.Parallel()
	s := newSAMLHarness(t, func(_ *samlHarness, o *config.Org) { o.SSO.EmailDomains = nil })
	s.setSession(func(sess *saml.Session) { sess.NameID = "mallory@acme.example" })
	finish := s.acsToFinish(s.idpInitiated(""))
	s.wantFailure(finish, http.StatusForbidden, codeEmailMismatch)

	// SP-initiated, the same account is fine: the login is bound to the browser.
	if _, to := s.samlLogin(s.hub.URL + loginPath); to == nil || to.Path != "/acme" {
		t.Fatalf("SP-initiated login did not complete: %v", to)
	}
}

// TestSAMLEmailChecks: matching email domains apply to the NameID, with
// the code shared with OIDC.
func TestSAMLEmailChecks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		nameID string
		code   string
	}{
		{"alice@other.example", codeEmailDomain},
		{"bob@acme.example", codeEmailMismatch},
	} {
		t.Run(tc.nameID, func(t *testing.T) {
			t.Parallel()
			s := newSAMLHarness(t, nil)
			s.setSession(func(sess *saml.Session) { sess.NameID = tc.nameID })
			s.wantFailure(s.acsToFinish(s.toACS(s.hub.URL+loginPath)), http.StatusForbidden, tc.code)
		})
	}
}
