package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func TestVerifyToken(t *testing.T) {
	k := getKeys(t)
	with := func(mod func(map[string]any)) map[string]any {
		c := claims("u-alice")
		mod(c)
		return c
	}
	pubDER, _ := json.Marshal(jose.JSONWebKey{Key: &k.ec.PublicKey})
	tests := []struct {
		name    string
		raw     string
		wantErr string // "" = valid; else a substring of the error
	}{
		{"valid ES256", es256(t, claims("u-alice")), ""},
		{"valid RS256 from JWKS", sign(t, k.rsa, jose.RS256, "rsa-1", claims("u-alice")), ""},
		{"valid EdDSA, key without alg", sign(t, k.ed, jose.EdDSA, "ed-1", claims("u-alice")), ""},
		{"valid without kid", sign(t, k.ec, jose.ES256, "", claims("u-alice")), ""},
		{"aud array", es256(t, with(func(c map[string]any) { c["aud"] = []string{"other", "hub"} })), ""},
		{"expired within skew", es256(t, with(func(c map[string]any) { c["exp"] = t0.Add(-30 * time.Second).Unix() })), ""},
		{"nbf within skew", es256(t, with(func(c map[string]any) { c["nbf"] = t0.Add(30 * time.Second).Unix() })), ""},
		{"bad signature", sign(t, k.other, jose.ES256, "ec-1", claims("u-alice")), "signature invalid"},
		{"unknown kid", sign(t, k.ec, jose.ES256, "nope", claims("u-alice")), "no signing key"},
		{"RS256 on key pinned to ES256", sign(t, k.rsa, jose.RS256, "ec-1", claims("u-alice")), "no signing key"},
		{"wrong issuer", es256(t, with(func(c map[string]any) { c["iss"] = "https://evil.example" })), "wrong issuer"},
		{"missing issuer", es256(t, with(func(c map[string]any) { delete(c, "iss") })), "wrong issuer"},
		{"wrong audience", es256(t, with(func(c map[string]any) { c["aud"] = "other" })), "wrong audience"},
		{"missing audience", es256(t, with(func(c map[string]any) { delete(c, "aud") })), "wrong audience"},
		{"expired beyond skew", es256(t, with(func(c map[string]any) { c["exp"] = t0.Add(-2 * time.Minute).Unix() })), "expired"},
		{"expired exactly at exp+skew", es256(t, with(func(c map[string]any) { c["exp"] = t0.Add(-time.Minute).Unix() })), "expired"},
		{"missing exp", es256(t, with(func(c map[string]any) { delete(c, "exp") })), "missing exp"},
		{"nbf in future", es256(t, with(func(c map[string]any) { c["nbf"] = t0.Add(5 * time.Minute).Unix() })), "not yet valid"},
		{"iat in future", es256(t, with(func(c map[string]any) { c["iat"] = t0.Add(5 * time.Minute).Unix() })), "issued in the future"},
		{"missing sub", es256(t, with(func(c map[string]any) { delete(c, "sub") })), "missing sub"},
		{"exp not a number", es256(t, with(func(c map[string]any) { c["exp"] = "soon" })), "malformed claims"},
		{"alg none", unsigned(t, claims("u-alice"), nil), "algorithm not allowed"},
		{"HS256 with public key as secret", unsigned(t, claims("u-alice"), pubDER), "algorithm not allowed"},
		{"not a JWT", "hello", "compact serialization"},
		{"JSON serialization", `{"payload":"e30","signatures":[]}`, "compact serialization"},
		{"JWE-shaped", "a.b.c.d.e", "compact serialization"},
		{"empty", "", "empty"},
		{"too large", strings.Repeat("a", maxTokenLen) + ".b.c", "too large"},
		{"garbage parts", "a.b.c", "malformed JWT"},
	}
	a, _ := newAuth(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Twice: the second answer comes from the (positive or negative) cache.
			for i := 0; i < 2; i++ {
				u, err := a.VerifyToken(context.Background(), tc.raw)
				if tc.wantErr == "" {
					if err != nil || u == nil || u.Sub != "u-alice" || u.Source != "" {
						t.Fatalf("round %d: got %+v, %v; want u-alice", i, u, err)
					}
					continue
				}
				if !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("round %d: err = %v; want ErrInvalidToken with %q", i, err, tc.wantErr)
				}
				if u != nil {
					t.Fatalf("round %d: user %+v with error", i, u)
				}
				if len(tc.raw) > 10 && strings.Contains(err.Error(), tc.raw[len(tc.raw)-10:]) {
					t.Fatalf("error contains the token: %v", err)
				}
			}
		})
	}
}

