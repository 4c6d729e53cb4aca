package idp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/extauthz"
	"github.com/ssogate/ssogate/internal/oidcop"
	"github.com/ssogate/ssogate/internal/syncbuf"
	"github.com/ssogate/ssogate/internal/testkeys"
	"github.com/ssogate/ssogate/role"
	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/store/memory"
)

const (
	testClientID = "hub-acme"
	testSecret   = "acme-client-secret"
	aliceEmail   = "alice@acme.example"
)

// harness is one hub and one OpenID Provider, both real HTTP servers:
//
//   - hub: an HTTPS test server whose URL is public_url, serving the login
//     flow (the proxy's routing of /organizations/{org}/sso|oidc/* to
//     ssogate's HTTP listener, collapsed into one server);
//   - op: internal/oidcop (zitadel/oidc's op package) on plain HTTP, with
//     the client hub-acme registered for {public_url}/organizations/acme/oidc/consume;
//   - authz: the decision path (extauthz.Authorizer) on the same memory store;
//   - client: a browser: a cookie jar holding the platform cookie, and no
//     automatic redirects so that tests see every hop.
type harness struct {
	t      *testing.T
	keys   *testkeys.Keys
	op     *oidcop.Provider
	opURL  *url.URL
	hub    *httptest.Server
	hubURL *url.URL
	cfg    *config.Config
	org    *config.Org
	store  *memory.Store
	flow   *Flow
	authz  *extauthz.Authorizer
	client *http.Client
	logs   *syncBuffer

	mu sync.Mutex
	// rewrite, when set, replaces the ID token of the OP's token
	// responses: it gets the original claims and returns a new token.
	rewrite func(claims map[string]any) string
	// tokenRequests are the form and Authorization header of each
	// token request the OP received.
	tokenRequests []tokenRequest
	// opDown makes the OP answer 503 to everything.
	opDown bool
}

type tokenRequest struct {
	form          url.Values
	authorization string
}

// newHarness starts the servers; edit, when not nil, adjusts the org
// before the flow is built.
func newHarness(t *testing.T, edit func(*config.Org)) *harness {
	t.Helper()
	h := &harness{t: t, keys: testkeys.New(), store: memory.New(), logs: &syncBuffer{}}
	opServer := httptest.NewServer(http.HandlerFunc(h.serveOP))
	t.Cleanup(opServer.Close)
	h.opURL, _ = url.Parse(opServer.URL)

	mux := http.NewServeMux()
	h.hub = httptest.NewTLSServer(mux)
	t.Cleanup(h.hub.Close)
	h.hubURL, _ = url.Parse(h.hub.URL)

	op, err := oidcop.New(oidcop.Options{
		Issuer:    opServer.URL,
		Clients:   []oidcop.Client{{ID: testClientID, Secret: testSecret, RedirectURIs: []string{h.hub.URL + "/organizations/acme/oidc/consume"}}},
		Users:     []oidcop.User{{ID: "idp-alice", Email: aliceEmail, EmailVerified: true, Groups: []string{"ml-team", "vision-team"}}},
		AutoLogin: "idp-alice",
	})
	if err != nil {
		t.Fatal(err)
	}
	h.op = op

	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "jwks.json"), h.keys.JWKS, 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "secret"), []byte(testSecret+"\n"), 0o600))
	h.org = &config.Org{Name: "acme", DefaultRole: role.Read, SSO: config.SSO{
		Enabled:  true,
		Mode:     config.ModeEnforced,
		Protocol: config.ProtocolOIDC,
		OIDC: &config.OIDC{Issuer: opServer.URL, ClientID: testClientID,
			ClientSecretFile: filepath.Join(dir, "secret"), Scopes: config.DefaultScopes(),
			TokenAuthMethod: config.AuthClientSecretPost},
		SessionTimeout: config.DefaultSessionTimeout,
		EmailDomains:   []string{"acme.example"},
		RoleMapping: config.Mapping{Attribute: "groups", Rules: []config.Rule{
			{Value: "hub-admins", Role: role.Admin}, {Value: "ml-team", Role: role.Write}, {Value: "everyone", Role: role.Read}}},
		ResourceGroupMapping: config.Mapping{Attribute: "groups", Rules: []config.Rule{
			{Value: "vision-team", ResourceGroup: "vision", Role: role.Write}}},
	}}
	if edit != nil {
		edit(h.org)
	}
	h.cfg, err = config.New(config.Gateway{
		PublicURL: h.hub.URL,
		Identity: config.Identity{Issuer: testkeys.Issuer, Audiences: []string{testkeys.Audience},
			JWKSFile: filepath.Join(dir, "jwks.json"), Cookie: "hub_session",
			LoginURL: h.hub.URL + "/login", ClockSkew: time.Minute},
	}, []*config.Org{h.org})
	must(t, err)

	ctx := context.Background()
	must(t, h.store.PutMembership(ctx, store.Membership{Org: "acme", User: "u-alice", Role: "read"}))
	must(t, h.store.PutResource(ctx, store.Resource{Type: "model", ID: "acme/secret-model", Visibility: "private"}))

	logger := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// Many subtests start logins as one user: a budget of 1000 keeps the
	// limiter on the path without getting in their way (limit_test.go tests it).
	h.flow, err = New(ctx, h.cfg, h.store, Options{Logger: logger, StartBurst: 1000})
	must(t, err)
	h.flow.Mount(mux)
	h.authz, err = extauthz.New(ctx, h.cfg, h.store, extauthz.Options{})
	must(t, err)

	jar, _ := cookiejar.New(nil)
	h.client = &http.Client{
		Transport:     h.hub.Client().Transport,
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
	h.setPlatformToken(h.platformToken("u-alice", aliceEmail))
	return h
}

