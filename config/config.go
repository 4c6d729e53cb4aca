// Package config loads and validates ssogate's configuration: the gateway
// file (spec section 2, "ssogate.yaml") and one org file per organisation
// (spec section 3, "orgs/<name>.yaml").
//
// Load reports every problem it finds, each as "file:line: message", so that
// `ssogate validate` can print them all at once. Values in a loaded Config
// have their defaults applied and their relative paths made absolute.
// Secrets (client secrets, the admin token) are not required to load: they
// are read only by the accessor methods that need them.
package config

import (
	"fmt"
	"sort"
	"time"

	"github.com/ssogate/ssogate/role"
)

// Config is a validated gateway file and its org files.
type Config struct {
	Gateway Gateway
	// Orgs are the organisations with an org file, sorted by Name. Names are
	// unique ignoring (ASCII) case.
	Orgs []*Org

	byName map[string]*Org // lower-cased Name → org; nil in hand-built values
}

// New returns a Config of gw and orgs, sorted by Name. It fails with Errors
// when two orgs have names equal ignoring case (e.g. after a hot reload).
func New(gw Gateway, orgs []*Org) (*Config, error) {
	c := &Config{Gateway: gw, Orgs: append([]*Org(nil), orgs...), byName: map[string]*Org{}}
	sort.SliceStable(c.Orgs, func(i, j int) bool { return c.Orgs[i].Name < c.Orgs[j].Name })
	var errs Errors
	for _, o := range c.Orgs {
		k := lowerASCII(o.Name)
		if prev, dup := c.byName[k]; dup {
			errs = append(errs, Problem{File: o.File, Line: o.NameLine,
				Msg: fmt.Sprintf("name: org %q has the same name, ignoring case, as %s", o.Name, prev.File)})
			continue
		}
		c.byName[k] = o
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

// Org returns the org whose Name equals name ignoring ASCII case, or nil.
// Non-ASCII letters never match (e.g. the Kelvin sign does not match "k").
func (c *Config) Org(name string) *Org {
	if c == nil {
		return nil
	}
	if c.byName != nil {
		return c.byName[lowerASCII(name)]
	}
	for _, o := range c.Orgs {
		if equalFoldASCII(o.Name, name) {
			return o
		}
	}
	return nil
}

// Gateway is the gateway file (spec section 2).
type Gateway struct {
	// File is the absolute path of the gateway file.
	File string
	// PublicURL is the hub's origin, scheme://host[:port], e.g.
	// "https://hub.example.test": no trailing slash, no path, no query.
	PublicURL string
	Listen    Listen
	Identity  Identity
	Store     Store
	// OrgsDir is the absolute path of the folder of org files
	// (yaml orgs_dir, default "orgs" next to the gateway file).
	OrgsDir string
	// PolicyDir is the absolute path of a folder of extra Rego modules
	// (yaml policy_dir), or "" for none.
	PolicyDir string
	// AdminToken is the admin API token read from AdminTokenEnv or
	// AdminTokenFile when Load ran, or "" (not configured or not available;
	// call ResolveAdminToken for the reason).
	AdminToken string
	// AdminTokenEnv names the environment variable holding the admin token
	// (yaml admin_token_env).
	AdminTokenEnv string
	// AdminTokenFile is the absolute path of a file holding the admin token
	// (yaml admin_token_file); surrounding white space is ignored.
	AdminTokenFile string
}

// Listen holds the listener addresses, each "host:port".
type Listen struct {
	GRPC string // ext_authz and health; default DefaultGRPCAddr
	HTTP string // login flow, /healthz, /readyz, /metrics; default DefaultHTTPAddr
}

// Identity describes the hub's own login, which SSO sits on top of.
type Identity struct {
	// Issuer is the required "iss" of platform tokens.
	Issuer string
	// Audiences are the accepted "aud" values; at least one.
	Audiences []string
	// JWKSFile is the absolute path of a JWK set file, or "".
	JWKSFile string
	// JWKSURL is the http(s) URL of a JWK set, or "". At most one of
	// JWKSFile and JWKSURL is set; with neither, Metadata is set.
	JWKSURL string
	// Cookie is the name of the platform session cookie (default "hub_session").
	Cookie string
	// LoginURL is where a caller without a platform token is sent
	// (absolute URL, default PublicURL + "/login").
	LoginURL string
	// Metadata locates claims already verified by Envoy's jwt_authn filter
	// in the request's metadata context; both fields empty when unused.
	Metadata Metadata
	// ClockSkew is the leeway for exp/nbf checks (yaml clock_skew, default 60s).
	ClockSkew time.Duration
}

// Metadata names a filter-metadata entry: Namespace (e.g.
// "envoy.filters.http.jwt_authn") and Key (the payload_in_metadata name).
// Both are set, or both are empty.
type Metadata struct{ Namespace, Key string }

// Store selects where memberships, sessions and the catalog live.
type Store struct {
	// Backend is BackendMemory (default), BackendBolt or BackendRedis.
	Backend string
	// Path is the absolute path of the bolt database file (required for bolt).
	Path string
	// Addr is a redis "host:port"; Addrs lists several (cluster or sentinel).
	// Redis needs one of them.
	Addr  string
	Addrs []string
	// MasterName is the redis sentinel master name, "" without sentinel.
	MasterName string
	// Username is the redis ACL user name, "" for none.
	Username string
	// PasswordEnv names the environment variable holding the redis password.
	PasswordEnv string
	// DB is the redis database number (>= 0).
	DB int
	// CacheTTL is how long a local cache may serve store reads
	// (yaml cache_ttl, default 1s; 0 disables the cache).
	CacheTTL time.Duration
}

// Org is one org file (spec section 3).
type Org struct {
	// File is the absolute path of the org file.
	File string
	// NameLine is the line of the name key in File (0 when unknown).
	NameLine int
	// Name is the org's namespace as spelled in the file; its base name
	// without .yaml/.yml equals Name exactly.
	Name string
	// DefaultRole is the role of a member without one (default role.Read).
	DefaultRole role.Role
	SSO         SSO
}

// SSO is an org's single sign-on settings.
type SSO struct {
	// Enabled turns SSO on (default false); when false the org is not
	// enforced at all and its protocol settings are not required.
	Enabled bool
	// Mode is ModeEnforced (default) or ModeOptional.
	Mode string
	// Protocol is ProtocolOIDC or ProtocolSAML; "" only when SSO is disabled.
	Protocol string
	// OIDC and SAML are the protocol blocks, nil when absent from the file.
	// The block named by Protocol is non-nil when Enabled.
	OIDC *OIDC
	SAML *SAML
	// SessionTimeout is how long an SSO session lasts after authentication
	// (default 168h; between 5m and 2160h inclusive).
	SessionTimeout time.Duration
	// EmailDomains are the matching email domains, lower-cased; empty = off.
	EmailDomains []string
	// ExternalCollaborators are member user ids (platform "sub") exempt from SSO.
	ExternalCollaborators []string
	// RoleMapping maps IdP attribute values to org roles; empty when absent.
	RoleMapping Mapping
	// ResourceGroupMapping maps IdP attribute values to resource-group roles.
	ResourceGroupMapping Mapping
}

// OIDC configures an OpenID Connect relying party.
type OIDC struct {
	// Issuer is an absolute http(s) URL: the issuer, or its
	// /.well-known/openid-configuration URL.
	Issuer   string
	ClientID string
	// ClientSecretEnv names an environment variable holding the client
	// secret; ClientSecretFile is the absolute path of a file holding it.
	// At most one is set; see ClientSecret.
	ClientSecretEnv  string
	ClientSecretFile string
	// Scopes are the requested scopes (default openid, email, profile).
	Scopes []string
	// TokenAuthMethod is AuthClientSecretPost (default) or
	// AuthClientSecretBasic (yaml token_endpoint_auth_method).
	TokenAuthMethod string
}

// SAML configures a SAML 2.0 service provider. The IdP is described by
// IdPMetadataFile, IdPMetadataURL, or SignOnURL + CertificateFile.
type SAML struct {
	IdPMetadataFile string // absolute path, or ""
	IdPMetadataURL  string // http(s) URL, or ""
	SignOnURL       string // IdP SSO endpoint (HTTP-Redirect), or ""
	CertificateFile string // absolute path of the IdP signing certificate (PEM), or ""
	// IdPEntityID is the expected issuer of assertions (yaml idp_entity_id);
	// "" means take it from the metadata.
	IdPEntityID string
	// SPEntityID is ssogate's entity ID for this org (default
	// PublicURL + "/organizations/<name>/saml/metadata").
	SPEntityID string
	// ClockSkew is the leeway for assertion validity checks
	// (yaml clock_skew, default 90s).
	ClockSkew time.Duration
}

// Mapping maps values of an IdP attribute to roles.
type Mapping struct {
	// Attribute is a dot path into OIDC claims, or a SAML attribute name or URI.
	Attribute string
	Rules     []Rule
}

// Rule maps one attribute value to a role (and, in a resource-group
// mapping, to a resource group).
type Rule struct {
	Value         string
	Role          role.Role
	ResourceGroup string // only in resource_group_mapping, where it is required
}
