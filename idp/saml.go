package idp

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"time"

	saml2 "github.com/russellhaering/gosaml2"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/store"
)

// serviceProvider is the SAML 2.0 service provider of every org whose
// protocol is saml: the Web Browser SSO profile (SAML 2.0 Profiles section
// 4.1) with AuthnRequests over HTTP-Redirect and Responses over HTTP-POST,
// SP- and IdP-initiated, over gosaml2. Each org is its own SP, with its
// own entity ID (sp_entity_id) and ACS URL.
type serviceProvider struct {
	publicURL string
	idps      *idpCache
	now       func() time.Time
}

// protocolSAMLResult marks a store.PendingLogin that holds a verified
// SAML response between the ACS and the finish endpoint (docs/saml.md).
const protocolSAMLResult = "saml-result"

// samlResultTTL is how long a verified response waits for the browser to
// follow the ACS's 303 to the finish endpoint.
const samlResultTTL = 5 * time.Minute

// acsURL is org's assertion consumer service, to be registered at the
// IdP: {public_url}/organizations/{org}/saml/consume.
func (sp *serviceProvider) acsURL(org string) string {
	return sp.publicURL + "/organizations/" + org + "/saml/consume"
}

// finishURL is where the ACS sends the browser with a result id.
func (sp *serviceProvider) finishURL(org, id string) string {
	return sp.publicURL + "/organizations/" + org + "/saml/finish?id=" + id
}

// start implements protocol: it fills p.RequestID with a fresh AuthnRequest
// ID, re-keys p by it (the ACS, reached by a cross-site POST, gets no
// cookie, so it finds the pending login by the response's InResponseTo),
// and returns the IdP's SSO URL carrying the AuthnRequest (SAML 2.0 Core
// section 3.4.1; HTTP-Redirect binding, Bindings section 3.4.4.1, unsigned)
// with p.State as RelayState. The request asks for an emailAddress NameID
// and names the org's ACS (HTTP-POST).
func (sp *serviceProvider) start(ctx context.Context, org *config.Org, p *store.PendingLogin) (string, error) {
	idp, err := sp.idps.get(ctx, org)
	if err != nil {
		return "", err
	}
	if idp.ssoURL == "" {
		return "", misconfigured(org, "the IdP metadata lists no SingleSignOnService with the HTTP-Redirect binding", nil)
	}
	s := &saml2.SAMLServiceProvider{
		IdentityProviderSSOURL:      idp.ssoURL,
		IdentityProviderIssuer:      idp.entityID,
		AssertionConsumerServiceURL: sp.acsURL(org.Name),
		ServiceProviderIssuer:       org.SSO.SAML.SPEntityID,
		NameIdFormat:                nameIDEmail,
		Clock:                       dsig.NewFakeClockAt(sp.now()),
	}
	doc, err := s.BuildAuthRequestDocumentNoSig()
	if err != nil {
		return "", fmt.Errorf("building the AuthnRequest: %w", err)
	}
	// An xs:ID must be an NCName: "_" then base64url characters.
	p.RequestID = "_" + randomToken()
	doc.Root().CreateAttr("ID", p.RequestID)
	p.ID = samlPendingID(p.RequestID)
	target, err := s.BuildAuthURLRedirect(p.State, doc)
	if err != nil {
		return "", misconfigured(org, "the IdP's SSO URL is not usable", err)
	}
	return target, nil
}

// samlPendingID derives the store key of the pending login that sent the
// AuthnRequest requestID.
func samlPendingID(requestID string) string {
	return hashToken("ssogate saml request\x00" + requestID)
}

// samlResultID derives the store key of a verified response from the
// one-time id in the finish URL.
func samlResultID(id string) string {
	return hashToken("ssogate saml result\x00" + id)
}

// check returns what a response to org is verified against now.
func (sp *serviceProvider) check(ctx context.Context, org *config.Org) (*samlCheck, error) {
	idp, err := sp.idps.get(ctx, org)
	if err != nil {
		return nil, err
	}
	return &samlCheck{
		IdPEntityID: idp.entityID,
		Certs:       idp.certs,
		SPEntityID:  org.SSO.SAML.SPEntityID,
		ACSURL:      sp.acsURL(org.Name),
		ClockSkew:   org.SSO.SAML.ClockSkew,
		Now:         sp.now(),
	}, nil
}

