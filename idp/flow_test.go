package idp

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/internal/oidcop"
	"github.com/ssogate/ssogate/store"
)

// TestFlowDenyLoginAllow walks spec section 6 end to end: the decision
// path denies with 302 to the login URL, the browser follows it through
// the real OpenID Provider and back to consume, and the decision path
// then allows with the mapped role.
func TestFlowDenyLoginAllow(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)

	deny := h.check("/acme/secret-model?tab=files")
	if got := deny.GetDeniedResponse().GetStatus().GetCode(); got != 302 {
		t.Fatalf("first Check: status %v, want 302 (%v)", got, deny)
	}
	var location string
	for _, hv := range deny.GetDeniedResponse().GetHeaders() {
		if hv.GetHeader().GetKey() == "location" {
			location = hv.GetHeader().GetValue()
		}
	}
	wantPrefix := h.hub.URL + "/organizations/acme/sso/login?return_to="
	if !strings.HasPrefix(location, wantPrefix) {
		t.Fatalf("location %q, want prefix %q", location, wantPrefix)
	}

	// The login redirects to the OP's authorization endpoint with state,
	// nonce and PKCE S256, and sets the browser-binding cookie.
	resp := h.get(location)
	authz, err := resp.Location()
	if resp.StatusCode != http.StatusFound || err != nil || authz.Host != h.opURL.Host {
		t.Fatalf("login: %d to %v, want 302 to the OP", resp.StatusCode, authz)
	}
	q := authz.Query()
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if len(q.Get(k)) < 43 {
			t.Errorf("authorization request %s = %q, want 43+ random characters", k, q.Get(k))
		}
	}
	if q.Get("code_challenge_method") != "S256" || q.Get("response_type") != "code" ||
		q.Get("client_id") != testClientID || q.Get("redirect_uri") != h.hub.URL+"/organizations/acme/oidc/consume" {
		t.Errorf("authorization request %v", q)
	}
	var binding *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "ssogate_login_acme" {
			binding = c
		}
	}
	if binding == nil || !binding.HttpOnly || !binding.Secure || binding.SameSite != http.SameSiteLaxMode ||
		binding.Path != "/organizations/acme/" || binding.MaxAge != 600 {
		t.Errorf("binding cookie %+v, want HttpOnly, Secure, SameSite=Lax, Path=/organizations/acme/, Max-Age=600", binding)
	}

	// The OP signs alice in and sends her back; consume redirects to return_to.
	last, to := h.follow(authz.String(), h.offFlow)
	if last.StatusCode != http.StatusFound || to.String() != h.hub.URL+"/acme/secret-model?tab=files" {
		t.Fatalf("end of login: %d to %v, want 302 to return_to", last.StatusCode, to)
	}
	if got := last.Header.Get("cache-control"); got != "no-store" {
		t.Errorf("consume cache-control %q", got)
	}

	allow := h.check("/acme/secret-model?tab=files")
	if allow.GetOkResponse() == nil || allow.GetStatus().GetCode() != int32(codes.OK) {
		t.Fatalf("Check after login: %v, want allow", allow)
	}
	headers := map[string]string{}
	for _, hv := range allow.GetOkResponse().GetHeaders() {
		headers[hv.GetHeader().GetKey()] = hv.GetHeader().GetValue()
	}
	if headers["x-sso-user"] != "u-alice" || headers["x-sso-role"] != "write" {
		t.Errorf("allow headers %v, want user u-alice with the mapped role write", headers)
	}

	s := h.session("u-alice")
	if s == nil || s.Email != aliceEmail || time.Since(s.AuthenticatedAt) > time.Minute ||
		!s.ExpiresAt.Equal(s.AuthenticatedAt.Add(store.MaxSessionTimeout)) {
		t.Errorf("session %+v", s)
	}
	m := h.membership("u-alice")
	if m.Role != "write" || m.ResourceGroups["vision"] != "write" {
		t.Errorf("membership %+v, want role write and vision: write", m)
	}
	for _, want := range []string{`"msg":"audit"`, `"event":"sso_login"`, `"email_domain":"acme.example"`} {
		if !strings.Contains(h.logs.String(), want) {
			t.Errorf("logs lack %s:\n%s", want, h.logs)
		}
	}
	for _, secret := range []string{testSecret, aliceEmail, q.Get("state"), binding.Value} {
		if strings.Contains(h.logs.String(), secret) {
			t.Errorf("logs hold a secret or the full email %q", secret)
		}
	}
}

