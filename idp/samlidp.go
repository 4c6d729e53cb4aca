package idp

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	saml2 "github.com/russellhaering/gosaml2"
	"github.com/russellhaering/gosaml2/types"

	"github.com/ssogate/ssogate/config"
)

// IdP metadata caching (spec section 6: fetched when first needed, cached,
// retried). Metadata from idp_metadata_url is used for metadataTTL; a
// failed fetch is retried no sooner than metadataRetry later, and stale
// metadata is kept while a refresh fails. Files (idp_metadata_file,
// certificate_file) are read again whenever their size or modification
// time changes, so a rotated certificate needs no restart.
const (
	metadataTTL     = time.Hour
	metadataRetry   = 5 * time.Second
	metadataTimeout = 10 * time.Second
	maxMetadata     = 1 << 20 // bytes of a metadata document or certificate file
)

// idpSettings is what the service provider knows of an org's SAML IdP.
type idpSettings struct {
	// entityID is the IdP's entity ID: the Issuer every Response and
	// Assertion must carry (SAML 2.0 Core section 2.2.5).
	entityID string
	// ssoURL is the SingleSignOnService location for the HTTP-Redirect
	// binding (SAML 2.0 Bindings section 3.4); "" when the metadata lists
	// none, which leaves IdP-initiated logins only.
	ssoURL string
	// certs are the certificates whose keys may sign assertions and
	// responses: every signing KeyDescriptor of the metadata, or every
	// CERTIFICATE block of certificate_file. Several are valid at once
	// during a key rotation.
	certs []*x509.Certificate
}

// idpCache loads and caches idpSettings by org. It is safe for concurrent
// use; concurrent callers for one org share one fetch.
type idpCache struct {
	client *http.Client
	now    func() time.Time
	log    *slog.Logger

	mu      sync.Mutex
	entries map[string]*idpEntry
}

type idpEntry struct {
	mu        sync.Mutex // held while loading
	source    string     // what the settings were loaded from (URL, or file names with size and mtime)
	settings  *idpSettings
	fetchedAt time.Time
	err       error
	failedAt  time.Time
}

func newIdPCache(client *http.Client, now func() time.Time, log *slog.Logger) *idpCache {
	return &idpCache{client: client, now: now, log: log, entries: map[string]*idpEntry{}}
}

// get returns the IdP settings of org (whose SSO.SAML is set). Errors are
// *Error values: codeMisconfigured (500) for files that cannot be read or
// parsed and incomplete settings, codeIdPUnavailable (502) for metadata
// URLs that cannot be fetched or parsed.
func (c *idpCache) get(ctx context.Context, org *config.Org) (*idpSettings, error) {
	s := org.SSO.SAML
	if s == nil {
		return nil, misconfigured(org, "the saml block is missing", nil)
	}
	c.mu.Lock()
	e := c.entries[org.Name]
	if e == nil {
		e = &idpEntry{}
		c.entries[org.Name] = e
	}
	c.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if s.IdPMetadataURL == "" {
		return e.fromFiles(org)
	}
	now := c.now()
	if e.settings != nil && e.source == s.IdPMetadataURL && now.Sub(e.fetchedAt) < metadataTTL {
		return e.settings, nil
	}
	if e.source != s.IdPMetadataURL {
		e.source, e.settings, e.err = s.IdPMetadataURL, nil, nil
	}
	if e.err == nil || now.Sub(e.failedAt) >= metadataRetry {
		settings, err := c.fetch(ctx, s)
		if err == nil {
			e.settings, e.fetchedAt, e.err = settings, now, nil
			return settings, nil
		}
		e.err, e.failedAt = err, now
		c.log.Warn("saml metadata fetch failed", "org", org.Name, "url", s.IdPMetadataURL,
			"error", truncate(err.Error(), 300), "stale_kept", e.settings != nil)
	}
	if e.settings != nil {
		return e.settings, nil
	}
	return nil, failf(http.StatusBadGateway, codeIdPUnavailable,
		"The SAML metadata of the identity provider of %s cannot be fetched or is invalid. Please try again in a few minutes.",
		org.Name).with(e.err)
}

// fromFiles returns the settings from idp_metadata_file, or from
// sign_on_url with certificate_file, reading the files again when they
// changed since the last read.
func (e *idpEntry) fromFiles(org *config.Org) (*idpSettings, error) {
	s := org.SSO.SAML
	files := []string{s.IdPMetadataFile}
	if s.IdPMetadataFile == "" {
		files = []string{s.CertificateFile}
	}
	source, err := fileStamp(files...)
	if err != nil {
		return nil, misconfigured(org, "a SAML file cannot be read", err)
	}
	source += s.SignOnURL + "\x00" + s.IdPEntityID
	if e.settings != nil && e.source == source {
		return e.settings, nil
	}
	var settings *idpSettings
	switch {
	case s.IdPMetadataFile != "":
		data, err := readLimited(s.IdPMetadataFile)
		if err == nil {
			settings, err = parseIdPMetadata(data, s.IdPEntityID)
		}
		if err != nil {
			return nil, misconfigured(org, "idp_metadata_file is not usable", fmt.Errorf("%s: %w", s.IdPMetadataFile, err))
		}
	case s.SignOnURL != "" && s.CertificateFile != "":
		if s.IdPEntityID == "" {
			return nil, misconfigured(org, "idp_entity_id is required with sign_on_url and certificate_file (it is the Issuer every assertion must carry)", nil)
		}
		data, err := readLimited(s.CertificateFile)
		var certs []*x509.Certificate
		if err == nil {
			certs, err = parsePEMCertificates(data)
		}
		if err != nil {
			return nil, misconfigured(org, "certificate_file is not usable", fmt.Errorf("%s: %w", s.CertificateFile, err))
		}
		settings = &idpSettings{entityID: s.IdPEntityID, ssoURL: s.SignOnURL, certs: certs}
	default:
		return nil, misconfigured(org, "set idp_metadata_file, idp_metadata_url, or sign_on_url with certificate_file", nil)
	}
	e.source, e.settings = source, settings
	return settings, nil
}

