package route

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		// already normal
		{"/", "/"},
		{"/acme/secret-model", "/acme/secret-model"},
		{"/acme/secret-model/", "/acme/secret-model/"},
		{"/a%20b", "/a%20b"},
		{"/a%C3%A9", "/a%C3%A9"},
		{"/caf\xc3\xa9", "/caf\xc3\xa9"},
		{"/a..b/.c/..d/...", "/a..b/.c/..d/..."},
		{"/a:b@c!$&'()*+,=", "/a:b@c!$&'()*+,="},
		// query and fragment
		{"/acme/m?x=1", "/acme/m"},
		{"/acme/m#frag", "/acme/m"},
		{"/acme/m?a#b", "/acme/m"},
		{"/acme/m#a?b", "/acme/m"},
		{"/acme/m?x=%zz&y=\\", "/acme/m"},
		{"/acme/m?", "/acme/m"},
		{"/?", "/"},
		{"/organizations/acme/sso/login?return_to=https%3A%2F%2Fhub.example.test%2Facme%2Fsecret-model", "/organizations/acme/sso/login"},
		{"/acme/secret-model.git/info/refs?service=git-upload-pack", "/acme/secret-model.git/info/refs"},
		// decoding unreserved
		{"/%41", "/A"},
		{"/%61%62c", "/abc"},
		{"/%7E%7e", "/~~"},
		{"/%2D%2E%5F%7E%30%39%5A%7A", "/-._~09Zz"},
		{"/%61cme/m", "/acme/m"},
		// other encodings kept, hex upper-cased
		{"/a%20b", "/a%20b"},
		{"/a%3fb", "/a%3Fb"},
		{"/a%c3%a9", "/a%C3%A9"},
		{"/a%aBc", "/a%ABc"},
		{"/%25", "/%25"},
		{"/%2541", "/%2541"},
		{"/%01", "/%01"},
		{"/%7f", "/%7F"},
		{"/%2e", "/"},
		// slash merging
		{"//", "/"},
		{"//acme//secret-model", "/acme/secret-model"},
		{"/a///b////", "/a/b/"},
		{"///", "/"},
		// dot segments (RFC 3986 section 5.2.4)
		{"/.", "/"},
		{"/./", "/"},
		{"/a/.", "/a/"},
		{"/a/./b", "/a/b"},
		{"/a/..", "/"},
		{"/a/../", "/"},
		{"/a/b/..", "/a/"},
		{"/a/b/../c", "/a/c"},
		{"/a/b/c/../../d", "/a/d"},
		{"/carol/notes/../../acme/secret-model", "/acme/secret-model"},
		{"/a/%2E%2E", "/"},
		{"/a/b/%2e%2E/c", "/a/c"},
		{"/a/.%2e/b", "/b"},
		{"/a/%2E/b", "/a/b"},
		{"/a//../b", "/b"},
		{"/a/.//b", "/a/b"},
		{"/a/b/..//", "/a/"},
		{"/a/./", "/a/"},
		{"/a/b/./../c/", "/a/c/"},
	}
	for _, tt := range tests {
		got, err := Normalize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		if ref, ok := refNormalize(tt.in); !ok || ref != tt.want {
			t.Errorf("refNormalize(%q) = %q, %v; want %q (test table or reference is wrong)", tt.in, ref, ok, tt.want)
		}
	}
}

func TestNormalizeRefused(t *testing.T) {
	tests := []struct {
		in     string
		offset int
		reason string // substring of the message
	}{
		{"", 0, "start with '/'"},
		{"acme/m", 0, "start with '/'"},
		{"?/acme", 0, "start with '/'"},
		{"/acme;x/secret-model", 5, "path parameters"},
		{"/acme%3bx/m", 5, "%3B"},
		{"/acme/m;jsessionid=1", 7, "path parameters"},
		{"#", 0, "start with '/'"},
		{"*", 0, "start with '/'"},
		{"http://hub/acme", 0, "start with '/'"},
		{"/api/models/acme%2Fsecret-model", 16, `encoded "/"`},
		{"/a%2fb", 2, `encoded "/"`},
		{"/a%5Cb", 2, `encoded "\"`},
		{"/a%5cb", 2, `encoded "\"`},
		{"/a%00b", 2, "NUL"},
		{"/%zz", 1, "invalid percent-encoding"},
		{"/a%g0", 2, "invalid percent-encoding"},
		{"/a%0g", 2, "invalid percent-encoding"},
		{"/a%", 2, "truncated"},
		{"/a%4", 2, "truncated"},
		{"/a%4?x", 2, "truncated"},
		{"/a%%41", 2, "invalid percent-encoding"},
		{"/a\\b", 2, `literal "\"`},
		{"/a\tb", 2, "control character 0x09"},
		{"/a\x00b", 2, "control character 0x00"},
		{"/a\nb", 2, "control character 0x0A"},
		{"/a\x1f", 2, "control character 0x1F"},
		{"/a\x7fb", 2, "control character 0x7F"},
		{"/..", 1, "climbs above the root"},
		{"/../", 1, "climbs above the root"},
		{"/../a", 1, "climbs above the root"},
		{"/a/../..", 6, "climbs above the root"},
		{"/a/b/../../../c", 11, "climbs above the root"},
		{"//..", 2, "climbs above the root"},
		{"/./..", 3, "climbs above the root"},
		{"/%2E%2E", 1, "climbs above the root"},
		{"/a/%2e./%2E%2E", 8, "climbs above the root"},
		{"/a%2F../..", 2, `encoded "/"`},
	}
	for _, tt := range tests {
		got, err := Normalize(tt.in)
		if err == nil {
			t.Errorf("Normalize(%q) = %q, want an error", tt.in, got)
			continue
		}
		if !errors.Is(err, ErrBadPath) {
			t.Errorf("Normalize(%q): %v does not wrap ErrBadPath", tt.in, err)
		}
		var pe *PathError
		if !errors.As(err, &pe) || pe.Offset != tt.offset || !strings.Contains(err.Error(), tt.reason) {
			t.Errorf("Normalize(%q) error %q; want offset %d and %q", tt.in, err, tt.offset, tt.reason)
		}
		if want := " at byte " + strconv.Itoa(tt.offset); !strings.HasSuffix(err.Error(), want) {
			t.Errorf("Normalize(%q) error %q does not end with %q", tt.in, err, want)
		}
		if got != "" {
			t.Errorf("Normalize(%q) returned %q with an error", tt.in, got)
		}
		if _, ok := refNormalize(tt.in); ok {
			t.Errorf("refNormalize(%q) accepted it (test table or reference is wrong)", tt.in)
		}
	}
}

