// Package memory is an in-process store.Store: maps behind a read-write
// lock. It keeps nothing across restarts; use it for tests, eval and demos.
package memory

import (
	"context"
	"sync"
	"time"

	"github.com/ssogate/ssogate/store"
)

type key struct{ a, b string }

// Store is an in-memory store.Store. The zero value is not usable; call New.
type Store struct {
	mu          sync.RWMutex
	memberships map[key]store.Membership
	sessions    map[key]store.Session
	resources   map[key]store.Resource
	pending     map[string]store.PendingLogin
	replays     map[string]time.Time
	now         func() time.Time
}

var _ store.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{
		memberships: map[key]store.Membership{},
		sessions:    map[key]store.Session{},
		resources:   map[key]store.Resource{},
		pending:     map[string]store.PendingLogin{},
		replays:     map[string]time.Time{},
		now:         time.Now,
	}
}

// WithClock sets the clock used for expiry (tests); it returns s.
func (s *Store) WithClock(now func() time.Time) *Store {
	s.now = now
	return s
}

func orgUser(org, user string) key { return key{store.Fold(org), user} }

// Membership implements store.Memberships.
func (s *Store) Membership(_ context.Context, org, user string) (*store.Membership, error) {
	s.mu.RLock()
	m, ok := s.memberships[orgUser(org, user)]
	s.mu.RUnlock()
	if !ok {
		return nil, store.ErrNotFound
	}
	return &m, nil
}

// PutMembership implements store.Memberships. The membership's
// ResourceGroups map is copied.
func (s *Store) PutMembership(_ context.Context, m store.Membership) error {
	if m.ResourceGroups != nil {
		rg := make(map[string]string, len(m.ResourceGroups))
		for k, v := range m.ResourceGroups {
			rg[k] = v
		}
		m.ResourceGroups = rg
	}
	s.mu.Lock()
	s.memberships[orgUser(m.Org, m.User)] = m
	s.mu.Unlock()
	return nil
}

// DeleteMembership implements store.Memberships.
func (s *Store) DeleteMembership(_ context.Context, org, user string) error {
	s.mu.Lock()
	delete(s.memberships, orgUser(org, user))
	s.mu.Unlock()
	return nil
}

// Session implements store.Sessions. A session whose ExpiresAt has passed
// is not found.
func (s *Store) Session(_ context.Context, org, user string) (*store.Session, error) {
	s.mu.RLock()
	v, ok := s.sessions[orgUser(org, user)]
	s.mu.RUnlock()
	if !ok || expired(v.ExpiresAt, s.now()) {
		return nil, store.ErrNotFound
	}
	return &v, nil
}

// expired reports whether a record with expiry at has expired at now; a
// zero at never expires.
func expired(at, now time.Time) bool { return !at.IsZero() && !now.Before(at) }

// PutSession implements store.Sessions.
func (s *Store) PutSession(_ context.Context, v store.Session) error {
	s.mu.Lock()
	s.sessions[orgUser(v.Org, v.User)] = v
	s.mu.Unlock()
	return nil
}

// DeleteSession implements store.Sessions.
func (s *Store) DeleteSession(_ context.Context, org, user string) error {
	s.mu.Lock()
	delete(s.sessions, orgUser(org, user))
	s.mu.Unlock()
	return nil
}

// ListSessions implements store.Sessions; expired sessions are omitted.
func (s *Store) ListSessions(_ context.Context, org string) ([]store.Session, error) {
	org = store.Fold(org)
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []store.Session
	for k, v := range s.sessions {
		if k.a == org && !expired(v.ExpiresAt, now) {
			out = append(out, v)
		}
	}
	return out, nil
}

// Resource implements store.Catalog.
func (s *Store) Resource(_ context.Context, typ, id string) (*store.Resource, error) {
	s.mu.RLock()
	r, ok := s.resources[key{typ, store.Fold(id)}]
	s.mu.RUnlock()
	if !ok {
		return nil, store.ErrNotFound
	}
	return &r, nil
}

// PutResource implements store.Catalog.
func (s *Store) PutResource(_ context.Context, r store.Resource) error {
	s.mu.Lock()
	s.resources[key{r.Type, store.Fold(r.ID)}] = r
	s.mu.Unlock()
	return nil
}

// DeleteResource implements store.Catalog.
func (s *Store) DeleteResource(_ context.Context, typ, id string) error {
	s.mu.Lock()
	delete(s.resources, key{typ, store.Fold(id)})
	s.mu.Unlock()
	return nil
}

// PutPendingLogin implements store.PendingLogins.
func (s *Store) PutPendingLogin(_ context.Context, p store.PendingLogin) error {
	s.mu.Lock()
	s.pending[p.ID] = p
	s.mu.Unlock()
	return nil
}

// TakePendingLogin implements store.PendingLogins.
func (s *Store) TakePendingLogin(_ context.Context, id string) (*store.PendingLogin, error) {
	s.mu.Lock()
	p, ok := s.pending[id]
	delete(s.pending, id)
	s.mu.Unlock()
	if !ok || !s.now().Before(p.ExpiresAt) {
		return nil, store.ErrNotFound
	}
	return &p, nil
}

// Remember implements store.Replays.
func (s *Store) Remember(_ context.Context, id string, expiresAt time.Time) (bool, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if until, ok := s.replays[id]; ok && now.Before(until) {
		return false, nil
	}
	s.replays[id] = expiresAt
	if len(s.replays) > 1024 && len(s.replays)%1024 == 0 {
		for k, until := range s.replays {
			if !now.Before(until) {
				delete(s.replays, k)
			}
		}
	}
	return true, nil
}

// Close implements store.Store; it does nothing.
func (s *Store) Close() error { return nil }
