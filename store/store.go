// Package store defines ssogate's state (spec section 4): organisation
// memberships, SSO sessions and the resource catalog, and the interfaces that
// every storage backend implements. Backends live in subpackages (memory,
// bolt and redis); storetest holds the contract suite they all pass, and
// cache is a read cache in front of any of them for the decision path.
//
// Names are matched ignoring ASCII case: org names, user ids stay exact, and
// catalog ids ("<namespace>/<name>") are matched ignoring case, as spec
// section 5 requires for namespaces and resource names.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrNotFound is returned by lookups when no record exists.
var ErrNotFound = errors.New("not found")

// MaxFieldLen is the longest user id, email, resource id or created_by
// every backend holds, in bytes (16 KiB): bolt keys a record by org, a NUL
// and the user id (or type, NUL, id), and bbolt keys are at most 32 KiB.
// Writes with a longer field fail with ErrTooLong, in every backend and in
// snapshot validation.
const MaxFieldLen = 16 << 10

// ErrTooLong is wrapped by writes refused by CheckMembership, CheckSession
// or CheckResource.
var ErrTooLong = errors.New("too long")

// checkLen returns an error naming field, without its value, when s is
// longer than MaxFieldLen.
func checkLen(field, s string) error {
	if len(s) > MaxFieldLen {
		return fmt.Errorf("%s of %d bytes is %w: a store holds at most %d", field, len(s), ErrTooLong, MaxFieldLen)
	}
	return nil
}

// CheckMembership returns an error wrapping ErrTooLong when m's user id is
// longer than MaxFieldLen.
func CheckMembership(m *Membership) error { return checkLen("user id", m.User) }

// CheckSession returns an error wrapping ErrTooLong when v's user id or
// email is longer than MaxFieldLen.
func CheckSession(v *Session) error {
	return errors.Join(checkLen("user id", v.User), checkLen("email", v.Email))
}

// CheckBatch runs CheckMembership, CheckSession and CheckResource on every
// record of a batch and returns the first error, naming the record.
func CheckBatch(ms []Membership, ss []Session, rs []Resource) error {
	for i := range ms {
		if err := CheckMembership(&ms[i]); err != nil {
			return fmt.Errorf("membership %d of the batch: %w", i, err)
		}
	}
	for i := range ss {
		if err := CheckSession(&ss[i]); err != nil {
			return fmt.Errorf("session %d of the batch: %w", i, err)
		}
	}
	for i := range rs {
		if err := CheckResource(&rs[i]); err != nil {
			return fmt.Errorf("catalog entry %d of the batch: %w", i, err)
		}
	}
	return nil
}

// CheckResource returns an error wrapping ErrTooLong when r's id or
// created_by is longer than MaxFieldLen.
func CheckResource(r *Resource) error {
	return errors.Join(checkLen("resource id", r.ID), checkLen("created_by", r.CreatedBy))
}

// Membership is a user's membership of an organisation.
type Membership struct {
	Org  string `yaml:"org" json:"org"`
	User string `yaml:"user" json:"user"`
	// Role is the org role name; "" means the org's default_role.
	Role string `yaml:"role,omitempty" json:"role,omitempty"`
	// ResourceGroups maps a resource group name to the member's role in it.
	ResourceGroups map[string]string `yaml:"resource_groups,omitempty" json:"resource_groups,omitempty"`
	// InviteRole is the role the member was invited with; the fallback of
	// role mapping at SSO login (spec section 6).
	InviteRole string `yaml:"invite_role,omitempty" json:"invite_role,omitempty"`
}

