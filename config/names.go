package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Values of Store.Backend.
const (
	BackendMemory = "memory"
	BackendBolt   = "bolt"
	BackendRedis  = "redis"
)

// Values of SSO.Mode.
const (
	ModeEnforced = "enforced" // members without a valid session are denied
	ModeOptional = "optional" // members without a valid session are prompted
)

// Values of SSO.Protocol.
const (
	ProtocolOIDC = "oidc"
	ProtocolSAML = "saml"
)

// Values of OIDC.TokenAuthMethod.
const (
	AuthClientSecretPost  = "client_secret_post"
	AuthClientSecretBasic = "client_secret_basic"
)

// Defaults and limits.
const (
	DefaultGRPCAddr       = "127.0.0.1:9191"
	DefaultHTTPAddr       = "127.0.0.1:8080"
	DefaultCookie         = "hub_session"
	DefaultOrgsDir        = "orgs"
	DefaultClockSkew      = 60 * time.Second // Identity.ClockSkew
	DefaultSAMLClockSkew  = 90 * time.Second // SAML.ClockSkew
	DefaultCacheTTL       = time.Second      // Store.CacheTTL
	DefaultSessionTimeout = 168 * time.Hour  // SSO.SessionTimeout
	MinSessionTimeout     = 5 * time.Minute
	MaxSessionTimeout     = 2160 * time.Hour
	MaxOrgNameLen         = 96 // bytes
)

// DefaultScopes are the OIDC scopes requested when the org file names none.
func DefaultScopes() []string { return []string{"openid", "email", "profile"} }

// reserved are the first path segments that never name a namespace
// (spec section 5, "Routes"), lower case.
var reserved = []string{"api", "datasets", "spaces", "models", "organizations",
	"docs", "login", "logout", "join", "settings", "static", "sso"}

// IsReserved reports whether segment, ignoring ASCII case, is a first path
// segment that never names a namespace (api, datasets, spaces, models,
// organizations, docs, login, logout, join, settings, static, sso).
func IsReserved(segment string) bool {
	return contains(reserved, lowerASCII(segment))
}

// ValidOrgName returns nil when name may name an org: 1 to 96 ASCII letters,
// digits, '-', '_' or '.', not only dots, and not reserved (IsReserved).
func ValidOrgName(name string) error {
	if name == "" || len(name) > MaxOrgNameLen {
		return fmt.Errorf("org name %q must be 1 to %d characters long", name, MaxOrgNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("org name %q may only hold letters, digits, '-', '_' and '.'", name)
		}
	}
	if strings.Trim(name, ".") == "" {
		return fmt.Errorf("org name %q must not be only dots", name)
	}
	if IsReserved(name) {
		return fmt.Errorf("org name %q is reserved (a first path segment of the hub)", name)
	}
	return nil
}

// IsOrgFile reports whether the file name (base name or path) is loaded as
// an org file from orgs_dir: it ends in ".yaml" or ".yml" and does not start
// with '.' (editor and hidden files are ignored).
func IsOrgFile(name string) bool {
	base := filepath.Base(name)
	if strings.HasPrefix(base, ".") {
		return false
	}
	return strings.HasSuffix(base, ".yaml") || strings.HasSuffix(base, ".yml")
}

// orgFileStem returns the base name of path without ".yaml" or ".yml".
func orgFileStem(path string) string {
	base := filepath.Base(path)
	for _, ext := range []string{".yaml", ".yml"} {
		if s, ok := strings.CutSuffix(base, ext); ok {
			return s
		}
	}
	return base
}

// lowerASCII lower-cases the ASCII letters of s only.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// equalFoldASCII reports whether a and b are equal ignoring ASCII case.
func equalFoldASCII(a, b string) bool {
	return len(a) == len(b) && lowerASCII(a) == lowerASCII(b)
}
