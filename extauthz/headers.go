package extauthz

import (
	"maps"
	"slices"
	"strings"

	"github.com/ssogate/ssogate/extauthz/wire"
)

// requestHeaders is a read-only view of the request headers of a
// CheckRequest: attributes.request.http.headers (a map with lower-case
// names, repeated headers joined by Envoy) or, when Envoy runs with
// encode_raw_headers, header_map (a list whose entries carry raw_value).
// The map arrives as its entries (package wire) and is read as they are
// when every name is lower case, as Envoy sends them; otherwise (a
// hand-written request) it is made into a map once.
type requestHeaders struct {
	pairs []*wire.Header      // the headers map's entries, every name lower case
	m     map[string]string   // the headers map, when pairs could not be used
	list  []*wire.HeaderValue // header_map
}

// newRequestHeaders returns the view of http's headers: header_map when it
// has entries, else the headers map.
func newRequestHeaders(http *wire.HttpRequest) requestHeaders {
	if hm := http.GetHeaderMap().GetHeaders(); len(hm) > 0 {
		return requestHeaders{list: hm}
	}
	hs := http.GetHeaders()
	for _, e := range hs {
		if hasUpper(e.GetKey()) {
			m := make(map[string]string, len(hs))
			for _, e := range hs {
				m[e.GetKey()] = e.GetValue() // a map's last entry wins
			}
			return requestHeaders{m: lowerKeys(m)}
		}
	}
	return requestHeaders{pairs: hs}
}

// Values returns every value of the lower-case header name.
func (h requestHeaders) Values(name string) []string {
	if h.list == nil {
		if v, ok := h.lookup(name); ok {
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
		v, _ := h.lookup(name)
		return v
	}
	for _, hv := range h.list {
		if strings.EqualFold(hv.GetKey(), name) {
			return headerValue(hv)
		}
	}
	return ""
}

// lookup reads the headers map. Its entries are searched from the last,
// since a map's last entry for a name wins (protobuf's rule for maps); a
// request has tens of headers, where a scan costs less than building a map.
func (h requestHeaders) lookup(name string) (string, bool) {
	if h.m != nil {
		v, ok := h.m[name]
		return v, ok
	}
	for i := len(h.pairs) - 1; i >= 0; i-- {
		if e := h.pairs[i]; e.GetKey() == name {
			return e.GetValue(), true
		}
	}
	return "", false
}

// each calls fn with every header name in lower case (names may repeat).
func (h requestHeaders) each(fn func(name string)) {
	switch {
	case h.list != nil:
		for _, hv := range h.list {
			fn(strings.ToLower(hv.GetKey()))
		}
	case h.m != nil:
		for k := range h.m {
			fn(k)
		}
	default:
		for _, e := range h.pairs {
			fn(e.GetKey())
		}
	}
}

func headerValue(hv *wire.HeaderValue) string {
	if raw := hv.GetRawValue(); len(raw) > 0 {
		return string(raw)
	}
	return hv.GetValue()
}

// lowerKeys returns m with lower-case keys. Envoy sends lower-case names;
// a map that has others (a hand-written request) is copied once so that
// lookups and x-sso-* removal see every header. Names equal ignoring case
// are joined with "," in the order of their names, so that the same
// request always reads the same.
func lowerKeys(m map[string]string) map[string]string {
	for k := range m {
		if hasUpper(k) {
			// Each name's values are joined once: joining one at a time
			// would copy the growing value for every variant.
			parts := make(map[string][]string, len(m))
			for _, k := range slices.Sorted(maps.Keys(m)) {
				lk := strings.ToLower(k)
				parts[lk] = append(parts[lk], m[k])
			}
			out := make(map[string]string, len(parts))
			for k, vs := range parts {
				out[k] = strings.Join(vs, ",")
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
