package idp

import (
	"crypto/ecdsa"
	"encoding/base64"
	"testing"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"
)

// samlDoc is a decoded SAMLResponse taken from real IdP output, to be
// tampered with: Response is its root and Assertion its assertion.
type samlDoc struct {
	t         testing.TB
	doc       *etree.Document
	Response  *etree.Element
	Assertion *etree.Element
	// SignatureMethod, when set, is the algorithm of the signatures sign
	// makes; by default RSA-SHA256 or ECDSA-SHA256 after the key.
	SignatureMethod string
}

// decodeResponse parses the base64 SAMLResponse of f.
func decodeResponse(t testing.TB, encoded string) *samlDoc {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(encoded)
	must(t, err)
	d := &samlDoc{t: t, doc: etree.NewDocument()}
	must(t, d.doc.ReadFromBytes(raw))
	d.Response = d.doc.Root()
	d.Assertion = childNS(d.Response, nsAssertion, "Assertion")
	if d.Assertion == nil {
		t.Fatal("the IdP's response has no assertion")
	}
	return d
}

// encode returns the document as a SAMLResponse form value.
func (d *samlDoc) encode() string {
	d.t.Helper()
	raw, err := d.doc.WriteToBytes()
	must(d.t, err)
	return base64.StdEncoding.EncodeToString(raw)
}

// find returns the first element below el at path, a sequence of tags in
// the assertion namespace ("Subject", "NameID").
func find(t testing.TB, el *etree.Element, path ...string) *etree.Element {
	t.Helper()
	for _, tag := range path {
		next := childNS(el, nsAssertion, tag)
		if next == nil {
			next = childNS(el, nsProtocol, tag)
		}
		if next == nil {
			t.Fatalf("no %s below %s", tag, el.Tag)
		}
		el = next
	}
	return el
}

// unsign removes el's own signature.
func unsign(el *etree.Element) {
	if sig := childNS(el, nsDSig, "Signature"); sig != nil {
		el.RemoveChild(sig)
	}
}

// sign replaces el's signature by an enveloped one made with k (RSA-SHA256,
// exclusive canonicalization, the certificate in KeyInfo), placed after
// the Issuer as SAML 2.0 Core section 5 wants, and returns the signed
// element, which takes el's place in the document.
func (d *samlDoc) sign(el *etree.Element, k idpKey) *etree.Element {
	d.t.Helper()
	ctx, err := etreeutils.NSBuildParentContext(el)
	must(d.t, err)
	detached, err := etreeutils.NSDetatch(ctx, el)
	must(d.t, err)
	unsign(detached)
	sc, err := dsig.NewSigningContext(k.key, [][]byte{k.cert.Raw})
	must(d.t, err)
	sc.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	method := dsig.RSASHA256SignatureMethod
	if _, ec := k.key.(*ecdsa.PrivateKey); ec {
		method = dsig.ECDSASHA256SignatureMethod
	}
	if d.SignatureMethod != "" {
		method = d.SignatureMethod
	}
	must(d.t, sc.SetSignatureMethod(method))
	signed, err := sc.SignEnveloped(detached)
	must(d.t, err)
	// SignEnveloped appends the signature to Child without adopting it.
	sig := signed.Child[len(signed.Child)-1].(*etree.Element)
	signed.Child = signed.Child[:len(signed.Child)-1]
	signed.InsertChildAt(find(d.t, signed, "Issuer").Index()+1, sig)
	if parent := el.Parent(); parent != nil && el != d.Response {
		parent.InsertChildAt(el.Index(), signed)
		parent.RemoveChild(el)
	} else {
		d.doc.SetRoot(signed)
		d.Response = signed
	}
	if el == d.Assertion {
		d.Assertion = signed
	}
	return signed
}

// resign signs the assertion and then the response with k, as the IdP
// would have had it produced this document.
func (d *samlDoc) resign(k idpKey) {
	d.sign(d.Assertion, k)
	d.sign(d.Response, k)
}