// samlResult is the verified content of a response, kept server-side
// between the ACS and the finish endpoint in the State field of a
// store.PendingLogin whose Protocol is protocolSAMLResult.
type samlResult struct {
	Email      string              `json:"email"`
	Attributes map[string][]string `json:"attributes,omitempty"`
}

// resultRecord returns the pending login that carries login from the ACS
// to the finish endpoint under the one-time id: p's user, browser
// binding, join flag, request ID and return_to for an SP-initiated login
// (p nil for an IdP-initiated one, whose return_to is returnTo).
func (sp *serviceProvider) resultRecord(org *config.Org, id string, p *store.PendingLogin, login *samlLogin, returnTo string) (store.PendingLogin, error) {
	state, err := json.Marshal(samlResult{Email: login.Email, Attributes: login.Attributes})
	if err != nil {
		return store.PendingLogin{}, fmt.Errorf("encoding the SAML result: %w", err)
	}
	now := sp.now()
	r := store.PendingLogin{ID: samlResultID(id), Org: org.Name, Protocol: protocolSAMLResult,
		ReturnTo: returnTo, State: string(state), CreatedAt: now, ExpiresAt: now.Add(samlResultTTL)}
	if p != nil {
		r.User, r.Join, r.ReturnTo, r.RequestID, r.Browser = p.User, p.Join, p.ReturnTo, p.RequestID, p.Browser
	}
	return r, nil
}

// assertion decodes the result in r.
func (r *samlResult) assertion() *Assertion {
	return &Assertion{Subject: r.Email, Email: r.Email, EmailVerified: true, Attributes: SAMLAttributes(r.Attributes)}
}

// spMetadata is an SP's metadata document (SAML 2.0 Metadata sections
// 2.3.2 and 2.4.4): the entity ID, emailAddress NameIDs, signed
// assertions wanted, unsigned AuthnRequests, one HTTP-POST ACS.
type spMetadata struct {
	XMLName  xml.Name `xml:"urn:oasis:names:tc:SAML:2.0:metadata EntityDescriptor"`
	EntityID string   `xml:"entityID,attr"`
	SP       struct {
		AuthnRequestsSigned  bool   `xml:"AuthnRequestsSigned,attr"`
		WantAssertionsSigned bool   `xml:"WantAssertionsSigned,attr"`
		Protocols            string `xml:"protocolSupportEnumeration,attr"`
		NameIDFormat         string `xml:"NameIDFormat"`
		ACS                  struct {
			Binding   string `xml:"Binding,attr"`
			Location  string `xml:"Location,attr"`
			Index     int    `xml:"index,attr"`
			IsDefault bool   `xml:"isDefault,attr"`
		} `xml:"AssertionConsumerService"`
	} `xml:"SPSSODescriptor"`
}

// metadata returns org's SP metadata as XML. It needs no IdP.
func (sp *serviceProvider) metadata(org *config.Org) ([]byte, error) {
	var m spMetadata
	m.EntityID = org.SSO.SAML.SPEntityID
	m.SP.WantAssertionsSigned = true
	m.SP.Protocols = nsProtocol
	m.SP.NameIDFormat = nameIDEmail
	m.SP.ACS.Binding = saml2.BindingHttpPost
	m.SP.ACS.Location = sp.acsURL(org.Name)
	m.SP.ACS.Index = 1
	m.SP.ACS.IsDefault = true
	out, err := xml.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding SP metadata: %w", err)
	}
	return append([]byte(xml.Header), append(out, '\n')...), nil
}

// metadataContentType is the media type registered for SAML metadata.
const metadataContentType = "application/samlmetadata+xml"

var _ protocol = (*serviceProvider)(nil)

// samlUnknownRequest is the answer to a response whose InResponseTo names
// no outstanding AuthnRequest of the org.
func samlUnknownRequest() *Error {
	return failf(http.StatusBadRequest, codeSAMLInResponseTo,
		"This SAML response answers a sign-in request that is unknown, has expired or was already used. Please start again.")
}
