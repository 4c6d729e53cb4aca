package config

import (
	"fmt"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ssogate/ssogate/role"
)

var (
	orgKeys = []string{"name", "default_role", "sso"}
	ssoKeys = []string{"enabled", "mode", "protocol", "oidc", "saml", "session_timeout",
		"email_domains", "external_collaborators", "role_mapping", "resource_group_mapping"}
	oidcKeys = []string{"issuer", "client_id", "client_secret_env", "client_secret_file",
		"scopes", "token_endpoint_auth_method"}
	samlKeys = []string{"idp_metadata_file", "idp_metadata_url", "sign_on_url", "certificate_file",
		"idp_entity_id", "sp_entity_id", "clock_skew"}
)

// readOrg reads an org file's root mapping. file is the absolute path of the
// org file; publicURL is the gateway's (for the default SAML SP entity ID).
func readOrg(root *yaml.Node, r reader, file, publicURL string) *Org {
	org := &Org{File: file, DefaultRole: role.Read}
	top := r.object(root, "", 0, orgKeys...)

	top.require("name")
	org.Name = top.str("name")
	org.NameLine = top.at("name")
	if org.Name != "" {
		if err := ValidOrgName(org.Name); err != nil {
			top.errorf("name", "%v", err)
		}
		if stem := orgFileStem(file); stem != org.Name {
			top.errorf("name", "%q must equal the file's base name %q", org.Name, stem)
		}
	}

	if s := top.str("default_role"); s != "" {
		org.DefaultRole = parseRole(top, "default_role", s, org.DefaultRole)
	}

	org.SSO = readSSO(top, r, filepath.Dir(file), publicURL, org.Name)
	return org
}

// readSSO reads the sso mapping; dir is the org file's absolute folder.
func readSSO(top *object, r reader, dir, publicURL, name string) SSO {
	sso := SSO{Mode: ModeEnforced, SessionTimeout: DefaultSessionTimeout}
	o := top.sub("sso", ssoKeys...)
	if o == nil {
		return sso
	}
	sso.Enabled = o.boolean("enabled")

	if m := o.str("mode"); m != "" {
		if m != ModeEnforced && m != ModeOptional {
			o.errorf("mode", "unknown mode %q (want enforced or optional)", m)
		}
		sso.Mode = m
	}

	sso.Protocol = o.str("protocol")
	switch sso.Protocol {
	case ProtocolOIDC, ProtocolSAML:
	case "":
		if sso.Enabled {
			r.errorf(o.keyLine("protocol"), "%s is required when sso.enabled is true", o.name("protocol"))
		}
	default:
		o.errorf("protocol", "unknown protocol %q (want oidc or saml)", sso.Protocol)
	}

	sso.OIDC = readOIDC(o, dir, sso.Enabled && sso.Protocol == ProtocolOIDC)
	sso.SAML = readSAML(o, dir, sso.Enabled && sso.Protocol == ProtocolSAML, publicURL, name)

	sso.SessionTimeout = o.duration("session_timeout", DefaultSessionTimeout)
	if sso.SessionTimeout < MinSessionTimeout || sso.SessionTimeout > MaxSessionTimeout {
		o.errorf("session_timeout", "%s is outside the allowed range 5m .. 2160h", o.str("session_timeout"))
		sso.SessionTimeout = DefaultSessionTimeout
	}

	domains, lines := o.strsLines("email_domains")
	for i, d := range domains {
		d = strings.ToLower(d)
		if strings.ContainsAny(d, "@/ \t") || strings.Trim(d, ".") != d {
			r.errorf(lines[i], "%s: %q is not a domain name", o.name("email_domains"), d)
		}
		sso.EmailDomains = append(sso.EmailDomains, d)
	}
	sso.ExternalCollaborators = o.strs("external_collaborators")

	var rolesOK bool
	sso.RoleMapping, rolesOK = readMapping(o, "role_mapping", false)
	if rolesOK && len(sso.RoleMapping.Rules) > 0 && !hasAdmin(sso.RoleMapping.Rules) {
		r.errorf(o.keyLine("role_mapping"), "%s needs at least one rule with role admin", o.name("role_mapping"))
	}
	sso.ResourceGroupMapping, _ = readMapping(o, "resource_group_mapping", true)
	return sso
}

// readOIDC reads sso.oidc (nil when absent). inUse: SSO is enabled with
// protocol oidc, so the block and its required keys must be present.
func readOIDC(sso *object, dir string, inUse bool) *OIDC {
	o := sso.sub("oidc", oidcKeys...)
	if o == nil {
		if inUse && !sso.has("oidc") {
			sso.r.errorf(sso.keyLine("protocol"), "%s is required when sso.protocol is oidc", sso.name("oidc"))
		}
		return nil
	}
	c := &OIDC{
		Issuer:          o.str("issuer"),
		ClientID:        o.str("client_id"),
		ClientSecretEnv: o.str("client_secret_env"),
		Scopes:          DefaultScopes(),
		TokenAuthMethod: AuthClientSecretPost,
	}
	if inUse {
		o.require("issuer")
		o.require("client_id")
	}
	if c.Issuer != "" {
		if err := checkHTTPURL(c.Issuer); err != nil {
			o.errorf("issuer", "%v", err)
		}
	}
	if f := o.str("client_secret_file"); f != "" {
		c.ClientSecretFile = absPath(dir, f)
	}
	if c.ClientSecretEnv != "" && c.ClientSecretFile != "" {
		o.errorf("client_secret_file", "set only one of client_secret_env and client_secret_file")
	}
	if o.has("scopes") {
		c.Scopes = o.strs("scopes")
		if !contains(c.Scopes, "openid") {
			o.errorf("scopes", "must include openid")
		}
	}
	if m := o.str("token_endpoint_auth_method"); m != "" {
		if m != AuthClientSecretPost && m != AuthClientSecretBasic {
			o.errorf("token_endpoint_auth_method", "unknown method %q (want client_secret_post or client_secret_basic)", m)
		}
		c.TokenAuthMethod = m
	}
	return c
}