// TestJoinMakesMember: the SSO join link makes a non-member a member with
// the mapped role.
func TestJoinMakesMember(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.setPlatformToken(h.platformToken("u-carol", "carol@acme.example"))
	h.op.SetUser(oidcop.User{ID: "idp-alice", Email: "carol@acme.example", EmailVerified: true, Groups: []string{"hub-admins"}})

	last, to := h.login(h.hub.URL + "/organizations/acme/sso/join")
	if last.StatusCode != http.StatusFound || to.String() != h.hub.URL+"/acme" {
		t.Fatalf("join: %d to %v, want 302 to the org page", last.StatusCode, to)
	}
	if m := h.membership("u-carol"); m == nil || m.Role != "admin" {
		t.Errorf("membership %+v, want a new admin member", m)
	}
	if h.session("u-carol") == nil {
		t.Error("no session after join")
	}
	if !strings.Contains(h.logs.String(), `"event":"sso_join"`) {
		t.Errorf("no sso_join audit record:\n%s", h.logs)
	}
}

// TestLoginRefusesNonMember: /sso/login is for members; a non-member is
// told to use the join link and sent nowhere.
func TestLoginRefusesNonMember(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.setPlatformToken(h.platformToken("u-carol", "carol@acme.example"))
	resp := h.get(h.hub.URL + "/organizations/acme/sso/login")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403", resp.StatusCode)
	}
	if h.membership("u-carol") != nil {
		t.Error("a membership was written")
	}
}

// TestLoginWithoutPlatformToken redirects to the hub's login URL.
func TestLoginWithoutPlatformToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.setPlatformToken("")
	resp := h.get(h.hub.URL + "/organizations/acme/sso/login?return_to=/acme")
	if loc := resp.Header.Get("location"); resp.StatusCode != http.StatusFound || loc != h.hub.URL+"/login" {
		t.Fatalf("%d to %q, want 302 to login_url", resp.StatusCode, loc)
	}
}

// TestRoleMapping: the most privileged match wins; without a match the
// invite role, then the default role applies; resource groups only grow.
// The role is synced at every login.
func TestRoleMapping(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		groups []string
		before store.Membership
		role   string
		vision string
	}{
		{"most privileged match", []string{"everyone", "hub-admins", "ml-team"}, store.Membership{Role: "read"}, "admin", ""},
		{"no match: invite role", []string{"other"}, store.Membership{Role: "admin", InviteRole: "contributor"}, "contributor", ""},
		{"no match: default role", nil, store.Membership{Role: "admin"}, "", ""},
		{"resource group raised", []string{"vision-team"}, store.Membership{ResourceGroups: map[string]string{"vision": "read"}}, "", "write"},
		{"resource group kept", []string{"everyone"}, store.Membership{ResourceGroups: map[string]string{"vision": "admin"}}, "read", "admin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			tc.before.Org, tc.before.User = "acme", "u-alice"
			must(t, h.store.PutMembership(context.Background(), tc.before))
			h.op.SetUser(oidcop.User{ID: "idp-alice", Email: aliceEmail, EmailVerified: true, Groups: tc.groups})
			if last, to := h.login(h.hub.URL + "/organizations/acme/sso/login"); to == nil || to.Path != "/acme" {
				t.Fatalf("login ended with %d at %v", last.StatusCode, to)
			}
			m := h.membership("u-alice")
			if m.Role != tc.role || m.ResourceGroups["vision"] != tc.vision {
				t.Errorf("membership %+v, want role %q and vision %q", m, tc.role, tc.vision)
			}
		})
	}
}

// TestTokenEndpointAuthMethod: client_secret_post by default,
// client_secret_basic when the org asks for it (RFC 6749 section 2.3.1).
func TestTokenEndpointAuthMethod(t *testing.T) {
	t.Parallel()
	for _, method := range []string{config.AuthClientSecretPost, config.AuthClientSecretBasic} {
		t.Run(method, func(t *testing.T) {
			h := newHarness(t, func(o *config.Org) { o.SSO.OIDC.TokenAuthMethod = method })
			if _, to := h.login(h.hub.URL + "/organizations/acme/sso/login"); to == nil || to.Path != "/acme" {
				t.Fatalf("login did not complete: %v", to)
			}
			log := h.tokenRequestLog()
			if len(log) != 1 {
				t.Fatalf("%d token requests", len(log))
			}
			tr := log[0]
			inForm, inHeader := tr.form.Get("client_secret") == testSecret, strings.HasPrefix(tr.authorization, "Basic ")
			if (method == config.AuthClientSecretPost) != (inForm && !inHeader) {
				t.Errorf("secret in form %v, in Basic header %v", inForm, inHeader)
			}
			if len(tr.form.Get("code_verifier")) < 43 {
				t.Errorf("token request has no PKCE code_verifier")
			}
		})
	}
}

