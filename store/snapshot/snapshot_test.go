package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/store/memory"
	"go.yaml.in/yaml/v3"
)

func TestReadAndApply(t *testing.T) {
	s, err := Read("testdata/state.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := memory.New()
	if err := s.Apply(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	ms, err := m.Membership(context.Background(), "ACME", "u-alice")
	if err != nil {
		t.Fatalf("membership: %v", err)
	}
	if ms.Role != "write" || ms.ResourceGroups["vision"] != "read" || ms.InviteRole != "read" {
		t.Errorf("membership = %+v", ms)
	}
	sess, err := m.Session(context.Background(), "acme", "u-alice")
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC); !sess.AuthenticatedAt.Equal(want) {
		t.Errorf("authenticated_at = %v, want %v", sess.AuthenticatedAt, want)
	}
	if !sess.ExpiresAt.IsZero() {
		t.Errorf("Apply set expires_at %v; it must write sessions as they are", sess.ExpiresAt)
	}
	r, err := m.Resource(context.Background(), "model", "Acme/Secret-Model")
	if err != nil {
		t.Fatal(err)
	}
	if r.ResourceGroup != "vision" || r.CreatedBy != "u-alice" || r.Public() {
		t.Errorf("resource = %+v", r)
	}
	if _, err := m.Resource(context.Background(), "dataset", "acme/secret-model"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("lookup with another type: err = %v, want ErrNotFound", err)
	}
}

func TestReadReportsEveryProblemWithLine(t *testing.T) {
	_, err := Read("testdata/bad.yaml")
	if err == nil {
		t.Fatal("bad snapshot accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		"testdata/bad.yaml:2: memberships[0].role: unknown role \"owner\"",
		"testdata/bad.yaml:3: memberships[1].user: required",
		"testdata/bad.yaml:5: sessions[0].authenticated_at: required",
		"testdata/bad.yaml:7: resources[0].type: unknown type \"notebook\"",
		"testdata/bad.yaml:8: resources[1].id: id \"nope\"",
		"testdata/bad.yaml:8: resources[1].visibility",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	cases := map[string]string{
		"unknown key":   "memberships:\n  - {org: acme, user: u, rol: read}\n",
		"bad time":      "sessions:\n  - {org: acme, user: u, authenticated_at: yesterday}\n",
		"bad yaml":      "memberships: [\n",
		"wrong section": "members: []\n",
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse("s.yaml", []byte(in)); err == nil || !strings.Contains(err.Error(), "s.yaml") {
				t.Errorf("err = %v, want an error naming s.yaml", err)
			}
		})
	}
}

func TestProblemsAreFileLine(t *testing.T) {
	for in, want := range map[string]string{
		"memberships:\n  - {org: acme, user: u, colour: red}\n":                             `s.yaml:2: unknown key "colour"`,
		"sessions:\n  - {org: acme, user: u, authenticated_at: \"1500-01-01T00:00:00Z\"}\n": "s.yaml:2: sessions[0].authenticated_at: year 1500 is out of range",
		"memberships:\n  - {org: acme, user: u/slash}\n":                                    "s.yaml:2: memberships[0].user: user id \"u/slash\" contains '/'",
	} {
		_, err := Parse("s.yaml", []byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want %q", in, err, want)
		}
	}
}

func TestSetSessionExpiry(t *testing.T) {
	at := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	explicit := at.Add(time.Hour)
	s := &Snapshot{Sessions: []store.Session{{AuthenticatedAt: at}, {AuthenticatedAt: at, ExpiresAt: explicit}}}
	s.SetSessionExpiry()
	if got := s.Sessions[0].ExpiresAt; !got.Equal(at.Add(store.MaxSessionTimeout)) {
		t.Errorf("defaulted expires_at = %v", got)
	}
	if got := s.Sessions[1].ExpiresAt; !got.Equal(explicit) {
		t.Errorf("explicit expires_at changed to %v", got)
	}
}

func TestEmptyIsEmpty(t *testing.T) {
	s, err := Parse("s.yaml", []byte("{}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Memberships)+len(s.Sessions)+len(s.Resources) != 0 {
		t.Errorf("snapshot = %+v", s)
	}
}

// Fields longer than store.MaxFieldLen are problems of the snapshot, named
// by file, line and field without their values, in YAML and in JSON, so
// that serve --state and import refuse them before writing anything.
func TestLongFieldsAreProblems(t *testing.T) {
	long := strings.Repeat("x", store.MaxFieldLen+1)
	for field, rec := range map[string]string{
		"memberships[0].user":     `memberships: [{org: acme, user: "` + long + `"}]`,
		"sessions[0].user":        `sessions: [{org: acme, user: "` + long + `", authenticated_at: "2026-06-01T10:00:00Z"}]`,
		"sessions[0].email":       `sessions: [{org: acme, user: u, email: "` + long + `", authenticated_at: "2026-06-01T10:00:00Z"}]`,
		"resources[0].id":         `resources: [{type: model, id: "acme/` + long + `", visibility: private}]`,
		"resources[0].created_by": `resources: [{type: model, id: acme/m, visibility: private, created_by: "` + long + `"}]`,
	} {
		for _, doc := range []string{rec + "\n", yamlToJSON(t, rec)} {
			_, err := Parse("s.yaml", []byte(doc))
			want := "s.yaml:1: " + field + ": "
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "is too long") || len(err.Error()) > 300 {
				t.Errorf("%s: err = %.300v, want %q ... is too long, without the value", field, err, want)
			}
		}
	}
	ok := strings.Repeat("x", store.MaxFieldLen)
	if _, err := Parse("s.yaml", []byte(`sessions: [{org: acme, user: "`+ok+`", email: "`+ok+`", authenticated_at: "2026-06-01T10:00:00Z"}]`+"\n")); err != nil {
		t.Errorf("fields of store.MaxFieldLen bytes: %.300v", err)
	}
}

// yamlToJSON writes the one-line flow-YAML record rec as a JSON snapshot.
func yamlToJSON(t *testing.T, rec string) string {
	t.Helper()
	var v map[string]any
	if err := yaml.Unmarshal([]byte(rec), &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

// Problems quote at most 64 bytes of a value, cut at a character boundary,
// with its length.
func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"owner":                         `"owner"`,
		strings.Repeat("r", 64):         `"` + strings.Repeat("r", 64) + `"`,
		strings.Repeat("r", 100000):     `"` + strings.Repeat("r", 64) + `"...(100000 bytes)`,
		strings.Repeat("r", 63) + "é!!": `"` + strings.Repeat("r", 63) + `"...(67 bytes)`,
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%.80q) = %s, want %s", in, got, want)
		}
	}
	_, err := Parse("s.yaml", []byte("memberships: [{org: acme, user: u, role: \""+strings.Repeat("r", 100000)+"\"}]\n"))
	if err == nil || !strings.Contains(err.Error(), "unknown role") || len(err.Error()) > 300 {
		t.Errorf("a 100 kB role: err = %.300v, want a short unknown-role problem", err)
	}
}
