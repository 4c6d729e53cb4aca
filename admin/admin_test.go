package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/store/memory"
)

const token = "s3cret-admin-token"

func orgs(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.New(config.Gateway{}, []*config.Org{{Name: "Acme"}, {Name: "globex"}})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func seeded(t *testing.T) *memory.Store {
	t.Helper()
	ctx := context.Background()
	st := memory.New()
	now := time.Now()
	for _, u := range []string{"u-c", "u-a", "u-b"} {
		must(t, st.PutSession(ctx, store.Session{Org: "Acme", User: u, AuthenticatedAt: now, ExpiresAt: now.Add(time.Hour)}))
	}
	must(t, st.PutSession(ctx, store.Session{Org: "globex", User: "u-a", AuthenticatedAt: now}))
	must(t, st.PutMembership(ctx, store.Membership{Org: "Acme", User: "u-a", Role: "write"}))
	must(t, st.PutResource(ctx, store.Resource{Type: "model", ID: "Acme/m", Visibility: "private"}))
	return st
}

type call struct {
	method, path, body string
	auth               string // Authorization header; "-" for none
}

func do(t *testing.T, h http.Handler, c call) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
	switch c.auth {
	case "":
		req.Header.Set("authorization", "Bearer "+token)
	case "-":
	default:
		req.Header.Set("authorization", c.auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestRoutes(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		call       call
		wantStatus int
		wantError  string                                          // the "error" code of an error body
		check      func(t *testing.T, st store.Store, body []byte) // after the call
	}{
		{"no credentials", call{"GET", "/admin/v1/orgs/acme/sessions", "", "-"}, 401, "unauthorized", nil},
		{"wrong token", call{"GET", "/admin/v1/orgs/acme/sessions", "", "Bearer nope"}, 401, "unauthorized", nil},
		{"basic credentials", call{"GET", "/admin/v1/orgs/acme/sessions", "", "Basic " + token}, 401, "unauthorized", nil},
		{"scheme ignores case", call{"GET", "/admin/v1/orgs/acme/sessions", "", "bearer " + token}, 200, "", nil},
		{"unknown route", call{"GET", "/admin/v1/nope", "", ""}, 404, "not_found", nil},
		{"wrong method", call{"POST", "/admin/v1/orgs/acme/members/u-a", "{}", ""}, 405, "method_not_allowed", nil},

		{"put member, org ignoring case", call{"PUT", "/admin/v1/orgs/ACME/members/u-new", `{"role":"contributor","resource_groups":{"vision":"write"},"invite_role":"read"}`, ""}, 200, "",
			func(t *testing.T, st store.Store, body []byte) {
				m, err := st.Membership(ctx, "acme", "u-new")
				must(t, err)
				if m.Org != "Acme" || m.Role != "contributor" || m.ResourceGroups["vision"] != "write" || m.InviteRole != "read" {
					t.Errorf("stored %+v", m)
				}
				if !strings.Contains(string(body), `"org": "Acme"`) {
					t.Errorf("response %s", body)
				}
			}},
		{"put member without role (default role)", call{"PUT", "/admin/v1/orgs/acme/members/u-new", `{}`, ""}, 200, "", nil},
		{"put member, unknown role", call{"PUT", "/admin/v1/orgs/acme/members/u-new", `{"role":"owner"}`, ""}, 400, "bad_request", absent("u-new")},
		{"put member, unknown group role", call{"PUT", "/admin/v1/orgs/acme/members/u-new", `{"resource_groups":{"vision":"Admin"}}`, ""}, 400, "bad_request", absent("u-new")},
		{"put member, unknown invite role", call{"PUT", "/admin/v1/orgs/acme/members/u-new", `{"invite_role":"x"}`, ""}, 400, "bad_request", absent("u-new")},
		{"put member, unknown field", call{"PUT", "/admin/v1/orgs/acme/members/u-new", `{"role":"read","colour":"red"}`, ""}, 400, "bad_request", absent("u-new")},
		{"put member, two values", call{"PUT", "/admin/v1/orgs/acme/members/u-new", `{"role":"read"} {}`, ""}, 400, "bad_request", absent("u-new")},
		{"put member, no body", call{"PUT", "/admin/v1/orgs/acme/members/u-new", ``, ""}, 400, "bad_request", absent("u-new")},
		{"put member, body too large", call{"PUT", "/admin/v1/orgs/acme/members/u-new", `{"role":"` + strings.Repeat("r", MaxBody) + `"}`, ""}, 413, "too_large", absent("u-new")},
		{"put member, unknown org", call{"PUT", "/admin/v1/orgs/initech/members/u-new", `{"role":"read"}`, ""}, 404, "not_found", nil},
		// Any user id a store holds (a snapshot may import one) is addressable.
		{"put member, the longest user id", call{"PUT", "/admin/v1/orgs/acme/members/" + strings.Repeat("u", store.MaxFieldLen), `{"role":"read"}`, ""}, 200, "", nil},
		{"delete member, the longest user id", call{"DELETE", "/admin/v1/orgs/acme/members/" + strings.Repeat("u", store.MaxFieldLen), ``, ""}, 204, "", absent(strings.Repeat("u", store.MaxFieldLen))},
		{"put member, user id too long", call{"PUT", "/admin/v1/orgs/acme/members/" + strings.Repeat("u", store.MaxFieldLen+1), `{"role":"read"}`, ""}, 400, "bad_request", absent(strings.Repeat("u", store.MaxFieldLen+1))},
		{"put member, control character", call{"PUT", "/admin/v1/orgs/acme/members/u%01x", `{"role":"read"}`, ""}, 400, "bad_request", nil},
		{"get member", call{"GET", "/admin/v1/orgs/acme/members/u-a", "", ""}, 200, "", nil},
		{"get missing member", call{"GET", "/admin/v1/orgs/acme/members/u-zzz", "", ""}, 404, "not_found", nil},
		{"delete member", call{"DELETE", "/admin/v1/orgs/acme/members/u-a", "", ""}, 204, "", absent("u-a")},
		{"delete missing member", call{"DELETE", "/admin/v1/orgs/acme/members/u-zzz", "", ""}, 204, "", nil},

		{"put resource", call{"PUT", "/admin/v1/resources/dataset/acme/Data", `{"visibility":"public","resource_group":"vision","created_by":"u-a"}`, ""}, 200, "",
			func(t *testing.T, st store.Store, _ []byte) {
				r, err := st.Resource(ctx, "dataset", "acme/data")
				must(t, err)
				if r.ID != "Acme/Data" || !r.Public() || r.ResourceGroup != "vision" || r.CreatedBy != "u-a" {
					t.Errorf("stored %+v", r)
				}
			}},
		{"put resource, unknown type", call{"PUT", "/admin/v1/resources/notebook/acme/x", `{"visibility":"public"}`, ""}, 400, "bad_request", nil},
		{"put resource, bad visibility", call{"PUT", "/admin/v1/resources/model/acme/x", `{"visibility":"internal"}`, ""}, 400, "bad_request", nil},
		{"put resource, missing visibility", call{"PUT", "/admin/v1/resources/model/acme/x", `{}`, ""}, 400, "bad_request", nil},
		{"put resource, unknown namespace", call{"PUT", "/admin/v1/resources/model/initech/x", `{"visibility":"public"}`, ""}, 404, "not_found", nil},
		{"put resource, encoded slash in name", call{"PUT", "/admin/v1/resources/model/acme/a%2Fb", `{"visibility":"public"}`, ""}, 400, "bad_request", nil},
		{"get resource", call{"GET", "/admin/v1/resources/model/ACME/M", "", ""}, 200, "", nil},
		{"delete resource", call{"DELETE", "/admin/v1/resources/model/acme/m", "", ""}, 204, "",
			func(t *testing.T, st store.Store, _ []byte) {
				if _, err := st.Resource(ctx, "model", "acme/m"); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("after delete: %v", err)
				}
			}},

		{"list sessions", call{"GET", "/admin/v1/orgs/acme/sessions", "", ""}, 200, "",
			func(t *testing.T, _ store.Store, body []byte) {
				var out struct{ Sessions []store.Session }
				must(t, json.Unmarshal(body, &out))
				var users []string
				for _, s := range out.Sessions {
					users = append(users, s.User)
				}
				if strings.Join(users, ",") != "u-a,u-b,u-c" {
					t.Errorf("users %v, want u-a,u-b,u-c in order", users)
				}
			}},
		{"list sessions of an org without any", call{"GET", "/admin/v1/orgs/globex/sessions", "", ""}, 200, "", nil},
		{"revoke one", call{"DELETE", "/admin/v1/orgs/acme/sessions/u-b", "", ""}, 204, "",
			func(t *testing.T, st store.Store, _ []byte) {
				if list, _ := st.ListSessions(ctx, "acme"); len(list) != 2 {
					t.Errorf("%d sessions left, want 2", len(list))
				}
			}},
		{"revoke all", call{"DELETE", "/admin/v1/orgs/Acme/sessions", "", ""}, 200, "",
			func(t *testing.T, st store.Store, body []byte) {
				if !strings.Contains(string(body), `"revoked": 3`) {
					t.Errorf("body %s", body)
				}
				if list, _ := st.ListSessions(ctx, "acme"); len(list) != 0 {
					t.Errorf("%d sessions left", len(list))
				}
				if _, err := st.Session(ctx, "globex", "u-a"); err != nil {
					t.Errorf("globex's session was revoked too: %v", err)
				}
			}},
		{"revoke in an unknown org", call{"DELETE", "/admin/v1/orgs/initech/sessions", "", ""}, 404, "not_found", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := seeded(t)
			h := New(Options{Token: token, Orgs: orgs(t), Store: st})
			rec := do(t, h, tc.call)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.wantStatus, rec.Body)
			}
			if tc.wantError != "" {
				var e Error
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code != tc.wantError || e.Detail == "" {
					t.Errorf("body %s, want error %q with a detail", rec.Body, tc.wantError)
				}
			}
			if rec.Code == 401 && !strings.HasPrefix(rec.Header().Get("www-authenticate"), "Bearer ") {
				t.Errorf("401 without a Bearer challenge: %q", rec.Header().Get("www-authenticate"))
			}
			if rec.Code == 405 && rec.Header().Get("allow") == "" {
				t.Error("405 without Allow")
			}
			if tc.check != nil {
				tc.check(t, st, rec.Body.Bytes())
			}
		})
	}
}

