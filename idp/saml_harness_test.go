package idp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"html"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/ssogate/ssogate/config"
)

const (
	spEntityID = "https://hub.example.test/organizations/acme/saml/metadata"
	roleURI    = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
)

// idpKey is a signing key with a self-signed certificate, as IdPs publish.
type idpKey struct {
	key  crypto.Signer
	cert *x509.Certificate
}

// testKeys are RSA keys (what IdPs use), made once per test binary: RSA
// key generation is slow.
var testKeys = sync.OnceValue(func() [2]idpKey {
	return [2]idpKey{newIdPKey("idp.acme.example", false), newIdPKey("idp.evil.example", false)}
})

// newIdPKey makes a 2048-bit RSA key, or a P-256 key when ec (fast to
// make, for the fuzz target's workers).
func newIdPKey(cn string, ec bool) idpKey {
	var key crypto.Signer
	var err error
	if ec {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-24 * time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		panic(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return idpKey{key: key, cert: cert}
}

// samlHarness is the hub of harness (login flow, decision path, memory
// store, browser) with a real SAML IdP, crewjam/saml's IdentityProvider,
// on its own HTTP server in place of the OpenID Provider:
//
//	/metadata  IdP metadata (the org's idp_metadata_url)
//	/sso       SingleSignOnService (HTTP-Redirect in, HTTP-POST form out)
//	/start     IdP-initiated login: ?relay= becomes the RelayState
//
// Its session provider signs in s.session at once. Its service provider
// provider reads the SP metadata from the hub's metadata endpoint.
type samlHarness struct {
	*harness
	idp    *saml.IdentityProvider
	idpURL *url.URL

	mu         sync.Mutex
	idpSession saml.Session
}

// newSAMLHarness starts the hub and the IdP. The org uses protocol saml
// with the IdP's metadata URL; role_mapping reads the Entra-style role
// URI, resource_group_mapping the "groups" attribute. edit, when not
// nil, adjusts the org before the flow is built.
func newSAMLHarness(t *testing.T, edit func(s *samlHarness, o *config.Org)) *samlHarness {
	t.Helper()
	s := &samlHarness{idpSession: aliceSession()}
	idpServer := httptest.NewServer(http.HandlerFunc(s.serveIdP))
	t.Cleanup(idpServer.Close)
	s.idpURL, _ = url.Parse(idpServer.URL)
	k := testKeys()[0]
	s.idp = &saml.IdentityProvider{
		Key:                     k.key,
		Certificate:             k.cert,
		MetadataURL:             *s.idpURL.JoinPath("metadata"),
		SSOURL:                  *s.idpURL.JoinPath("sso"),
		ServiceProviderProvider: s,
		SessionProvider:         s,
		NameIDFormats:           []saml.NameIDFormat{saml.EmailAddressNameIDFormat},
	}
	s.harness = newHarness(t, func(o *config.Org) {
		o.SSO.Protocol, o.SSO.OIDC = config.ProtocolSAML, nil
		o.SSO.SAML = &config.SAML{IdPMetadataURL: idpServer.URL + "/metadata", SPEntityID: spEntityID,
			ClockSkew: config.DefaultSAMLClockSkew}
		o.SSO.RoleMapping.Attribute = roleURI
		if edit != nil {
			edit(s, o)
		}
	})
	return s
}

// aliceSession is the IdP's account of alice: an emailAddress NameID,
// roles in a URI-named attribute with several values, and groups in two
// Attribute elements of the same name.
func aliceSession() saml.Session {
	return saml.Session{
		ID: "idp-session", CreateTime: time.Now(), ExpireTime: time.Now().Add(time.Hour), Index: "1",
		NameID: aliceEmail, NameIDFormat: string(saml.EmailAddressNameIDFormat),
		CustomAttributes: []saml.Attribute{
			attr(roleURI, "everyone", "ml-team"),
			attr("groups", "other"),
			attr("groups", "vision-team"),
		},
	}
}

func attr(name string, values ...string) saml.Attribute {
	a := saml.Attribute{Name: name, NameFormat: "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"}
	for _, v := range values {
		a.Values = append(a.Values, saml.AttributeValue{Type: "xs:string", Value: v})
	}
	return a
}

func (s *samlHarness) setSession(edit func(*saml.Session)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	edit(&s.idpSession)
}

func (s *samlHarness) serveIdP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/metadata":
		s.idp.ServeMetadata(w, r)
	case "/sso":
		s.idp.ServeSSO(w, r)
	case "/start":
		s.idp.ServeIDPInitiated(w, r, spEntityID, r.URL.Query().Get("relay"))
	default:
		http.NotFound(w, r)
	}
}

// GetSession implements saml.SessionProvider: the user is signed in.
func (s *samlHarness) GetSession(http.ResponseWriter, *http.Request, *saml.IdpAuthnRequest) *saml.Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.idpSession
	return &sess
}

