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
