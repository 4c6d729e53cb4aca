// Package testkeys makes platform signing keys and tokens at test time, so
// that no test depends on keys committed elsewhere. It is for tests only.
package testkeys

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Issuer and Audience are the platform token values the test gateways use.
const (
	Issuer   = "https://hub.example.test"
	Audience = "hub"
	KeyID    = "test-platform-1"
)

// Keys is an ES256 platform signing key and its public JWK set.
type Keys struct {
	key  *ecdsa.PrivateKey
	JWKS []byte // RFC 7517 JWK set with the public key (kid KeyID)
}

// New generates a fresh P-256 key. It panics if the system has no entropy.
func New() *Keys {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &k.PublicKey, KeyID: KeyID, Algorithm: "ES256", Use: "sig"},
	}})
	if err != nil {
		panic(err)
	}
	return &Keys{key: k, JWKS: jwks}
}

// Sign returns a compact ES256 JWS of claims.
func (k *Keys) Sign(claims map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", KeyID))
	if err != nil {
		panic(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		panic(err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		panic(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		panic(err)
	}
	return s
}

// Token returns a platform token for sub with Issuer, Audience, an email at
// example domain "<sub>@acme.example" (verified) and the given lifetime.
func (k *Keys) Token(sub string, ttl time.Duration) string {
	now := time.Now()
	return k.Sign(map[string]any{
		"iss":            Issuer,
		"aud":            Audience,
		"sub":            sub,
		"email":          fmt.Sprintf("%s@acme.example", sub),
		"email_verified": true,
		"iat":            now.Unix(),
		"exp":            now.Add(ttl).Unix(),
	})
}