// GetServiceProvider implements saml.ServiceProviderProvider with the
// hub's SP metadata endpoint. It runs on the IdP's goroutine: no Fatal.
func (s *samlHarness) GetServiceProvider(_ *http.Request, id string) (*saml.EntityDescriptor, error) {
	if id != spEntityID {
		return nil, os.ErrNotExist
	}
	resp, err := s.hub.Client().Get(s.hub.URL + "/organizations/acme/saml/metadata")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("SP metadata: HTTP %d %s", resp.StatusCode, body)
	}
	var ed saml.EntityDescriptor
	return &ed, xml.Unmarshal(body, &ed)
}

// samlForm is the IdP's auto-posting form: where it posts, and what.
type samlForm struct {
	action, response, relayState string
}

var (
	formAction   = regexp.MustCompile(`action="([^"]*)"`)
	formResponse = regexp.MustCompile(`name="SAMLResponse" value="([^"]*)"`)
	formRelay    = regexp.MustCompile(`name="RelayState" value="([^"]*)"`)
)

// idpForm requests u at the IdP and returns the form it answers with.
func (s *samlHarness) idpForm(u string) samlForm {
	s.t.Helper()
	resp, err := http.Get(u)
	must(s.t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	a, r := formAction.FindSubmatch(body), formResponse.FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || a == nil || r == nil {
		s.t.Fatalf("IdP answered %d without a SAMLResponse form:\n%s", resp.StatusCode, body)
	}
	f := samlForm{action: html.UnescapeString(string(a[1])), response: html.UnescapeString(string(r[1]))}
	if m := formRelay.FindSubmatch(body); m != nil {
		f.relayState = html.UnescapeString(string(m[1]))
	}
	return f
}

// toACS starts an SP-initiated login at start and returns the IdP's form,
// before the browser posts it.
func (s *samlHarness) toACS(start string) samlForm {
	s.t.Helper()
	resp := s.get(start)
	loc, err := resp.Location()
	if resp.StatusCode != http.StatusFound || err != nil || loc.Host != s.idpURL.Host {
		s.t.Fatalf("start: %d to %v, want 302 to the IdP", resp.StatusCode, loc)
	}
	return s.idpForm(loc.String())
}

// idpInitiated returns the IdP's form of an unsolicited login.
func (s *samlHarness) idpInitiated(relay string) samlForm {
	return s.idpForm(s.idpURL.String() + "/start?relay=" + url.QueryEscape(relay))
}

// post sends f as the browser does after the IdP's page: a cross-site
// POST, which carries no SameSite=Lax cookie, so none at all here. It
// returns the response, whose body is read into its "x-body" header.
func (s *samlHarness) post(f samlForm) *http.Response {
	s.t.Helper()
	form := url.Values{"SAMLResponse": {f.response}}
	if f.relayState != "" {
		form.Set("RelayState", f.relayState)
	}
	req, err := http.NewRequest(http.MethodPost, f.action, strings.NewReader(form.Encode()))
	must(s.t, err)
	req.Header.Set("content-type", "application/x-www-form-urlencoded")
	req.Header.Set("origin", s.idpURL.Scheme+"://"+s.idpURL.Host)
	req.Header.Set("accept", "application/json")
	client := &http.Client{Transport: s.hub.Client().Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	must(s.t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	resp.Header.Set("x-body", string(body))
	return resp
}

// finish posts f and follows the ACS's 303 with the browser's cookies. It
// returns the last response and its redirect location (nil when none).
func (s *samlHarness) finish(f samlForm) (*http.Response, *url.URL) {
	s.t.Helper()
	resp := s.post(f)
	if resp.StatusCode != http.StatusSeeOther {
		return resp, nil
	}
	next, err := resp.Location()
	must(s.t, err)
	if !strings.HasPrefix(next.String(), s.hub.URL+"/organizations/acme/saml/finish?id=") {
		s.t.Fatalf("ACS 303 to %v", next)
	}
	last := s.get(next.String())
	to, _ := last.Location()
	return last, to
}

// samlLogin walks an SP-initiated login from start to its end.
func (s *samlHarness) samlLogin(start string) (*http.Response, *url.URL) {
	s.t.Helper()
	return s.finish(s.toACS(start))
}

// wantACSFailure posts f and asserts a JSON error with status and code,
// and that no SSO session was written.
func (s *samlHarness) wantACSFailure(f samlForm, status int, code string) {
	s.t.Helper()
	resp := s.post(f)
	wantJSONError(s.t, resp.StatusCode, resp.Header.Get("content-type"), resp.Header.Get("x-body"), status, code)
	if sess := s.session("u-alice"); sess != nil {
		s.t.Errorf("a session was written: %+v", sess)
	}
}

// wantJSONError asserts a JSON error answer {"error": code}.
func wantJSONError(t testing.TB, got int, ctype, body string, status int, code string) {
	t.Helper()
	var e struct{ Error, Detail string }
	if got != status || ctype != "application/json" || json.Unmarshal([]byte(body), &e) != nil || e.Error != code {
		t.Errorf("got %d %s %s, want %d with error %q", got, ctype, body, status, code)
	}
}
