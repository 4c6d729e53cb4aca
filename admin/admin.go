// Package admin is ssogate's admin HTTP API, served on the HTTP listener
// under /admin/v1/ behind a bearer token from the gateway file
// (admin_token_env or admin_token_file). Without a token the API is
// disabled: every /admin/ path answers 404.
//
// Routes (request and response bodies are JSON):
//
//	GET    /admin/v1/orgs/{org}/members/{user}              the membership
//	PUT    /admin/v1/orgs/{org}/members/{user}              {role, resource_groups, invite_role} → the membership
//	DELETE /admin/v1/orgs/{org}/members/{user}              204
//	GET    /admin/v1/resources/{type}/{namespace}/{name}    the catalog entry
//	PUT    /admin/v1/resources/{type}/{namespace}/{name}    {visibility, resource_group, created_by} → the entry
//	DELETE /admin/v1/resources/{type}/{namespace}/{name}    204
//	GET    /admin/v1/orgs/{org}/sessions                    {"sessions": [...]} sorted by user
//	DELETE /admin/v1/orgs/{org}/sessions                    revoke all: {"revoked": n}
//	DELETE /admin/v1/orgs/{org}/sessions/{user}             revoke one user's: 204
//
// Writes are validated as the config and snapshots are: the org (or the
// resource's namespace) must have an org file, role names are those of
// package role, visibility is public or private, type is model, dataset or
// space. Org names match ignoring case and are stored in the org file's
// spelling. Request bodies are limited to 64 KiB and unknown fields are
// refused. Errors are {"error": code, "detail": text} with status 400
// (bad_request), 401 (unauthorized), 404 (not_found), 405
// (method_not_allowed), 413 (too_large) or 503 (unavailable: the store
// failed; the write was not applied, or, when revoking all sessions, the
// detail says how many were).
package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/store"
)

// MaxBody is the largest request body accepted, in bytes.
const MaxBody = 64 << 10

// Store is what the admin API reads and changes.
type Store interface {
	store.Memberships
	store.Sessions
	store.Catalog
}

// Orgs finds an org by name ignoring case; *config.Config implements it.
type Orgs interface {
	Org(name string) *config.Org
}

// Options configure the API.
type Options struct {
	// Token is the bearer token callers must present; "" disables the API.
	Token string
	Orgs  Orgs
	Store Store
	// Logger receives one record per request (never the token); nil
	// discards them.
	Logger *slog.Logger
}

// API is the admin API's http.Handler; mount it at "/admin/".
type API struct {
	tokenHash [sha256.Size]byte
	enabled   bool
	orgs      Orgs
	store     Store
	logger    *slog.Logger
	mux       *http.ServeMux
}

// New returns the admin API.
func New(o Options) *API {
	a := &API{enabled: o.Token != "", tokenHash: sha256.Sum256([]byte(o.Token)), orgs: o.Orgs, store: o.Store,
		logger: o.Logger, mux: http.NewServeMux()}
	if a.logger == nil {
		a.logger = slog.New(slog.DiscardHandler)
	}
	a.mux.HandleFunc("GET /admin/v1/orgs/{org}/members/{user}", a.getMember)
	a.mux.HandleFunc("PUT /admin/v1/orgs/{org}/members/{user}", a.putMember)
	a.mux.HandleFunc("DELETE /admin/v1/orgs/{org}/members/{user}", a.deleteMember)
	a.mux.HandleFunc("GET /admin/v1/resources/{type}/{namespace}/{name}", a.getResource)
	a.mux.HandleFunc("PUT /admin/v1/resources/{type}/{namespace}/{name}", a.putResource)
	a.mux.HandleFunc("DELETE /admin/v1/resources/{type}/{namespace}/{name}", a.deleteResource)
	a.mux.HandleFunc("GET /admin/v1/orgs/{org}/sessions", a.listSessions)
	a.mux.HandleFunc("DELETE /admin/v1/orgs/{org}/sessions", a.revokeAll)
	a.mux.HandleFunc("DELETE /admin/v1/orgs/{org}/sessions/{user}", a.revokeOne)
	return a
}

// Enabled reports whether a token is configured.
func (a *API) Enabled() bool { return a.enabled }

// ServeHTTP authenticates the caller and routes the request.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	a.serve(sw, r)
	if a.enabled {
		a.logger.Info("admin request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "remote", r.RemoteAddr)
	}
}

func (a *API) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("cache-control", "no-store")
	if !a.enabled {
		writeError(w, &Error{Status: 404, Code: "not_found", Detail: "the admin API is disabled: no admin token is configured"})
		return
	}
	if err := a.authenticate(r); err != nil {
		w.Header().Set("www-authenticate", err.challenge)
		writeError(w, &Error{Status: 401, Code: "unauthorized", Detail: err.detail})
		return
	}
	if _, pattern := a.mux.Handler(r); pattern == "" {
		// Ask the mux whether the path exists with another method.
		probe := &statusWriter{ResponseWriter: discard{h: http.Header{}}}
		a.mux.ServeHTTP(probe, r)
		if probe.status == http.StatusMethodNotAllowed {
			w.Header().Set("allow", probe.Header().Get("allow"))
			writeError(w, &Error{Status: 405, Code: "method_not_allowed", Detail: r.Method + " is not allowed on " + r.URL.Path})
			return
		}
		writeError(w, &Error{Status: 404, Code: "not_found", Detail: "no admin route " + r.URL.Path})
		return
	}
	a.mux.ServeHTTP(w, r)
}

type authError struct{ challenge, detail string }

// authenticate checks "Authorization: Bearer <token>" in constant time.
func (a *API) authenticate(r *http.Request) *authError {
	const realm = `Bearer realm="ssogate-admin"`
	scheme, tok, ok := strings.Cut(r.Header.Get("authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(tok) == "" {
		return &authError{realm, "an Authorization: Bearer <admin token> header is required"}
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	if subtle.ConstantTimeCompare(got[:], a.tokenHash[:]) != 1 {
		return &authError{realm + `, error="invalid_token"`, "the admin token is not valid"}
	}
	return nil
}

// Error is an API error with its HTTP status.
type Error struct {
	Status int    `json:"-"`
	Code   string `json:"error"`
	Detail string `json:"detail,omitempty"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Detail }

func badRequest(format string, args ...any) *Error {
	return &Error{Status: 400, Code: "bad_request", Detail: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *Error {
	return &Error{Status: 404, Code: "not_found", Detail: fmt.Sprintf(format, args...)}
}

// storeFailed reports a store error: the caller's write was not applied.
func storeFailed(err error) *Error {
	return &Error{Status: 503, Code: "unavailable", Detail: err.Error()}
}

func writeError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: 500, Code: "internal", Detail: err.Error()}
	}
	writeJSON(w, e.Status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("content-type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// readJSON decodes the body into v: at most MaxBody bytes, one JSON object,
// no unknown fields.
func readJSON(w http.ResponseWriter, r *http.Request, v any) *Error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			return &Error{Status: 413, Code: "too_large", Detail: fmt.Sprintf("the request body exceeds %d bytes", MaxBody)}
		case errors.Is(err, io.EOF):
			return badRequest("a JSON request body is required")
		}
		return badRequest("request body: %v", err)
	}
	if dec.More() {
		return badRequest("request body: more than one JSON value")
	}
	return nil
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// discard is a ResponseWriter that keeps only headers.
type discard struct{ h http.Header }

func (d discard) Header() http.Header         { return d.h }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}
