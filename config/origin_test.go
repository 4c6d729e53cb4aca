package config

import "testing"

func TestParseOriginIsCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"https://hub.example.test":      "https://hub.example.test",
		"https://hub.example.test/":     "https://hub.example.test",
		"HTTPS://Hub.Example.TEST":      "https://hub.example.test",
		"https://hub.example.test:443":  "https://hub.example.test",
		"http://localhost:80/":          "http://localhost",
		"http://localhost:8080":         "http://localhost:8080",
		"https://hub.example.test:8443": "https://hub.example.test:8443",
		"http://[::1]:8080":             "http://[::1]:8080",
	} {
		got, err := parseOrigin(in)
		if err != nil || got != want {
			t.Errorf("parseOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
