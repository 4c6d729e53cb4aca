package idp

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/beevik/etree"
	saml2 "github.com/russellhaering/gosaml2"
	"github.com/russellhaering/gosaml2/types"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"
)

// Limits on a SAMLResponse, checked before any signature work.
const (
	// maxSAMLResponse is the largest SAMLResponse form value accepted, in
	// bytes of its base64 text (about 192 KiB of XML); larger ones get 413.
	maxSAMLResponse = 256 << 10
	// maxXMLDepth bounds element nesting; real responses nest about 8 deep.
	maxXMLDepth = 64
	// maxXMLTokens bounds the tokens (tags, text, comments) of a document.
	maxXMLTokens = 50000
	// maxXMLElements bounds the elements of a document. goxmldsig walks at
	// most 1,000 elements when it looks for signatures, and gosaml2 walks
	// the assertion twice, so a larger response would fail as a "bad
	// signature"; refusing it here names the real problem (too many
	// attribute values: about 450 groups).
	maxXMLElements = 480
	// maxXMLNamespaces bounds namespace declarations per element, and
	// maxScopeNamespaces those in scope at any element: goxmldsig copies
	// the in-scope namespace map at every element before any signature is
	// checked, so thousands of declarations on the root cost seconds of CPU
	// on the unauthenticated ACS. Real responses have fewer than 10 in scope
	// (IdPs repeat xmlns:xs and xmlns:xsi on every AttributeValue, which is
	// fine: those go out of scope again).
	maxXMLNamespaces, maxScopeNamespaces = 16, 64
	// maxXMLAttrs bounds the attributes of one element.
	maxXMLAttrs = 32
)

// XML namespaces and values of SAML 2.0 Core and XML Signature.
const (
	nsProtocol    = saml2.SAMLProtocolNamespace
	nsAssertion   = saml2.SAMLAssertionNamespace
	nsDSig        = dsig.Namespace
	statusSuccess = saml2.StatusCodeSuccess
	nameIDEmail   = saml2.NameIdFormatEmailAddress
)

// samlCheck is what a Response is verified against at one instant: the
// org's IdP (entity ID and certificates), its service provider (entity ID
// and ACS URL) and the clock.
type samlCheck struct {
	IdPEntityID string
	Certs       []*x509.Certificate
	SPEntityID  string
	ACSURL      string
	ClockSkew   time.Duration
	Now         time.Time
}

// samlLogin is what a verified Response says.
type samlLogin struct {
	// AssertionID is the assertion's ID, remembered so that it works once.
	AssertionID string
	// InResponseTo is the AuthnRequest ID the assertion answers; "" for an
	// unsolicited (IdP-initiated) response.
	InResponseTo string
	// Email is the NameID, an address in the emailAddress format.
	Email string
	// Attributes are the assertion's attributes by Name, every value of
	// every Attribute element with that Name, in document order.
	Attributes SAMLAttributes
	// NotOnOrAfter is the end of the assertion's validity: the later of
	// its Conditions and bearer SubjectConfirmationData NotOnOrAfter.
	NotOnOrAfter time.Time
}