// Session is an SSO session of one user for one organisation. It is valid
// while now < AuthenticatedAt + the org's current session_timeout.
type Session struct {
	Org             string    `yaml:"org" json:"org"`
	User            string    `yaml:"user" json:"user"`
	AuthenticatedAt time.Time `yaml:"authenticated_at" json:"authenticated_at"`
	Email           string    `yaml:"email,omitempty" json:"email,omitempty"`
	// ExpiresAt is when a backend drops the session: from then on Session
	// returns ErrNotFound and ListSessions omits it. Zero keeps it. Writers
	// set it to AuthenticatedAt + MaxSessionTimeout so that raising
	// an org's session_timeout later still finds the session; validity is
	// decided by the policy with the org's current timeout.
	ExpiresAt time.Time `yaml:"expires_at,omitempty" json:"expires_at,omitempty"`
}

// MaxSessionTimeout is the largest session_timeout an org may set (spec section 3).
const MaxSessionTimeout = 2160 * time.Hour

// Resource is a catalog entry. A resource that is not in the catalog is
// treated as private.
type Resource struct {
	Type          string `yaml:"type" json:"type"` // model | dataset | space
	ID            string `yaml:"id" json:"id"`     // "<namespace>/<name>"
	Visibility    string `yaml:"visibility" json:"visibility"`
	ResourceGroup string `yaml:"resource_group,omitempty" json:"resource_group,omitempty"`
	CreatedBy     string `yaml:"created_by,omitempty" json:"created_by,omitempty"`
}

// Public reports whether the resource's visibility is "public".
func (r *Resource) Public() bool { return r != nil && r.Visibility == "public" }

// Memberships stores organisation memberships.
type Memberships interface {
	// Membership returns the membership of user in org, or ErrNotFound.
	Membership(ctx context.Context, org, user string) (*Membership, error)
	// PutMembership creates or replaces a membership.
	PutMembership(ctx context.Context, m Membership) error
	// DeleteMembership removes a membership; deleting a missing one is not an error.
	DeleteMembership(ctx context.Context, org, user string) error
}

// Sessions stores SSO sessions, one per (org, user).
type Sessions interface {
	// Session returns the SSO session of user for org, or ErrNotFound.
	Session(ctx context.Context, org, user string) (*Session, error)
	// PutSession creates or replaces the session of (s.Org, s.User).
	PutSession(ctx context.Context, s Session) error
	// DeleteSession ends a session; ending a missing one is not an error.
	DeleteSession(ctx context.Context, org, user string) error
	// ListSessions returns the sessions of org, in no particular order.
	ListSessions(ctx context.Context, org string) ([]Session, error)
}

// Catalog stores resource catalog entries.
type Catalog interface {
	// Resource returns the entry of (typ, id), id matched ignoring case, or ErrNotFound.
	Resource(ctx context.Context, typ, id string) (*Resource, error)
	// PutResource creates or replaces an entry.
	PutResource(ctx context.Context, r Resource) error
	// DeleteResource removes an entry; removing a missing one is not an error.
	DeleteResource(ctx context.Context, typ, id string) error
}

// RecordsQuery names the records one Check reads, for a backend that reads
// them in one call (store/redis: one round trip instead of three). Each
// flag asks for one record; a record not asked for stays nil in Records.
// Org and ID match ignoring ASCII case (Fold), User exactly, as in the
// one-record lookups.
type RecordsQuery struct {
	Org, User  string // the membership and session of User in Org
	Membership bool
	Session    bool
	Type, ID   string // the catalog entry of (Type, ID)
	Resource   bool
}

// String names the records q asks for, for error messages: for example
// "membership and SSO session of u-a in acme, catalog entry model acme/m".
func (q RecordsQuery) String() string {
	var parts []string
	switch {
	case q.Membership && q.Session:
		parts = append(parts, fmt.Sprintf("membership and SSO session of %s in %s", q.User, q.Org))
	case q.Membership:
		parts = append(parts, fmt.Sprintf("membership of %s in %s", q.User, q.Org))
	case q.Session:
		parts = append(parts, fmt.Sprintf("SSO session of %s in %s", q.User, q.Org))
	}
	if q.Resource {
		parts = append(parts, fmt.Sprintf("catalog entry %s %s", q.Type, q.ID))
	}
	if len(parts) == 0 {
		return "no records"
	}
	return strings.Join(parts, ", ")
}

