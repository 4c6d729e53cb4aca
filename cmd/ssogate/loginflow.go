package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/idp"
	"github.com/ssogate/ssogate/store"
)

// mountLoginFlow adds the login flow of spec section 6 to mux. It contacts
// no IdP and reads no client secret: both happen when a login needs them.
func mountLoginFlow(ctx context.Context, mux *http.ServeMux, cfg *config.Config, st store.Store, logger *slog.Logger) error {
	f, err := idp.New(ctx, cfg, st, idp.Options{Logger: logger})
	if err != nil {
		return err
	}
	f.Mount(mux)
	return nil
}
