package role

import "testing"

func TestParseRoundTrip(t *testing.T) {
	for _, n := range Names() {
		r, err := Parse(n)
		if err != nil {
			t.Fatalf("Parse(%q): %v", n, err)
		}
		if r.String() != n {
			t.Errorf("Parse(%q).String() = %q", n, r.String())
		}
	}
}

func TestOrder(t *testing.T) {
	if !(NoAccess < Read && Read < Contributor && Contributor < Write && Write < Admin) {
		t.Fatal("roles are not ordered no_access < read < contributor < write < admin")
	}
}

func TestParseRejects(t *testing.T) {
	for _, s := range []string{"", "Admin", "owner", "read "} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) accepted", s)
		}
	}
}
