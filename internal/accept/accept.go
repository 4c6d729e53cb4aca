// Package accept reads HTTP Accept headers (RFC 9110 section 12.5.1).
package accept

import (
	"strconv"
	"strings"
)

// HTML reports whether an accept header lists text/html with q > 0
// (RFC 9110 section 12.5.1). "*/*" and "text/*" do not count: only clients
// that name HTML are treated as browsers.
func HTML(accept string) bool {
	for accept != "" {
		var item string
		item, accept, _ = strings.Cut(accept, ",")
		mediaType, params, _ := strings.Cut(item, ";")
		if !strings.EqualFold(strings.TrimSpace(mediaType), "text/html") {
			continue
		}
		if qOK(params) {
			return true
		}
	}
	return false
}

// qOK reports whether the ;-separated parameters give q > 0 (absent q is 1).
func qOK(params string) bool {
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		return err == nil && q > 0
	}
	return true
}
