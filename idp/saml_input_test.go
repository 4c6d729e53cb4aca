package idp

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crewjam/saml"

	"github.com/ssogate/ssogate/config"
)

// postRaw posts body to the ACS as a form, cross-site, and returns the
// status and the error code of the JSON answer.
func (s *samlHarness) postRaw(body string) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.hub.URL+"/organizations/acme/saml/consume", strings.NewReader(body))
	must(s.t, err)
	req.Header.Set("content-type", "application/x-www-form-urlencoded")
	resp, err := s.hub.Client().Do(req)
	must(s.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	code := ""
	if i := strings.Index(string(b), `"error":"`); i >= 0 {
		code = strings.SplitN(string(b)[i+9:], `"`, 2)[0]
	}
	return resp.StatusCode, code
}

// TestSAMLInputLimits: oversized input is 413, undecodable input 400, and
// neither reaches signature checking.
func TestSAMLInputLimits(t *testing.T) {
	t.Parallel()
	s := newSAMLHarness(t, nil)
	b64 := func(s string) string { return url.QueryEscape(base64.StdEncoding.EncodeToString([]byte(s))) }
	nested := strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100)
	for _, tc := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"no SAMLResponse", "RelayState=x", 400, codeSAMLMalformed},
		{"empty SAMLResponse", "SAMLResponse=", 400, codeSAMLMalformed},
		{"two SAMLResponse", "SAMLResponse=" + b64("<a/>") + "&SAMLResponse=" + b64("<a/>"), 400, codeSAMLMalformed},
		{"two RelayState", "SAMLResponse=" + b64("<a/>") + "&RelayState=a&RelayState=b", 400, codeSAMLMalformed},
		{"not base64", "SAMLResponse=%21%21%21not-base64", 400, codeSAMLMalformed},
		{"not XML", "SAMLResponse=" + b64("hello, world"), 400, codeSAMLMalformed},
		{"truncated XML", "SAMLResponse=" + b64(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">`), 400, codeSAMLMalformed},
		{"DTD with entities", "SAMLResponse=" + b64(`<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><r>&a;</r>`), 400, codeSAMLMalformed},
		{"deep nesting", "SAMLResponse=" + b64(nested), 400, codeSAMLMalformed},
		{"duplicate attribute", "SAMLResponse=" + b64(`<r ID="a" ID="b"/>`), 400, codeSAMLMalformed},
		{"not a Response", "SAMLResponse=" + b64(`<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"/>`), 400, codeSAMLMalformed},
		{"undeclared prefix", "SAMLResponse=" + b64(`<samlp:Response/>`), 400, codeSAMLMalformed},
		{"Response without status", "SAMLResponse=" + b64(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"/>`), 400, codeSAMLMalformed},
		{"namespace flood on one element", "SAMLResponse=" + b64("<r"+nsDecls(0, maxXMLNamespaces+1)+"/>"), 400, codeSAMLMalformed},
		{"namespaces in scope", "SAMLResponse=" + b64(nestedNS(maxScopeNamespaces/maxXMLNamespaces+1)), 400, codeSAMLMalformed},
		{"too many attributes", "SAMLResponse=" + b64("<r"+attrs(maxXMLAttrs+1)+"/>"), 400, codeSAMLMalformed},
		{"too many elements", "SAMLResponse=" + b64("<r>"+strings.Repeat("<a/>", maxXMLElements)+"</r>"), 413, codeSAMLTooLarge},
		{"SAMLResponse over 256 KiB", "SAMLResponse=" + strings.Repeat("A", maxSAMLResponse+4), 413, codeSAMLTooLarge},
		{"body over the limit", "SAMLResponse=" + strings.Repeat("%2B", maxSAMLBody/3+1), 413, codeSAMLTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.t = t
			if status, code := s.postRaw(tc.body); status != tc.status || code != tc.code {
				t.Errorf("%d %s, want %d %s", status, code, tc.status, tc.code)
			}
		})
	}
	if s.session("u-alice") != nil {
		t.Error("a session was written")
	}
}

// TestSAMLIdPStatus: an error Response of the IdP (no assertion) ends the
// login with the IdP's status code, but not its StatusMessage: the status
// is read without a signature check, so its text could be anyone's.
func TestSAMLIdPStatus(t *testing.T) {
	t.Parallel()
	s := newSAMLHarness(t, nil)
	s.idp.AssertionMaker = refusingMaker{}
	s.wantACSFailure(s.idpInitiated(""), http.StatusForbidden, codeIdPError)
	body := s.post(s.idpInitiated("")).Header.Get("x-body")
	if !strings.Contains(body, "RequestDenied") {
		t.Errorf("answer does not name the IdP's status: %s", body)
	}
	if strings.Contains(body, "shall") {
		t.Errorf("answer shows the unsigned StatusMessage: %s", body)
	}
}

// nsDecls returns n namespace declarations xmlns:p<from>... as attributes.
func nsDecls(from, n int) string {
	var b strings.Builder
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, ` xmlns:p%d="urn:x"`, i)
	}
	return b.String()
}