// Records are what a RecordsQuery found: each is nil when it was not asked
// for or is not stored (what its own lookup reports as ErrNotFound).
type Records struct {
	Membership *Membership
	Session    *Session
	Resource   *Resource
}

// Lookups are the decision path's one-record reads, which every Store has.
type Lookups interface {
	Membership(ctx context.Context, org, user string) (*Membership, error)
	Session(ctx context.Context, org, user string) (*Session, error)
	Resource(ctx context.Context, typ, id string) (*Resource, error)
}

// ReadRecords reads what q asks for from l one lookup at a time, for a
// store that cannot read them in one call. ErrNotFound leaves a record
// nil; any other error is returned as l returned it, with no records.
func ReadRecords(ctx context.Context, l Lookups, q RecordsQuery) (Records, error) {
	var out Records
	var err error
	if q.Membership {
		if out.Membership, err = l.Membership(ctx, q.Org, q.User); err != nil && !errors.Is(err, ErrNotFound) {
			return Records{}, err
		}
	}
	if q.Session {
		if out.Session, err = l.Session(ctx, q.Org, q.User); err != nil && !errors.Is(err, ErrNotFound) {
			return Records{}, err
		}
	}
	if q.Resource {
		if out.Resource, err = l.Resource(ctx, q.Type, q.ID); err != nil && !errors.Is(err, ErrNotFound) {
			return Records{}, err
		}
	}
	return out, nil
}

// Store is what every backend provides.
type Store interface {
	Memberships
	Sessions
	Catalog
	PendingLogins
	Replays
	// Close releases the backend's resources.
	Close() error
}

// Fold returns s in ASCII lower case, the form backends use in keys so that
// org names and catalog ids match ignoring case. It does not allocate when s
// is already lower case.
//
// Only A-Z are folded: Unicode case folding (the Kelvin sign "K" to "k")
// would make names that differ on the wire match, and route matching folds
// ASCII only too.
func Fold(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
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

// PendingLogin is a login flow that was started (GET .../sso/login or
// .../sso/join) and not finished yet (spec section 6). It is kept
// server-side under an unguessable id for at most PendingLoginTTL and can be
// taken once.
type PendingLogin struct {
	ID        string    `json:"id"`       // unguessable, URL-safe; the key
	Org       string    `json:"org"`      // canonical org name
	User      string    `json:"user"`     // platform user id (sub) that started the flow
	Protocol  string    `json:"protocol"` // oidc | saml
	Join      bool      `json:"join"`     // started from the SSO join link
	ReturnTo  string    `json:"return_to"`
	State     string    `json:"state,omitempty"`      // OIDC state (RFC 6749 section 10.12)
	Nonce     string    `json:"nonce,omitempty"`      // OIDC nonce
	Verifier  string    `json:"verifier,omitempty"`   // PKCE code_verifier (RFC 7636)
	RequestID string    `json:"request_id,omitempty"` // SAML AuthnRequest ID
	Browser   string    `json:"browser,omitempty"`    // hash of the browser-binding cookie value
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// PendingLoginTTL is how long a started login may take (10 minutes).
const PendingLoginTTL = 10 * time.Minute

// PendingLogins stores started logins; each is single use.
type PendingLogins interface {
	// PutPendingLogin stores p under p.ID until p.ExpiresAt.
	PutPendingLogin(ctx context.Context, p PendingLogin) error
	// TakePendingLogin atomically returns and deletes the pending login id.
	// It returns ErrNotFound when id is unknown, already taken or expired,
	// so that a replayed callback fails.
	TakePendingLogin(ctx context.Context, id string) (*PendingLogin, error)
}

// Replays remembers one-time identifiers (SAML assertion IDs, OIDC codes)
// until they expire.
type Replays interface {
	// Remember records id until expiresAt. It returns false, with no error,
	// when id was already recorded and has not expired: a replay.
	Remember(ctx context.Context, id string, expiresAt time.Time) (fresh bool, err error)
}
