package idp

import (
	"testing"
	"time"
)

func TestStartLimiter(t *testing.T) {
	now := time.Date(2026, 6, 2, 12, 0, 0, 0, time.UTC)
	l := newStartLimiter(func() time.Time { return now }, 0)
	for i := 0; i < startBurst; i++ {
		if !l.allow("acme", "u-a") {
			t.Fatalf("start %d refused within the burst", i+1)
		}
	}
	if l.allow("acme", "u-a") {
		t.Fatal("start beyond the burst allowed")
	}
	if !l.allow("acme", "u-b") || !l.allow("globex", "u-a") {
		t.Fatal("another user or org shares u-a's budget at acme")
	}
	now = now.Add(startEvery)
	if !l.allow("acme", "u-a") {
		t.Fatal("no start allowed after one refill interval")
	}
	if l.allow("acme", "u-a") {
		t.Fatal("more than one start per refill interval")
	}
}

func TestEmailFoldsASCIIOnly(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"x@Kontoso.Example", "x@kontoso.example", true},
		{"x@\u212Aontoso.example", "x@kontoso.example", false},
		{"X@kontoso.example", "x@kontoso.example", false},
	} {
		if got := sameEmail(tc.a, tc.b); got != tc.want {
			t.Errorf("sameEmail(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
	if d := emailDomain("x@\u212Aontoso.example"); d == "kontoso.example" {
		t.Errorf("emailDomain folded the Kelvin sign: %q", d)
	}
}
