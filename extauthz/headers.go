package extauthz

import (
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// requestHeaders is a read-only view of the request headers of a
// CheckRequest: attributes.request.http.headers (a map with lower-case
// names, repeated headers joined by Envoy) or, when Envoy runs with
// encode_raw_headers, header_map (a list whose entries carry raw_value).
type requestHeaders struct {
	m    map[string]string
	list []*corev3.HeaderValue
}

// Values returns every value of the lower-case header name.
func (h requestHeaders) Values(name string) []string {
	if h.list == nil {
		if v, ok := h.m[name]; ok {
			return []string{v}
		}
		return nil
	}
	var out []string
	for _, hv := range h.list {
		if strings.EqualFold(hv.GetKey(), name) {
			out = append(out, headerValue(hv))
		}
	}
	return out
}

// Get returns the first value of name, or "".
func (h requestHeaders) Get(name string) string {
	if h.list == nil {
		return h.m[name]
	}
	for _, hv := range h.list {
		if strings.EqualFold(hv.GetKey(), name) {
			return headerValue(hv)
		}
	}
	return ""
}

// each calls fn with every header name in lower case (names may repeat).
func (h requestHeaders) each(fn func(name string)) {
	if h.list == nil {
		for k := range h.m {
			fn(k)
		}
		return
	}
	for _, hv := range h.list {
		fn(strings.ToLower(hv.GetKey()))
	}
}

func headerValue(hv *corev3.HeaderValue) string {
	if raw := hv.GetRawValue(); len(raw) > 0 {
		return string(raw)
	}
	return hv.GetValue()
}

// lowerKeys returns m with lower-case keys. Envoy sends lower-case names;
// a map that has others (a hand-written request) is copied once so that
// lookups and x-sso-* removal see every header.
func lowerKeys(m map[string]string) map[string]string {
	for k := range m {
		if hasUpper(k) {
			out := make(map[string]string, len(m))
			for k, v := range m {
				k = strings.ToLower(k)
				if prev, ok := out[k]; ok {
					v = prev + "," + v
				}
				out[k] = v
			}
			return out
		}
	}
	return m
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// upperASCII returns s with a-z upper-cased; it does not allocate when s
// is already upper case.
func upperASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'a' <= s[i] && s[i] <= 'z' {
			return strings.ToUpper(s)
		}
	}
	return s
}
