package idp

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	saml2 "github.com/russellhaering/gosaml2"
	dsig "github.com/russellhaering/goxmldsig"
)

// TestSAMLResponseRefused: each check of the ACS, each failed by
// tampering with a real response of the IdP to an SP-initiated login.
// Where the tampering breaks the IdP's signatures and the point is another
// check, the document is signed again with the IdP's own key.
func TestSAMLResponseRefused(t *testing.T) {
	t.Parallel()
	idpK, other := testKeys()[0], testKeys()[1]
	past := time.Now().Add(-10 * time.Minute).UTC().Format(time.RFC3339)
	future := time.Now().Add(10 * time.Minute).UTC().Format(time.RFC3339)
	// evil is a copy of the assertion for mallory, unsigned.
	evil := func(d *samlDoc) *etree.Element {
		e := d.Assertion.Copy()
		unsign(e)
		e.CreateAttr("ID", "_evil")
		find(d.t, e, "Subject", "NameID").SetText("mallory@acme.example")
		return e
	}
	s := newSAMLHarness(t, nil)
	for _, tc := range []struct {
		name    string
		session func(*saml.Session) // the IdP's account, before the login
		edit    func(d *samlDoc)
		status  int
		code    string
		gosaml2 string // what gosaml2's RetrieveAssertionInfo alone does: refuses, warns or accepts
		nameID  string // when set, the NameID gosaml2 must read
	}{
		// Signatures.
		{"assertion unsigned in a signed response", nil, func(d *samlDoc) {
			unsign(d.Assertion)
			d.sign(d.Response, idpK)
		}, 401, codeSAMLSignature, "accepts", ""},
		{"nothing signed", nil, func(d *samlDoc) { unsign(d.Assertion); unsign(d.Response) }, 401, codeSAMLSignature, "refuses", ""},
		{"signed by another key", nil, func(d *samlDoc) { d.resign(other) }, 401, codeSAMLSignature, "refuses", ""},
		{"assertion by another key in a response by the IdP", nil, func(d *samlDoc) {
			d.sign(d.Assertion, other)
			d.sign(d.Response, idpK)
		}, 401, codeSAMLSignature, "refuses", ""},
		{"assertion altered after signing", nil, func(d *samlDoc) {
			find(d.t, d.Assertion, "Subject", "NameID").SetText("mallory@acme.example")
			unsign(d.Response)
		}, 401, codeSAMLSignature, "refuses", ""},
		{"response altered after signing", nil, func(d *samlDoc) {
			d.Response.CreateAttr("IssueInstant", time.Now().UTC().Format(time.RFC3339))
		}, 401, codeSAMLSignature, "refuses", ""},
		{"signed with RSA-SHA1", nil, func(d *samlDoc) {
			d.SignatureMethod = dsig.RSASHA1SignatureMethod
			d.resign(idpK)
		}, 401, codeSAMLSignature, "accepts", ""},
		// Wrapping: the signed assertion stays valid, another one is read.
		{"unsigned assertion after the signed one", nil, func(d *samlDoc) {
			d.Response.AddChild(evil(d))
			unsign(d.Response)
		}, 401, codeSAMLWrapped, "refuses", ""},
		{"unsigned assertion before the signed one", nil, func(d *samlDoc) {
			d.Response.InsertChildAt(d.Assertion.Index(), evil(d))
			unsign(d.Response)
		}, 401, codeSAMLWrapped, "refuses", ""},
		{"unsigned assertion inside the signed one's signature", nil, func(d *samlDoc) {
			sig := childNS(d.Assertion, nsDSig, "Signature")
			sig.CreateElement("ds:Object").AddChild(evil(d))
			unsign(d.Response)
		}, 401, codeSAMLWrapped, "refuses", ""},
		{"signed assertion inside an unsigned one", nil, func(d *samlDoc) {
			e := evil(d)
			d.Response.InsertChildAt(d.Assertion.Index(), e)
			d.Response.RemoveChild(d.Assertion)
			e.CreateElement("saml:Advice").AddChild(d.Assertion)
			unsign(d.Response)
		}, 401, codeSAMLWrapped, "refuses", ""},
		{"signed assertion in the response's extensions", nil, func(d *samlDoc) {
			e := evil(d)
			d.Response.InsertChildAt(d.Assertion.Index(), e)
			d.Response.RemoveChild(d.Assertion)
			d.Response.CreateElement("samlp:Extensions").AddChild(d.Assertion)
			unsign(d.Response)
		}, 401, codeSAMLWrapped, "refuses", ""},
		{"encrypted assertion", nil, func(d *samlDoc) {
			enc := etree.NewElement("saml:EncryptedAssertion")
			enc.CreateElement("xenc:EncryptedData").CreateAttr("xmlns:xenc", "http://www.w3.org/2001/04/xmlenc#")
			d.Response.InsertChildAt(d.Assertion.Index(), enc)
			d.Response.RemoveChild(d.Assertion)
			unsign(d.Response)
		}, 400, codeSAMLMalformed, "refuses", ""},
		{"two subject confirmations", nil, func(d *samlDoc) {
			subject := find(d.t, d.Assertion, "Subject")
			subject.AddChild(find(d.t, subject, "SubjectConfirmation").Copy())
			d.resign(idpK)
		}, 400, codeSAMLMalformed, "accepts", ""},
		// Issuer, audience, recipient.
		{"another issuer", nil, func(d *samlDoc) {
			find(d.t, d.Assertion, "Issuer").SetText("https://idp.evil.example")
			find(d.t, d.Response, "Issuer").SetText("https://idp.evil.example")
			d.resign(idpK)
		}, 401, codeSAMLIssuer, "refuses", ""},
		{"another audience", nil, func(d *samlDoc) {
			find(d.t, d.Assertion, "Conditions", "AudienceRestriction", "Audience").SetText("https://other.example/sp")
			d.resign(idpK)
		}, 401, codeSAMLAudience, "warns", ""},
		{"no audience restriction", nil, func(d *samlDoc) {
			cond := find(d.t, d.Assertion, "Conditions")
			cond.RemoveChild(find(d.t, cond, "AudienceRestriction"))
			d.resign(idpK)
		}, 401, codeSAMLAudience, "accepts", ""},
		{"another recipient", nil, func(d *samlDoc) {
			find(d.t, d.Assertion, "Subject", "SubjectConfirmation", "SubjectConfirmationData").
				CreateAttr("Recipient", "https://evil.example/saml/consume")
			d.resign(idpK)
		}, 401, codeSAMLRecipient, "refuses", ""},
		{"another destination", nil, func(d *samlDoc) {
			d.Response.CreateAttr("Destination", "https://evil.example/saml/consume")
			d.sign(d.Response, idpK)
		}, 401, codeSAMLRecipient, "refuses", ""},
		{"signed response without destination", nil, func(d *samlDoc) {
			d.Response.RemoveAttr("Destination")
			d.sign(d.Response, idpK)
		}, 401, codeSAMLRecipient, "accepts", ""},
		// Validity period, with 90 s of clock skew.
		{"expired", nil, func(d *samlDoc) {
			find(d.t, d.Assertion, "Conditions").CreateAttr("NotOnOrAfter", past)
			find(d.t, d.Assertion, "Subject", "SubjectConfirmation", "SubjectConfirmationData").CreateAttr("NotOnOrAfter", past)
			d.resign(idpK)
		}, 401, codeSAMLExpired, "refuses", ""},
		{"conditions expired", nil, func(d *samlDoc) {
			find(d.t, d.Assertion, "Conditions").CreateAttr("NotOnOrAfter", past)
			d.resign(idpK)
		}, 401, codeSAMLExpired, "warns", ""},
		{"not valid yet", nil, func(d *samlDoc) {
			find(d.t, d.Assertion, "Conditions").CreateAttr("NotBefore", future)
			d.resign(idpK)
		}, 401, codeSAMLExpired, "warns", ""},
		{"issued in the future", nil, func(d *samlDoc) {
			d.Assertion.CreateAttr("IssueInstant", future)
			d.resign(idpK)
		}, 401, codeSAMLExpired, "accepts", ""},
		// InResponseTo and RelayState.
		{"unknown InResponseTo", nil, func(d *samlDoc) {
			find(d.t, d.Assertion, "Subject", "SubjectConfirmation", "SubjectConfirmationData").
				CreateAttr("InResponseTo", "_"+randomToken())
			d.Response.RemoveAttr("InResponseTo")
			d.resign(idpK)
		}, 400, codeSAMLInResponseTo, "accepts", ""},
		{"response and assertion answer different requests", nil, func(d *samlDoc) {
			d.Response.CreateAttr("InResponseTo", "_"+randomToken())
			d.sign(d.Response, idpK)
		}, 400, codeSAMLInResponseTo, "accepts", ""},
		// NameID.
		{"NameID with a comment inside", func(sess *saml.Session) { sess.NameID = "alice@acme.example.evil.example" },
			func(d *samlDoc) {
				// Comments are not signed: the IdP's signatures stay valid.
				nid := find(d.t, d.Assertion, "Subject", "NameID")
				nid.SetText("alice@acme.example")
				nid.CreateComment("")
				nid.CreateText(".evil.example")
			}, 401, codeSAMLNameID, "accepts", "alice@acme.example.evil.example"},
		{"NameID transient", func(sess *saml.Session) {
			sess.NameID, sess.NameIDFormat = "_3f2a9c", string(saml.TransientNameIDFormat)
		}, nil, 401, codeSAMLNameID, "accepts", ""},
		{"NameID not one address", func(sess *saml.Session) { sess.NameID = "alice@acme.example, bob@acme.example" },
			nil, 401, codeSAMLNameID, "accepts", ""},
		{"comment elsewhere in the assertion", nil, func(d *samlDoc) {
			find(d.t, d.Assertion, "Issuer").CreateComment("x")
		}, 400, codeSAMLMalformed, "accepts", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.t = t
			must(t, s.store.DeleteSession(context.Background(), "acme", "u-alice"))
			s.setSession(func(sess *saml.Session) {
				*sess = aliceSession()
				if tc.session != nil {
					tc.session(sess)
				}
			})
			f := s.toACS(s.hub.URL + loginPath)
			if tc.edit != nil {
				d := decodeResponse(t, f.response)
				tc.edit(d)
				f.response = d.encode()
			}
			if got, info := s.gosaml2Verdict(f.response); got != tc.gosaml2 {
				t.Errorf("gosaml2 alone %s this response, want it to %s: update docs/saml.md", got, tc.gosaml2)
			} else if tc.nameID != "" && info.NameID != tc.nameID {
				t.Errorf("gosaml2 read the NameID as %q, not its whole text %q", info.NameID, tc.nameID)
			}
			s.wantACSFailure(f, tc.status, tc.code)
		})
	}
}

