package idp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ssogate/ssogate/config"
)

// TestExampleIdPConfigs: the org files of examples/idp-configs load, and
// the values they tell an IdP administrator to copy are the ones ssogate
// uses: the ACS URL and SP entity ID (SAML), the redirect URI (OIDC).
func TestExampleIdPConfigs(t *testing.T) {
	t.Parallel()
	for _, proto := range []string{config.ProtocolSAML, config.ProtocolOIDC} {
		cfg, err := config.Load(filepath.Join("..", "examples", "idp-configs", proto, "ssogate.yaml"))
		if err != nil {
			t.Fatalf("%s: %v", proto, err)
		}
		if len(cfg.Orgs) != 3 {
			t.Errorf("%s: %d orgs, want Okta, Entra ID and OneLogin", proto, len(cfg.Orgs))
		}
		sp := &serviceProvider{publicURL: cfg.Gateway.PublicURL}
		rp := &relyingParty{publicURL: cfg.Gateway.PublicURL}
		for _, org := range cfg.Orgs {
			b, err := os.ReadFile(org.File)
			must(t, err)
			want := []string{rp.redirectURI(org.Name)}
			if org.SSO.Protocol == config.ProtocolSAML {
				want = []string{sp.acsURL(org.Name), org.SSO.SAML.SPEntityID}
			}
			for _, v := range want {
				if !strings.Contains(string(b), v) {
					t.Errorf("%s does not tell the administrator %s", org.File, v)
				}
			}
		}
	}
}