// nestedNS returns n nested elements that each declare maxXMLNamespaces
// namespaces, all in scope at the innermost one.
func nestedNS(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString("<a" + nsDecls(i*maxXMLNamespaces, maxXMLNamespaces) + ">")
	}
	for i := 0; i < n; i++ {
		b.WriteString("</a>")
	}
	return b.String()
}

// attrs returns n distinct attributes.
func attrs(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, ` a%d="x"`, i)
	}
	return b.String()
}

// refusingMaker is an IdP policy that refuses everyone.
type refusingMaker struct{}

func (refusingMaker) MakeAssertion(*saml.IdpAuthnRequest, *saml.Session) error {
	return &saml.StatusError{TopLevel: saml.StatusResponder, SecondLevel: saml.StatusRequestDenied,
		Message: "you <b>shall</b> not pass"}
}

// TestSAMLCertificateRotation: the IdP publishes its next certificate
// before switching to it; logins keep working through the switch with
// the metadata fetched before it.
func TestSAMLCertificateRotation(t *testing.T) {
	t.Parallel()
	current, next := testKeys()[0], testKeys()[1]
	s := newSAMLHarness(t, nil)
	s.idp.ExtraCertificates = append(s.idp.ExtraCertificates, next.cert)
	if _, to := s.samlLogin(s.hub.URL + loginPath); to == nil || to.Path != "/acme" {
		t.Fatalf("login signed with the current key: %v", to)
	}
	s.idp.Key, s.idp.Certificate, s.idp.ExtraCertificates = next.key, next.cert, []*x509.Certificate{current.cert}
	if _, to := s.samlLogin(s.hub.URL + loginPath); to == nil || to.Path != "/acme" {
		t.Fatalf("login signed with the next key: %v\n%s", to, s.logs)
	}
}

// TestSAMLSignOnURLAndCertificateFile: without metadata, the IdP is
// sign_on_url, idp_entity_id and a PEM file that may hold several
// certificates; the file is read again when it changes.
func TestSAMLSignOnURLAndCertificateFile(t *testing.T) {
	t.Parallel()
	current, other := testKeys()[0], testKeys()[1]
	pemFile := filepath.Join(t.TempDir(), "idp.pem")
	writePEM := func(keys ...idpKey) {
		var b []byte
		for _, k := range keys {
			b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.cert.Raw})...)
		}
		must(t, os.WriteFile(pemFile, b, 0o600))
	}
	writePEM(other, current)
	s := newSAMLHarness(t, func(s *samlHarness, o *config.Org) {
		o.SSO.SAML = &config.SAML{SignOnURL: s.idpURL.String() + "/sso", CertificateFile: pemFile,
			IdPEntityID: s.idpURL.String() + "/metadata", SPEntityID: spEntityID, ClockSkew: config.DefaultSAMLClockSkew}
	})
	if _, to := s.samlLogin(s.hub.URL + loginPath); to == nil || to.Path != "/acme" {
		t.Fatalf("login: %v\n%s", to, s.logs)
	}
	must(t, s.store.DeleteSession(t.Context(), "acme", "u-alice"))
	writePEM(other)
	f := s.toACS(s.hub.URL + loginPath)
	s.wantACSFailure(f, http.StatusUnauthorized, codeSAMLSignature)

	s.org.SSO.SAML.IdPEntityID = ""
	s.wantFailure(s.hub.URL+loginPath, http.StatusInternalServerError, codeMisconfigured)
}

// TestSAMLMetadataFile: the IdP's metadata saved to idp_metadata_file.
func TestSAMLMetadataFile(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "idp-metadata.xml")
	s := newSAMLHarness(t, func(s *samlHarness, o *config.Org) {
		o.SSO.SAML.IdPMetadataURL, o.SSO.SAML.IdPMetadataFile = "", file
	})
	resp, err := http.Get(s.idpURL.String() + "/metadata")
	must(t, err)
	md, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	must(t, err)
	must(t, os.WriteFile(file, md, 0o600))
	if _, to := s.samlLogin(s.hub.URL + loginPath); to == nil || to.Path != "/acme" {
		t.Fatalf("login: %v\n%s", to, s.logs)
	}
	must(t, s.store.DeleteSession(t.Context(), "acme", "u-alice"))
	must(t, os.WriteFile(file, []byte("<not-metadata/>"), 0o600))
	s.wantFailure(s.hub.URL+loginPath, http.StatusInternalServerError, codeMisconfigured)
}