func TestVerifyTokenUserFields(t *testing.T) {
	a, _ := newAuth(t, nil)
	c := claims("u-alice")
	c["email"] = "alice@acme.example"
	c["emails"] = []any{"ALICE@acme.example", "", "alice@globex.example", 7}
	u, err := a.VerifyToken(context.Background(), es256(t, c))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"alice@acme.example", "alice@globex.example"}
	if !slices.Equal(u.Emails, want) || !u.EmailVerified || u.Email != "alice@acme.example" {
		t.Fatalf("got %+v; want emails %v", u, want)
	}
	if !u.Expiry.Equal(t0.Add(time.Hour)) {
		t.Fatalf("expiry %v", u.Expiry)
	}

	c = claims("u-bob")
	c["email_verified"] = "false"
	c["emails"] = "bob@freelance.example"
	u, err = a.VerifyToken(context.Background(), es256(t, c))
	if err != nil {
		t.Fatal(err)
	}
	if u.EmailVerified || !slices.Equal(u.Emails, []string{"bob@freelance.example"}) {
		t.Fatalf("got %+v; unverified email must not be listed", u)
	}
}

func TestCachedTokenExpires(t *testing.T) {
	a, clk := newAuth(t, nil)
	c := claims("u-alice")
	c["exp"] = t0.Add(10 * time.Minute).Unix()
	raw := es256(t, c)
	ctx := context.Background()
	if _, err := a.VerifyToken(ctx, raw); err != nil {
		t.Fatal(err)
	}
	if a.cache.Len() != 1 {
		t.Fatalf("cache has %d entries, want 1", a.cache.Len())
	}
	clk.Set(t0.Add(10*time.Minute + 59*time.Second)) // within skew: still valid
	if _, err := a.VerifyToken(ctx, raw); err != nil {
		t.Fatalf("within skew: %v", err)
	}
	clk.Set(t0.Add(11 * time.Minute)) // exp+skew reached
	if _, err := a.VerifyToken(ctx, raw); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("past exp+skew: err = %v, want ErrInvalidToken", err)
	}
	if a.cache.Len() != 0 {
		t.Fatalf("expired entry still cached")
	}
}

