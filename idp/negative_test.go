package idp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/internal/oidcop"
)

const loginPath = "/organizations/acme/sso/login"

// toConsume starts a login and stops where the OP sends the browser
// back: it returns the consume URL, code and state included.
func (h *harness) toConsume() *url.URL {
	h.t.Helper()
	resp, loc := h.follow(h.hub.URL+loginPath, h.atConsume)
	if loc == nil {
		h.t.Fatalf("login stopped with %d before reaching consume", resp.StatusCode)
	}
	return loc
}

// fetch GETs u with the browser's cookies, as a browser (html) or an API
// client, and returns the status, content type and body.
func (h *harness) fetch(u string, html bool) (int, string, string) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	must(h.t, err)
	if html {
		req.Header.Set("accept", "text/html")
	} else {
		req.Header.Set("accept", "application/json")
	}
	resp, err := h.client.Do(req)
	must(h.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("content-type"), string(b)
}

// wantFailure asserts a JSON error answer with status and code, and that
// no SSO session was written.
func (h *harness) wantFailure(u string, status int, code string) {
	h.t.Helper()
	got, ctype, body := h.fetch(u, false)
	var e struct{ Error, Detail string }
	if got != status || ctype != "application/json" || json.Unmarshal([]byte(body), &e) != nil || e.Error != code {
		h.t.Errorf("got %d %s %s, want %d with error %q", got, ctype, body, status, code)
	}
	if s := h.session("u-alice"); s != nil {
		h.t.Errorf("a session was written: %+v", s)
	}
}

func withQuery(u *url.URL, edit func(url.Values)) string {
	c := *u
	q := c.Query()
	edit(q)
	c.RawQuery = q.Encode()
	return c.String()
}

func TestStateMissing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	u := h.toConsume()
	h.wantFailure(withQuery(u, func(q url.Values) { q.Del("state") }), http.StatusBadRequest, codeStateMissing)
}

func TestStateMismatched(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	u := h.toConsume()
	h.wantFailure(withQuery(u, func(q url.Values) { q.Set("state", randomToken()) }), http.StatusBadRequest, codeLoginUnknown)
}

// TestStateReplayed: a callback works once, even with its cookies.
func TestStateReplayed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	u := h.toConsume()
	if resp := h.get(u.String()); resp.StatusCode != http.StatusFound {
		t.Fatalf("first consume: %d", resp.StatusCode)
	}
	first := h.session("u-alice")
	if got, _, _ := h.fetch(u.String(), false); got != http.StatusBadRequest {
		t.Errorf("replayed consume: %d, want 400", got)
	}
	if s := h.session("u-alice"); !s.AuthenticatedAt.Equal(first.AuthenticatedAt) {
		t.Errorf("the replay rewrote the session")
	}
}

// TestCallbackInAnotherBrowser: the callback without the binding cookie
// (same platform user, another cookie jar) finds no login.
func TestCallbackInAnotherBrowser(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	u := h.toConsume()
	h.client.Jar, _ = cookiejar.New(nil)
	h.setPlatformToken(h.platformToken("u-alice", aliceEmail))
	h.wantFailure(u.String(), http.StatusBadRequest, codeLoginUnknown)
}

// TestCallbackByAnotherUser: the platform user who finishes must be the
// one who started.
func TestCallbackByAnotherUser(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	u := h.toConsume()
	h.setPlatformToken(h.platformToken("u-bob", aliceEmail))
	h.wantFailure(u.String(), http.StatusForbidden, codeUserMismatch)
}

func TestCodeMissing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	u := h.toConsume()
	h.wantFailure(withQuery(u, func(q url.Values) { q.Del("code") }), http.StatusBadRequest, codeCodeMissing)
}

func TestNonceMismatch(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.setRewrite(func(c map[string]any) string {
		c["nonce"] = randomToken()
		return h.sign(c)
	})
	h.wantFailure(h.toConsume().String(), http.StatusUnauthorized, codeIDTokenInvalid)
}

