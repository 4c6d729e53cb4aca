// Package oidcop is a small OpenID Provider for ssogate's tests and its
// quickstart, built on zitadel/oidc's certified op package: discovery,
// authorization-code flow with PKCE, token endpoint (client_secret_post and
// client_secret_basic), JWKS and userinfo are the library's; this package
// only supplies an in-memory op.Storage and a one-page login.
//
// It is not a production identity provider: users have no passwords, and
// anyone who reaches its login page can sign in as any configured user.
package oidcop

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// User is an account of the provider. Its claims go into ID tokens and the
// userinfo response (OpenID Connect Core 1.0 section 5.1).
type User struct {
	// ID is the "sub" claim and the name shown on the login page.
	ID string
	// Email and EmailVerified are the "email" and "email_verified" claims;
	// an unverified email is sent with "email_verified": false.
	Email         string
	EmailVerified bool
	// Name is the "name" claim; "" omits it.
	Name string
	// Groups is the "groups" claim (an array); nil omits it.
	Groups []string
	// Claims are further claims, merged over the standard ones.
	Claims map[string]any
}

// Client is a registered confidential client (RFC 6749 section 2.1). It may
// authenticate at the token endpoint with client_secret_post or
// client_secret_basic.
type Client struct {
	ID, Secret string
	// RedirectURIs are the exact redirect_uri values accepted.
	RedirectURIs []string
}

// Options configure a Provider.
type Options struct {
	// Issuer is the absolute URL the Provider is served at (its root), e.g.
	// "http://127.0.0.1:9998". http is allowed.
	Issuer  string
	Clients []Client
	Users   []User
	// AutoLogin, when it names a user, signs that user in as soon as the
	// login page is opened, without a form: handy for curl and tests.
	AutoLogin string
}

// Provider is an OpenID Provider serving discovery
// (/.well-known/openid-configuration), /authorize, /oauth/token, /keys,
// /userinfo and its login page (/login). It is safe for concurrent use.
type Provider struct {
	op      *op.Provider
	storage *storage
	handler http.Handler
}

// New returns a Provider for o with a fresh RSA signing key. It fails when
// the issuer is not a valid http(s) URL.
func New(o Options) (*Provider, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("oidcop: signing key: %w", err)
	}
	s := newStorage(key, o)
	cfg := &op.Config{
		CryptoKey:      sha256.Sum256([]byte(rand.Text())),
		CodeMethodS256: true,
		AuthMethodPost: true,
	}
	prov, err := op.NewProvider(cfg, s, op.StaticIssuer(strings.TrimSuffix(o.Issuer, "/")), op.WithAllowInsecure())
	if err != nil {
		return nil, fmt.Errorf("oidcop: %w", err)
	}
	p := &Provider{op: prov, storage: s}
	mux := http.NewServeMux()
	interceptor := op.NewIssuerInterceptor(prov.IssuerFromRequest)
	mux.Handle("/login", interceptor.HandlerFunc(p.login))
	mux.Handle("/", prov)
	p.handler = mux
	return p, nil
}

// ServeHTTP implements http.Handler.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.handler.ServeHTTP(w, r) }

// SetUser adds u, or replaces the user with u's ID. Tokens issued later
// carry the new claims.
func (p *Provider) SetUser(u User) { p.storage.setUser(u) }

// SetAutoLogin sets Options.AutoLogin; "" shows the login page again.
func (p *Provider) SetAutoLogin(id string) { p.storage.setAutoLogin(id) }

// Sign returns claims as a compact JWS signed with the provider's key, the
// one its /keys endpoint publishes: for tests that tamper with ID tokens.
func (p *Provider) Sign(claims map[string]any) (string, error) {
	k := p.storage.key
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.algorithm, Key: k.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", k.id))
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Demo OpenID Provider: sign in</title></head>
<body><h1>Demo OpenID Provider</h1>
<p>Sign in as (no password: this provider is for demos and tests only):</p>
<form method="post" action="login">
<input type="hidden" name="id" value="{{.ID}}">
{{range .Users}}<p><button type="submit" name="user" value="{{.ID}}">{{.ID}}</button> {{.Email}}{{if not .EmailVerified}} (unverified){{end}}{{if .Groups}} groups: {{range $i, $g := .Groups}}{{if $i}}, {{end}}{{$g}}{{end}}{{end}}</p>
{{end}}</form></body></html>
`))

// login is the page the provider sends the browser to with
// ?authRequestID=...: GET shows one button per user (or signs in
// AutoLogin at once), POST id=...&user=... signs the user in; both then
// redirect to the provider's authorization callback, which redirects to
// the client with the code.
func (p *Provider) login(w http.ResponseWriter, r *http.Request) {
	var id, user string
	switch r.Method {
	case http.MethodGet:
		id, user = r.URL.Query().Get("authRequestID"), p.storage.autoLoginID()
		if user == "" {
			w.Header().Set("content-type", "text/html; charset=utf-8")
			loginPage.Execute(w, struct {
				ID    string
				Users []User
			}{id, p.storage.userList()})
			return
		}
	case http.MethodPost:
		id, user = r.PostFormValue("id"), r.PostFormValue("user")
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := p.storage.completeLogin(id, user); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, op.AuthCallbackURL(p.op)(r.Context(), id), http.StatusFound)
}