// absent checks that the call wrote no membership for user in acme.
func absent(user string) func(t *testing.T, st store.Store, _ []byte) {
	return func(t *testing.T, st store.Store, _ []byte) {
		if _, err := st.Membership(context.Background(), "acme", user); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("membership of %s: err = %v, want none", user, err)
		}
	}
}

func TestDisabledWithoutToken(t *testing.T) {
	h := New(Options{Orgs: orgs(t), Store: seeded(t)})
	if h.Enabled() {
		t.Fatal("enabled without a token")
	}
	for _, auth := range []string{"-", "Bearer ", "Bearer x"} {
		rec := do(t, h, call{"DELETE", "/admin/v1/orgs/acme/sessions", "", auth})
		if rec.Code != 404 {
			t.Errorf("auth %q: status %d, want 404", auth, rec.Code)
		}
	}
}

// failing is a store whose every call fails.
type failing struct{ *memory.Store }

var errDown = errors.New("connection refused")

func (failing) PutMembership(context.Context, store.Membership) error         { return errDown }
func (failing) DeleteSession(context.Context, string, string) error           { return errDown }
func (failing) ListSessions(context.Context, string) ([]store.Session, error) { return nil, errDown }

func TestStoreFailuresAre503(t *testing.T) {
	st := failing{seeded(t)}
	h := New(Options{Token: token, Orgs: orgs(t), Store: st})
	for _, c := range []call{
		{"PUT", "/admin/v1/orgs/acme/members/u-a", `{"role":"read"}`, ""},
		{"DELETE", "/admin/v1/orgs/acme/sessions/u-a", "", ""},
		{"DELETE", "/admin/v1/orgs/acme/sessions", "", ""},
	} {
		rec := do(t, h, c)
		if rec.Code != 503 || !strings.Contains(rec.Body.String(), "connection refused") {
			t.Errorf("%s %s: %d %s", c.method, c.path, rec.Code, rec.Body)
		}
	}
}

func TestLogsNeverCarryTheToken(t *testing.T) {
	var logs bytes.Buffer
	h := New(Options{Token: token, Orgs: orgs(t), Store: seeded(t), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	do(t, h, call{"GET", "/admin/v1/orgs/acme/sessions", "", ""})
	do(t, h, call{"GET", "/admin/v1/orgs/acme/sessions", "", "Bearer " + token + "x"})
	if !strings.Contains(logs.String(), "status=401") || !strings.Contains(logs.String(), "status=200") {
		t.Errorf("expected one record per request:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), token) {
		t.Error("the admin token appears in the log")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
