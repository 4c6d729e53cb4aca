package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/ssogate/ssogate/config"
)

// TestProviderMatchesQuickstartConfig: the provider's defaults (issuer,
// client, secret, redirect URI) are what ssogate.yaml and orgs/acme.yaml
// of this folder expect, so that ../OIDC.md works as written.
func TestProviderMatchesQuickstartConfig(t *testing.T) {
	cfg, err := config.Load("ssogate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	oidc := cfg.Org("acme").SSO.OIDC
	secret, err := oidc.ClientSecret()
	if err != nil {
		t.Fatal(err)
	}
	if oidc.Issuer != "http://"+defaultAddr || oidc.ClientID != defaultClientID ||
		cfg.Gateway.PublicURL+"/organizations/acme/oidc/consume" != defaultRedirectURI {
		t.Errorf("acme.yaml has issuer %s, client %s, redirect URI on %s; the provider serves %s, %s, %s",
			oidc.Issuer, oidc.ClientID, cfg.Gateway.PublicURL, defaultAddr, defaultClientID, defaultRedirectURI)
	}
	b, err := os.ReadFile("demo-client-secret")
	if err != nil || strings.TrimSpace(string(b)) != secret {
		t.Errorf("demo-client-secret does not hold acme's client secret")
	}
}

// TestProviderServesDiscovery starts the provider on a free port.
func TestProviderServesDiscovery(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--client-secret-file", "demo-client-secret"}, io.Discard, ready)
	}()
	var issuer string
	select {
	case issuer = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	resp, err := http.Get(issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Issuer  string   `json:"issuer"`
		Methods []string `json:"code_challenge_methods_supported"`
	}
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil || doc.Issuer != issuer || !strings.Contains(strings.Join(doc.Methods, " "), "S256") {
		t.Errorf("discovery: %+v, %v", doc, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}
