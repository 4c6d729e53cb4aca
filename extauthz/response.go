package extauthz

import (
	"encoding/json"
	"html"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/code"

	"github.com/ssogate/ssogate/extauthz/wire"
)

// Identity headers set on allowed member requests (spec section 5, "Responses").
const (
	HeaderUser     = "x-sso-user"
	HeaderOrg      = "x-sso-org"
	HeaderRole     = "x-sso-role"
	HeaderPrompt   = "x-sso-prompt"
	HeaderRequired = "x-sso-required"
	ssoPrefix      = "x-sso-"
)

// Error codes of denial bodies ({"error": code}).
const (
	errBadRequest        = "bad_request"
	errAmbiguousIdentity = "ambiguous_identity"
	errInvalidToken      = "invalid_token"
	errNotFound          = "not_found"
	errSSORequired       = "sso_required"
	errInsufficientRole  = "insufficient_role"
	errPolicyDenied      = "policy_denied"
	errUnavailable       = "unavailable"
)

// Responses are built as package wire's CheckResponse, which encodes as
// Envoy's envoy.service.auth.v3.CheckResponse without reflection.

func header(k, v string) *wire.HeaderValueOption {
	return &wire.HeaderValueOption{
		Header:       &wire.HeaderValue{Key: k, Value: v},
		AppendAction: wire.HeaderAppendAction_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// okAlloc holds every message of an allow with up to maxSetHeaders headers,
// so that building one allocates once instead of once per message.
type okAlloc struct {
	resp   wire.CheckResponse
	ok     wire.OkHttpResponse
	status wire.Status
	opts   [maxSetHeaders]wire.HeaderValueOption
	values [maxSetHeaders]wire.HeaderValue
	ptrs   [maxSetHeaders]*wire.HeaderValueOption
}

// maxSetHeaders is the most identity headers an allow sets (user, org,
// role, prompt).
const maxSetHeaders = 4

// okResponse allows the request. set holds the headers to add (name, value
// pairs, at most maxSetHeaders of them); every client-sent x-sso-* header
// not in set is removed, since Envoy removes headers_to_remove after it
// sets headers (ext_authz.cc).
func okResponse(h requestHeaders, set ...string) *wire.CheckResponse {
	a := &okAlloc{}
	ok := &a.ok
	n := 0
	for i := 0; i+1 < len(set) && n < maxSetHeaders; i += 2 {
		a.values[n] = wire.HeaderValue{Key: set[i], Value: set[i+1]}
		a.opts[n] = wire.HeaderValueOption{
			Header:       &a.values[n],
			AppendAction: wire.HeaderAppendAction_OVERWRITE_IF_EXISTS_OR_ADD,
		}
		a.ptrs[n] = &a.opts[n]
		n++
	}
	if n > 0 {
		ok.Headers = a.ptrs[:n:n]
	}
	var removed map[string]bool // made for the first x-sso-* header: most requests have none
	h.each(func(name string) {
		if !isSSOHeader(name) {
			return
		}
		for i := 0; i < len(set); i += 2 {
			if set[i] == name {
				return
			}
		}
		if removed == nil {
			removed = map[string]bool{}
		}
		if !removed[name] { // names may repeat; a set keeps many distinct ones linear
			removed[name] = true
			ok.HeadersToRemove = append(ok.HeadersToRemove, name)
		}
	})
	a.status.Code = int32(code.Code_OK)
	a.resp.Status = &a.status
	a.resp.OkResponse = ok
	return &a.resp
}

// isSSOHeader reports whether the lower-case header name is x-sso-*, or
// that name with underscores for any of its first two hyphens (x_sso_user):
// Envoy passes names with underscores by default
// (headers_with_underscores_action: ALLOW), and servers that read headers
// as CGI variables (WSGI, Rack, PHP) see x_sso_user as x-sso-user.
func isSSOHeader(name string) bool {
	dash := func(c byte) bool { return c == '-' || c == '_' }
	return len(name) >= len(ssoPrefix) && name[0] == 'x' && dash(name[1]) && name[2:5] == "sso" && dash(name[5])
}

// deny builds a denial with the HTTP status, a JSON body and extra headers
// (name, value pairs). The gRPC status is UNAUTHENTICATED for 401 and
// PERMISSION_DENIED otherwise.
func deny(status int, body any, extra ...string) *wire.CheckResponse {
	b, err := json.Marshal(body)
	if err != nil { // bodies are maps of strings; cannot fail
		b = []byte(`{"error":"unavailable"}`)
	}
	return denied(status, "application/json", string(b), extra...)
}

func denied(status int, contentType, body string, extra ...string) *wire.CheckResponse {
	hs := make([]*wire.HeaderValueOption, 0, 2+len(extra)/2)
	hs = append(hs, header("content-type", contentType), header("cache-control", "no-store"))
	for i := 0; i+1 < len(extra); i += 2 {
		hs = append(hs, header(extra[i], extra[i+1]))
	}
	c := code.Code_PERMISSION_DENIED
	if status == 401 {
		c = code.Code_UNAUTHENTICATED
	}
	return &wire.CheckResponse{
		Status: &wire.Status{Code: int32(c)},
		DeniedResponse: &wire.DeniedHttpResponse{
			Status:  &wire.HttpStatus{Code: int32(status)},
			Headers: hs,
			Body:    body,
		},
	}
}

func errorBody(code string) map[string]string { return map[string]string{"error": code} }

// redirectToLogin is the 302 of spec section 5, outcome 4, for browsers.
func redirectToLogin(org, loginURL string) *wire.CheckResponse {
	u := html.EscapeString(loginURL)
	body := "<!doctype html><html><head><meta charset=\"utf-8\"><title>Single sign-on required</title></head>" +
		"<body><p>" + html.EscapeString(org) + " requires single sign-on. <a href=\"" + u + "\">Continue to sign in</a>.</p></body></html>\n"
	return denied(302, "text/html; charset=utf-8", body, "location", loginURL)
}

// ssoRequired is the 401 of spec section 5, outcome 4, for API and git clients.
func ssoRequired(org, loginURL string) *wire.CheckResponse {
	return deny(401,
		map[string]string{"error": errSSORequired, "org": org, "login_url": loginURL},
		"www-authenticate", `SSO realm="`+org+`", url="`+loginURL+`"`,
		HeaderRequired, "org="+org+"; url="+loginURL,
	)
}

// invalidToken is the 401 of RFC 6750 section 3.1.
func invalidToken() *wire.CheckResponse {
	return deny(401, errorBody(errInvalidToken), "www-authenticate", `Bearer error="invalid_token"`)
}

// loginURL is {public_url}/organizations/{org}/sso/login?return_to= followed
// by {public_url}+original path and query, every byte but ALPHA, DIGIT and
// -._~ percent-encoded with upper-case hex (spec section 5, outcome 4).
func loginURL(publicURL, org, originalPath string) string {
	if i := strings.IndexByte(originalPath, '#'); i >= 0 {
		originalPath = originalPath[:i]
	}
	var b strings.Builder
	prefix := publicURL + "/organizations/" + org + "/sso/login?return_to="
	b.Grow(len(prefix) + 3*(len(publicURL)+len(originalPath)))
	b.WriteString(prefix)
	escapeAll(&b, publicURL)
	escapeAll(&b, originalPath)
	return b.String()
}

func escapeAll(b *strings.Builder, s string) {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
}