// TestSAMLResponseAccepted: responses that differ from the IdP's default
// and are still valid.
func TestSAMLResponseAccepted(t *testing.T) {
	t.Parallel()
	idpK := testKeys()[0]
	lately := time.Now().Add(-30 * time.Second).UTC().Format(time.RFC3339)
	s := newSAMLHarness(t, nil)
	for _, tc := range []struct {
		name string
		edit func(d *samlDoc)
	}{
		{"response unsigned, assertion signed", func(d *samlDoc) { unsign(d.Response) }},
		{"expired within the clock skew", func(d *samlDoc) {
			find(d.t, d.Assertion, "Conditions").CreateAttr("NotOnOrAfter", lately)
			find(d.t, d.Assertion, "Subject", "SubjectConfirmation", "SubjectConfirmationData").CreateAttr("NotOnOrAfter", lately)
			d.resign(idpK)
		}},
		{"comment outside the assertion", func(d *samlDoc) { d.Response.CreateComment("a proxy was here") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.t = t
			f := s.toACS(s.hub.URL + loginPath)
			d := decodeResponse(t, f.response)
			tc.edit(d)
			f.response = d.encode()
			if last, to := s.finish(f); to == nil || to.Path != "/acme" {
				t.Fatalf("ended with %d (%s) at %v", last.StatusCode, last.Header.Get("x-body"), to)
			}
		})
	}
}