// verifySAMLResponse decodes and verifies encoded, the SAMLResponse of the
// HTTP-POST binding (SAML 2.0 Bindings section 3.5.4), for the Web Browser
// SSO profile (SAML 2.0 Profiles section 4.1.4.3). Errors are *Error
// values, one code per check:
//
//   - codeSAMLTooLarge (413): encoded is over maxSAMLResponse bytes;
//   - codeSAMLMalformed (400): not base64, not well-formed UTF-8 XML, a
//     DTD, nesting deeper than maxXMLDepth, more than maxXMLTokens tokens,
//     duplicate attributes, not a samlp:Response, an encrypted assertion,
//     an assertion without one Subject and one SubjectConfirmation or with
//     several Conditions, or an XML comment inside the assertion (outside
//     its NameID);
//   - codeIdPError (403 or 502): the top-level status is not Success;
//   - codeSAMLWrapped (401): not exactly one Assertion element in the
//     whole document, one not a child of the Response, or a verified
//     assertion other than the one checked (signature wrapping);
//   - codeSAMLSignature (401): the assertion has no signature, or its
//     signature (or the Response's, when it has one) is not valid by one
//     of c.Certs (XML Signature, enveloped, as SAML 2.0 Core section 5.4
//     profiles it);
//   - codeSAMLIssuer (401): the Response's or the assertion's Issuer is
//     not c.IdPEntityID;
//   - codeSAMLAudience (401): the assertion has no AudienceRestriction,
//     or one without c.SPEntityID (Core section 2.5.1.4);
//   - codeSAMLRecipient (401): the bearer SubjectConfirmationData
//     Recipient, or the Response's Destination, is not c.ACSURL (the
//     Destination is required on a signed Response, Bindings 3.5.5.2);
//   - codeSAMLExpired (401): outside NotBefore / NotOnOrAfter of the
//     Conditions or the SubjectConfirmationData, or issued in the future,
//     with c.ClockSkew of leeway either way;
//   - codeSAMLInResponseTo (400): the Response's InResponseTo differs
//     from the assertion's;
//   - codeSAMLNameID (401): not exactly one NameID, a format other than
//     emailAddress, not one plain address, or markup (a comment, an
//     element) inside it.
//
// The signatures are verified by goxmldsig; gosaml2's
// ValidateEncodedResponse then re-verifies them and checks the status,
// issuers, Destination, Recipient and the SubjectConfirmationData expiry.
// The checks gosaml2 leaves out or only warns about are added here: see
// docs/saml.md for the list. The InResponseTo value and the assertion ID
// are checked against the store by the caller.
func verifySAMLResponse(encoded string, c *samlCheck) (*samlLogin, error) {
	if len(encoded) > maxSAMLResponse {
		return nil, failf(http.StatusRequestEntityTooLarge, codeSAMLTooLarge,
			"The SAML response is larger than %d KiB.", maxSAMLResponse>>10)
	}
	raw, err := base64.StdEncoding.DecodeString(stripSpace(encoded))
	if err != nil {
		return nil, malformed("The SAMLResponse is not valid base64.", err)
	}
	doc, err := parseSAMLXML(raw)
	if err != nil {
		return nil, err
	}
	root := doc.Root()
	if root.NamespaceURI() != nsProtocol || root.Tag != "Response" {
		return nil, malformed("The message is not a SAML Response.",
			fmt.Errorf("root element {%s}%s", root.NamespaceURI(), root.Tag))
	}
	if err := samlStatus(root); err != nil {
		return nil, err
	}
	assertion, err := soleAssertion(root)
	if err != nil {
		return nil, err
	}
	if err := noComments(assertion); err != nil {
		return nil, err
	}
	verified, responseSigned, err := c.verifySignatures(root, assertion)
	if err != nil {
		return nil, err
	}
	sp := c.serviceProvider()
	resp, err := sp.ValidateEncodedResponse(base64.StdEncoding.EncodeToString(raw))
	if err != nil {
		return nil, gosaml2Error(err)
	}
	if len(resp.Assertions) != 1 || resp.Assertions[0].ID == "" ||
		resp.Assertions[0].ID != verified.SelectAttrValue("ID", "") {
		return nil, wrapped(errors.New("the assertion gosaml2 returned is not the one verified"))
	}
	return c.checkAssertion(resp, &resp.Assertions[0], assertion, responseSigned)
}

// verifySignatures checks the assertion's enveloped signature, which is
// required, and the Response's when it has one, with goxmldsig against
// c.Certs at c.Now (the certificate's validity period included); SHA-1
// anywhere in a signature is refused (noSHA1). It returns the verified
// assertion (the canonical bytes the signature covers, parsed again) and
// whether the Response was signed.
func (c *samlCheck) verifySignatures(root, assertion *etree.Element) (*etree.Element, bool, error) {
	if childNS(assertion, nsDSig, "Signature") == nil {
		return nil, false, signatureError(errors.New("the assertion is not signed"))
	}
	if err := noSHA1(root); err != nil {
		return nil, false, err
	}
	verified, err := c.verifyEnveloped(assertion)
	if err != nil {
		return nil, false, signatureError(fmt.Errorf("assertion: %w", err))
	}
	responseSigned := childNS(root, nsDSig, "Signature") != nil
	if responseSigned {
		if _, err := c.verifyEnveloped(root); err != nil {
			return nil, false, signatureError(fmt.Errorf("response: %w", err))
		}
	}
	return verified, responseSigned, nil
}

