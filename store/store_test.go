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