// TestSAMLReplay: an assertion works once, SP- or IdP-initiated, and a
// pending login answers one response, even a fresh one from the IdP.
func TestSAMLReplay(t *testing.T) {
	t.Parallel()
	s := newSAMLHarness(t, nil)
	f := s.toACS(s.hub.URL + loginPath)
	if resp := s.post(f); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first post: %d", resp.StatusCode)
	}
	s.wantACSFailure(f, http.StatusBadRequest, codeSAMLReplayed)

	u := s.idpURL.String() + "/start"
	f = s.idpForm(u)
	if resp := s.post(f); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first IdP-initiated post: %d", resp.StatusCode)
	}
	s.wantACSFailure(f, http.StatusBadRequest, codeSAMLReplayed)

	// The IdP answers the same AuthnRequest twice, with two assertions.
	resp := s.get(s.hub.URL + loginPath)
	first, second := s.idpForm(resp.Header.Get("location")), s.idpForm(resp.Header.Get("location"))
	if resp := s.post(first); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first answer: %d", resp.StatusCode)
	}
	s.wantACSFailure(second, http.StatusBadRequest, codeSAMLInResponseTo)
}

// TestSAMLRelayStateOfAnotherLogin: the RelayState must be the pending
// login's own.
func TestSAMLRelayStateOfAnotherLogin(t *testing.T) {
	t.Parallel()
	s := newSAMLHarness(t, nil)
	f := s.toACS(s.hub.URL + loginPath)
	f.relayState = randomToken()
	s.wantACSFailure(f, http.StatusBadRequest, codeLoginUnknown)
}

// gosaml2Verdict runs gosaml2's RetrieveAssertionInfo alone, configured
// as the ACS configures it but without clock skew, on encoded: it
// "refuses" it (an error), "warns" (WarningInfo.InvalidTime or
// NotInAudience, which the caller must check) or "accepts" it.
func (s *samlHarness) gosaml2Verdict(encoded string) (string, *saml2.AssertionInfo) {
	s.t.Helper()
	chk, err := s.flow.saml.check(context.Background(), s.org)
	must(s.t, err)
	sp := chk.serviceProvider()
	sp.Clock = dsig.NewFakeClockAt(time.Now())
	sp.AllowMissingAttributes = true
	info, err := sp.RetrieveAssertionInfo(encoded)
	switch {
	case err != nil:
		return "refuses", nil
	case info.WarningInfo.InvalidTime || info.WarningInfo.NotInAudience:
		return "warns", info
	}
	return "accepts", info
}