// TestIDTokenRefused: ID tokens that OIDC Core section 3.1.3.7 rejects.
func TestIDTokenRefused(t *testing.T) {
	t.Parallel()
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	must(t, err)
	h := newHarness(t, nil)
	for _, tc := range []struct {
		name string
		edit func(h *harness, c map[string]any) string
	}{
		{"another audience", func(h *harness, c map[string]any) string {
			c["aud"], c["azp"] = "hub-globex", "hub-globex"
			return h.sign(c)
		}},
		{"several audiences, azp another client", func(h *harness, c map[string]any) string {
			c["aud"], c["azp"] = []string{testClientID, "hub-globex"}, "hub-globex"
			return h.sign(c)
		}},
		{"several audiences, no azp", func(h *harness, c map[string]any) string {
			c["aud"] = []string{testClientID, "hub-globex"}
			delete(c, "azp")
			return h.sign(c)
		}},
		{"expired", func(h *harness, c map[string]any) string {
			c["iat"], c["exp"] = time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-time.Hour).Unix()
			return h.sign(c)
		}},
		{"issued in the future", func(h *harness, c map[string]any) string {
			c["iat"], c["exp"] = time.Now().Add(time.Hour).Unix(), time.Now().Add(2*time.Hour).Unix()
			return h.sign(c)
		}},
		{"another issuer", func(h *harness, c map[string]any) string {
			c["iss"] = "https://idp.evil.example"
			return h.sign(c)
		}},
		{"alg none", func(h *harness, c map[string]any) string {
			return b64json(t, map[string]string{"alg": "none", "typ": "JWT"}) + "." + b64json(t, c) + "."
		}},
		{"HS256 with the client secret", func(h *harness, c map[string]any) string {
			return signWith(t, jose.HS256, []byte(testSecret+testSecret), "", c)
		}},
		{"unknown key", func(h *harness, c map[string]any) string {
			return signWith(t, jose.RS256, otherKey, "unknown-kid", c)
		}},
		{"unknown key with the provider's kid", func(h *harness, c map[string]any) string {
			hdr := unverifiedHeader(t, h.sign(c))
			return signWith(t, jose.RS256, otherKey, hdr["kid"].(string), c)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			must(t, h.store.DeleteSession(context.Background(), "acme", "u-alice"))
			h.setRewrite(func(c map[string]any) string { return tc.edit(h, c) })
			h.wantFailure(h.toConsume().String(), http.StatusUnauthorized, codeIDTokenInvalid)
		})
	}
}

func TestEmailOutsideDomains(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.setPlatformToken(h.platformToken("u-alice", aliceEmail, "alice@other.example"))
	h.op.SetUser(oidcop.User{ID: "idp-alice", Email: "alice@other.example", EmailVerified: true})
	h.wantFailure(h.toConsume().String(), http.StatusForbidden, codeEmailDomain)
}

func TestEmailNotThePlatformUsers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.op.SetUser(oidcop.User{ID: "idp-alice", Email: "bob@acme.example", EmailVerified: true})
	h.wantFailure(h.toConsume().String(), http.StatusForbidden, codeEmailMismatch)
}

// TestEmailDomainCase: the domain compares ignoring case, the local part exactly.
func TestEmailDomainCase(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.op.SetUser(oidcop.User{ID: "idp-alice", Email: "alice@ACME.Example", EmailVerified: true})
	if resp := h.get(h.toConsume().String()); resp.StatusCode != http.StatusFound {
		t.Fatalf("domain in upper case: %d, want 302", resp.StatusCode)
	}
	h2 := newHarness(t, nil)
	h2.op.SetUser(oidcop.User{ID: "idp-alice", Email: "Alice@acme.example", EmailVerified: true})
	h2.wantFailure(h2.toConsume().String(), http.StatusForbidden, codeEmailMismatch)
}

