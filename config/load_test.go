package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/ssogate/ssogate/role"
)

func mustLoad(t *testing.T, path string) *Config {
	t.Helper()
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s):\n%v", path, err)
	}
	return c
}

func abs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(filepath.FromSlash(p))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func orgNames(c *Config) []string {
	var names []string
	for _, o := range c.Orgs {
		names = append(names, o.Name)
	}
	return names
}

// TestConformanceCopy loads the copy of the conformance config kept in testdata.
func TestConformanceCopy(t *testing.T) {
	c := mustLoad(t, "testdata/conformance/ssogate.yaml")
	if got, want := orgNames(c), []string{"acme", "globex", "initech"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("orgs = %v, want %v", got, want)
	}
	acme, globex, initech := c.Orgs[0], c.Orgs[1], c.Orgs[2]
	wantAcme := SSO{
		Enabled: true, Mode: ModeEnforced, Protocol: ProtocolOIDC,
		OIDC: &OIDC{Issuer: "https://idp.acme.example", ClientID: "hub-acme",
			ClientSecretEnv: "ACME_OIDC_CLIENT_SECRET", Scopes: []string{"openid", "email", "profile", "groups"},
			TokenAuthMethod: AuthClientSecretPost},
		SessionTimeout:        168 * time.Hour,
		EmailDomains:          []string{"acme.example"},
		ExternalCollaborators: []string{"u-bob"},
		RoleMapping: Mapping{Attribute: "groups", Rules: []Rule{
			{Value: "hub-admins", Role: role.Admin}, {Value: "ml-team", Role: role.Write}, {Value: "everyone", Role: role.Read}}},
		ResourceGroupMapping: Mapping{Attribute: "groups", Rules: []Rule{
			{Value: "vision-team", Role: role.Write, ResourceGroup: "vision"}}},
	}
	if !reflect.DeepEqual(acme.SSO, wantAcme) {
		t.Errorf("acme.SSO =\n%+v\nwant\n%+v", acme.SSO, wantAcme)
	}
	if acme.File != abs(t, "testdata/conformance/orgs/acme.yaml") || acme.DefaultRole != role.Read || acme.NameLine != 3 {
		t.Errorf("acme = %+v", acme)
	}
	wantSAML := &SAML{
		IdPMetadataFile: abs(t, "testdata/conformance/orgs/globex-idp-metadata.xml"),
		SPEntityID:      "https://hub.example.test/organizations/globex/saml/metadata",
		ClockSkew:       90 * time.Second,
	}
	if s := globex.SSO; s.Mode != ModeOptional || s.Protocol != ProtocolSAML || s.SessionTimeout != 12*time.Hour ||
		!reflect.DeepEqual(s.SAML, wantSAML) || s.OIDC != nil {
		t.Errorf("globex.SSO = %+v, SAML %+v", s, s.SAML)
	}
	if s := initech.SSO; s.Enabled || s.Protocol != ProtocolOIDC || s.OIDC == nil || s.OIDC.ClientID != "hub-initech" {
		t.Errorf("initech.SSO = %+v", s)
	}
	gw := c.Gateway
	if gw.PublicURL != "https://hub.example.test" || gw.Identity.JWKSFile != abs(t, "testdata/conformance/platform-jwks.json") ||
		gw.Identity.Metadata != (Metadata{"envoy.filters.http.jwt_authn", "platform_user"}) {
		t.Errorf("gateway = %+v", gw)
	}
}

// TestSharedConformance loads the shared conformance config itself, when
// the project is checked out next to it.
func TestSharedConformance(t *testing.T) {
	p := filepath.Join("..", "..", "shared", "conformance", "config", "ssogate.yaml")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no shared conformance config: %v", err)
	}
	c := mustLoad(t, p)
	if len(c.Orgs) == 0 {
		t.Error("no orgs loaded")
	}
}

