package idp

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/role"
	"github.com/ssogate/ssogate/store"
)

// Attributes are the user attributes an IdP asserted at login, read by
// role_mapping and resource_group_mapping (spec section 3).
type Attributes interface {
	// Values returns the string values of the attribute name (an OIDC
	// claim dot path, or a SAML attribute Name); nil when absent.
	Values(name string) []string
}

// Claims are OIDC claims (ID token, then userinfo; OIDC Core 1.0 section
// 5.1) as decoded from JSON.
//
// Values resolves a dot path through nested objects: "groups",
// "realm_access.roles". A key that itself contains dots (a URI claim name
// such as "https://example.com/groups") is matched whole first. A string
// gives one value; an array gives its strings, numbers and booleans as
// text; other values give none.
type Claims map[string]any

// Values implements Attributes.
func (c Claims) Values(path string) []string { return claimValues(map[string]any(c), path) }

func claimValues(m map[string]any, path string) []string {
	if v, ok := m[path]; ok {
		return flatten(v)
	}
	for i := 0; i < len(path); i++ {
		if path[i] != '.' {
			continue
		}
		if sub, ok := m[path[:i]].(map[string]any); ok {
			if vs := claimValues(sub, path[i+1:]); vs != nil {
				return vs
			}
		}
	}
	return nil
}

func flatten(v any) []string {
	switch v := v.(type) {
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := scalar(e); ok {
				out = append(out, s)
			}
		}
		return out
	case []string:
		return v
	}
	if s, ok := scalar(v); ok {
		return []string{s}
	}
	return nil
}

func scalar(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}

// SAMLAttributes maps a SAML attribute Name (or its URI form) to its values
// (SAML 2.0 Core section 2.7.3.1). Values looks the name up exactly.
type SAMLAttributes map[string][]string

// Values implements Attributes.
func (a SAMLAttributes) Values(name string) []string { return a[name] }

// MapRole returns the most privileged role of the rules of m whose value is
// among the attribute's values (exact, case-sensitive match), and whether
// any rule matched.
func MapRole(m config.Mapping, attrs Attributes) (role.Role, bool) {
	if m.Attribute == "" || len(m.Rules) == 0 {
		return role.NoAccess, false
	}
	values := attrs.Values(m.Attribute)
	best, matched := role.NoAccess, false
	for _, r := range m.Rules {
		if slices.Contains(values, r.Value) && (!matched || r.Role > best) {
			best, matched = r.Role, true
		}
	}
	return best, matched
}

// MapResourceGroups returns, for every resource group with a matching rule
// of m, the most privileged matching role; nil when none match.
func MapResourceGroups(m config.Mapping, attrs Attributes) map[string]role.Role {
	if m.Attribute == "" || len(m.Rules) == 0 {
		return nil
	}
	values := attrs.Values(m.Attribute)
	var out map[string]role.Role
	for _, r := range m.Rules {
		if !slices.Contains(values, r.Value) {
			continue
		}
		if out == nil {
			out = map[string]role.Role{}
		}
		if cur, ok := out[r.ResourceGroup]; !ok || r.Role > cur {
			out[r.ResourceGroup] = r.Role
		}
	}
	return out
}

// applyMapping returns the membership of user in org after an SSO login
// (spec section 6). existing is the current membership, nil for a new
// member (the join link). With role_mapping rules, the role is the most
// privileged match, else existing's invite_role, else "" (the org's
// default_role): synced at every login. Without rules the role is kept.
// Resource-group mapping is additive: a mapped group role raises the
// member's role in that group and nothing is removed. existing is not
// modified.
func applyMapping(sso config.SSO, org, user string, existing *store.Membership, attrs Attributes) store.Membership {
	m := store.Membership{Org: org, User: user}
	if existing != nil {
		m = *existing
		m.ResourceGroups = maps.Clone(existing.ResourceGroups)
	}
	if len(sso.RoleMapping.Rules) > 0 {
		if r, ok := MapRole(sso.RoleMapping, attrs); ok {
			m.Role = r.String()
		} else {
			m.Role = m.InviteRole
		}
	}
	for group, r := range MapResourceGroups(sso.ResourceGroupMapping, attrs) {
		if cur, err := role.Parse(m.ResourceGroups[group]); err == nil && cur >= r {
			continue
		}
		if m.ResourceGroups == nil {
			m.ResourceGroups = map[string]string{}
		}
		m.ResourceGroups[group] = r.String()
	}
	return m
}

// emailDomain returns the lower-cased domain of an address, "" when it has
// no "@" or an empty side.
func emailDomain(email string) string {
	i := strings.LastIndexByte(email, '@')
	if i <= 0 || i == len(email)-1 {
		return ""
	}
	return store.Fold(email[i+1:])
}

// sameEmail compares two addresses: the local parts exactly, the domains
// ignoring case (RFC 5321 section 2.4).
func sameEmail(a, b string) bool {
	i, j := strings.LastIndexByte(a, '@'), strings.LastIndexByte(b, '@')
	if i <= 0 || j <= 0 {
		return false
	}
	// ASCII case only: Unicode folding would let "x@\u212Aontoso.example"
	// (Kelvin sign) stand for "x@kontoso.example".
	return a[:i] == b[:j] && store.Fold(a[i+1:]) == store.Fold(b[j+1:])
}