// TestSAMLMetadataUnreachable: an IdP whose metadata cannot be fetched
// fails logins with 502, and is retried.
func TestSAMLMetadataUnreachable(t *testing.T) {
	t.Parallel()
	s := newSAMLHarness(t, nil)
	real := s.org.SSO.SAML.IdPMetadataURL
	s.org.SSO.SAML.IdPMetadataURL = "http://127.0.0.1:1/metadata"
	s.wantFailure(s.hub.URL+loginPath, http.StatusBadGateway, codeIdPUnavailable)
	if status, code := s.postRaw("SAMLResponse=" + url.QueryEscape(base64.StdEncoding.EncodeToString([]byte("<a/>")))); status != http.StatusBadGateway || code != codeIdPUnavailable {
		t.Errorf("ACS with the IdP down: %d %s", status, code)
	}
	s.org.SSO.SAML.IdPMetadataURL = real
	if _, to := s.samlLogin(s.hub.URL + loginPath); to == nil || to.Path != "/acme" {
		t.Fatalf("login after the IdP came back: %v", to)
	}
}

// TestParseIdPMetadata: metadata documents ssogate reads or refuses.
func TestParseIdPMetadata(t *testing.T) {
	t.Parallel()
	k := testKeys()[0]
	cert := base64.StdEncoding.EncodeToString(k.cert.Raw)
	entity := func(id, use string) string {
		return `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="` + id + `"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` +
			`<md:KeyDescriptor use="` + use + `"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>` + cert + `</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>` +
			`<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://idp.example/post"/>` +
			`<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example/redirect"/>` +
			`</md:IDPSSODescriptor></md:EntityDescriptor>`
	}
	many := `<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">` + entity("https://a.example", "signing") + entity("https://b.example", "") + `</md:EntitiesDescriptor>`
	for _, tc := range []struct {
		name, doc, want, wantEntity string
		ok                          bool
	}{
		{"entity", entity("https://a.example", "signing"), "", "https://a.example", true},
		{"use unspecified", entity("https://a.example", ""), "", "https://a.example", true},
		{"encryption key only", entity("https://a.example", "encryption"), "", "", false},
		{"aggregate, chosen by idp_entity_id", many, "https://b.example", "https://b.example", true},
		{"aggregate without idp_entity_id", many, "", "", false},
		{"other entity ID", entity("https://a.example", "signing"), "https://b.example", "", false},
		{"not metadata", `<html/>`, "", "", false},
		{"not XML", `{"issuer": "x"}`, "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseIdPMetadata([]byte(tc.doc), tc.want)
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok %v", err, tc.ok)
			}
			if tc.ok && (got.entityID != tc.wantEntity || got.ssoURL != "https://idp.example/redirect" || len(got.certs) != 1) {
				t.Errorf("settings %+v", got)
			}
		})
	}
	if _, err := parsePEMCertificates([]byte("not a PEM")); err == nil {
		t.Error("parsePEMCertificates accepted no certificate")
	}
	var e *Error
	if err := misconfigured(&config.Org{Name: "acme", File: "/etc/ssogate/orgs/acme.yaml"}, "x", nil); !errors.As(error(err), &e) ||
		strings.Contains(e.Detail, "/etc/") {
		t.Errorf("misconfigured shows the file path to users: %v", err)
	}
}

// TestSAMLManyGroups: a member of hundreds of groups still signs in; past
// the element limit the answer is 413 saml_response_too_large, not a
// signature error that would send admins looking at certificates.
func TestSAMLManyGroups(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		groups int
		status int
	}{
		{400, http.StatusFound},
		{maxXMLElements, http.StatusRequestEntityTooLarge},
	} {
		t.Run(fmt.Sprint(tc.groups), func(t *testing.T) {
			s := newSAMLHarness(t, nil)
			s.setSession(func(sess *saml.Session) {
				vals := make([]string, tc.groups)
				for i := range vals {
					vals[i] = fmt.Sprintf("group-%d", i)
				}
				sess.CustomAttributes = append(sess.CustomAttributes, attr("groups", vals...))
			})
			if tc.status != http.StatusFound {
				s.wantACSFailure(s.toACS(s.hub.URL+loginPath), tc.status, codeSAMLTooLarge)
				return
			}
			resp, _ := s.samlLogin(s.hub.URL + loginPath)
			if resp.StatusCode != tc.status || s.session("u-alice") == nil {
				t.Fatalf("login with %d groups: %d, session %v", tc.groups, resp.StatusCode, s.session("u-alice"))
			}
		})
	}
}
