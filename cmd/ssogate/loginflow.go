package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/store"
)

// mountLoginFlow adds the login flow of spec section 6 to mux.
func mountLoginFlow(ctx context.Context, mux *http.ServeMux, cfg *config.Config, st store.Store, logger *slog.Logger) error {
	return nil
}