// platformToken returns a platform token of sub whose verified emails are emails.
func (h *harness) platformToken(sub string, emails ...string) string {
	now := time.Now()
	c := map[string]any{"iss": testkeys.Issuer, "aud": testkeys.Audience, "sub": sub,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	if len(emails) > 0 {
		c["email"], c["email_verified"], c["emails"] = emails[0], true, emails[1:]
	}
	return h.keys.Sign(c)
}

// setPlatformToken puts the platform cookie into the browser ("" removes it).
func (h *harness) setPlatformToken(tok string) {
	c := &http.Cookie{Name: "hub_session", Value: tok, Path: "/", Secure: true}
	if tok == "" {
		c.MaxAge = -1
	}
	h.client.Jar.SetCookies(h.hubURL, []*http.Cookie{c})
}

// serveOP is the OP's HTTP server: the real provider, with the token
// responses optionally rewritten and token requests recorded.
func (h *harness) serveOP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	down, rewrite := h.opDown, h.rewrite
	h.mu.Unlock()
	if down {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	if r.URL.Path != "/oauth/token" {
		h.op.ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(body))
	h.mu.Lock()
	h.tokenRequests = append(h.tokenRequests, tokenRequest{form: form, authorization: r.Header.Get("authorization")})
	h.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(body))
	if rewrite == nil {
		h.op.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	h.op.ServeHTTP(rec, r)
	var resp map[string]any
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &resp) != nil {
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
		return
	}
	raw, _ := resp["id_token"].(string)
	claims, err := unverifiedClaims(raw)
	if err != nil {
		h.t.Errorf("OP token response: %v", err) // not Fatal: this is the server's goroutine
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	resp["id_token"] = rewrite(claims)
	w.Header().Set("content-type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

func (h *harness) tokenRequestLog() []tokenRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]tokenRequest(nil), h.tokenRequests...)
}

func (h *harness) setRewrite(f func(map[string]any) string) {
	h.mu.Lock()
	h.rewrite = f
	h.mu.Unlock()
}

func (h *harness) setOPDown(down bool) {
	h.mu.Lock()
	h.opDown = down
	h.mu.Unlock()
}

// unverifiedClaims decodes a JWS payload without checking it.
func unverifiedClaims(raw string) (map[string]any, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, errors.New("ID token is not a compact JWS")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var c map[string]any
	return c, json.Unmarshal(b, &c)
}

// get requests u with the browser.
func (h *harness) get(u string) *http.Response {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	must(h.t, err)
	req.Header.Set("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	resp, err := h.client.Do(req)
	must(h.t, err)
	resp.Body.Close()
	return resp
}

// follow requests u and then every redirect while stop(next location)
// is false. It returns the last response and its resolved location (nil
// when it is not a redirect).
func (h *harness) follow(u string, stop func(*url.URL) bool) (*http.Response, *url.URL) {
	h.t.Helper()
	for range 20 {
		resp := h.get(u)
		if resp.StatusCode < 300 || resp.StatusCode > 399 {
			return resp, nil
		}
		loc, err := resp.Location()
		must(h.t, err)
		if stop(loc) {
			return resp, loc
		}
		u = loc.String()
	}
	h.t.Fatalf("too many redirects from %s", u)
	return nil, nil
}

// atConsume stops at the OIDC redirect URI: the browser is about to
// bring the code back to the hub.
func (h *harness) atConsume(u *url.URL) bool {
	return u.Host == h.hubURL.Host && strings.HasSuffix(u.Path, "/oidc/consume")
}

// offFlow stops when the browser leaves the login flow and the OP.
func (h *harness) offFlow(u *url.URL) bool {
	return u.Host != h.opURL.Host && !(u.Host == h.hubURL.Host && strings.HasPrefix(u.Path, "/organizations/"))
}

// login walks the whole flow from start (a login URL) and returns the
// last response (a redirect off the flow, or an error page) and where it
// points.
func (h *harness) login(start string) (*http.Response, *url.URL) {
	return h.follow(start, h.offFlow)
}

// check asks the decision path about a browser GET of path by the
// current platform cookie.
func (h *harness) check(path string) *authv3.CheckResponse {
	h.t.Helper()
	var cookie string
	for _, c := range h.client.Jar.Cookies(h.hubURL) {
		if c.Name == "hub_session" {
			cookie = "hub_session=" + c.Value
		}
	}
	resp, err := h.authz.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: path, Host: h.hubURL.Host,
			Headers: map[string]string{"cookie": cookie, "accept": "text/html"},
		}},
	}})
	must(h.t, err)
	return resp
}

func (h *harness) session(user string) *store.Session {
	s, err := h.store.Session(context.Background(), "acme", user)
	if err != nil {
		return nil
	}
	return s
}

func (h *harness) membership(user string) *store.Membership {
	m, err := h.store.Membership(context.Background(), "acme", user)
	if err != nil {
		return nil
	}
	return m
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// syncBuffer collects logs or process output written concurrently.
type syncBuffer = syncbuf.Buffer
