package snapshot

// The first version of this package's parser (two decodes of the whole
// document), kept as the oracle that the streaming readers are compared
// with: same documents accepted, same records.

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ssogate/ssogate/role"
)

// Parse is Read on bytes; name is used in error messages.
func legacyParse(name string, raw []byte) (*Snapshot, error) {
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
				msgs[i] = legacyYAMLProblem(name, m)
			}
			return nil, errors.New(strings.Join(msgs, "\n"))
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if problems := s.legacyValidate(name, &doc); len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	return &s, nil
}

// validate checks roles, resource types, visibilities and required fields.
func (s *Snapshot) legacyValidate(name string, doc *yaml.Node) []string {
	var out []string
	bad := func(section string, i int, field, msg string) {
		out = append(out, fmt.Sprintf("%s:%d: %s[%d].%s: %s", name, legacyLine(doc, section, i, field), section, i, field, msg))
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
		} else if msg := legacyBadUserID(m.User); msg != "" {
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
		} else if msg := legacyBadUserID(v.User); msg != "" {
			bad("sessions", i, "user", msg)
		}
		if v.AuthenticatedAt.IsZero() {
			bad("sessions", i, "authenticated_at", "required (RFC 3339 time)")
		} else if y := v.AuthenticatedAt.Year(); y < 1970 || y > 2200 {
			bad("sessions", i, "authenticated_at", fmt.Sprintf("year %d is out of range (1970..2200)", y))
		}
	}
	for i, r := range s.Resources {
		if !legacyValidType(r.Type) {
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
func legacyBadUserID(id string) string {
	for i := 0; i < len(id); i++ {
		if c := id[i]; c == '/' || c < 0x20 || c == 0x7f {
			return fmt.Sprintf("user id %q contains '/' or a control character", id)
		}
	}
	return ""
}

// yamlProblem turns a yaml.v3 decode message ("line 2: field colour not
// found in type store.Membership") into "name:2: unknown key \"colour\"".
func legacyYAMLProblem(name, msg string) string {
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

func legacyValidType(t string) bool {
	for _, v := range ResourceTypes {
		if v == t {
			return true
		}
	}
	return false
}

// line finds the line of doc.<section>[i].<field>, or of the item, or 0.
func legacyLine(doc *yaml.Node, section string, i int, field string) int {
	n := doc
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	sec := legacyChild(n, section)
	if sec == nil || sec.Kind != yaml.SequenceNode || i >= len(sec.Content) {
		return 0
	}
	item := sec.Content[i]
	if f := legacyChild(item, field); f != nil {
		return f.Line
	}
	return item.Line
}

func legacyChild(n *yaml.Node, key string) *yaml.Node {
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
