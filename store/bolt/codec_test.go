package bolt

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/ssogate/ssogate/store"
)

// jsonRoundTrip is what schema 1 returned for v: the compact encoding must
// give the same.
func jsonRoundTrip[T any](t *testing.T, v T) T {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

var codecTimes = []time.Time{
	{},
	time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC),
	time.Date(2026, 6, 1, 10, 0, 0, 123456789, time.UTC),
	time.Date(2026, 6, 1, 12, 0, 0, 5, time.FixedZone("CEST", 2*3600)),
	time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", -(9*3600+30*60))),
	time.Date(2026, 6, 1, 10, 0, 0, 1, time.Local),
	time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC),
	time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC),
	time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
	time.Now(), // with a monotonic reading, which neither encoding keeps
}

func TestSessionCodecMatchesJSON(t *testing.T) {
	for _, org := range []string{"acme", "Acme", "ACME-Labs", "", "a\x00b", "Straße"} {
		for _, user := range []string{"u-a", "", "U\x00x", "ü"} {
			for i, at := range codecTimes {
				in := store.Session{Org: org, User: user, AuthenticatedAt: at, ExpiresAt: codecTimes[(i+3)%len(codecTimes)], Email: "a@acme.example"}
				if i%2 == 0 {
					in.Email = ""
				}
				key := orgUserKey(org, user)
				got, err := decodeSession(key, encodeSession(&in))
				if err != nil {
					t.Fatalf("%+v: %v", in, err)
				}
				want := jsonRoundTrip(t, in)
				if !reflect.DeepEqual(*got, want) {
					t.Errorf("compact round trip:\n got %#v\nwant %#v", *got, want)
				}
				// A schema 1 value (expiry prefix and JSON) decodes to the same.
				raw, _ := json.Marshal(in)
				legacy, err := decodeSession(key, withExpiry(in.ExpiresAt, raw))
				if err != nil || !reflect.DeepEqual(*legacy, want) {
					t.Errorf("JSON value: %#v, %v", legacy, err)
				}
			}
		}
	}
}

func TestMembershipCodecMatchesJSON(t *testing.T) {
	for _, in := range []store.Membership{
		{Org: "acme", User: "u-a"},
		{Org: "Acme", User: "u-a", Role: "write", InviteRole: "read"},
		{Org: "acme", User: "u-b", ResourceGroups: map[string]string{"vision": "admin", "nlp": "read", "": "x"}},
		{Org: "ac\x00me", User: "u\x00c", Role: "admin", ResourceGroups: map[string]string{}},
		{Org: "", User: ""},
	} {
		key := orgUserKey(in.Org, in.User)
		got, err := decodeMembership(key, encodeMembership(&in))
		if err != nil {
			t.Fatalf("%+v: %v", in, err)
		}
		if want := jsonRoundTrip(t, in); !reflect.DeepEqual(*got, want) {
			t.Errorf("compact round trip:\n got %#v\nwant %#v", *got, want)
		}
		raw, _ := json.Marshal(in)
		if legacy, err := decodeMembership(key, raw); err != nil || !reflect.DeepEqual(*legacy, jsonRoundTrip(t, in)) {
			t.Errorf("JSON value: %#v, %v", legacy, err)
		}
	}
}

func TestResourceCodecMatchesJSON(t *testing.T) {
	for _, in := range []store.Resource{
		{Type: "model", ID: "acme/m", Visibility: "public"},
		{Type: "model", ID: "Acme/Secret", Visibility: "private", ResourceGroup: "vision", CreatedBy: "u-a"},
		{Type: "da\x00ta", ID: "acme/x\x00y", Visibility: "private"},
		{Type: "", ID: ""},
		{Type: "space", ID: "ACME"},
	} {
		key := resourceKey(in.Type, in.ID)
		got, err := decodeResource(key, encodeResource(&in))
		if err != nil {
			t.Fatalf("%+v: %v", in, err)
		}
		if want := jsonRoundTrip(t, in); !reflect.DeepEqual(*got, want) {
			t.Errorf("compact round trip:\n got %#v\nwant %#v", *got, want)
		}
		raw, _ := json.Marshal(in)
		if legacy, err := decodeResource(key, raw); err != nil || !reflect.DeepEqual(*legacy, in) {
			t.Errorf("JSON value: %#v, %v", legacy, err)
		}
	}
}

