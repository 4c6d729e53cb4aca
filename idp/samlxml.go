package idp

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/beevik/etree"
	rtvalidator "github.com/mattermost/xml-roundtrip-validator"
)

// This file reads a SAMLResponse's XML as received, before and beside
// signature verification (samlverify.go): what the signatures do not
// cover, or what must be refused before they are checked.

// parseSAMLXML builds the tree of raw after scanXML and the round-trip
// check gosaml2 also runs (mattermost/xml-roundtrip-validator: input
// that encoding/xml would not read back the same way is refused).
func parseSAMLXML(raw []byte) (*etree.Document, error) {
	if err := scanXML(raw); errors.Is(err, errTooManyElements) {
		return nil, failf(http.StatusRequestEntityTooLarge, codeSAMLTooLarge,
			"The SAML response has more than %d XML elements. Ask the identity provider to send fewer attribute values (for example, filter the groups it sends).", maxXMLElements)
	} else if err != nil {
		return nil, malformed("The SAML response is not well-formed XML.", err)
	}
	if err := rtvalidator.Validate(bytes.NewReader(raw)); err != nil {
		return nil, malformed("The SAML response is not well-formed XML.", err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil || doc.Root() == nil {
		return nil, malformed("The SAML response is not well-formed XML.", err)
	}
	return doc, nil
}

var errTooManyElements = errors.New("too many XML elements")

// scanXML reads raw with a strict decoder before any tree is built. It
// accepts UTF-8 XML with one root element, no DTD or other directive (so
// no entity but the predefined five), no processing instruction but the
// XML declaration, no text outside the root, at most maxXMLDepth levels
// of elements, maxXMLTokens tokens, and no attribute twice on an element.
func scanXML(raw []byte) error {
	d := xml.NewDecoder(bytes.NewReader(raw))
	d.Strict = true
	depth, tokens, roots, elements, inScope := 0, 0, 0, 0, 0
	var declared []int // namespace declarations of each open element
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if tokens++; tokens > maxXMLTokens {
			return fmt.Errorf("more than %d XML tokens", maxXMLTokens)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				if roots++; roots > 1 {
					return errors.New("more than one root element")
				}
			}
			if depth++; depth > maxXMLDepth {
				return fmt.Errorf("elements nested more than %d deep", maxXMLDepth)
			}
			if elements++; elements > maxXMLElements {
				return errTooManyElements
			}
			if len(t.Attr) > maxXMLAttrs {
				return fmt.Errorf("more than %d attributes on %s", maxXMLAttrs, t.Name.Local)
			}
			ns := 0
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
					ns++
				}
			}
			declared = append(declared, ns)
			if inScope += ns; ns > maxXMLNamespaces || inScope > maxScopeNamespaces {
				return fmt.Errorf("more than %d namespace declarations on an element or %d in scope", maxXMLNamespaces, maxScopeNamespaces)
			}
			seen := make(map[xml.Name]bool, len(t.Attr))
			for _, a := range t.Attr {
				if seen[a.Name] {
					return fmt.Errorf("attribute %s repeated on %s", a.Name.Local, t.Name.Local)
				}
				seen[a.Name] = true
			}
		case xml.EndElement:
			depth--
			if n := len(declared); n > 0 {
				inScope -= declared[n-1]
				declared = declared[:n-1]
			}
		case xml.Directive:
			return errors.New("DTDs and other directives are not allowed")
		case xml.ProcInst:
			if t.Target != "xml" {
				return fmt.Errorf("processing instruction %q", t.Target)
			}
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return errors.New("text outside the root element")
			}
		}
	}
	if roots == 0 {
		return errors.New("no root element")
	}
	return nil
}

// samlStatus refuses a Response whose top-level StatusCode is not Success
// (SAML 2.0 Core section 3.2.2.2): the IdP did not sign the user in. The
// status is read unverified; it can only make the login fail.
func samlStatus(root *etree.Element) error {
	status := childNS(root, nsProtocol, "Status")
	var code *etree.Element
	if status != nil {
		code = childNS(status, nsProtocol, "StatusCode")
	}
	if code == nil {
		return malformed("The SAML response has no status.", nil)
	}
	top := code.SelectAttrValue("Value", "")
	if top == statusSuccess {
		return nil
	}
	second := ""
	if sub := childNS(code, nsProtocol, "StatusCode"); sub != nil {
		second = sub.SelectAttrValue("Value", "")
	}
	msg := lastSegment(top)
	if second != "" {
		msg += "/" + lastSegment(second)
	}
	// The StatusMessage is not shown: the status is read before (and
	// without) any signature check, so its text could be anyone's.
	httpStatus := http.StatusBadGateway
	switch lastSegment(second) {
	case "AuthnFailed", "RequestDenied", "NoPassive", "NoAuthnContext", "UnknownPrincipal":
		httpStatus = http.StatusForbidden
	}
	return failf(httpStatus, codeIdPError, "The identity provider answered: %s", truncate(msg, 300))
}