// TestDefaults loads a gateway and orgs that set only required keys.
func TestDefaults(t *testing.T) {
	c := mustLoad(t, "testdata/minimal/ssogate.yaml")
	wantGW := Gateway{
		File:      abs(t, "testdata/minimal/ssogate.yaml"),
		PublicURL: "http://localhost:8000",
		Listen:    Listen{GRPC: "127.0.0.1:9191", HTTP: "127.0.0.1:8080"},
		Identity: Identity{Issuer: "hub", Audiences: []string{"hub"},
			JWKSURL: "https://hub.example.test/.well-known/jwks.json", Cookie: "hub_session",
			LoginURL: "http://localhost:8000/login", ClockSkew: 60 * time.Second},
		Store:   Store{Backend: BackendMemory, CacheTTL: time.Second},
		OrgsDir: abs(t, "testdata/minimal/orgs"),
	}
	if !reflect.DeepEqual(c.Gateway, wantGW) {
		t.Errorf("gateway =\n%+v\nwant\n%+v", c.Gateway, wantGW)
	}
	solo := c.Org("solo")
	wantSSO := SSO{Mode: ModeEnforced, SessionTimeout: 168 * time.Hour}
	if solo == nil || solo.DefaultRole != role.Read || !reflect.DeepEqual(solo.SSO, wantSSO) {
		t.Errorf("solo = %+v", solo)
	}
	if o := c.Org("oidc-defaults"); o == nil || !reflect.DeepEqual(o.SSO.OIDC, &OIDC{Issuer: "https://idp.example",
		ClientID: "hub", Scopes: []string{"openid", "email", "profile"}, TokenAuthMethod: AuthClientSecretPost}) {
		t.Errorf("oidc-defaults = %+v", o)
	}
	if o := c.Org("saml-defaults"); o == nil || !reflect.DeepEqual(o.SSO.SAML, &SAML{IdPMetadataURL: "https://idp.example/metadata",
		SPEntityID: "http://localhost:8000/organizations/saml-defaults/saml/metadata", ClockSkew: 90 * time.Second}) {
		t.Errorf("saml-defaults = %+v", o)
	}
}

