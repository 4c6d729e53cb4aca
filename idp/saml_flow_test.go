package idp

import (
	"compress/flate"
	"encoding/base64"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/crewjam/saml"
	"google.golang.org/grpc/codes"

	"github.com/ssogate/ssogate/config"
)

// TestSAMLSPInitiated walks spec section 6 with protocol saml: the
// decision path denies, /sso/login sends an AuthnRequest over
// HTTP-Redirect to the real IdP, its form posts the response cross-site
// to the ACS without cookies, the ACS answers 303 to the same-site
// finish endpoint, which ends at return_to; the decision path then
// allows with the role mapped from a URI-named, multi-valued attribute.
func TestSAMLSPInitiated(t *testing.T) {
	t.Parallel()
	s := newSAMLHarness(t, nil)
	if got := s.check("/acme/secret-model").GetDeniedResponse().GetStatus().GetCode(); got != 302 {
		t.Fatalf("first Check: %v, want 302", got)
	}

	resp := s.get(s.hub.URL + loginPath + "?return_to=" + url.QueryEscape("/acme/secret-model?tab=files"))
	loc, err := resp.Location()
	if resp.StatusCode != http.StatusFound || err != nil || loc.Host != s.idpURL.Host || loc.Path != "/sso" {
		t.Fatalf("login: %d to %v, want 302 to the IdP's SSO URL", resp.StatusCode, loc)
	}
	q := loc.Query()
	req := inflateAuthnRequest(t, q.Get("SAMLRequest"))
	if !strings.HasPrefix(req.ID, "_") || len(req.ID) != 44 || req.Issuer == nil || req.Issuer.Value != spEntityID ||
		req.AssertionConsumerServiceURL != s.hub.URL+"/organizations/acme/saml/consume" ||
		req.ProtocolBinding != saml.HTTPPostBinding || req.Destination != s.idpURL.String()+"/sso" {
		t.Errorf("AuthnRequest %+v", req)
	}
	if len(q.Get("RelayState")) != 43 {
		t.Errorf("RelayState %q, want the 43-character state", q.Get("RelayState"))
	}

	form := s.idpForm(loc.String())
	if form.relayState != q.Get("RelayState") {
		t.Errorf("the IdP echoed RelayState %q", form.relayState)
	}
	acs := s.post(form)
	finish, _ := acs.Location()
	if acs.StatusCode != http.StatusSeeOther || finish == nil || finish.Path != "/organizations/acme/saml/finish" ||
		acs.Header.Get("cache-control") != "no-store" {
		t.Fatalf("ACS: %d to %v, want 303 to finish (no-store)", acs.StatusCode, finish)
	}
	if s.session("u-alice") != nil {
		t.Fatal("the ACS wrote a session before the browser's cookies were seen")
	}
	last := s.get(finish.String())
	to, _ := last.Location()
	if last.StatusCode != http.StatusFound || to == nil || to.String() != s.hub.URL+"/acme/secret-model?tab=files" {
		t.Fatalf("finish: %d to %v, want 302 to return_to", last.StatusCode, to)
	}

	allow := s.check("/acme/secret-model")
	if allow.GetOkResponse() == nil || allow.GetStatus().GetCode() != int32(codes.OK) {
		t.Fatalf("Check after login: %v, want allow", allow)
	}
	if m := s.membership("u-alice"); m.Role != "write" || m.ResourceGroups["vision"] != "write" {
		t.Errorf("membership %+v, want role write (role URI) and vision: write (second groups element)", m)
	}
	if sess := s.session("u-alice"); sess == nil || sess.Email != aliceEmail {
		t.Errorf("session %+v", sess)
	}
	for _, want := range []string{`"event":"sso_login"`, `"protocol":"saml"`, `"email_domain":"acme.example"`} {
		if !strings.Contains(s.logs.String(), want) {
			t.Errorf("logs lack %s:\n%s", want, s.logs)
		}
	}
	for _, secret := range []string{aliceEmail, form.response[:40], form.relayState, finish.Query().Get("id")} {
		if strings.Contains(s.logs.String(), secret) {
			t.Errorf("logs hold %q", secret)
		}
	}
}