// sha1Algorithms are the XML Signature algorithm URIs built on SHA-1,
// whose collisions are practical: RSA and ECDSA signatures and the digest.
var sha1Algorithms = map[string]bool{
	dsig.RSASHA1SignatureMethod:                   true,
	dsig.ECDSASHA1SignatureMethod:                 true,
	"http://www.w3.org/2000/09/xmldsig#sha1":      true,
	"http://www.w3.org/2000/09/xmldsig#dsa-sha1":  true,
	"http://www.w3.org/2000/09/xmldsig#hmac-sha1": true,
}

// noSHA1 refuses a document with a SignatureMethod or DigestMethod built
// on SHA-1 in any signature.
func noSHA1(root *etree.Element) error {
	var err error
	walkElements(root, func(el *etree.Element) {
		if (el.Tag == "SignatureMethod" || el.Tag == "DigestMethod") && sha1Algorithms[el.SelectAttrValue("Algorithm", "")] &&
			el.NamespaceURI() == nsDSig && err == nil {
			err = failf(http.StatusUnauthorized, codeSAMLSignature,
				"The identity provider signs with SHA-1, which ssogate refuses. Choose SHA-256 in its signing settings.")
		}
	})
	return err
}

// verifyEnveloped validates the signature that references el, el taken
// out of the document with the namespaces in scope declared on it.
func (c *samlCheck) verifyEnveloped(el *etree.Element) (*etree.Element, error) {
	ctx, err := etreeutils.NSBuildParentContext(el)
	if err != nil {
		return nil, err
	}
	detached, err := etreeutils.NSDetatch(ctx, el)
	if err != nil {
		return nil, err
	}
	vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: c.Certs})
	vc.Clock = dsig.NewFakeClockAt(c.Now)
	return vc.Validate(detached)
}

// serviceProvider is gosaml2's view of the org's SP. Its clock runs
// c.ClockSkew behind, so that its expiry check (which has no leeway)
// agrees with checkTimes; its token bound is left to scanXML.
func (c *samlCheck) serviceProvider() *saml2.SAMLServiceProvider {
	return &saml2.SAMLServiceProvider{
		IdentityProviderIssuer:      c.IdPEntityID,
		AssertionConsumerServiceURL: c.ACSURL,
		ServiceProviderIssuer:       c.SPEntityID,
		AudienceURI:                 c.SPEntityID,
		IDPCertificateStore:         &dsig.MemoryX509CertificateStore{Roots: c.Certs},
		Clock:                       dsig.NewFakeClockAt(c.Now.Add(-c.ClockSkew)),
		MaximumXMLTokens:            1 << 22,
	}
}

