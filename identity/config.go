package identity

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/ssogate/ssogate/config"
)

// FromConfig returns an Authenticator for the identity block of the gateway
// file (spec section 2). It reads id.JWKSFile when set; with id.JWKSURL
// nothing is fetched until a token needs a key. now is the clock (nil means
// time.Now). Errors are those of New, or the jwks_file read error.
func FromConfig(ctx context.Context, id config.Identity, now func() time.Time) (*Authenticator, error) {
	o := Options{
		Issuer:            id.Issuer,
		Audiences:         id.Audiences,
		JWKSURL:           id.JWKSURL,
		Cookie:            id.Cookie,
		MetadataNamespace: id.Metadata.Namespace,
		MetadataKey:       id.Metadata.Key,
		ClockSkew:         id.ClockSkew,
		Now:               now,
	}
	if id.JWKSFile != "" {
		b, err := os.ReadFile(id.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("reading jwks_file: %w", err)
		}
		o.JWKS = b
	}
	return New(ctx, o)
}
