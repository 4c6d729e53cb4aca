package store

import "testing"

func TestFold(t *testing.T) {
	for in, want := range map[string]string{
		"acme":        "acme",
		"ACME/Secret": "acme/secret",
		"\u212AELVIN": "\u212Aelvin", // the Kelvin sign is not folded to k
		"\u212Aelvin": "\u212Aelvin",
		"Straße/ÄBC":  "straße/Äbc",
		"":            "",
	} {
		if got := Fold(in); got != want {
			t.Errorf("Fold(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRecordsQueryString(t *testing.T) {
	for _, tc := range []struct {
		q    RecordsQuery
		want string
	}{
		{RecordsQuery{Org: "Acme", User: "u-a", Membership: true, Session: true, Type: "model", ID: "acme/M", Resource: true}, "membership and SSO session of u-a in Acme, catalog entry model acme/M"},
		{RecordsQuery{Org: "acme", User: "u-a", Session: true}, "SSO session of u-a in acme"},
		{RecordsQuery{Org: "acme", User: "u-a", Membership: true, Type: "model", ID: "x"}, "membership of u-a in acme"},
		{RecordsQuery{Type: "space", ID: "acme/demo", Resource: true}, "catalog entry space acme/demo"},
		{RecordsQuery{Org: "acme", User: "u-a"}, "no records"},
	} {
		if got := tc.q.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.q, got, tc.want)
		}
	}
}
