// Package role defines the organisation roles of the hub and their order
// (spec section 5, "Roles"): no_access < read < contributor < write < admin.
package role

import "fmt"

// Role is one of the hub's organisation roles. The zero value is NoAccess.
type Role uint8

// The roles, from least to most privileged.
const (
	NoAccess Role = iota
	Read
	Contributor
	Write
	Admin
)

var names = [...]string{"no_access", "read", "contributor", "write", "admin"}

// String returns the role's name as written in config files and headers.
func (r Role) String() string {
	if int(r) < len(names) {
		return names[r]
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// Parse returns the role named s (exact, lower case). It returns an error
// naming the allowed values when s is not a role.
func Parse(s string) (Role, error) {
	for i, n := range names {
		if n == s {
			return Role(i), nil
		}
	}
	return NoAccess, fmt.Errorf("unknown role %q (want one of no_access, read, contributor, write, admin)", s)
}

// Valid reports whether s names a role.
func Valid(s string) bool {
	_, err := Parse(s)
	return err == nil
}

// Names returns the role names from least to most privileged.
func Names() []string { return append([]string(nil), names[:]...) }