// TestNormalizeReturnsInput checks that a normal path comes back as the
// same string (no copy) and that the query-dropped prefix is used.
func TestNormalizeReturnsInput(t *testing.T) {
	for _, in := range []string{"/", "/acme/m/resolve/main/config.json", "/a%20b/", "/acme/m?x"} {
		got, err := Normalize(in)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(in, got) || unsafe.StringData(got) != unsafe.StringData(in) {
			t.Fatalf("Normalize(%q) = %q", in, got)
		}
		if n := testing.AllocsPerRun(100, func() { _, _ = Normalize(in) }); n != 0 {
			t.Errorf("Normalize(%q) allocates %v times", in, n)
		}
	}
}

// refNormalize is a deliberately simple reference implementation of spec
// section 5 "Path", used to cross-check Normalize.
func refNormalize(raw string) (string, bool) {
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	if !strings.HasPrefix(raw, "/") {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '\\' || c == ';' || c < 0x20 || c == 0x7f {
			return "", false
		}
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+3 > len(raw) {
			return "", false
		}
		v, err := strconv.ParseUint(raw[i+1:i+3], 16, 8)
		if err != nil || v == '/' || v == '\\' || v == 0 || v == ';' {
			return "", false
		}
		if strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~", rune(v)) {
			b.WriteByte(byte(v))
		} else {
			fmt.Fprintf(&b, "%%%02X", v)
		}
		i += 2
	}
	segs := strings.Split(b.String()[1:], "/")
	var out []string
	for _, s := range segs {
		switch s {
		case "", ".":
		case "..":
			if len(out) == 0 {
				return "", false
			}
			out = out[:len(out)-1]
		default:
			out = append(out, s)
		}
	}
	res := "/" + strings.Join(out, "/")
	if last := segs[len(segs)-1]; len(out) > 0 && (last == "" || last == "." || last == "..") {
		res += "/"
	}
	return res, true
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"/", "//acme//m", "/a/../b", "/%2e%2E/", "/a%2fb", "/a%zz", "/a%", "/a\\b",
		"/carol/notes/../../acme/secret-model", "/a/./b/../c/", "/x?y#z", "/%7e%41%c3%a9",
		"/acme/m.git/info/refs?service=git-upload-pack", "/..", "a", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := Normalize(raw)
		ref, refOK := refNormalize(raw)
		if err != nil {
			if !errors.Is(err, ErrBadPath) {
				t.Fatalf("Normalize(%q): %v does not wrap ErrBadPath", raw, err)
			}
			if refOK {
				t.Fatalf("Normalize(%q) refused (%v), reference gives %q", raw, err, ref)
			}
			return
		}
		if !refOK || got != ref {
			t.Fatalf("Normalize(%q) = %q, reference %q (ok=%v)", raw, got, ref, refOK)
		}
		if !strings.HasPrefix(got, "/") || strings.Contains(got, "//") || strings.ContainsAny(got, "?#\\") {
			t.Fatalf("Normalize(%q) = %q: bad shape", raw, got)
		}
		for _, s := range strings.Split(got, "/") {
			if s == "." || s == ".." {
				t.Fatalf("Normalize(%q) = %q: dot segment left", raw, got)
			}
		}
		again, err := Normalize(got)
		if err != nil || again != got {
			t.Fatalf("Normalize(Normalize(%q)) = %q, %v; want %q", raw, again, err, got)
		}
		dirty, err := scan(got)
		if err != nil || dirty {
			t.Fatalf("scan(%q) = %v, %v: normal output not recognised as normal", got, dirty, err)
		}
		_ = Resolve(got, testOrgs) // must not panic
	})
}