// fetch downloads and parses the metadata at s.IdPMetadataURL, detached
// from the caller's cancellation (the result is shared) but bounded by
// metadataTimeout.
func (c *idpCache) fetch(ctx context.Context, s *config.SAML) (*idpSettings, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), metadataTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.IdPMetadataURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("accept", "application/samlmetadata+xml, application/xml, text/xml")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %s", s.IdPMetadataURL, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadata+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", s.IdPMetadataURL, err)
	}
	if len(data) > maxMetadata {
		return nil, fmt.Errorf("GET %s: metadata larger than %d bytes", s.IdPMetadataURL, maxMetadata)
	}
	return parseIdPMetadata(data, s.IdPEntityID)
}

// entities is an EntitiesDescriptor (SAML 2.0 Metadata section 2.3.1),
// of which only the direct EntityDescriptor children are read.
type entities struct {
	Entities []types.EntityDescriptor `xml:"urn:oasis:names:tc:SAML:2.0:metadata EntityDescriptor"`
}

const nsMetadata = "urn:oasis:names:tc:SAML:2.0:metadata"

// parseIdPMetadata reads IdP metadata (SAML 2.0 Metadata section 2.4.3):
// an EntityDescriptor with an IDPSSODescriptor, or an EntitiesDescriptor
// holding one. wantEntity, when set, selects the entity (and is the
// expected issuer); otherwise the document must describe exactly one
// IdP. Every KeyDescriptor whose use is "signing" or unspecified gives a
// certificate; at least one is required. The metadata's own signature
// and validUntil are not checked: its authenticity rests on the file or
// on the TLS connection that fetched it.
func parseIdPMetadata(data []byte, wantEntity string) (*idpSettings, error) {
	var root struct{ XMLName xml.Name }
	if err := xml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("parsing metadata: %w", err)
	}
	var candidates []types.EntityDescriptor
	switch root.XMLName {
	case xml.Name{Space: nsMetadata, Local: "EntityDescriptor"}:
		var ed types.EntityDescriptor
		if err := xml.Unmarshal(data, &ed); err != nil {
			return nil, fmt.Errorf("parsing metadata: %w", err)
		}
		candidates = append(candidates, ed)
	case xml.Name{Space: nsMetadata, Local: "EntitiesDescriptor"}:
		var es entities
		if err := xml.Unmarshal(data, &es); err != nil {
			return nil, fmt.Errorf("parsing metadata: %w", err)
		}
		candidates = es.Entities
	default:
		return nil, fmt.Errorf("metadata root is {%s}%s, want an md:EntityDescriptor", root.XMLName.Space, root.XMLName.Local)
	}
	var found []types.EntityDescriptor
	for _, ed := range candidates {
		if ed.IDPSSODescriptor != nil && (wantEntity == "" || ed.EntityID == wantEntity) {
			found = append(found, ed)
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("metadata describes %d identity providers with entity ID %q, want exactly one", len(found), wantEntity)
	}
	ed := found[0]
	s := &idpSettings{entityID: ed.EntityID}
	if wantEntity != "" {
		s.entityID = wantEntity
	}
	if s.entityID == "" {
		return nil, errors.New("metadata has no entityID")
	}
	for _, sso := range ed.IDPSSODescriptor.SingleSignOnServices {
		if sso.Binding == saml2.BindingHttpRedirect && s.ssoURL == "" {
			s.ssoURL = sso.Location
		}
	}
	for _, kd := range ed.IDPSSODescriptor.KeyDescriptors {
		if kd.Use != "" && kd.Use != "signing" {
			continue
		}
		for _, xc := range kd.KeyInfo.X509Data.X509Certificates {
			der, err := base64.StdEncoding.DecodeString(stripSpace(xc.Data))
			if err != nil {
				return nil, fmt.Errorf("metadata certificate: %w", err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, fmt.Errorf("metadata certificate: %w", err)
			}
			s.certs = append(s.certs, cert)
		}
	}
	if len(s.certs) == 0 {
		return nil, errors.New("metadata has no signing certificate")
	}
	return s, nil
}

// parsePEMCertificates returns every CERTIFICATE block of data (at least
// one); other blocks are ignored.
func parsePEMCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return certs, nil
}

// fileStamp identifies the current contents of files by their names,
// sizes and modification times.
func fileStamp(files ...string) (string, error) {
	var b strings.Builder
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%s\x00%d\x00%d\x00", f, fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String(), nil
}

// readLimited reads a file of at most maxMetadata bytes.
func readLimited(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxMetadata+1))
	if err == nil && len(data) > maxMetadata {
		err = fmt.Errorf("larger than %d bytes", maxMetadata)
	}
	return data, err
}

// stripSpace removes ASCII white space, which base64 in XML may carry.
func stripSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
}

// misconfigured is a codeMisconfigured error about org's SAML settings.
// The page names what is wrong; the log also gets the org file and err.
func misconfigured(org *config.Org, what string, err error) *Error {
	cause := fmt.Errorf("%s: %s", org.File, what)
	if err != nil {
		cause = fmt.Errorf("%s: %s: %w", org.File, what, err)
	}
	return failf(http.StatusInternalServerError, codeMisconfigured,
		"The SAML settings of %s are not usable: %s. Ask an administrator to fix them.", org.Name, what).with(cause)
}
