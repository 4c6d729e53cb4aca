package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/ssogate/ssogate/admin"
	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/store"
)

// mountAdmin adds the admin API (package admin) to mux under /admin/. Its
// bearer token comes from admin_token_env or admin_token_file; without
// one the API answers 404, and the reason is logged (never the token).
func mountAdmin(_ context.Context, mux *http.ServeMux, cfg *config.Config, st store.Store, logger *slog.Logger) error {
	token, err := cfg.Gateway.ResolveAdminToken()
	switch {
	case err != nil:
		logger.Warn("admin API disabled: the admin token is not available", "error", err)
	case token == "":
		logger.Info("admin API disabled: no admin_token_env or admin_token_file in the gateway file")
	default:
		logger.Info("admin API enabled", "path", "/admin/v1/")
	}
	mux.Handle("/admin/", admin.New(admin.Options{Token: token, Orgs: cfg, Store: st, Logger: logger}))
	return nil
}