// readSAML reads sso.saml (nil when absent). inUse: SSO is enabled with
// protocol saml, so an IdP source is required and its files must exist.
func readSAML(sso *object, dir string, inUse bool, publicURL, name string) *SAML {
	o := sso.sub("saml", samlKeys...)
	if o == nil {
		if inUse && !sso.has("saml") {
			sso.r.errorf(sso.keyLine("protocol"), "%s is required when sso.protocol is saml", sso.name("saml"))
		}
		return nil
	}
	s := &SAML{
		IdPMetadataURL: o.str("idp_metadata_url"),
		SignOnURL:      o.str("sign_on_url"),
		IdPEntityID:    o.str("idp_entity_id"),
		SPEntityID:     o.str("sp_entity_id"),
		ClockSkew:      o.duration("clock_skew", DefaultSAMLClockSkew),
	}
	if s.SPEntityID == "" {
		s.SPEntityID = publicURL + "/organizations/" + name + "/saml/metadata"
	}
	files := []struct {
		key string
		dst *string
	}{{"idp_metadata_file", &s.IdPMetadataFile}, {"certificate_file", &s.CertificateFile}}
	for _, f := range files {
		if p := o.str(f.key); p != "" {
			*f.dst = absPath(dir, p)
			if inUse {
				checkFile(o, f.key, *f.dst)
			}
		}
	}
	for _, k := range []string{"idp_metadata_url", "sign_on_url"} {
		if u := o.str(k); u != "" {
			if err := checkHTTPURL(u); err != nil {
				o.errorf(k, "%v", err)
			}
		}
	}
	sources := 0
	for _, set := range []bool{s.IdPMetadataFile != "", s.IdPMetadataURL != "", s.SignOnURL != "" || s.CertificateFile != ""} {
		if set {
			sources++
		}
	}
	switch {
	case sources > 1:
		o.r.errorf(o.line, "%s: set only one of idp_metadata_file, idp_metadata_url, or sign_on_url with certificate_file", o.path)
	case s.SignOnURL != "" && s.CertificateFile == "":
		o.r.errorf(o.keyLine("sign_on_url"), "%s is required with sign_on_url", o.name("certificate_file"))
	case s.CertificateFile != "" && s.SignOnURL == "":
		o.r.errorf(o.keyLine("certificate_file"), "%s is required with certificate_file", o.name("sign_on_url"))
	case sources == 0 && inUse:
		o.r.errorf(o.line, "%s needs idp_metadata_file, idp_metadata_url, or sign_on_url with certificate_file", o.path)
	case s.SignOnURL != "" && s.IdPEntityID == "" && inUse:
		// Without metadata, the issuer the assertions must carry is unknown.
		o.r.errorf(o.keyLine("sign_on_url"), "%s is required with sign_on_url (the issuer the IdP's assertions carry)", o.name("idp_entity_id"))
	}
	return s
}

// readMapping reads sso.<k>: {attribute, rules: [{value, role[, resource_group]}]}.
// groups: the rules are resource-group rules, which need resource_group.
// rolesOK is false when a rule's role is missing or unknown.
func readMapping(sso *object, k string, groups bool) (m Mapping, rolesOK bool) {
	o := sso.sub(k, "attribute", "rules")
	if o == nil {
		return m, true
	}
	rolesOK = true
	ruleKeys := []string{"value", "role"}
	if groups {
		ruleKeys = append(ruleKeys, "resource_group")
	}
	m.Attribute = o.str("attribute")
	for i, n := range o.seq("rules") {
		if n.Kind != yaml.MappingNode {
			o.r.errorf(n.Line, "%s[%d] must be a mapping", o.name("rules"), i)
			rolesOK = false
			continue
		}
		ro := o.r.object(n, fmt.Sprintf("%s[%d]", o.name("rules"), i), n.Line, ruleKeys...)
		rule := Rule{Value: ro.str("value")}
		ro.require("value")
		ro.require("role")
		if s := ro.str("role"); s == "" || !role.Valid(s) {
			rolesOK = false
		}
		if s := ro.str("role"); s != "" {
			rule.Role = parseRole(ro, "role", s, role.NoAccess)
		}
		if groups {
			ro.require("resource_group")
			rule.ResourceGroup = ro.str("resource_group")
		}
		m.Rules = append(m.Rules, rule)
	}
	if len(m.Rules) > 0 && m.Attribute == "" {
		o.require("attribute")
	}
	return m, rolesOK
}

// parseRole parses the role s found at key k, reporting an unknown one.
func parseRole(o *object, k, s string, def role.Role) role.Role {
	r, err := role.Parse(s)
	if err != nil {
		o.errorf(k, "%v", err)
		return def
	}
	return r
}

func hasAdmin(rules []Rule) bool {
	for _, r := range rules {
		if r.Role == role.Admin {
			return true
		}
	}
	return false
}

// ClientSecret returns the client secret from ClientSecretEnv or
// ClientSecretFile (trimmed of surrounding white space), "" with a nil error
// when neither is configured, or an error naming the missing source.
func (c *OIDC) ClientSecret() (string, error) {
	return readSecret(c.ClientSecretEnv, c.ClientSecretFile)
}