// TestLogout ends the session; a cross-site request cannot.
func TestLogout(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	if _, to := h.login(h.hub.URL + "/organizations/acme/sso/login"); to == nil {
		t.Fatal("login did not complete")
	}
	logout := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, h.hub.URL+"/organizations/acme/sso/logout", nil)
		if origin != "" {
			req.Header.Set("origin", origin)
		}
		resp, err := h.client.Do(req)
		must(t, err)
		resp.Body.Close()
		return resp
	}
	for _, origin := range []string{"", "https://evil.example", "null"} {
		if resp := logout(origin); resp.StatusCode != http.StatusForbidden || h.session("u-alice") == nil {
			t.Errorf("logout with origin %q: %d, session kept %v; want 403 and the session kept", origin, resp.StatusCode, h.session("u-alice") != nil)
		}
	}
	if resp := logout(h.hub.URL); resp.StatusCode != http.StatusNoContent || h.session("u-alice") != nil {
		t.Fatalf("same-origin logout: %d, session %+v", resp.StatusCode, h.session("u-alice"))
	}
	if got := h.check("/acme/secret-model").GetDeniedResponse().GetStatus().GetCode(); got != 302 {
		t.Errorf("Check after logout: %v, want 302", got)
	}
	if !strings.Contains(h.logs.String(), `"event":"sso_logout"`) {
		t.Error("no sso_logout audit record")
	}
	// A bearer token is not attached by browsers: no origin needed.
	req, _ := http.NewRequest(http.MethodPost, h.hub.URL+"/organizations/acme/sso/logout", nil)
	req.Header.Set("authorization", "Bearer "+h.platformToken("u-alice", aliceEmail))
	resp, err := h.hub.Client().Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("bearer logout: %d, want 204", resp.StatusCode)
	}
}

// TestDiscoveryRetried: an unreachable IdP fails the login with a page
// and no pending login; once it is back, logins work again.
func TestDiscoveryRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	now := time.Now()
	h.flow.oidc.discovery.now = func() time.Time { return now }
	h.setOPDown(true)
	resp := h.get(h.hub.URL + "/organizations/acme/sso/login")
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("with the IdP down: %d, want 502", resp.StatusCode)
	}
	h.setOPDown(false)
	now = now.Add(discoveryRetry)
	if _, to := h.login(h.hub.URL + "/organizations/acme/sso/login"); to == nil || to.Path != "/acme" {
		t.Fatalf("login after the IdP came back did not complete: %v", to)
	}
}

// TestDiscoveryURLAsIssuer: the org may name the discovery document
// instead of the issuer.
func TestDiscoveryURLAsIssuer(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(o *config.Org) { o.SSO.OIDC.Issuer += "/.well-known/openid-configuration" })
	if _, to := h.login(h.hub.URL + "/organizations/acme/sso/login"); to == nil || to.Path != "/acme" {
		t.Fatalf("login did not complete: %v", to)
	}
}

// TestUserinfoFillsMissingClaims: an ID token without email gets the
// email and groups from the userinfo endpoint (OIDC Core section 5.3).
func TestUserinfoFillsMissingClaims(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.setRewrite(func(c map[string]any) string {
		delete(c, "email")
		delete(c, "email_verified")
		delete(c, "groups")
		return h.sign(c)
	})
	if _, to := h.login(h.hub.URL + "/organizations/acme/sso/login"); to == nil || to.Path != "/acme" {
		t.Fatalf("login did not complete: %v\n%s", to, h.logs)
	}
	if s, m := h.session("u-alice"), h.membership("u-alice"); s.Email != aliceEmail || m.Role != "write" {
		t.Errorf("session email %q, role %q: want the userinfo email and the role mapped from its groups", s.Email, m.Role)
	}
}
