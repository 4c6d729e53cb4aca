package idp

import (
	"net/url"
	"strings"
)

// maxReturnTo bounds a return_to value (bytes); longer ones are dropped.
const maxReturnTo = 4096

// SafeReturnTo returns where to send a browser after a login (spec section
// 6: "same origin as public_url only"): raw rebuilt on publicURL's origin
// when raw is an absolute URL whose scheme and host (port included) equal
// publicURL's, or a path starting with a single "/", with no user info.
// Anything else (other hosts, scheme-relative "//host", "/\host",
// "https:host", "javascript:", user info, control characters, spaces or
// back slashes anywhere, values over 4096 bytes) gives ok false, and the
// caller uses the org page instead. The result never has a fragment.
//
// publicURL is config.Gateway.PublicURL: "scheme://host[:port]".
func SafeReturnTo(publicURL, raw string) (target string, ok bool) {
	if raw == "" || len(raw) > maxReturnTo {
		return "", false
	}
	for i := 0; i < len(raw); i++ {
		// Browsers strip tabs and newlines and read "\" as "/" (WHATWG URL
		// standard), so "/\evil.example" or "/\t/evil.example" would leave
		// the origin: refuse them outright.
		if c := raw[i]; c <= ' ' || c == 0x7f || c == '\\' {
			return "", false
		}
	}
	if raw[0] == '/' {
		if len(raw) > 1 && raw[1] == '/' {
			return "", false // scheme-relative: another host
		}
		raw = publicURL + raw
	}
	pub, err := url.Parse(publicURL)
	if err != nil {
		return "", false
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.User != nil ||
		!strings.EqualFold(u.Scheme, pub.Scheme) || !strings.EqualFold(u.Host, pub.Host) {
		return "", false
	}
	// Remove dot segments and empty ones as a browser resolving the URL
	// would ("/..//evil.example" is "//evil.example" to it; RFC 3986
	// section 5.2.4), before the path is checked.
	u = u.JoinPath()
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "//") {
		// Keep the result's path from reading as an authority if the
		// origin were ever dropped by a client.
		path = "/" + strings.TrimLeft(path, "/")
	}
	target = publicURL + path
	if u.RawQuery != "" {
		target += "?" + u.RawQuery
	}
	return target, true
}

// orgPage is the hub page of an org, where a login ends when return_to is
// missing or unsafe: {public_url}/{org}.
func orgPage(publicURL, org string) string { return publicURL + "/" + org }
