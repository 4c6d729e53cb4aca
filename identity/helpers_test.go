package identity

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	testIssuer = "https://hub.example.test"
	testCookie = "hub_session"
	testNS     = "envoy.filters.http.jwt_authn"
	testKey    = "platform_user"
)

var t0 = time.Date(2026, 6, 2, 12, 0, 0, 0, time.UTC)

// testKeys are generated once per test binary: RSA generation is slow.
type testKeys struct {
	ec, other *ecdsa.PrivateKey
	rsa       *rsa.PrivateKey
	ed        ed25519.PrivateKey
	jwks      []byte // public ec (kid ec-1), rsa (kid rsa-1), ed (kid ed-1)
}

var (
	keysOnce sync.Once
	keys     testKeys
)

func getKeys(t testing.TB) *testKeys {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if keys.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if keys.other, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if keys.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if _, keys.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
		keys.jwks, err = json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &keys.ec.PublicKey, KeyID: "ec-1", Algorithm: "ES256", Use: "sig"},
			{Key: &keys.rsa.PublicKey, KeyID: "rsa-1", Algorithm: "RS256", Use: "sig"},
			{Key: keys.ed.Public(), KeyID: "ed-1", Use: "sig"},
		}})
		if err != nil {
			panic(err)
		}
	})
	return &keys
}

// clock is an injectable Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func newAuth(t testing.TB, mod func(*Options)) (*Authenticator, *clock) {
	t.Helper()
	k := getKeys(t)
	c := &clock{t: t0}
	o := Options{
		Issuer:            testIssuer,
		Audiences:         []string{"hub"},
		JWKS:              k.jwks,
		Cookie:            testCookie,
		MetadataNamespace: testNS,
		MetadataKey:       testKey,
		ClockSkew:         time.Minute,
		Now:               c.Now,
	}
	if mod != nil {
		mod(&o)
	}
	a, err := New(context.Background(), o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a, c
}

// claims returns standard valid claims for sub, to be modified by tests.
func claims(sub string) map[string]any {
	return map[string]any{
		"iss":            testIssuer,
		"aud":            "hub",
		"sub":            sub,
		"email":          sub + "@acme.example",
		"email_verified": true,
		"iat":            t0.Add(-time.Hour).Unix(),
		"exp":            t0.Add(time.Hour).Unix(),
	}
}

func sign(t testing.TB, key crypto.Signer, alg jose.SignatureAlgorithm, kid string, c map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// es256 signs c with the trusted EC key.
func es256(t testing.TB, c map[string]any) string {
	return sign(t, getKeys(t).ec, jose.ES256, "ec-1", c)
}

// unsigned builds header.payload.signature by hand; with hmacKey it signs
// HS256 (the "public key as HMAC secret" attack), else it is alg none.
func unsigned(t testing.TB, c map[string]any, hmacKey []byte) string {
	t.Helper()
	alg := "none"
	if hmacKey != nil {
		alg = "HS256"
	}
	h, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT", "kid": "ec-1"})
	p, _ := json.Marshal(c)
	enc := base64.RawURLEncoding
	in := enc.EncodeToString(h) + "." + enc.EncodeToString(p)
	if hmacKey == nil {
		return in + "."
	}
	m := hmac.New(sha256.New, hmacKey)
	m.Write([]byte(in))
	return in + "." + enc.EncodeToString(m.Sum(nil))
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}
