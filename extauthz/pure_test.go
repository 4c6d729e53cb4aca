package extauthz

import (
	"strings"
	"testing"
)

func TestLoginURL(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"/acme/m", "https://hub.example.test/organizations/acme/sso/login?return_to=https%3A%2F%2Fhub.example.test%2Facme%2Fm"},
		{"/acme/m?a=b&c=d#frag", "https://hub.example.test/organizations/acme/sso/login?return_to=https%3A%2F%2Fhub.example.test%2Facme%2Fm%3Fa%3Db%26c%3Dd"},
		{"/a b/~x_y-z.", "https://hub.example.test/organizations/acme/sso/login?return_to=https%3A%2F%2Fhub.example.test%2Fa%20b%2F~x_y-z."},
		{"/\xc3\xbc", "https://hub.example.test/organizations/acme/sso/login?return_to=https%3A%2F%2Fhub.example.test%2F%C3%BC"},
	} {
		if got := loginURL("https://hub.example.test", "acme", tc.path); got != tc.want {
			t.Errorf("loginURL(%q) =\n %s\nwant\n %s", tc.path, got, tc.want)
		}
	}
}

func TestRedirectBodyEscapes(t *testing.T) {
	resp := redirectToLogin("acme", `https://hub.example.test/x?return_to="><script>`)
	body := resp.GetDeniedResponse().GetBody()
	if strings.Contains(body, "<script>") || !strings.Contains(body, "&#34;&gt;&lt;script&gt;") {
		t.Errorf("HTML body does not escape the URL: %s", body)
	}
}

func TestOkResponseNeverSetsAndRemoves(t *testing.T) {
	h := requestHeaders{m: map[string]string{"x-sso-user": "x", "x-sso-role": "y", "x-sso-org": "z", "x-other": "1"}}
	resp := okResponse(h, HeaderUser, "u", HeaderRole, "read")
	ok := resp.GetOkResponse()
	set := map[string]bool{}
	for _, o := range ok.GetHeaders() {
		set[o.GetHeader().GetKey()] = true
		if o.GetAppendAction().String() != "OVERWRITE_IF_EXISTS_OR_ADD" {
			t.Errorf("%s append_action = %s", o.GetHeader().GetKey(), o.GetAppendAction())
		}
	}
	if len(ok.GetHeadersToRemove()) != 1 || ok.GetHeadersToRemove()[0] != "x-sso-org" {
		t.Errorf("headers_to_remove = %v, want [x-sso-org]", ok.GetHeadersToRemove())
	}
	for _, r := range ok.GetHeadersToRemove() {
		if set[r] {
			t.Errorf("%s both set and removed", r)
		}
	}
}