// TestSAMLIdPInitiated: an unsolicited response ends allowed too, at its
// RelayState when it is on the hub, else at the org page.
func TestSAMLIdPInitiated(t *testing.T) {
	t.Parallel()
	s := newSAMLHarness(t, nil)
	for _, tc := range []struct{ relay, want string }{
		{"", "/acme"},
		{"/acme/secret-model", "/acme/secret-model"},
		{"https://evil.example/phish", "/acme"},
		{"not a url", "/acme"},
	} {
		t.Run(tc.relay, func(t *testing.T) {
			s.t = t
			last, to := s.finish(s.idpInitiated(tc.relay))
			if last.StatusCode != http.StatusFound || to == nil || to.String() != s.hub.URL+tc.want {
				t.Fatalf("%d to %v, want 302 to %s", last.StatusCode, to, tc.want)
			}
			if s.check("/acme/secret-model").GetOkResponse() == nil {
				t.Error("Check after login: not allowed")
			}
		})
	}
}

// TestSAMLJoin: the join link makes a non-member a member.
func TestSAMLJoin(t *testing.T) {
	t.Parallel()
	s := newSAMLHarness(t, nil)
	s.setPlatformToken(s.platformToken("u-carol", "carol@acme.example"))
	s.setSession(func(sess *saml.Session) {
		sess.NameID = "carol@acme.example"
		sess.CustomAttributes = []saml.Attribute{attr(roleURI, "hub-admins")}
	})
	if last, to := s.samlLogin(s.hub.URL + "/organizations/acme/sso/join"); to == nil || to.Path != "/acme" {
		t.Fatalf("join ended with %d at %v", last.StatusCode, to)
	}
	if m := s.membership("u-carol"); m == nil || m.Role != "admin" {
		t.Errorf("membership %+v, want a new admin", m)
	}
}

// TestSAMLMetadata: the SP metadata names the entity ID and the ACS, and
// is served without the IdP (here: unreachable) and before SSO is enabled.
func TestSAMLMetadata(t *testing.T) {
	t.Parallel()
	s := newSAMLHarness(t, func(_ *samlHarness, o *config.Org) {
		o.SSO.Enabled = false
		o.SSO.SAML.IdPMetadataURL = "http://127.0.0.1:1/metadata"
	})
	resp, err := s.hub.Client().Get(s.hub.URL + "/organizations/ACME/saml/metadata")
	must(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var ed saml.EntityDescriptor
	if resp.StatusCode != http.StatusOK || resp.Header.Get("content-type") != "application/samlmetadata+xml" ||
		xml.Unmarshal(body, &ed) != nil {
		t.Fatalf("%d %s:\n%s", resp.StatusCode, resp.Header.Get("content-type"), body)
	}
	if ed.EntityID != spEntityID || len(ed.SPSSODescriptors) != 1 {
		t.Fatalf("metadata %s", body)
	}
	sp := ed.SPSSODescriptors[0]
	if len(sp.AssertionConsumerServices) != 1 || sp.AssertionConsumerServices[0].Location != s.hub.URL+"/organizations/acme/saml/consume" ||
		sp.AssertionConsumerServices[0].Binding != saml.HTTPPostBinding || sp.WantAssertionsSigned == nil || !*sp.WantAssertionsSigned {
		t.Errorf("SP descriptor %s", body)
	}
	for _, path := range []string{"/organizations/nobody/saml/metadata"} {
		if got, _, _ := s.fetch(s.hub.URL+path, false); got != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, got)
		}
	}
}

// inflateAuthnRequest decodes the SAMLRequest of the HTTP-Redirect
// binding (SAML 2.0 Bindings section 3.4.4.1: DEFLATE, then base64).
func inflateAuthnRequest(t *testing.T, v string) saml.AuthnRequest {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(v)
	must(t, err)
	b, err := io.ReadAll(flate.NewReader(strings.NewReader(string(raw))))
	must(t, err)
	var req saml.AuthnRequest
	must(t, xml.Unmarshal(b, &req))
	return req
}
