package accept

import "testing"

func TestHTML(t *testing.T) {
	for _, tc := range []struct {
		accept string
		want   bool
	}{
		{"text/html", true},
		{"TEXT/HTML", true},
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", true},
		{"application/json, text/html;q=0.1", true},
		{" text/html ; charset=utf-8 ; q=1", true},
		{"text/html;q=0", false},
		{"text/html;q=0.0", false},
		{"text/html;q=abc", false},
		{"*/*", false},
		{"text/*", false},
		{"application/json", false},
		{"", false},
		{"text/htmlx", false},
	} {
		if got := HTML(tc.accept); got != tc.want {
			t.Errorf("HTML(%q) = %v, want %v", tc.accept, got, tc.want)
		}
	}
}
