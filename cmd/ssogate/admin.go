package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/store"
)

// mountAdmin adds the admin API to mux.
func mountAdmin(ctx context.Context, mux *http.ServeMux, cfg *config.Config, st store.Store, logger *slog.Logger) error {
	return nil
}
