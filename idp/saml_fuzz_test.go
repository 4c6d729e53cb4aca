package idp

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/ssogate/ssogate/config"
)

const (
	fuzzHub       = "https://hub.example.test"
	fuzzIdPEntity = "https://idp.acme.example/metadata"
)

// realResponse returns a Response that crewjam/saml's IdentityProvider
// signs with k at now for an IdP-initiated login of alice to the acme SP
// of fuzzHub, made without HTTP, and the check it passes.
func realResponse(tb testing.TB, k idpKey, now time.Time) ([]byte, *samlCheck) {
	tb.Helper()
	sp := &serviceProvider{publicURL: fuzzHub}
	org := &config.Org{Name: "acme", SSO: config.SSO{SAML: &config.SAML{SPEntityID: spEntityID}}}
	md, err := sp.metadata(org)
	must(tb, err)
	var ed saml.EntityDescriptor
	must(tb, xml.Unmarshal(md, &ed))
	metadataURL, _ := url.Parse(fuzzIdPEntity)
	idp := &saml.IdentityProvider{Signer: k.key, Certificate: k.cert, MetadataURL: *metadataURL,
		SSOURL: *metadataURL.JoinPath("..", "sso"), Clock: dsig.NewFakeClockAt(now)}
	req := &saml.IdpAuthnRequest{IDP: idp, HTTPRequest: httptest.NewRequest(http.MethodPost, "/", nil),
		ServiceProviderMetadata: &ed, SPSSODescriptor: &ed.SPSSODescriptors[0],
		ACSEndpoint: &ed.SPSSODescriptors[0].AssertionConsumerServices[0], Now: now}
	sess := aliceSession()
	must(tb, saml.DefaultAssertionMaker{}.MakeAssertion(req, &sess))
	must(tb, req.MakeResponse())
	doc := etree.NewDocument()
	doc.SetRoot(req.ResponseEl)
	raw, err := doc.WriteToBytes()
	must(tb, err)
	return raw, &samlCheck{IdPEntityID: fuzzIdPEntity, Certs: []*x509.Certificate{k.cert}, SPEntityID: spEntityID,
		ACSURL: sp.acsURL("acme"), ClockSkew: config.DefaultSAMLClockSkew, Now: now}
}

// FuzzACS feeds the ACS's parser documents mutated from a real signed
// response, as XML (encoded then as base64) or as the raw form value. No
// input may panic; every refusal is an *Error with a status the ACS
// answers; an accepted input names an assertion and an address.
//
//	go test -fuzz=FuzzACS -fuzztime=60s ./idp/
func FuzzACS(f *testing.F) {
	// A P-256 key: every fuzz worker runs this setup, with coverage
	// instrumentation that makes RSA key generation take minutes.
	real, chk := realResponse(f, newIdPKey("idp.acme.example", true), time.Now())
	if _, err := verifySAMLResponse(base64.StdEncoding.EncodeToString(real), chk); err != nil {
		f.Fatalf("the real response does not verify: %v", err)
	}
	f.Add(real, false)
	f.Add([]byte(base64.StdEncoding.EncodeToString(real)), true)
	d := decodeResponse(f, base64.StdEncoding.EncodeToString(real))
	e := d.Assertion.Copy()
	e.CreateAttr("ID", "_evil")
	d.Response.AddChild(e)
	unsign(d.Response)
	wrappedDoc, err := d.doc.WriteToBytes()
	must(f, err)
	f.Add(wrappedDoc, false)
	commented := strings.Replace(string(real), "alice@acme.example<", "alice@<!---->acme.example<", 1)
	f.Add([]byte(commented), false)
	f.Add([]byte(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Responder"/></samlp:Status></samlp:Response>`), false)
	f.Add([]byte("PHNhbWxwOlJlc3BvbnNl\r\nIC8+"), true)

	f.Fuzz(func(t *testing.T, data []byte, isFormValue bool) {
		in := string(data)
		if !isFormValue {
			in = base64.StdEncoding.EncodeToString(data)
		}
		login, err := verifySAMLResponse(in, chk)
		if err == nil {
			if login.AssertionID == "" || !plainEmail(login.Email) {
				t.Fatalf("accepted without an assertion ID or an address: %+v", login)
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("not an *Error: %v", err)
		}
		switch e.Status {
		case 400, 401, 403, 413, 502:
		default:
			t.Fatalf("status %d for %v", e.Status, err)
		}
	})
}

// TestVerifyRealResponse: the parser on its own accepts a real response
// and reads its attributes in full; a minute later than its validity (plus
// skew) it is expired.
func TestVerifyRealResponse(t *testing.T) {
	t.Parallel()
	now := time.Now()
	real, chk := realResponse(t, testKeys()[0], now)
	enc := base64.StdEncoding.EncodeToString(real)
	login, err := verifySAMLResponse(enc, chk)
	if err != nil {
		t.Fatal(err)
	}
	if login.Email != aliceEmail || login.InResponseTo != "" ||
		strings.Join(login.Attributes[roleURI], ",") != "everyone,ml-team" ||
		strings.Join(login.Attributes["groups"], ",") != "other,vision-team" {
		t.Errorf("login %+v", login)
	}
	later := *chk
	later.Now = login.NotOnOrAfter.Add(chk.ClockSkew)
	var e *Error
	if _, err := verifySAMLResponse(enc, &later); !errors.As(err, &e) || e.Code != codeSAMLExpired {
		t.Errorf("at NotOnOrAfter + skew: %v, want %s", err, codeSAMLExpired)
	}
	// Line breaks in the form value, as some IdPs send base64, are fine.
	wrapped := enc[:76] + "\r\n" + enc[76:]
	if _, err := verifySAMLResponse(wrapped, chk); err != nil {
		t.Errorf("base64 with a line break: %v", err)
	}
}
