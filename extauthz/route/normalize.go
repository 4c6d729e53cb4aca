// Package route normalises request paths and maps them to hub routes, as the
// contract in spec section 5 ("Path", "Routes", "Actions") describes.
//
// Both entry points are on the hot path of every request the proxy sees:
// [Normalize] returns its input without allocating when the path is already
// normal, and [Resolve] walks the path in place without allocating.
package route

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
)

// ErrBadPath is wrapped by every [Normalize] error. Callers answer such a
// path with 400 {"error":"bad_request"} (spec section 5 "Path", "Outcomes" step 1).
var ErrBadPath = errors.New("bad path")

// PathError is the concrete error [Normalize] returns. It says what was wrong
// and where, and unwraps to [ErrBadPath].
type PathError struct {
	Offset int    // byte offset in the raw path
	Reason string // what was wrong, e.g. `encoded "/" (%2F)`
}

// Error returns "bad path: <reason> at byte <offset>".
func (e *PathError) Error() string {
	return "bad path: " + e.Reason + " at byte " + strconv.Itoa(e.Offset)
}

// Unwrap returns [ErrBadPath], so errors.Is(err, ErrBadPath) holds.
func (e *PathError) Unwrap() error { return ErrBadPath }

func badPath(off int, reason string) error { return &PathError{Offset: off, Reason: reason} }

// Normalize implements spec section 5 "Path", in this order:
//
//   - drop everything from the first '?' or '#';
//   - refuse a path that does not start with '/', has invalid
//     percent-encoding (a '%' not followed by two hex digits), an encoded
//     '/', '\' or NUL (%2F, %5C, %00, either case), or a literal '\', NUL or
//     other control character (0x00-0x1F, 0x7F);
//   - refuse ';' and '%3B' too: path parameters (RFC 3986 section 3.3) are
//     stripped by some servers behind the proxy ("/acme;x/m" served as
//     "/acme/m"), so a namespace could hide behind them. The spec is silent;
//     refusing is the fail-closed reading;
//   - decode percent-encoded unreserved characters (RFC 3986 section 2.3:
//     ALPHA DIGIT "-" "." "_" "~"); other percent-encodings are kept but
//     written with upper-case hex (RFC 3986 section 6.2.2.1);
//   - merge repeated slashes;
//   - remove dot segments (RFC 3986 section 5.2.4), refusing a ".." that
//     would climb above the root.
//
// Unreserved characters are decoded before dot segments are removed, so
// "%2E%2E" is a ".." segment. Bytes >= 0x80 are kept as they are.
//
// An already normal path (after the query is dropped) is returned as is,
// without allocating. Every error is a *[PathError] wrapping [ErrBadPath].
func Normalize(raw string) (string, error) {
	p := raw
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	if i := strings.IndexByte(p, '#'); i >= 0 {
		p = p[:i]
	}
	if len(p) == 0 || p[0] != '/' {
		return "", badPath(0, "path does not start with '/'")
	}
	dirty, err := scan(p)
	if err != nil {
		return "", err
	}
	if !dirty {
		return p, nil
	}
	return rewrite(p)
}

// scan validates p (which starts with '/') and reports whether it needs
// rewriting: a percent-encoding to decode or to upper-case, an empty
// segment before the last one ("//"), or a "." or ".." segment.
func scan(p string) (dirty bool, err error) {
	seg := 1 // start of the current segment
	for i := 1; i < len(p); i++ {
		c := p[i]
		if plain[c] {
			continue
		}
		switch {
		case c == '/':
			if s := p[seg:i]; s == "" || s == "." || s == ".." {
				dirty = true
			}
			seg = i + 1
		case c == '%':
			if i+2 >= len(p) {
				return false, badPath(i, "truncated percent-encoding "+strconv.Quote(p[i:]))
			}
			hi, lo := unhex(p[i+1]), unhex(p[i+2])
			if hi < 0 || lo < 0 {
				return false, badPath(i, "invalid percent-encoding "+strconv.Quote(p[i:i+3]))
			}
			switch v := byte(hi<<4 | lo); {
			case v == '/':
				return false, badPath(i, `encoded "/" (%2F)`)
			case v == '\\':
				return false, badPath(i, `encoded "\" (%5C)`)
			case v == 0:
				return false, badPath(i, "encoded NUL (%00)")
			case v == ';':
				return false, badPath(i, `encoded ";" (%3B)`)
			case unreserved(v) || isLowerHex(p[i+1]) || isLowerHex(p[i+2]):
				dirty = true
			}
			i += 2
		case c == '\\':
			return false, badPath(i, `literal "\"`)
		case c == ';':
			return false, badPath(i, `";" (path parameters)`)
		case c < 0x20 || c == 0x7f:
			return false, badPath(i, "control character 0x"+hex2(c))
		}
	}
	if s := p[seg:]; s == "." || s == ".." {
		dirty = true
	}
	return dirty, nil
}

// rewrite normalises p, which scan has validated and found dirty. It walks
// the segments once: each is decoded into out, then dropped if empty or
// ".", or removes the previous output segment if "..". A final empty, "."
// or ".." segment leaves a trailing slash, as in RFC 3986 section 5.2.4.
func rewrite(p string) (string, error) {
	out := make([]byte, 0, len(p))
	trailing := false
	for i := 1; ; {
		j := i
		for j < len(p) && p[j] != '/' {
			j++
		}
		last := j == len(p)
		mark := len(out)
		out = append(out, '/')
		out = appendDecoded(out, p[i:j])
		seg := out[mark+1:]
		special := true
		switch {
		case len(seg) == 0, len(seg) == 1 && seg[0] == '.':
			out = out[:mark]
		case len(seg) == 2 && seg[0] == '.' && seg[1] == '.':
			out = out[:mark]
			if mark == 0 {
				return "", badPath(i, `".." climbs above the root`)
			}
			out = out[:bytes.LastIndexByte(out, '/')]
		default:
			special = false
		}
		if last {
			trailing = special
			break
		}
		i = j + 1
	}
	if len(out) == 0 {
		return "/", nil
	}
	if trailing {
		out = append(out, '/')
	}
	return string(out), nil
}

// appendDecoded appends the validated segment s to out, decoding
// unreserved characters and upper-casing the hex of other encodings.
func appendDecoded(out []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			out = append(out, c)
			continue
		}
		v := byte(unhex(s[i+1])<<4 | unhex(s[i+2]))
		if unreserved(v) {
			out = append(out, v)
		} else {
			out = append(out, '%', upperHex[v>>4], upperHex[v&0xf])
		}
		i += 2
	}
	return out
}

// plain marks the bytes scan passes over: all but '/', '%', '\' and
// control characters.
var plain = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= 0x20 && c != 0x7f && c != '/' && c != '%' && c != '\\' && c != ';'
	}
	return t
}()

const upperHex = "0123456789ABCDEF"

func hex2(c byte) string { return string([]byte{upperHex[c>>4], upperHex[c&0xf]}) }

// unhex returns the value of hex digit c, or -1.
func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func isLowerHex(c byte) bool { return 'a' <= c && c <= 'f' }

// unreserved reports whether c is unreserved (RFC 3986 section 2.3).
func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}