// TestFull loads a gateway setting every key, and checks values and the
// resolution of relative paths against the file that names them.
func TestFull(t *testing.T) {
	c := mustLoad(t, "testdata/full/ssogate.yaml")
	gw := c.Gateway
	checks := []struct {
		name      string
		got, want any
	}{
		{"PublicURL", gw.PublicURL, "https://hub.example.test:8443"},
		{"Listen", gw.Listen, Listen{GRPC: "0.0.0.0:9000", HTTP: ":8081"}},
		{"JWKSFile", gw.Identity.JWKSFile, abs(t, "testdata/full/keys/jwks.json")},
		{"Audiences", gw.Identity.Audiences, []string{"hub", "hub-api"}},
		{"Cookie", gw.Identity.Cookie, "sid"},
		{"LoginURL", gw.Identity.LoginURL, "https://hub.example.test:8443/signin"},
		{"ClockSkew", gw.Identity.ClockSkew, 2 * time.Minute},
		{"Store", gw.Store, Store{Backend: BackendBolt, Path: abs(t, "testdata/full/data/ssogate.db"), CacheTTL: 250 * time.Millisecond}},
		{"OrgsDir", gw.OrgsDir, abs(t, "testdata/full/orgs")},
		{"PolicyDir", gw.PolicyDir, abs(t, "testdata/full/policies")},
		{"AdminTokenFile", gw.AdminTokenFile, abs(t, "testdata/full/secrets/admin-token")},
		{"AdminToken", gw.AdminToken, "s3cret-admin"},
		// Hidden files, non-YAML files and folders in orgs_dir are skipped.
		{"orgs", orgNames(c), []string{"Umbrella", "aperture", "hooli"}},
	}
	u, h, a := c.Org("umbrella"), c.Org("hooli"), c.Org("aperture")
	if u == nil || h == nil || a == nil {
		t.Fatalf("orgs %v", orgNames(c))
	}
	checks = append(checks, []struct {
		name      string
		got, want any
	}{
		{"umbrella.DefaultRole", u.DefaultRole, role.Contributor},
		{"umbrella.SAML", *u.SSO.SAML, SAML{SignOnURL: "https://idp.umbrella.example/sso",
			CertificateFile: abs(t, "testdata/full/orgs/idp/umbrella.pem"), IdPEntityID: "https://idp.umbrella.example",
			SPEntityID: "https://hub.example.test:8443/organizations/Umbrella/saml/metadata", ClockSkew: 2 * time.Minute}},
		{"umbrella.SessionTimeout", u.SSO.SessionTimeout, 5 * time.Minute},
		{"umbrella.EmailDomains", u.SSO.EmailDomains, []string{"umbrella.example", "lab.umbrella.example"}},
		{"umbrella.RoleMapping", u.SSO.RoleMapping, Mapping{Attribute: "memberOf",
			Rules: []Rule{{Value: "cn=admins", Role: role.Admin}, {Value: "cn=staff", Role: role.NoAccess}}}},
		{"hooli.File", h.File, abs(t, "testdata/full/orgs/hooli.yml")},
		{"hooli.DefaultRole", h.DefaultRole, role.NoAccess},
		{"hooli.Mode", h.SSO.Mode, ModeOptional},
		{"hooli.SessionTimeout", h.SSO.SessionTimeout, 2160 * time.Hour},
		{"hooli.OIDC", *h.SSO.OIDC, OIDC{Issuer: "https://idp.hooli.example/.well-known/openid-configuration",
			ClientID: "hub-hooli", ClientSecretFile: abs(t, "testdata/full/secrets/hooli-client-secret"),
			Scopes: []string{"openid", "groups"}, TokenAuthMethod: AuthClientSecretBasic}},
		{"hooli.ExternalCollaborators", h.SSO.ExternalCollaborators, []string{"u-gavin", "u-jared"}},
		{"hooli.ResourceGroupMapping", h.SSO.ResourceGroupMapping, Mapping{Attribute: "org.teams", Rules: []Rule{
			{Value: "middle-out", Role: role.Write, ResourceGroup: "compression"},
			{Value: "42", Role: role.Read, ResourceGroup: "answers"}}}},
		// Aliases and merge keys.
		{"aperture.RoleMapping", a.SSO.RoleMapping, Mapping{Attribute: "groups",
			Rules: []Rule{{Value: "glados", Role: role.Admin}, {Value: "wheatley", Role: role.Admin}}}},
		{"aperture.ResourceGroupMapping.Attribute", a.SSO.ResourceGroupMapping.Attribute, "groups"},
		{"aperture.Protocol", a.SSO.Protocol, ""},
	}...)
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestOrgIgnoresCase(t *testing.T) {
	c := mustLoad(t, "testdata/full/ssogate.yaml")
	hand := &Config{Orgs: c.Orgs} // built by hand: no index
	tests := []struct {
		name, want string
	}{
		{"Umbrella", "Umbrella"}, {"umbrella", "Umbrella"}, {"UMBRELLA", "Umbrella"},
		{"HoOlI", "hooli"}, {"aperture", "aperture"},
		{"", ""}, {"umbrell", ""}, {"umbrella ", ""}, {"acme", ""},
		{"hooli\u212a", ""},  // Kelvin sign: folds to k in Unicode, not in ASCII
		{"\u212aooli", ""},   // not "kooli" either
		{"aperture\x00", ""}, // no prefix matches
	}
	for _, tt := range tests {
		for _, cfg := range []*Config{c, hand} {
			got := ""
			if o := cfg.Org(tt.name); o != nil {
				got = o.Name
			}
			if got != tt.want {
				t.Errorf("Org(%q) = %q, want %q (indexed %v)", tt.name, got, tt.want, cfg == c)
			}
		}
	}
	if (*Config)(nil).Org("x") != nil {
		t.Error("nil Config found an org")
	}
}

func TestNewRejectsCaseDuplicates(t *testing.T) {
	a, b := &Org{Name: "acme", File: "/o/acme.yaml", NameLine: 2}, &Org{Name: "ACME", File: "/o/ACME.yml", NameLine: 1}
	if _, err := New(Gateway{}, []*Org{a, b}); err == nil {
		t.Fatal("New accepted acme and ACME")
	} else if got := err.Error(); got != `/o/acme.yaml:2: name: org "acme" has the same name, ignoring case, as /o/ACME.yml` {
		t.Errorf("err = %q", got)
	}
	c, err := New(Gateway{}, []*Org{{Name: "b"}, {Name: "a"}})
	if err != nil || !reflect.DeepEqual(orgNames(c), []string{"a", "b"}) || c.Org("B") == nil {
		t.Errorf("New = %v, %v", c, err)
	}
}

func TestLoadOrgBoundaries(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		body string
		want time.Duration
	}{
		{"sso: {session_timeout: 5m}", 5 * time.Minute},
		{"sso: {session_timeout: 2160h}", 2160 * time.Hour},
		{"sso: {session_timeout: 90m}", 90 * time.Minute},
		{"sso: {}", 168 * time.Hour},
	}
	for _, tt := range tests {
		p := filepath.Join(dir, "edge.yaml")
		if err := os.WriteFile(p, []byte("name: edge\n"+tt.body+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		o, err := LoadOrg(p, "")
		if err != nil {
			t.Errorf("%s: %v", tt.body, err)
			continue
		}
		if o.SSO.SessionTimeout != tt.want || o.File != p {
			t.Errorf("%s: SessionTimeout %v, File %s", tt.body, o.SSO.SessionTimeout, o.File)
		}
	}
}

// TestDisabledSSOIsLenient checks that a disabled org needs no protocol
// settings and that its missing SAML files are not checked.
func TestDisabledSSOIsLenient(t *testing.T) {
	p := filepath.Join(t.TempDir(), "off.yaml")
	body := "name: off\nsso:\n  enabled: false\n  protocol: saml\n  saml: {idp_metadata_file: missing.xml}\n"
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := LoadOrg(p, "https://h.test")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(filepath.Dir(p), "missing.xml"); o.SSO.SAML.IdPMetadataFile != want {
		t.Errorf("IdPMetadataFile = %q, want %q", o.SSO.SAML.IdPMetadataFile, want)
	}
}

func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	if err := os.WriteFile(file, []byte("  from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSOGATE_TEST_SECRET", "from-env")
	tests := []struct {
		name    string
		oidc    OIDC
		want    string
		wantErr bool
	}{
		{"none", OIDC{}, "", false},
		{"env", OIDC{ClientSecretEnv: "SSOGATE_TEST_SECRET"}, "from-env", false},
		{"unset env", OIDC{ClientSecretEnv: "SSOGATE_TEST_UNSET_SECRET"}, "", true},
		{"file", OIDC{ClientSecretFile: file}, "from-file", false},
		{"missing file", OIDC{ClientSecretFile: filepath.Join(dir, "nope")}, "", true},
	}
	for _, tt := range tests {
		got, err := tt.oidc.ClientSecret()
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("%s: ClientSecret() = %q, %v", tt.name, got, err)
		}
		gw := Gateway{AdminTokenEnv: tt.oidc.ClientSecretEnv, AdminTokenFile: tt.oidc.ClientSecretFile}
		if got2, err2 := gw.ResolveAdminToken(); got2 != got || (err2 == nil) != (err == nil) {
			t.Errorf("%s: ResolveAdminToken() = %q, %v", tt.name, got2, err2)
		}
	}
	st := Store{PasswordEnv: "SSOGATE_TEST_SECRET"}
	if st.Password() != "from-env" || (&Store{}).Password() != "" {
		t.Error("Store.Password")
	}
}

func TestValidOrgName(t *testing.T) {
	ok := []string{"a", "acme", "Acme-Corp_2.0", "x.y", "apis", "sso-team", "a23456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456"}
	bad := []string{"", ".", "..", "a b", "a/b", "é", "API", "Organizations", "sso", "static", "login",
		"a234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567"}
	for _, n := range ok {
		if err := ValidOrgName(n); err != nil {
			t.Errorf("ValidOrgName(%q) = %v", n, err)
		}
	}
	for _, n := range bad {
		if ValidOrgName(n) == nil {
			t.Errorf("ValidOrgName(%q) accepted", n)
		}
	}
}

func TestIsOrgFile(t *testing.T) {
	for name, want := range map[string]bool{
		"acme.yaml": true, "acme.yml": true, "orgs/acme.yaml": true,
		".acme.yaml": false, "acme.yaml.bak": false, "acme.json": false, "acme.YAML": false,
	} {
		if IsOrgFile(name) != want {
			t.Errorf("IsOrgFile(%q) = %v", name, !want)
		}
	}
}

// TestErrorsAs checks that Load's error can be inspected with errors.As.
func TestErrorsAs(t *testing.T) {
	_, err := Load("testdata/gateways/nokeys/ssogate.yaml")
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 4 {
		t.Fatalf("err = %v", err)
	}
}
