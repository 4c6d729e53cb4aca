package wire

import (
	"fmt"
	"unicode/utf8"
)

// ValidUTF8 reports the first string field of r that is not valid UTF-8,
// as an error naming its path in the CheckRequest (a header by its name,
// quoted), or nil. Protobuf requires proto3 strings to be UTF-8
// (https://protobuf.dev/programming-guides/proto3/#scalar) and protobuf-go
// refuses to decode others; UnmarshalVT does not check, so callers check
// the request they read. header_map's raw_value is bytes and may hold any.
func (r *HttpRequest) ValidUTF8() error {
	switch {
	case !utf8.ValidString(r.GetId()):
		return fmt.Errorf("attributes.request.http.id is not valid UTF-8")
	case !utf8.ValidString(r.GetMethod()):
		return fmt.Errorf("attributes.request.http.method is not valid UTF-8")
	case !utf8.ValidString(r.GetPath()):
		return fmt.Errorf("attributes.request.http.path is not valid UTF-8")
	}
	for _, h := range r.GetHeaders() {
		if !utf8.ValidString(h.GetKey()) || !utf8.ValidString(h.GetValue()) {
			return fmt.Errorf("attributes.request.http.headers[%s] is not valid UTF-8", quote(h.GetKey()))
		}
	}
	for _, h := range r.GetHeaderMap().GetHeaders() {
		if !utf8.ValidString(h.GetKey()) || !utf8.ValidString(h.GetValue()) {
			return fmt.Errorf("attributes.request.http.header_map header %s is not valid UTF-8", quote(h.GetKey()))
		}
	}
	return nil
}

// quote quotes a header name for an error, at most 64 bytes of it.
func quote(s string) string {
	if len(s) > 64 {
		return fmt.Sprintf("%q...", s[:64])
	}
	return fmt.Sprintf("%q", s)
}
