package idp

import (
	"strings"
	"testing"
)

// unsafeReturnTo are return_to values that must never be followed, for
// the public URL https://{host}.
func unsafeReturnTo(host string) []string {
	name, _, _ := strings.Cut(host, ":")
	return []string{
		"//evil.example",
		"//evil.example/acme",
		`/\evil.example`,
		`\\evil.example`,
		"https:evil.example",
		"https:/evil.example",
		"https://" + host + ".evil.example/",
		"https://" + host + "@evil.example/",
		"https://user@evil.example/",
		"https://user:pw@" + host + "/acme",
		"https://evil.example/https://" + host + "/",
		"http://" + host + "/acme",
		"https://" + name + ":1/acme",
		"/\t/evil.example",
		"/acme\r\nlocation: https://evil.example",
		"https://" + host + "/a\tb",
		"/a b",
		"javascript:alert(1)",
		"JaVaScRiPt:alert(1)",
		"data:text/html,<script>alert(1)</script>",
		"evil.example",
		"acme/model",
		"",
	}
}

func TestSafeReturnTo(t *testing.T) {
	t.Parallel()
	const pub = "https://hub.example.test"
	for _, raw := range unsafeReturnTo("hub.example.test") {
		if got, ok := SafeReturnTo(pub, raw); ok {
			t.Errorf("SafeReturnTo(%q) = %q, want refused", raw, got)
		}
	}
	for _, tc := range []struct{ raw, want string }{
		{"https://hub.example.test/acme/model?tab=files", "https://hub.example.test/acme/model?tab=files"},
		{"https://hub.example.test", "https://hub.example.test/"},
		{"HTTPS://HUB.EXAMPLE.TEST/acme", "https://hub.example.test/acme"},
		{"https://hub.example.test/acme#frag", "https://hub.example.test/acme"},
		{"https://hub.example.test//evil.example", "https://hub.example.test/evil.example"},
		{"https://hub.example.test/a%20b/%C3%BC", "https://hub.example.test/a%20b/%C3%BC"},
		{"/acme/model?x=1", "https://hub.example.test/acme/model?x=1"},
		{"/", "https://hub.example.test/"},
		{"https://hub.example.test/..//evil.example", "https://hub.example.test/evil.example"},
		{"/a/../..//evil.example/x/", "https://hub.example.test/evil.example/x/"},
		{"/acme/./model/../data?x=1", "https://hub.example.test/acme/data?x=1"},
	} {
		if got, ok := SafeReturnTo(pub, tc.raw); !ok || got != tc.want {
			t.Errorf("SafeReturnTo(%q) = %q, %v; want %q", tc.raw, got, ok, tc.want)
		}
	}
}