// TestCodecRejectsCorruptValues: every truncation, an unknown tag, trailing
// bytes and a record under the wrong key are errors (errCorrupt), never a
// panic or a wrong record.
func TestCodecRejectsCorruptValues(t *testing.T) {
	at := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	m := store.Membership{Org: "Acme", User: "u-a", Role: "write", ResourceGroups: map[string]string{"vision": "admin"}}
	v := store.Session{Org: "Acme", User: "u-a", AuthenticatedAt: at, ExpiresAt: at.Add(time.Hour), Email: "a@acme.example"}
	r := store.Resource{Type: "model", ID: "Acme/M", Visibility: "private", CreatedBy: "u-a"}
	cases := []struct {
		name   string
		key    []byte
		value  []byte
		decode func(key, v []byte) error
	}{
		{"membership", orgUserKey(m.Org, m.User), encodeMembership(&m), func(k, v []byte) error { _, err := decodeMembership(k, v); return err }},
		{"session", orgUserKey(v.Org, v.User), encodeSession(&v), func(k, v []byte) error { _, err := decodeSession(k, v); return err }},
		{"resource", resourceKey(r.Type, r.ID), encodeResource(&r), func(k, v []byte) error { _, err := decodeResource(k, v); return err }},
	}
	for _, c := range cases {
		if err := c.decode(c.key, c.value); err != nil {
			t.Fatalf("%s: valid value: %v", c.name, err)
		}
		start := 0
		if c.name == "session" {
			start = expiryLen // shorter values have no record at all
		}
		for n := start; n < len(c.value); n++ {
			if err := c.decode(c.key, c.value[:n]); err == nil {
				t.Errorf("%s: truncated to %d bytes: no error", c.name, n)
			}
		}
		if err := c.decode(c.key, append(append([]byte{}, c.value...), 0)); !errors.Is(err, errCorrupt) {
			t.Errorf("%s: trailing byte: %v", c.name, err)
		}
		bad := append([]byte{}, c.value...)
		bad[start] = 0x7f
		if err := c.decode(c.key, bad); !errors.Is(err, errCorrupt) {
			t.Errorf("%s: unknown tag: %v", c.name, err)
		}
		if err := c.decode([]byte("globex\x00u-a"), c.value); c.name != "resource" && !errors.Is(err, errCorrupt) {
			t.Errorf("%s: under another org's key: %v", c.name, err)
		}
	}
	if _, err := decodeResource(resourceKey("model", "globex/m"), encodeResource(&r)); !errors.Is(err, errCorrupt) {
		t.Errorf("resource under another id's key: %v", err)
	}
}

func TestCompactIsSmaller(t *testing.T) {
	at := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	v := store.Session{Org: "org-01234", User: "u0123456", AuthenticatedAt: at, ExpiresAt: at.Add(store.MaxSessionTimeout), Email: "u0123456@org-01234.example"}
	raw, _ := json.Marshal(v)
	compact := encodeSession(&v)
	t.Logf("session value: %d bytes compact, %d bytes JSON (plus the 8-byte prefix)", len(compact), len(raw))
	if len(compact) > 60 {
		t.Errorf("compact session value is %d bytes", len(compact))
	}
	m := store.Membership{Org: "org-01234", User: "u0123456", Role: "write"}
	if n := len(encodeMembership(&m)); n > 10 {
		t.Errorf("compact membership value is %d bytes", n)
	}
}

func TestExpiryNanos(t *testing.T) {
	for _, tc := range []struct {
		at   time.Time
		want uint64
	}{
		{time.Time{}, 0},
		{time.Unix(0, 0), 1},
		{time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC), 1},
		{time.Unix(0, 5), 5},
		{time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), 1<<63 - 1},
	} {
		if got := expiryNanos(tc.at); got != tc.want {
			t.Errorf("expiryNanos(%v) = %d, want %d", tc.at, got, tc.want)
		}
	}
}
