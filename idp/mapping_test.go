package idp

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/role"
	"github.com/ssogate/ssogate/store"
)

func TestClaimsValues(t *testing.T) {
	t.Parallel()
	var c Claims
	must(t, json.Unmarshal([]byte(`{
		"groups": ["a", "b", 3, true, {"x": 1}, null],
		"dept": "ml",
		"realm_access": {"roles": ["admin"], "nested": {"deep": "v"}},
		"https://example.com/groups": ["uri"],
		"https://example.com": {"groups": ["shadowed"]},
		"n": 1.5,
		"obj": {"k": "v"}
	}`), &c))
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"groups", []string{"a", "b", "3", "true"}},
		{"dept", []string{"ml"}},
		{"realm_access.roles", []string{"admin"}},
		{"realm_access.nested.deep", []string{"v"}},
		{"https://example.com/groups", []string{"uri"}},
		{"n", []string{"1.5"}},
		{"obj", nil},
		{"missing", nil},
		{"realm_access.missing", nil},
		{"dept.x", nil},
	} {
		if got := c.Values(tc.path); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Values(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
	saml := SAMLAttributes{"http://schemas.xmlsoap.org/claims/Group": {"g1", "g2"}}
	if got := saml.Values("http://schemas.xmlsoap.org/claims/Group"); len(got) != 2 {
		t.Errorf("SAML Values = %q", got)
	}
}

func TestApplyMapping(t *testing.T) {
	t.Parallel()
	sso := config.SSO{
		RoleMapping: config.Mapping{Attribute: "groups", Rules: []config.Rule{
			{Value: "admins", Role: role.Admin}, {Value: "devs", Role: role.Write}, {Value: "all", Role: role.Read}}},
		ResourceGroupMapping: config.Mapping{Attribute: "groups", Rules: []config.Rule{
			{Value: "vision", ResourceGroup: "vision", Role: role.Read},
			{Value: "vision-leads", ResourceGroup: "vision", Role: role.Admin},
			{Value: "nlp", ResourceGroup: "nlp", Role: role.Write}}},
	}
	noRules := config.SSO{}
	for _, tc := range []struct {
		name     string
		sso      config.SSO
		existing *store.Membership
		groups   []any
		want     store.Membership
	}{
		{"new member, match", sso, nil, []any{"all", "devs"},
			store.Membership{Org: "acme", User: "u", Role: "write"}},
		{"new member, no match: default role", sso, nil, []any{"other"},
			store.Membership{Org: "acme", User: "u"}},
		{"existing, no match: invite role", sso, &store.Membership{Org: "acme", User: "u", Role: "admin", InviteRole: "contributor"}, nil,
			store.Membership{Org: "acme", User: "u", Role: "contributor", InviteRole: "contributor"}},
		{"no rules: role kept", noRules, &store.Membership{Org: "acme", User: "u", Role: "admin"}, []any{"admins"},
			store.Membership{Org: "acme", User: "u", Role: "admin"}},
		{"resource groups: most privileged, additive", sso,
			&store.Membership{Org: "acme", User: "u", Role: "read", ResourceGroups: map[string]string{"nlp": "admin", "old": "read"}},
			[]any{"vision", "vision-leads", "nlp"},
			store.Membership{Org: "acme", User: "u", Role: "", ResourceGroups: map[string]string{"vision": "admin", "nlp": "admin", "old": "read"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before store.Membership
			if tc.existing != nil {
				before = *tc.existing
			}
			got := applyMapping(tc.sso, "acme", "u", tc.existing, Claims{"groups": tc.groups})
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if tc.existing != nil && !reflect.DeepEqual(*tc.existing, before) {
				t.Errorf("existing membership modified: %+v", *tc.existing)
			}
		})
	}
}
