// Command oidc-provider is a local OpenID Provider for the ssogate
// quickstart (see ../OIDC.md): acme's "corporate IdP", so that you can walk
// deny, SSO login and allow on one machine. It is zitadel/oidc's certified
// op package with an in-memory store (internal/oidcop). Run it from the
// repository root:
//
//	go run ./examples/quickstart/oidc-provider
//
// It serves http://127.0.0.1:9998 with the client hub-acme (secret in
// demo-client-secret) allowed to redirect to
// http://localhost:8080/organizations/acme/oidc/consume, and four users
// to sign in as, without passwords: alice, carol and dave (verified
// @acme.example emails, groups that acme's role_mapping maps) and eve
// (an address outside acme's email domains).
//
// DEMO ONLY: anyone who reaches it can sign in as anyone.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ssogate/ssogate/internal/oidcop"
)

// users are the demo accounts; their emails match the demo platform
// tokens of `go run ./examples/quickstart/demo token --sub u-<name>`.
var users = []oidcop.User{
	{ID: "alice", Name: "Alice", Email: "alice@acme.example", EmailVerified: true, Groups: []string{"ml-team", "vision-team"}},
	{ID: "carol", Name: "Carol", Email: "carol@acme.example", EmailVerified: true, Groups: []string{"ml-team"}},
	{ID: "dave", Name: "Dave", Email: "dave@acme.example", EmailVerified: true, Groups: []string{"hub-admins"}},
	{ID: "eve", Name: "Eve", Email: "eve@elsewhere.example", EmailVerified: true, Groups: []string{"everyone"}},
}

// Defaults: what ssogate.yaml and orgs/acme.yaml of this folder expect.
const (
	defaultAddr        = "127.0.0.1:9998"
	defaultClientID    = "hub-acme"
	defaultRedirectURI = "http://localhost:8080/organizations/acme/oidc/consume"
)

// defaultSecretFile is demo-client-secret, relative to the repository root.
var defaultSecretFile = filepath.Join("examples", "quickstart", "oidc-provider", "demo-client-secret")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "oidc-provider:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done. ready, when not nil, receives the issuer
// once the provider listens.
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- string) error {
	fs := flag.NewFlagSet("oidc-provider", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", defaultAddr, "listen address")
	issuer := fs.String("issuer", "", "issuer URL (default http://ADDR)")
	clientID := fs.String("client-id", defaultClientID, "client id of the hub")
	secretFile := fs.String("client-secret-file", defaultSecretFile, "file holding the client secret (the same file acme.yaml names)")
	redirect := fs.String("redirect-uri", defaultRedirectURI, "the hub's redirect URI (ssogate's consume endpoint)")
	auto := fs.String("auto-login", "", "sign this user in without showing the login page (alice, carol, dave or eve); handy with curl")
	if err := fs.Parse(args); err != nil {
		return err
	}
	secret, err := os.ReadFile(*secretFile)
	if err != nil {
		return fmt.Errorf("client secret: %w (run from the repository root, or pass --client-secret-file)", err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	if *issuer == "" {
		*issuer = "http://" + ln.Addr().String()
	}
	op, err := oidcop.New(oidcop.Options{
		Issuer:    *issuer,
		Clients:   []oidcop.Client{{ID: *clientID, Secret: strings.TrimSpace(string(secret)), RedirectURIs: []string{*redirect}}},
		Users:     users,
		AutoLogin: *auto,
	})
	if err != nil {
		ln.Close()
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	log.Info("OpenID Provider ready", "issuer", *issuer, "client_id", *clientID, "redirect_uri", *redirect,
		"discovery", *issuer+"/.well-known/openid-configuration", "auto_login", *auto)
	srv := &http.Server{Handler: logRequests(log, op), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if ready != nil {
		ready <- *issuer
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// logRequests logs each request's method and path (never its query: it
// carries codes and state).
func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.Info("request", "method", r.Method, "path", r.URL.Path)
		next.ServeHTTP(w, r)
	})
}
