package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/internal/testkeys"
	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/store/memory"
)

// TestMountLoginFlow: the login flow is mounted on the HTTP mux, and an
// IdP that cannot be reached fails a login with a page, not the server.
func TestMountLoginFlow(t *testing.T) {
	dir := t.TempDir()
	k := testkeys.New()
	files := map[string]string{
		"platform-jwks.json": string(k.JWKS),
		"ssogate.yaml": fmt.Sprintf(`public_url: https://hub.example.test
identity: {issuer: %s, audiences: [%s], jwks_file: platform-jwks.json, login_url: https://hub.example.test/login}
`, testkeys.Issuer, testkeys.Audience),
		"orgs/acme.yaml": `name: acme
sso:
  enabled: true
  protocol: oidc
  oidc: {issuer: "http://127.0.0.1:1", client_id: hub-acme, client_secret_env: SSOGATE_TEST_NO_SUCH_SECRET}
`,
		"orgs/globex.yaml": `name: globex
sso:
  enabled: true
  protocol: saml
  saml: {idp_metadata_url: "http://127.0.0.1:1/metadata"}
`,
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(content), 0o600))
	}
	cfg, err := config.Load(filepath.Join(dir, "ssogate.yaml"))
	must(t, err)
	st := memory.New()
	must(t, st.PutMembership(context.Background(), store.Membership{Org: "acme", User: "u-alice"}))
	must(t, st.PutMembership(context.Background(), store.Membership{Org: "globex", User: "u-alice"}))
	mux := httpMux()
	must(t, mountLoginFlow(context.Background(), mux, cfg, st, slog.New(slog.DiscardHandler)))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	do := func(method, path, token string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if token != "" {
			req.Header.Set("authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		must(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("location") + string(b)
	}
	get := func(token string) (int, string) {
		return do(http.MethodGet, "/organizations/acme/sso/login?return_to=/acme", token)
	}
	if status, body := get(""); status != http.StatusFound || !strings.HasPrefix(body, "https://hub.example.test/login<") {
		t.Errorf("anonymous: %d %s, want 302 to login_url", status, body)
	}
	alice := k.Token("u-alice", time.Hour)
	if status, body := get(alice); status != http.StatusInternalServerError || !strings.Contains(body, "SSOGATE_TEST_NO_SUCH_SECRET") {
		t.Errorf("secret missing: %d %s, want 500 naming the variable", status, body)
	}
	t.Setenv("SSOGATE_TEST_NO_SUCH_SECRET", "s3cret")
	if status, body := get(alice); status != http.StatusBadGateway || !strings.Contains(body, "idp_unavailable") {
		t.Errorf("IdP down: %d %s, want 502 idp_unavailable", status, body)
	}
	// SAML: the SP metadata needs no IdP; a login with the metadata URL
	// down is a 502 page; HEAD never starts a login.
	if status, body := do(http.MethodGet, "/organizations/globex/saml/metadata", ""); status != http.StatusOK ||
		!strings.Contains(body, `entityID="https://hub.example.test/organizations/globex/saml/metadata"`) {
		t.Errorf("SAML metadata: %d %s", status, body)
	}
	if status, body := do(http.MethodGet, "/organizations/globex/sso/login", alice); status != http.StatusBadGateway || !strings.Contains(body, "idp_unavailable") {
		t.Errorf("SAML IdP down: %d %s, want 502 idp_unavailable", status, body)
	}
	if status, _ := do(http.MethodHead, "/organizations/globex/sso/login", alice); status != http.StatusMethodNotAllowed {
		t.Errorf("HEAD login: %d, want 405", status)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