// checkAssertion runs the checks gosaml2 does not (or only warns about) on
// the verified assertion a of resp; raw is the same assertion as received,
// for the NameID text.
func (c *samlCheck) checkAssertion(resp *types.Response, a *types.Assertion, raw *etree.Element, responseSigned bool) (*samlLogin, error) {
	if a.Issuer == nil || a.Issuer.Value != c.IdPEntityID || (resp.Issuer != nil && resp.Issuer.Value != c.IdPEntityID) {
		return nil, failf(http.StatusUnauthorized, codeSAMLIssuer,
			"The SAML response was not issued by the identity provider %s.", c.IdPEntityID)
	}
	if resp.Destination != c.ACSURL && (responseSigned || resp.Destination != "") {
		return nil, recipientError(fmt.Errorf("Destination %q", truncate(resp.Destination, 200)), c.ACSURL)
	}
	if a.Subject == nil || a.Subject.SubjectConfirmation == nil || a.Subject.SubjectConfirmation.SubjectConfirmationData == nil ||
		a.Subject.SubjectConfirmation.Method != saml2.SubjMethodBearer {
		return nil, malformed("The assertion has no bearer subject confirmation.", nil)
	}
	scd := a.Subject.SubjectConfirmation.SubjectConfirmationData
	if scd.Recipient != c.ACSURL {
		return nil, recipientError(fmt.Errorf("Recipient %q", truncate(scd.Recipient, 200)), c.ACSURL)
	}
	if err := c.checkAudience(a.Conditions); err != nil {
		return nil, err
	}
	end, err := c.checkTimes(a, scd)
	if err != nil {
		return nil, err
	}
	if resp.InResponseTo != "" && resp.InResponseTo != scd.InResponseTo {
		return nil, failf(http.StatusBadRequest, codeSAMLInResponseTo,
			"The SAML response and its assertion answer different requests.")
	}
	email, err := nameIDEmailAddress(a.Subject.NameID, raw)
	if err != nil {
		return nil, err
	}
	login := &samlLogin{AssertionID: a.ID, InResponseTo: scd.InResponseTo, Email: email,
		Attributes: SAMLAttributes{}, NotOnOrAfter: end}
	if a.AttributeStatement != nil {
		for _, attr := range a.AttributeStatement.Attributes {
			for _, v := range attr.Values {
				if v.NameID == nil {
					login.Attributes[attr.Name] = append(login.Attributes[attr.Name], v.Value)
				}
			}
		}
	}
	return login, nil
}

// checkAudience requires an AudienceRestriction, each naming the SP
// (SAML 2.0 Core section 2.5.1.4; Profiles section 4.1.4.2).
func (c *samlCheck) checkAudience(cond *types.Conditions) error {
	if cond == nil || len(cond.AudienceRestrictions) == 0 {
		return failf(http.StatusUnauthorized, codeSAMLAudience, "The assertion does not say which service it is for.")
	}
	for _, ar := range cond.AudienceRestrictions {
		ok := false
		for _, au := range ar.Audiences {
			ok = ok || au.Value == c.SPEntityID
		}
		if !ok {
			return failf(http.StatusUnauthorized, codeSAMLAudience,
				"The assertion is meant for another service provider than %s.", c.SPEntityID)
		}
	}
	return nil
}

// checkTimes applies NotBefore and NotOnOrAfter of the Conditions (Core
// section 2.5.1.2) and NotOnOrAfter of the bearer confirmation (required
// by Profiles section 4.1.4.2), and refuses an IssueInstant in the
// future, each with c.ClockSkew of leeway. It returns the later
// NotOnOrAfter.
func (c *samlCheck) checkTimes(a *types.Assertion, scd *types.SubjectConfirmationData) (time.Time, error) {
	now, skew := c.Now, c.ClockSkew
	notYet := failf(http.StatusUnauthorized, codeSAMLExpired,
		"The assertion is not valid yet. The clocks of ssogate and the identity provider may differ by more than %s.", skew)
	expired := failf(http.StatusUnauthorized, codeSAMLExpired, "The assertion has expired. Please sign in again.")
	parse := func(what, s string) (time.Time, error) {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return t, malformed("The assertion has an invalid "+what+" time.", err)
		}
		return t, nil
	}
	if scd.NotOnOrAfter == "" {
		return time.Time{}, malformed("The assertion's subject confirmation has no NotOnOrAfter.", nil)
	}
	end, err := parse("NotOnOrAfter", scd.NotOnOrAfter)
	if err != nil {
		return end, err
	}
	if !now.Before(end.Add(skew)) {
		return end, expired
	}
	if a.IssueInstant.After(now.Add(skew)) {
		return end, notYet
	}
	if cond := a.Conditions; cond != nil {
		if cond.NotBefore != "" {
			nb, err := parse("NotBefore", cond.NotBefore)
			if err != nil {
				return end, err
			}
			if now.Add(skew).Before(nb) {
				return end, notYet
			}
		}
		if cond.NotOnOrAfter != "" {
			na, err := parse("NotOnOrAfter", cond.NotOnOrAfter)
			if err != nil {
				return end, err
			}
			if !now.Before(na.Add(skew)) {
				return end, expired
			}
			if na.After(end) {
				end = na
			}
		}
	}
	return end, nil
}