func TestEmailUnverified(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.op.SetUser(oidcop.User{ID: "idp-alice", Email: aliceEmail, EmailVerified: false})
	h.wantFailure(h.toConsume().String(), http.StatusForbidden, codeEmailUnverified)
}

// TestReturnToNeverOffSite: every unsafe return_to ends on the org page.
func TestReturnToNeverOffSite(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for _, rt := range unsafeReturnTo(h.hubURL.Host) {
		t.Run(rt, func(t *testing.T) {
			h.t = t
			_, to := h.login(h.hub.URL + loginPath + "?return_to=" + url.QueryEscape(rt))
			if to == nil || to.String() != h.hub.URL+"/acme" {
				t.Errorf("return_to %q ended at %v, want the org page", rt, to)
			}
		})
	}
}

// TestIdPErrorResponse: error=access_denied ends the login on an
// escaped page (or JSON); the pending login cannot be finished later.
func TestIdPErrorResponse(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	u := h.toConsume()
	bad := withQuery(u, func(q url.Values) {
		q.Del("code")
		q.Set("error", "access_denied")
		q.Set("error_description", `<script>alert("x")</script>`)
	})
	status, ctype, body := h.fetch(bad, true)
	if status != http.StatusForbidden || !strings.HasPrefix(ctype, "text/html") ||
		strings.Contains(body, "<script>") || !strings.Contains(body, "&lt;script&gt;") {
		t.Errorf("HTML answer %d %s:\n%s", status, ctype, body)
	}
	h.wantFailure(bad, http.StatusForbidden, codeIdPError)
	h.wantFailure(u.String(), http.StatusBadRequest, codeLoginUnknown)
}

// TestTokenEndpointFailure: a refused code redemption ends on an error
// with the IdP's message.
func TestTokenEndpointFailure(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	u := h.toConsume()
	must(t, os.WriteFile(h.org.SSO.OIDC.ClientSecretFile, []byte("wrong secret"), 0o600))
	h.wantFailure(u.String(), http.StatusBadGateway, codeTokenEndpoint)
	if _, _, body := h.fetch(u.String(), false); !strings.Contains(body, codeLoginUnknown) {
		t.Errorf("the failed login can be retried: %s", body)
	}
}

func TestClientSecretMissing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(o *config.Org) {
		o.SSO.OIDC.ClientSecretFile, o.SSO.OIDC.ClientSecretEnv = "", "SSOGATE_TEST_UNSET_SECRET"
	})
	status, _, body := h.fetch(h.hub.URL+loginPath, true)
	if status != http.StatusInternalServerError || !strings.Contains(body, "SSOGATE_TEST_UNSET_SECRET") {
		t.Errorf("%d:\n%s", status, body)
	}
}

func TestDiscoveryUnreachable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(o *config.Org) { o.SSO.OIDC.Issuer = "http://127.0.0.1:1" })
	status, _, body := h.fetch(h.hub.URL+loginPath, true)
	if status != http.StatusBadGateway || !strings.Contains(body, "cannot be reached") {
		t.Errorf("%d:\n%s", status, body)
	}
	h.wantFailure(h.hub.URL+loginPath, http.StatusBadGateway, codeIdPUnavailable)
}

// sign signs claims with the OP's own key.
func (h *harness) sign(c map[string]any) string {
	tok, err := h.op.Sign(c)
	must(h.t, err)
	return tok
}

func signWith(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, c map[string]any) string {
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	must(t, err)
	payload, _ := json.Marshal(c)
	obj, err := s.Sign(payload)
	must(t, err)
	out, err := obj.CompactSerialize()
	must(t, err)
	return out
}

func b64json(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	must(t, err)
	return base64.RawURLEncoding.EncodeToString(b)
}

func unverifiedHeader(t *testing.T, raw string) map[string]any {
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
	must(t, err)
	var hdr map[string]any
	must(t, json.Unmarshal(b, &hdr))
	return hdr
}