// soleAssertion returns the Response's assertion, refusing signature
// wrapping (SAML 2.0 Profiles section 4.1.4.2 allows several assertions;
// ssogate accepts exactly one): a second Assertion or EncryptedAssertion,
// in any namespace, anywhere in the document (beside the signed one,
// inside it, inside its Signature, around it), or one that is not a
// child of the Response. It also refuses an assertion whose Subject,
// NameID, SubjectConfirmation or Conditions is missing or repeated where
// gosaml2 reads one (encoding/xml would merge repeated elements into one
// value).
func soleAssertion(root *etree.Element) (*etree.Element, error) {
	var found []*etree.Element
	walkElements(root, func(el *etree.Element) {
		if el.Tag == "Assertion" || el.Tag == "EncryptedAssertion" {
			found = append(found, el)
		}
	})
	switch {
	case len(found) != 1:
		return nil, wrapped(fmt.Errorf("%d assertions in the response", len(found)))
	case found[0].Tag == "EncryptedAssertion" && found[0].NamespaceURI() == nsAssertion:
		return nil, malformed("The assertion is encrypted; ssogate accepts signed, unencrypted assertions. Turn assertion encryption off at the identity provider.", nil)
	case found[0].NamespaceURI() != nsAssertion:
		return nil, wrapped(fmt.Errorf("the assertion is in namespace %q", found[0].NamespaceURI()))
	case found[0].Parent() != root:
		return nil, wrapped(errors.New("the assertion is not a child of the Response"))
	}
	a := found[0]
	subjects := childrenNS(a, nsAssertion, "Subject")
	if len(subjects) != 1 || len(childrenNS(subjects[0], nsAssertion, "SubjectConfirmation")) != 1 ||
		len(childrenNS(a, nsAssertion, "Conditions")) > 1 {
		return nil, malformed("The assertion must have one Subject with one SubjectConfirmation, and at most one Conditions.", nil)
	}
	if len(childrenNS(subjects[0], nsAssertion, "NameID")) != 1 {
		return nil, nameIDError("The assertion's subject must have exactly one NameID (not encrypted).", nil)
	}
	return a, nil
}

// noComments refuses comments and processing instructions inside the
// assertion. Exclusive canonicalization without comments (the
// canonicalization IdPs sign with) leaves them out of the signed bytes, so
// they can only have been added after signing; inside a NameID they split
// its text ("alice@acme.example<!---->.evil.example"), and a parser that
// reads the first text node alone would see another address.
func noComments(assertion *etree.Element) error {
	var err error
	walkElements(assertion, func(el *etree.Element) {
		for _, tok := range el.Child {
			switch tok.(type) {
			case *etree.Comment, *etree.ProcInst:
			default:
				continue
			}
			if err != nil {
				return
			}
			if el.Tag == "NameID" && el.NamespaceURI() == nsAssertion {
				err = nameIDError("The NameID contains an XML comment: its text is not exactly what the identity provider signed.", nil)
			} else {
				err = malformed("The assertion contains an XML comment or processing instruction, which its signature does not cover.", nil)
			}
		}
	})
	return err
}

// childNS returns el's first child element named {ns}tag, or nil.
func childNS(el *etree.Element, ns, tag string) *etree.Element {
	for _, c := range el.ChildElements() {
		if c.Tag == tag && c.NamespaceURI() == ns {
			return c
		}
	}
	return nil
}

// childrenNS returns el's child elements named {ns}tag.
func childrenNS(el *etree.Element, ns, tag string) []*etree.Element {
	var out []*etree.Element
	for _, c := range el.ChildElements() {
		if c.Tag == tag && c.NamespaceURI() == ns {
			out = append(out, c)
		}
	}
	return out
}

// walkElements calls fn on el and every element below it, depth first.
// The depth is bounded by scanXML.
func walkElements(el *etree.Element, fn func(*etree.Element)) {
	fn(el)
	for _, c := range el.ChildElements() {
		walkElements(c, fn)
	}
}

// lastSegment returns what follows the last ':' of a URN.
func lastSegment(urn string) string {
	return urn[strings.LastIndexByte(urn, ':')+1:]
}
