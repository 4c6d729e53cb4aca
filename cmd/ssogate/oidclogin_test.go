package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssogate/ssogate/internal/oidcop"
)

// useTestIdP starts an OpenID Provider (internal/oidcop) that signs in
// idpUser at once, registers the client hub-acme for publicURL, and
// rewrites g's org file acme to use it (external collaborator u-bob kept).
func useTestIdP(t *testing.T, g *gateway, publicURL string, idpUser oidcop.User) {
	t.Helper()
	var provider http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { provider.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	op, err := oidcop.New(oidcop.Options{
		Issuer:    srv.URL,
		Clients:   []oidcop.Client{{ID: "hub-acme", Secret: oidcSecret, RedirectURIs: []string{publicURL + "/organizations/acme/oidc/consume"}}},
		Users:     []oidcop.User{idpUser},
		AutoLogin: idpUser.ID,
	})
	if err != nil {
		t.Fatal(err)
	}
	provider = op
	writeFile(t, filepath.Join(g.dir, "orgs", "acme.yaml"), fmt.Sprintf(`name: acme
default_role: read
sso:
  enabled: true
  protocol: oidc
  oidc: {issuer: %q, client_id: hub-acme, client_secret_env: SSOGATE_TEST_OIDC_SECRET}
  external_collaborators: [u-bob]
`, srv.URL))
}

// ssoLogin runs the login flow of spec section 6 as a browser would: it
// starts at {publicURL}/organizations/acme/sso/login with the platform
// cookie of token, follows the IdP's redirects, and stops at the redirect
// back to return_to, which it checks. When callbackAddr is not empty the
// IdP's redirect to the callback is sent there instead, as a load
// balancer could send it to another replica.
func ssoLogin(t *testing.T, publicURL, token, callbackAddr string) {
	t.Helper()
	returnTo := publicURL + "/acme/secret-model"
	jar, _ := cookiejar.New(nil)
	pub, _ := url.Parse(publicURL)
	jar.SetCookies(pub, []*http.Cookie{{Name: "hub_session", Value: token, Path: "/"}})
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.String() == returnTo || len(via) > 10 {
				return http.ErrUseLastResponse
			}
			if callbackAddr != "" && strings.HasSuffix(req.URL.Path, "/oidc/consume") {
				req.URL.Host, req.Host = callbackAddr, callbackAddr
			}
			return nil
		}}
	resp, err := client.Get(publicURL + "/organizations/acme/sso/login?return_to=" + url.QueryEscape(returnTo))
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("location") != returnTo {
		t.Fatalf("login ended with %d, location %q, want 302 to %s:\n%s", resp.StatusCode,
			resp.Header.Get("location"), returnTo, strings.TrimSpace(string(body)))
	}
}
