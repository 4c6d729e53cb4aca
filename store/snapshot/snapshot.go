// Package snapshot reads and writes the store snapshot format of spec
// section 4 (the file that `serve --state`, `eval --state` and `import`
// take): memberships, SSO sessions and catalog entries in YAML.
package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ssogate/ssogate/role"
	"github.com/ssogate/ssogate/store"
)

// Snapshot is the whole content of a state file.
type Snapshot struct {
	Memberships []store.Membership `yaml:"memberships"`
	Sessions    []store.Session    `yaml:"sessions"`
	Resources   []store.Resource   `yaml:"resources"`
}

// ResourceTypes are the catalog types of spec section 4.
var ResourceTypes = []string{"model", "dataset", "space"}

// Read parses and validates the snapshot at path. Errors name the file, the
// line and the field ("state.yaml:7: memberships[1].role: unknown role ...");
// every problem found is reported, joined by newlines.
func Read(path string) (*Snapshot, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading state: %w", err)
	}
	return Parse(path, raw)
}

// Parse is Read on bytes; name is used in error messages.
func Parse(name string, raw []byte) (*Snapshot, error) {
	var s Snapshot
	if len(bytes.TrimSpace(raw)) == 0 {
		return &s, nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			msgs := make([]string, len(te.Errors))
			for i, m := range te.Errors {
				msgs[i] = yamlProblem(name, m)
			}
			return nil, errors.New(strings.Join(msgs, "\n"))
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if problems := s.validate(name, &doc); len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	return &s, nil
}

// validate checks roles, resource types, visibilities and required fields.
func (s *Snapshot) validate(name string, doc *yaml.Node) []string {
	var out []string
	bad := func(section string, i int, field, msg string) {
		out = append(out, fmt.Sprintf("%s:%d: %s[%d].%s: %s", name, line(doc, section, i, field), section, i, field, msg))
	}
	checkRole := func(section string, i int, field, r string) {
		if r != "" && !role.Valid(r) {
			bad(section, i, field, fmt.Sprintf("unknown role %q", r))
		}
	}
	for i, m := range s.Memberships {
		if m.Org == "" {
			bad("memberships", i, "org", "required")
		}
		if m.User == "" {
			bad("memberships", i, "user", "required")
		} else if msg := badUserID(m.User); msg != "" {
			bad("memberships", i, "user", msg)
		}
		checkRole("memberships", i, "role", m.Role)
		checkRole("memberships", i, "invite_role", m.InviteRole)
		for g, r := range m.ResourceGroups {
			checkRole("memberships", i, "resource_groups", r)
			if g == "" {
				bad("memberships", i, "resource_groups", "empty group name")
			}
		}
	}
	for i, v := range s.Sessions {
		if v.Org == "" {
			bad("sessions", i, "org", "required")
		}
		if v.User == "" {
			bad("sessions", i, "user", "required")
		} else if msg := badUserID(v.User); msg != "" {
			bad("sessions", i, "user", msg)
		}
		if v.AuthenticatedAt.IsZero() {
			bad("sessions", i, "authenticated_at", "required (RFC 3339 time)")
		} else if y := v.AuthenticatedAt.Year(); y < 1970 || y > 2200 {
			bad("sessions", i, "authenticated_at", fmt.Sprintf("year %d is out of range (1970..2200)", y))
		}
	}
	for i, r := range s.Resources {
		if !validType(r.Type) {
			bad("resources", i, "type", fmt.Sprintf("unknown type %q (want model, dataset or space)", r.Type))
		}
		if ns, n, ok := strings.Cut(r.ID, "/"); !ok || ns == "" || n == "" || strings.Contains(n, "/") {
			bad("resources", i, "id", fmt.Sprintf("id %q is not <namespace>/<name>", r.ID))
		}
		if r.Visibility != "public" && r.Visibility != "private" {
			bad("resources", i, "visibility", fmt.Sprintf("visibility %q (want public or private)", r.Visibility))
		}
	}
	return out
}

// badUserID explains why id cannot be a platform user id, or returns "".
// Ids with '/' or control characters could be stored but never addressed
// through the admin API's /members/{user} and /sessions/{user} paths.
func badUserID(id string) string {
	for i := 0; i < len(id); i++ {
		if c := id[i]; c == '/' || c < 0x20 || c == 0x7f {
			return fmt.Sprintf("user id %q contains '/' or a control character", id)
		}
	}
	return ""
}

// yamlProblem turns a yaml.v3 decode message ("line 2: field colour not
// found in type store.Membership") into "name:2: unknown key \"colour\"".
func yamlProblem(name, msg string) string {
	line := ""
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, m, ok := strings.Cut(rest, ": "); ok {
			line, msg = n, m
		}
	}
	if f, ok := strings.CutPrefix(msg, "field "); ok {
		if key, _, ok := strings.Cut(f, " not found in type "); ok {
			msg = fmt.Sprintf("unknown key %q", key)
		}
	}
	if line == "" {
		return name + ": " + msg
	}
	return name + ":" + line + ": " + msg
}

func validType(t string) bool {
	for _, v := range ResourceTypes {
		if v == t {
			return true
		}
	}
	return false
}

// line finds the line of doc.<section>[i].<field>, or of the item, or 0.
func line(doc *yaml.Node, section string, i int, field string) int {
	n := doc
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	sec := child(n, section)
	if sec == nil || sec.Kind != yaml.SequenceNode || i >= len(sec.Content) {
		return 0
	}
	item := sec.Content[i]
	if f := child(item, field); f != nil {
		return f.Line
	}
	return item.Line
}

func child(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for j := 0; j+1 < len(n.Content); j += 2 {
		if n.Content[j].Value == key {
			return n.Content[j+1]
		}
	}
	return nil
}

// Writer is what Apply writes to: any store.Store satisfies it.
type Writer interface {
	PutMembership(ctx context.Context, m store.Membership) error
	PutSession(ctx context.Context, s store.Session) error
	PutResource(ctx context.Context, r store.Resource) error
}

// Apply writes every record of s to w, stopping at the first error, which
// it returns wrapped with the record it concerns. Records written before
// the error stay written; every write replaces, so applying again is safe.
// Records are written as they are: a session without expires_at is kept
// until it is deleted (see SetSessionExpiry).
func (s *Snapshot) Apply(ctx context.Context, w Writer) error {
	for i, m := range s.Memberships {
		if err := w.PutMembership(ctx, m); err != nil {
			return fmt.Errorf("memberships[%d]: %w", i, err)
		}
	}
	for i, v := range s.Sessions {
		if err := w.PutSession(ctx, v); err != nil {
			return fmt.Errorf("sessions[%d]: %w", i, err)
		}
	}
	for i, r := range s.Resources {
		if err := w.PutResource(ctx, r); err != nil {
			return fmt.Errorf("resources[%d]: %w", i, err)
		}
	}
	return nil
}

// SetSessionExpiry gives every session without expires_at the expiry
// AuthenticatedAt + store.MaxSessionTimeout, past which no org's
// session_timeout can keep it valid, so that a persistent store drops it
// then. Snapshots evaluated at a fixed clock (eval) must not call it: the
// memory store would drop sessions by the real clock.
func (s *Snapshot) SetSessionExpiry() {
	for i := range s.Sessions {
		if v := &s.Sessions[i]; v.ExpiresAt.IsZero() {
			v.ExpiresAt = v.AuthenticatedAt.Add(store.MaxSessionTimeout)
		}
	}
}
