package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/go-jose/go-jose/v4"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Names and claims shared with ../ssogate.yaml (identity.issuer,
// identity.audiences, identity.jwks_file); the test checks they agree.
const (
	Issuer   = "https://hub.example.test"
	Audience = "hub"
	KeyID    = "quickstart-demo-1"
	Host     = "hub.example.test"

	KeyFile     = "demo-platform-signing-key.pem"
	JWKSFile    = "demo-platform-jwks.json"
	RequestsDir = "requests"
)

// Token times: fixed, so the committed tokens work with both the committed
// state.yaml (eval --now ReferenceNow) and today's clock, until 2099.
var (
	tokenIssuedAt = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tokenExpiry   = time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
)

// emails of the demo users (claims "email" and "email_verified": true).
var emails = map[string]string{
	"u-alice": "alice@acme.example",
	"u-bob":   "bob@contractor.example",
	"u-carol": "carol@acme.example",
	"u-dave":  "dave@acme.example",
}

const (
	browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	browserAgent  = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
	apiAgent      = "curl/8.5.0"
)

// Request describes one sample CheckRequest.
type Request struct {
	// Name is the file name without .json. It encodes the expected outcome:
	// "allow-..." or "deny-...-<HTTP status>".
	Name   string
	User   string // platform user (token "sub"); "" = anonymous
	Bearer bool   // send the token as "authorization: Bearer", else as the hub_session cookie
	Method string
	Path   string
	Accept string
}

// Requests are the samples in ../requests, in walk-through order.
var Requests = []Request{
	{Name: "allow-public", Method: "GET", Path: "/acme/open-model/resolve/main/config.json", Accept: "*/*"},
	{Name: "deny-anonymous-private-404", Method: "GET", Path: "/acme/secret-model", Accept: browserAccept},
	{Name: "allow-member-session", User: "u-alice", Method: "GET", Path: "/acme/secret-model/blob/main/README.md", Accept: browserAccept},
	{Name: "deny-expired-session-302", User: "u-dave", Method: "GET", Path: "/acme/secret-model/tree/main", Accept: browserAccept},
	{Name: "deny-api-sso-required-401", User: "u-carol", Bearer: true, Method: "GET", Path: "/api/models/acme/secret-model", Accept: "application/json"},
	{Name: "deny-insufficient-role-403", User: "u-alice", Method: "GET", Path: "/acme/secret-model/settings", Accept: browserAccept},
	{Name: "allow-external-collaborator", User: "u-bob", Method: "GET", Path: "/datasets/acme/train-data", Accept: browserAccept},
	{Name: "allow-optional-prompt", User: "u-alice", Method: "GET", Path: "/globex/roadmap", Accept: browserAccept},
}

// NewKey generates a new ES256 (P-256) signing key.
func NewKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// ReadKey reads the PKCS #8 PEM private key at path.
func ReadKey(path string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: no PEM \"PRIVATE KEY\" block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%s: not a P-256 ECDSA key", path)
	}
	return ec, nil
}

// KeyPEM encodes key as a PKCS #8 PEM block.
func KeyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// JWKS returns the public JWK set of key (kid KeyID, alg ES256, use sig).
func JWKS(key *ecdsa.PrivateKey) ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &key.PublicKey, KeyID: KeyID, Algorithm: string(jose.ES256), Use: "sig",
	}}}
	b, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Token returns a platform token for sub, signed with key: an ES256 JWT with
// the claims ssogate reads (iss, aud, sub, exp, iat, email, email_verified).
// email "" means the demo user's address, if any.
func Token(key *ecdsa.PrivateKey, sub, email string) (string, error) {
	if sub == "" {
		return "", errors.New("token: sub is required")
	}
	claims := map[string]any{
		"iss": Issuer,
		"aud": Audience,
		"sub": sub,
		"iat": tokenIssuedAt.Unix(),
		"exp": tokenExpiry.Unix(),
	}
	if email == "" {
		email = emails[sub]
	}
	if email != "" {
		claims["email"] = email
		claims["email_verified"] = true
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// CheckRequest builds r the way Envoy's ext_authz filter sends it;
// seq numbers the request id.
func CheckRequest(key *ecdsa.PrivateKey, r Request, seq int) (*authv3.CheckRequest, error) {
	agent := browserAgent
	if r.Bearer {
		agent = apiAgent
	}
	h := map[string]string{
		":authority":        Host,
		":method":           r.Method,
		":path":             r.Path,
		":scheme":           "https",
		"accept":            r.Accept,
		"user-agent":        agent,
		"x-forwarded-proto": "https",
		"x-request-id":      fmt.Sprintf("0d7c5a1e-9b3f-4e2a-8c6d-%012d", seq),
	}
	if r.User != "" {
		tok, err := Token(key, r.User, "")
		if err != nil {
			return nil, err
		}
		if r.Bearer {
			h["authorization"] = "Bearer " + tok
		} else {
			h["cookie"] = "theme=dark; hub_session=" + tok
		}
	}
	ref, err := time.Parse(time.RFC3339, ReferenceNow)
	if err != nil {
		return nil, err
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: socket("10.1.2.3", 51234)},
		Destination: &authv3.AttributeContext_Peer{Address: socket("10.0.0.10", 8443)},
		Request: &authv3.AttributeContext_Request{
			// Informative only: ssogate decides with its own clock.
			Time: timestamppb.New(ref),
			Http: &authv3.AttributeContext_HttpRequest{
				Id:       fmt.Sprint(2000000 + seq),
				Method:   r.Method,
				Headers:  h,
				Path:     r.Path,
				Host:     Host,
				Scheme:   "https",
				Protocol: "HTTP/1.1",
			},
		},
	}}, nil
}

func socket(addr string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: addr, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// MarshalRequest encodes req as indented protojson, stable across runs
// (protojson's own output varies its white space on purpose).
func MarshalRequest(req *authv3.CheckRequest) ([]byte, error) {
	raw, err := protojson.Marshal(req)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return nil, err
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// WriteRequests writes every sample request, signed with key, into
// dir/requests.
func WriteRequests(dir string, key *ecdsa.PrivateKey) error {
	out := filepath.Join(dir, RequestsDir)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for i, r := range Requests {
		req, err := CheckRequest(key, r, i+1)
		if err != nil {
			return fmt.Errorf("%s: %w", r.Name, err)
		}
		b, err := MarshalRequest(req)
		if err != nil {
			return fmt.Errorf("%s: %w", r.Name, err)
		}
		if err := os.WriteFile(filepath.Join(out, r.Name+".json"), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// WriteKeys generates a new signing key and writes it, its JWK set and the
// requests signed with it into dir.
func WriteKeys(dir string) error {
	key, err := NewKey()
	if err != nil {
		return err
	}
	pemBytes, err := KeyPEM(key)
	if err != nil {
		return err
	}
	jwks, err := JWKS(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, KeyFile), pemBytes, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, JWKSFile), jwks, 0o644); err != nil {
		return err
	}
	return WriteRequests(dir, key)
}