func TestCacheKeyIsHash(t *testing.T) {
	a, _ := newAuth(t, nil)
	raw := es256(t, claims("u-alice"))
	if _, err := a.VerifyToken(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range a.cache.Keys() {
		if strings.Contains(string(k[:]), raw[:8]) {
			t.Fatal("cache key holds the token")
		}
	}
}

func TestNegativeCache(t *testing.T) {
	a, clk := newAuth(t, nil)
	ctx := context.Background()
	bad := sign(t, getKeys(t).other, jose.ES256, "ec-1", claims("u-alice"))
	if _, err := a.VerifyToken(ctx, bad); err == nil {
		t.Fatal("bad signature accepted")
	}
	if a.negative.Len() != 1 {
		t.Fatalf("negative cache has %d entries, want 1", a.negative.Len())
	}
	// A token not yet valid must not be remembered: it heals with time.
	c := claims("u-alice")
	c["nbf"] = t0.Add(5 * time.Minute).Unix()
	early := es256(t, c)
	if _, err := a.VerifyToken(ctx, early); err == nil {
		t.Fatal("nbf in future accepted")
	}
	clk.Set(t0.Add(5 * time.Minute))
	if _, err := a.VerifyToken(ctx, early); err != nil {
		t.Fatalf("after nbf: %v", err)
	}
	clk.Set(t0.Add(5*time.Minute + negativeTTL))
	if _, err := a.VerifyToken(ctx, bad); err == nil || a.negative.Len() != 1 {
		t.Fatalf("negative entry must be replaced after its TTL: err=%v len=%d", err, a.negative.Len())
	}
}

func TestCacheDisabled(t *testing.T) {
	a, _ := newAuth(t, func(o *Options) { o.CacheSize = -1 })
	raw := es256(t, claims("u-alice"))
	for i := 0; i < 2; i++ {
		if _, err := a.VerifyToken(context.Background(), raw); err != nil {
			t.Fatal(err)
		}
	}
	if a.cache != nil {
		t.Fatal("cache created")
	}
}

func TestNewErrors(t *testing.T) {
	k := getKeys(t)
	jwk := func(key any, mod func(*jose.JSONWebKey)) []byte {
		j := jose.JSONWebKey{Key: key, KeyID: "k1", Use: "sig"}
		if mod != nil {
			mod(&j)
		}
		b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{j}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"no issuer", func(o *Options) { o.Issuer = "" }, "issuer is required"},
		{"no audience", func(o *Options) { o.Audiences = []string{""} }, "audience"},
		{"negative skew", func(o *Options) { o.ClockSkew = -time.Second }, "negative"},
		{"no keys at all", func(o *Options) { o.JWKS = nil }, "required"},
		{"both", func(o *Options) { o.JWKSURL = "https://hub.example.test/jwks" }, "not both"},
		{"bad url", func(o *Options) { o.JWKS, o.JWKSURL = nil, "jwks.json" }, "not an absolute http(s) URL"},
		{"not JSON", func(o *Options) { o.JWKS = []byte("{") }, "JWKS"},
		{"empty set", func(o *Options) { o.JWKS = []byte(`{"keys":[]}`) }, "no keys"},
		{"symmetric", func(o *Options) { o.JWKS = jwk([]byte("0123456789abcdef0123456789abcdef"), nil) }, "symmetric"},
		{"private", func(o *Options) { o.JWKS = jwk(k.ec, nil) }, "private key"},
		{"enc key", func(o *Options) { o.JWKS = jwk(&k.ec.PublicKey, func(j *jose.JSONWebKey) { j.Use = "enc" }) }, `use is "enc"`},
		{"HS256 alg", func(o *Options) {
			o.JWKS = jwk(&k.ec.PublicKey, func(j *jose.JSONWebKey) { j.Algorithm = "HS256" })
		}, `alg "HS256" is not allowed`},
		{"small RSA", func(o *Options) { o.JWKS = jwk(&small.PublicKey, nil) }, "too small"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{Issuer: testIssuer, Audiences: []string{"hub"}, JWKS: k.jwks}
			tc.mod(&o)
			_, err := New(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want %q", err, tc.want)
			}
		})
	}
}

func TestRemoteJWKS(t *testing.T) {
	k := getKeys(t)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("content-type", "application/json")
		w.Write(k.jwks)
	}))
	defer srv.Close()
	a, _ := newAuth(t, func(o *Options) { o.JWKS, o.JWKSURL = nil, srv.URL })
	if hits.Load() != 0 {
		t.Fatal("JWKS fetched eagerly")
	}
	u, err := a.VerifyToken(context.Background(), sign(t, k.rsa, jose.RS256, "rsa-1", claims("u-carol")))
	if err != nil || u.Sub != "u-carol" {
		t.Fatalf("got %+v, %v", u, err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	bad := sign(t, other, jose.ES256, "ec-1", claims("u-carol"))
	if _, err := a.VerifyToken(context.Background(), bad); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("bad signature: %v", err)
	}
	if a.negative.Len() != 0 {
		t.Fatal("signature failure against a remote key set was cached")
	}
}

func TestCachedTokenNotBeforeNbf(t *testing.T) {
	a, clk := newAuth(t, nil)
	c := claims("u-alice")
	c["nbf"] = t0.Add(30 * time.Second).Unix() // within skew at t0
	c["iat"] = t0.Add(-time.Hour).Unix()
	raw := es256(t, c)
	if _, err := a.VerifyToken(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(-time.Minute)) // clock stepped back: now+skew < nbf
	if _, err := a.VerifyToken(context.Background(), raw); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("cached token used before nbf-skew: err = %v", err)
	}
}

func TestConcurrentVerify(t *testing.T) {
	a, _ := newAuth(t, func(o *Options) { o.CacheSize = 2 })
	toks := []string{es256(t, claims("u-a")), es256(t, claims("u-b")), es256(t, claims("u-c"))}
	done := make(chan error)
	for g := 0; g < 4; g++ {
		go func() {
			var err error
			for i := 0; i < 30 && err == nil; i++ {
				_, err = a.Authenticate(context.Background(), HeaderMap{"cookie": {testCookie + "=" + toks[(g+i)%3]}}, nil)
			}
			done <- err
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
