package idp

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Discovery caching (spec section 6: fetched when first needed, cached,
// retried). A fetched document is used for discoveryTTL; a failed fetch
// is retried no sooner than discoveryRetry later, and a stale document is
// kept while its refresh fails.
const (
	discoveryTTL     = time.Hour
	discoveryRetry   = 5 * time.Second
	discoveryTimeout = 10 * time.Second
	wellKnownPath    = "/.well-known/openid-configuration"
)

// provider is a discovered OpenID Provider (OpenID Connect Discovery 1.0
// section 3) with its JWKS, whose keys go-oidc fetches on first use and
// again when a token names an unknown key.
type provider struct {
	oidc     *oidc.Provider
	issuer   string
	endpoint oauth2.Endpoint
	keys     oidc.KeySet
	userinfo bool // a userinfo_endpoint is published
}

// discoveryCache fetches and caches providers by issuer. It is safe for
// concurrent use; concurrent callers for one issuer share one fetch.
type discoveryCache struct {
	client *http.Client
	now    func() time.Time
	log    *slog.Logger

	mu      sync.Mutex
	entries map[string]*discoveryEntry
}

type discoveryEntry struct {
	mu        sync.Mutex // held while fetching
	prov      *provider
	fetchedAt time.Time
	err       error
	failedAt  time.Time
}

func newDiscoveryCache(client *http.Client, now func() time.Time, log *slog.Logger) *discoveryCache {
	return &discoveryCache{client: client, now: now, log: log, entries: map[string]*discoveryEntry{}}
}

// get returns the provider of configured, an issuer URL or its
// /.well-known/openid-configuration URL. The discovered "issuer" must
// equal the issuer URL exactly (Discovery section 4.3). Failures are
// codeIdPUnavailable errors.
func (c *discoveryCache) get(ctx context.Context, configured string) (*provider, error) {
	issuer := strings.TrimSuffix(configured, wellKnownPath)
	c.mu.Lock()
	e := c.entries[issuer]
	if e == nil {
		e = &discoveryEntry{}
		c.entries[issuer] = e
	}
	c.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	now := c.now()
	if e.prov != nil && now.Sub(e.fetchedAt) < discoveryTTL {
		return e.prov, nil
	}
	if e.err == nil || now.Sub(e.failedAt) >= discoveryRetry {
		p, err := c.fetch(ctx, issuer)
		if err == nil {
			e.prov, e.fetchedAt, e.err = p, now, nil
			return p, nil
		}
		e.err, e.failedAt = err, now
		c.log.Warn("oidc discovery failed", "issuer", issuer, "error", truncate(err.Error(), 300),
			"stale_kept", e.prov != nil)
	}
	if e.prov != nil {
		return e.prov, nil
	}
	return nil, failf(http.StatusBadGateway, codeIdPUnavailable,
		"The identity provider at %s cannot be reached or its configuration is invalid. Please try again in a few minutes.",
		issuer).with(e.err)
}

// fetch runs discovery for issuer, detached from the caller's
// cancellation (the result is shared) but bounded by discoveryTimeout.
func (c *discoveryCache) fetch(ctx context.Context, issuer string) (*provider, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), discoveryTimeout)
	defer cancel()
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, c.client), issuer)
	if err != nil {
		return nil, fmt.Errorf("discovery of %s: %w", issuer, err)
	}
	var meta struct {
		Issuer   string `json:"issuer"`
		JWKSURI  string `json:"jwks_uri"`
		Userinfo string `json:"userinfo_endpoint"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, fmt.Errorf("discovery of %s: %w", issuer, err)
	}
	if meta.JWKSURI == "" || p.Endpoint().AuthURL == "" || p.Endpoint().TokenURL == "" {
		return nil, fmt.Errorf("discovery of %s: jwks_uri, authorization_endpoint and token_endpoint are required", issuer)
	}
	return &provider{
		oidc:     p,
		issuer:   meta.Issuer,
		endpoint: p.Endpoint(),
		keys:     oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), c.client), meta.JWKSURI),
		userinfo: meta.Userinfo != "",
	}, nil
}

// truncate shortens s to at most n bytes of valid UTF-8.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
