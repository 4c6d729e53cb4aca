package identity

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"google.golang.org/protobuf/types/known/structpb"
)

func mdPayload(t testing.TB, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAuthenticate(t *testing.T) {
	k := getKeys(t)
	alice := es256(t, claims("u-alice"))
	alice2 := es256(t, func() map[string]any { c := claims("u-alice"); c["sid"] = "2"; return c }())
	bob := sign(t, k.rsa, jose.RS256, "rsa-1", claims("u-bob"))
	forged := sign(t, k.other, jose.ES256, "ec-1", claims("u-dave"))
	expired := es256(t, func() map[string]any { c := claims("u-alice"); c["exp"] = t0.Add(-time.Hour).Unix(); return c }())
	mdAlice := map[string]any{"aud": "hub", "sub": "u-alice", "exp": float64(t0.Add(time.Hour).Unix()),
		"email": "alice@acme.example", "email_verified": true, "emails": []any{"a@globex.example"}}

	tests := []struct {
		name    string
		h       HeaderMap
		md      map[string]any
		wantSub string // "" = anonymous
		wantSrc string
		wantErr error
	}{
		{name: "anonymous", h: HeaderMap{"accept": {"*/*"}}},
		{name: "nil headers", h: nil},
		{name: "bearer", h: HeaderMap{"authorization": {"Bearer " + alice}}, wantSub: "u-alice", wantSrc: "bearer"},
		{name: "bearer scheme case-insensitive", h: HeaderMap{"authorization": {"bEaReR  " + bob}}, wantSub: "u-bob", wantSrc: "bearer"},
		{name: "basic token as password", h: HeaderMap{"authorization": {basic("bob", bob)}}, wantSub: "u-bob", wantSrc: "basic"},
		{name: "basic unpadded", h: HeaderMap{"authorization": {"basic " + base64.RawStdEncoding.EncodeToString([]byte("x:"+bob))}}, wantSub: "u-bob", wantSrc: "basic"},
		{name: "cookie among others", h: HeaderMap{"cookie": {"theme=dark; hub_session=" + alice + "; lang=en"}}, wantSub: "u-alice", wantSrc: "cookie"},
		{name: "cookie quoted in second header", h: HeaderMap{"cookie": {"theme=dark", `hub_session="` + alice + `"`}}, wantSub: "u-alice", wantSrc: "cookie"},
		{name: "similar cookie name ignored", h: HeaderMap{"cookie": {"xhub_session=" + alice + "; hub_session_old=" + bob}}},
		{name: "other scheme is an invalid token", h: HeaderMap{"authorization": {"Negotiate abc"}}, wantErr: ErrInvalidToken},
		{name: "bearer with a tab", h: HeaderMap{"authorization": {"Bearer\t" + alice}}, wantSub: "u-alice", wantSrc: "bearer"},
		{name: "scheme without separator", h: HeaderMap{"authorization": {"Bearer" + alice}}, wantErr: ErrInvalidToken},
		{name: "empty authorization ignored", h: HeaderMap{"authorization": {""}}},
		{name: "bad bearer signature", h: HeaderMap{"authorization": {"Bearer " + forged}}, wantErr: ErrInvalidToken},
		{name: "expired bearer", h: HeaderMap{"authorization": {"Bearer " + expired}}, wantErr: ErrInvalidToken},
		{name: "bearer not a JWT", h: HeaderMap{"authorization": {"Bearer hf_abcdef"}}, wantErr: ErrInvalidToken},
		{name: "empty bearer", h: HeaderMap{"authorization": {"Bearer"}}, wantErr: ErrInvalidToken},
		{name: "basic bad base64", h: HeaderMap{"authorization": {"Basic !!!"}}, wantErr: ErrInvalidToken},
		{name: "basic no colon", h: HeaderMap{"authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(alice))}}, wantErr: ErrInvalidToken},
		{name: "basic bad token", h: HeaderMap{"authorization": {basic("git", "secret")}}, wantErr: ErrInvalidToken},
		{name: "invalid bearer wins over valid cookie", h: HeaderMap{"authorization": {"Bearer " + forged}, "cookie": {"hub_session=" + alice}}, wantErr: ErrInvalidToken},
		{name: "invalid bearer wins over duplicate cookies", h: HeaderMap{"authorization": {"Bearer " + forged}, "cookie": {"hub_session=" + alice + "; hub_session=" + bob}}, wantErr: ErrInvalidToken},
		{name: "bad cookie is anonymous", h: HeaderMap{"cookie": {"theme=dark; hub_session=" + forged}}},
		{name: "expired cookie is anonymous", h: HeaderMap{"cookie": {"hub_session=" + expired}}},
		{name: "garbage cookie is anonymous", h: HeaderMap{"cookie": {"hub_session=%%%"}}},
		{name: "empty cookie is anonymous", h: HeaderMap{"cookie": {"hub_session=; theme=dark"}}},
		{name: "two cookies differ", h: HeaderMap{"cookie": {"hub_session=" + alice + "; hub_session=" + alice2}}, wantErr: ErrAmbiguousIdentity},
		{name: "two cookies differ, one invalid", h: HeaderMap{"cookie": {"hub_session=" + alice, "hub_session=" + forged}}, wantErr: ErrAmbiguousIdentity},
		{name: "two cookies same", h: HeaderMap{"cookie": {"hub_session=" + alice + "; hub_session=" + alice}}, wantSub: "u-alice", wantSrc: "cookie"},
		{name: "bearer A cookie B", h: HeaderMap{"authorization": {"Bearer " + bob}, "cookie": {"hub_session=" + alice}}, wantErr: ErrAmbiguousIdentity},
		{name: "bearer and cookie same sub", h: HeaderMap{"authorization": {"Bearer " + alice2}, "cookie": {"hub_session=" + alice}}, wantSub: "u-alice", wantSrc: "bearer"},
		{name: "bearer A bad cookie", h: HeaderMap{"authorization": {"Bearer " + bob}, "cookie": {"hub_session=" + forged}}, wantSub: "u-bob", wantSrc: "bearer"},
		{name: "two authorization values differ", h: HeaderMap{"authorization": {"Bearer " + alice, basic("", bob)}}, wantErr: ErrAmbiguousIdentity},
		{name: "metadata", md: mdAlice, wantSub: "u-alice", wantSrc: "metadata"},
		{name: "metadata exp as string", md: map[string]any{"sub": "u-alice", "exp": "4070908800"}, wantSub: "u-alice", wantSrc: "metadata"},
		{name: "metadata within skew", md: map[string]any{"sub": "u-alice", "exp": float64(t0.Add(-30 * time.Second).Unix())}, wantSub: "u-alice", wantSrc: "metadata"},
		{name: "metadata missing sub ignored", md: map[string]any{"exp": float64(t0.Add(time.Hour).Unix())}},
		{name: "metadata missing exp ignored", md: map[string]any{"sub": "u-alice"}},
		{name: "metadata expired ignored", md: map[string]any{"sub": "u-alice", "exp": float64(t0.Add(-time.Hour).Unix())}},
		{name: "metadata expired, cookie used", md: map[string]any{"sub": "u-bob", "exp": float64(t0.Add(-time.Hour).Unix())}, h: HeaderMap{"cookie": {"hub_session=" + alice}}, wantSub: "u-alice", wantSrc: "cookie"},
		{name: "metadata and bearer same sub", md: mdAlice, h: HeaderMap{"authorization": {"Bearer " + alice}}, wantSub: "u-alice", wantSrc: "metadata"},
		{name: "metadata A bearer B", md: mdAlice, h: HeaderMap{"authorization": {"Bearer " + bob}}, wantErr: ErrAmbiguousIdentity},
		{name: "metadata A cookie B", md: mdAlice, h: HeaderMap{"cookie": {"hub_session=" + bob}}, wantErr: ErrAmbiguousIdentity},
	}
	a, _ := newAuth(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var md *structpb.Struct
			if tc.md != nil {
				md = mdPayload(t, tc.md)
			}
			var h Headers
			if tc.h != nil {
				h = tc.h
			}
			u, err := a.Authenticate(context.Background(), h, md)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || u != nil {
					t.Fatalf("got %+v, %v; want %v", u, err, tc.wantErr)
				}
				if errors.Is(err, ErrInvalidToken) && errors.Is(err, ErrAmbiguousIdentity) {
					t.Fatalf("error is both: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if tc.wantSub == "" {
				if u != nil {
					t.Fatalf("got %+v; want anonymous", u)
				}
				return
			}
			if u == nil || u.Sub != tc.wantSub || u.Source != tc.wantSrc {
				t.Fatalf("got %+v; want sub %q source %q", u, tc.wantSub, tc.wantSrc)
			}
		})
	}
}

func TestAuthenticateMetadataFields(t *testing.T) {
	a, _ := newAuth(t, nil)
	md := mdPayload(t, map[string]any{"sub": "u-alice", "exp": float64(4070908800),
		"email": "alice@acme.example", "email_verified": true, "emails": []any{"a@globex.example", 3}})
	u, err := a.Authenticate(context.Background(), nil, md)
	if err != nil || u == nil {
		t.Fatal(u, err)
	}
	if len(u.Emails) != 2 || u.Emails[0] != "alice@acme.example" || u.Emails[1] != "a@globex.example" || !u.EmailVerified {
		t.Fatalf("got %+v", u)
	}
	if !u.Expiry.Equal(time.Unix(4070908800, 0)) {
		t.Fatalf("expiry %v", u.Expiry)
	}
	// Metadata off: the md argument is ignored.
	off, _ := newAuth(t, func(o *Options) { o.MetadataNamespace = "" })
	if u, err := off.Authenticate(context.Background(), nil, md); u != nil || err != nil {
		t.Fatalf("metadata off: got %+v, %v", u, err)
	}
}

func TestMetadataPayload(t *testing.T) {
	a, _ := newAuth(t, nil)
	inner := map[string]any{"sub": "u-alice"}
	filter := map[string]*structpb.Struct{testNS: mdPayload(t, map[string]any{testKey: inner})}
	if got := a.MetadataPayload(filter); got.GetFields()["sub"].GetStringValue() != "u-alice" {
		t.Fatalf("got %v", got)
	}
	if got := a.MetadataPayload(nil); got != nil {
		t.Fatalf("nil filter: got %v", got)
	}
	other := map[string]*structpb.Struct{testNS: mdPayload(t, map[string]any{"other": inner})}
	if got := a.MetadataPayload(other); got != nil {
		t.Fatalf("other key: got %v", got)
	}
}

func TestAuthenticateReturnsCopy(t *testing.T) {
	a, _ := newAuth(t, nil)
	h := HeaderMap{"cookie": {"hub_session=" + es256(t, claims("u-alice"))}}
	u, _ := a.Authenticate(context.Background(), h, nil)
	u.Sub = "mutated"
	u2, _ := a.Authenticate(context.Background(), h, nil)
	if u2.Sub != "u-alice" {
		t.Fatalf("cache entry mutated through returned user: %+v", u2)
	}
}

func TestErrorsOmitToken(t *testing.T) {
	a, _ := newAuth(t, nil)
	forged := sign(t, getKeys(t).other, jose.ES256, "ec-1", claims("u-dave"))
	for _, v := range []string{"Bearer " + forged, basic("git", forged), basic("git", "not-a-jwt-secret")} {
		_, err := a.Authenticate(context.Background(), HeaderMap{"authorization": {v}}, nil)
		if err == nil {
			t.Fatal("accepted")
		}
		msg := err.Error()
		if strings.Contains(msg, forged[len(forged)-12:]) || strings.Contains(msg, "not-a-jwt-secret") ||
			strings.Contains(msg, strings.Fields(v)[1][:12]) {
			t.Fatalf("error leaks credentials: %s", msg)
		}
	}
}

func TestFindCookie(t *testing.T) {
	tests := []struct {
		in   []string
		val  string
		dup  bool
		name string
	}{
		{nil, "", false, "none"},
		{[]string{"a=1; hub_session=x; b=2"}, "x", false, "middle"},
		{[]string{"hub_session=x;b=2"}, "x", false, "no space"},
		{[]string{"  hub_session=x  "}, "x", false, "padded"},
		{[]string{"a=1", "hub_session=y"}, "y", false, "second header"},
		{[]string{"hub_session=x; hub_session=x"}, "x", false, "same twice"},
		{[]string{"hub_session=x; hub_session=y"}, "", true, "different"},
		{[]string{"hub_session=; hub_session=y"}, "y", false, "empty skipped"},
		{[]string{"hub_session"}, "", false, "no equals"},
		{[]string{"HUB_SESSION=x"}, "", false, "case-sensitive"},
		{[]string{`hub_session="x"`}, "x", false, "quoted"},
		{[]string{"hub_session =x"}, "x", false, "space before ="},
		{[]string{"hub_session\t=x"}, "x", false, "tab before ="},
		{[]string{"hub_session= x"}, "x", false, "space after ="},
		{[]string{"a=1;hub_session = x ;b=2"}, "x", false, "spaces around"},
		{[]string{"hub_session=x; hub_session =y"}, "", true, "different, one spaced"},
		{[]string{"xhub_session=x; hub_session_2=y"}, "", false, "other names"},
		{[]string{"theme=dark, hub_session=x"}, "x", false, "comma separated"},
		{[]string{"hub_session=x,hub_session=y"}, "", true, "different, comma separated"},
		{[]string{"hub_session=%65yJ.a"}, "eyJ.a", false, "percent-encoded"},
		{[]string{"hub_session=%65yJ.a; hub_session=eyJ.a"}, "eyJ.a", false, "the same, once encoded"},
		{[]string{"hub_session=%zz"}, "%zz", false, "bad percent-encoding kept"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			val, dup := findCookie(tc.in, testCookie)
			if val != tc.val || dup != tc.dup {
				t.Fatalf("got %q %v; want %q %v", val, dup, tc.val, tc.dup)
			}
		})
	}
	// Whatever net/http reads as the session cookie is read here too, so no
	// spelling the hub accepts passes ssogate as anonymous.
	for _, h := range []string{"hub_session =a", "hub_session\t=a", " hub_session = a", "x=1 ; hub_session =a;y=2",
		"hub_session=a", `hub_session ="a"`, "hub_session= a"} {
		r := &http.Request{Header: http.Header{"Cookie": {h}}}
		c, err := r.Cookie(testCookie)
		if err != nil {
			continue
		}
		if val, _ := findCookie([]string{h}, testCookie); val == "" || val != strings.TrimSpace(c.Value) {
			t.Errorf("%q: net/http reads %q, findCookie %q", h, c.Value, val)
		}
	}
	line := []string{"theme=dark; lang=en; _ga=GA1.2.3; hub_session=abc.def.ghi; other=1"}
	if n := testing.AllocsPerRun(100, func() { findCookie(line, testCookie) }); n != 0 {
		t.Fatalf("findCookie allocates %v times", n)
	}
}

func TestCachedAuthenticateAllocs(t *testing.T) {
	a, _ := newAuth(t, nil)
	h := HeaderMap{"cookie": {"theme=dark; hub_session=" + es256(t, claims("u-alice"))}}
	ctx := context.Background()
	a.Authenticate(ctx, h, nil)
	// One allocation: the caller's copy of the cached User.
	if n := testing.AllocsPerRun(100, func() { a.Authenticate(ctx, h, nil) }); n > 1 {
		t.Fatalf("cached Authenticate allocates %v times", n)
	}
}

func benchCookieHeaders(b *testing.B) HeaderMap {
	tok := es256(b, claims("u-alice"))
	return HeaderMap{
		"accept": {"text/html"},
		"cookie": {"theme=dark; lang=en; _ga=GA1.2.345678.9012345; hub_session=" + tok + "; csrf=abcdef"},
	}
}

func BenchmarkAuthenticateCookieCached(b *testing.B) {
	a, _ := newAuth(b, nil)
	h := benchCookieHeaders(b)
	ctx := context.Background()
	if u, err := a.Authenticate(ctx, h, nil); u == nil || err != nil {
		b.Fatal(u, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		a.Authenticate(ctx, h, nil)
	}
}

func BenchmarkAuthenticateCookieUncached(b *testing.B) {
	a, _ := newAuth(b, func(o *Options) { o.CacheSize = -1 })
	h := benchCookieHeaders(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if u, err := a.Authenticate(ctx, h, nil); u == nil || err != nil {
			b.Fatal(u, err)
		}
	}
}

// BenchmarkCookieParse compares findCookie with net/http's parser.
func BenchmarkCookieParse(b *testing.B) {
	line := benchCookieHeaders(b)["cookie"]
	b.Run("findCookie", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			findCookie(line, testCookie)
		}
	})
	b.Run("net/http", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			cs, _ := http.ParseCookie(line[0])
			for _, c := range cs {
				_ = c.Name == testCookie
			}
		}
	})
}
