package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/idp"
	"github.com/ssogate/ssogate/store"
)

// mountLoginFlow adds the login flow of spec section 6 to mux: OIDC and
// SAML (docs/login-flow.md, docs/saml.md). It contacts no IdP (OIDC
// discovery, SAML metadata URLs) and reads no client secret or IdP
// certificate file: all happen when a login needs them, so an IdP that
// is down or misconfigured never stops serve.
func mountLoginFlow(ctx context.Context, mux *http.ServeMux, cfg *config.Config, st store.Store, logger *slog.Logger) error {
	f, err := idp.New(ctx, cfg, st, idp.Options{Logger: logger})
	if err != nil {
		return err
	}
	f.Mount(mux)
	return nil
}