// nameIDEmailAddress returns the address of a NameID in the emailAddress
// format (SAML 2.0 Core section 8.3.2), its whole text with surrounding
// white space trimmed. raw is the assertion as received, checked by
// soleAssertion: its NameID must hold text only, and that text must equal
// the verified one.
func nameIDEmailAddress(nid *types.NameID, raw *etree.Element) (string, error) {
	if nid == nil {
		return "", nameIDError("The assertion has no NameID.", nil)
	}
	if nid.Format != nameIDEmail {
		return "", nameIDError(fmt.Sprintf("The NameID format is %q; set it to emailAddress (%s) at the identity provider.",
			truncate(nid.Format, 100), nameIDEmail), nil)
	}
	email := strings.Trim(nid.Value, " \t\r\n")
	if !plainEmail(email) {
		return "", nameIDError("The NameID is not one plain email address.", nil)
	}
	var text strings.Builder
	rawNameID := childNS(childNS(raw, nsAssertion, "Subject"), nsAssertion, "NameID") // both there: soleAssertion
	if len(rawNameID.ChildElements()) > 0 {
		return "", nameIDError("The NameID holds markup.", nil)
	}
	for _, tok := range rawNameID.Child {
		if cd, ok := tok.(*etree.CharData); ok {
			text.WriteString(cd.Data)
		}
	}
	if strings.Trim(text.String(), " \t\r\n") != email {
		return "", nameIDError("The NameID is not what the identity provider signed.", nil)
	}
	return email, nil
}

// plainEmail reports whether s is one address "local@domain": one "@",
// both sides non-empty, no white space, control characters or the
// specials of RFC 5322 section 3.2.3, and a domain without empty labels.
func plainEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.IndexByte(s[at+1:], '@') >= 0 || len(s) > 320 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || strings.IndexByte(`()<>[]:;,\"`, c) >= 0 {
			return false
		}
	}
	domain := s[at+1:]
	return !strings.HasPrefix(domain, ".") && !strings.HasSuffix(domain, ".") && !strings.Contains(domain, "..")
}

// gosaml2Error maps an error of gosaml2's ValidateEncodedResponse to the
// check it failed. Errors that name no field are signature failures.
func gosaml2Error(err error) *Error {
	var iv saml2.ErrInvalidValue
	var me saml2.ErrMissingElement
	switch {
	case errors.As(err, &iv):
		switch iv.Key {
		case saml2.DestinationAttr, saml2.RecipientAttr:
			return recipientError(err, iv.Expected)
		case saml2.IssuerTag:
			return failf(http.StatusUnauthorized, codeSAMLIssuer,
				"The SAML response was not issued by the identity provider %s.", iv.Expected).with(err)
		case saml2.NotOnOrAfterAttr:
			return failf(http.StatusUnauthorized, codeSAMLExpired, "The assertion has expired. Please sign in again.").with(err)
		}
		return malformed("The SAML response is not a valid sign-in response.", err)
	case errors.As(err, &me):
		if me.Tag == saml2.IssuerTag {
			return failf(http.StatusUnauthorized, codeSAMLIssuer, "The SAML response names no issuer.").with(err)
		}
		return malformed("The SAML response is not a valid sign-in response.", err)
	}
	return signatureError(err)
}

func malformed(detail string, err error) *Error {
	return failf(http.StatusBadRequest, codeSAMLMalformed, "%s", detail).with(err)
}

func wrapped(err error) *Error {
	return failf(http.StatusUnauthorized, codeSAMLWrapped,
		"The SAML response must hold exactly one assertion, the signed one.").with(err)
}

func signatureError(err error) *Error {
	return failf(http.StatusUnauthorized, codeSAMLSignature,
		"The signature of the SAML assertion is missing or not made with the identity provider's certificate.").with(err)
}

func recipientError(err error, acs string) *Error {
	return failf(http.StatusUnauthorized, codeSAMLRecipient,
		"The SAML response was addressed to another URL than %s.", acs).with(err)
}

func nameIDError(detail string, err error) *Error {
	return failf(http.StatusUnauthorized, codeSAMLNameID, "%s", detail).with(err)
}
