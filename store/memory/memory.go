// Package memory is an in-process store.Store: maps behind a read-write
// lock. It keeps nothing across restarts; use it for tests, eval and demos,
// or for one serve process seeded at start.
//
// # Layout
//
// Memberships and SSO sessions are what grows (one of each per member), so
// they are held compactly, and without pointers, so that the garbage
// collector has nothing to mark in them however many there are. One
// record per (org, user) holds both the membership and the session, so
// that they share one key. Each org has a map from a hash of the user id
// (hash/maphash, seeded per store) to a record id; records whose user ids
// share a hash are chained through record.next, and a lookup compares the
// user id itself. The records are in fixed-size chunks, their user ids and
// emails in 64 KiB byte chunks (see strs), times as int64 unix
// nanoseconds, and the org's spelling and the membership's role, invite
// role and resource groups as ids into tables of shared values (see
// interned), since few distinct ones exist. User ids and emails are at
// most MaxStringLen bytes.
//
// On amd64 a member with a session costs a 48-byte record, a 16-byte map
// slot plus the free ones around it, and the bytes of the user id and the
// email: about 110 bytes with an 8-byte user id and a 26-byte email
// ("ssogate-bench mem" measures it). Bytes of replaced or deleted strings
// are reclaimed by rebuilding the string chunks once they outnumber the
// bytes in use.
//
// The catalog is held the same way: a map per resource type from a hash
// of the folded id to chained 32-byte records (catalog.go).
//
// Lookups build the *store.Membership, *store.Session or *store.Resource
// they return (the entry and its strings: one or two allocations), so
// that nothing a caller keeps pins the store's chunks.
package memory

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/ssogate/ssogate/store"
)

// Store is an in-memory store.Store. The zero value is not usable; call New.
type Store struct {
	mu sync.RWMutex
	// orgs maps store.Fold(org) to that org's records: a hash of the user
	// id (see hash) to the id in recs of the first record of a chain
	// (record.next) holding the org's records whose user ids have that
	// hash. An org without records is dropped. The maps hold no pointers,
	// nor do recs and strs: the collector has nothing to mark in them.
	orgs map[string]map[uint64]uint32
	recs table[record]
	strs strs // the records' user ids and emails
	seed maphash.Seed
	// hash is maphash.String with seed; tests replace it to force chains.
	hash func(maphash.Seed, string) uint64
	// names holds the org names as written (org spellings), shared by
	// the records that use them; shapes the memberships' other attributes
	// (see shapeKey), each with its resource-group map.
	names  interned[string, struct{}]
	shapes interned[shapeKey, map[string]string]
	// catalog maps a resource type to a hash of the folded id (see
	// resHash) to the id in res of the first record of a chain
	// (resource.next), as orgs does for members; words holds the
	// catalog's few distinct strings (types, visibilities, resource
	// groups).
	catalog map[string]map[uint64]uint32
	res     table[resource]
	words   interned[string, struct{}]
	pending map[string]store.PendingLogin
	replays map[string]time.Time
	now     func() time.Time
}

// record is what the store holds for one (org, user): the membership, the
// SSO session, or both. 48 bytes on 64-bit platforms, no pointers.
type record struct {
	authAt  int64  // session's AuthenticatedAt in unix nanoseconds (see nanos)
	expires int64  // session's ExpiresAt in unix nanoseconds; noTime keeps the session
	user    strRef // the user id (exact)
	email   strRef // session's Email
	shape   uint32 // membership's role, invite role and groups: id in Store.shapes; 0: no membership
	mOrg    uint32 // membership's org as written: id in Store.names; 0 without a membership
	sOrg    uint32 // session's org as written: id in Store.names; 0: no session
	next    uint32 // 1 + id of the next record in this one's chain; 0: the last
}

// table holds records (T: record or resource) densely by id, in chunks
// of chunkLen, so that growing never copies them; ids of removed records
// are reused. Ids are uint32: up to 2^32 records. The Store's lock guards
// it.
type table[T any] struct {
	chunks [][]T // all full but the last; the first starts small
	free   []uint32
}

const (
	chunkBits = 10
	chunkLen  = 1 << chunkBits // records per chunk: 48 KiB of record
)

// at returns the record with id; the pointer is valid until the next add
// (which may move the first chunk while it grows).
func (t *table[T]) at(id uint32) *T { return &t.chunks[id>>chunkBits][id&(chunkLen-1)] }

// add stores a zero record and returns its id.
func (t *table[T]) add() uint32 {
	if n := len(t.free); n > 0 {
		id := t.free[n-1]
		t.free = t.free[:n-1]
		return id
	}
	last := len(t.chunks) - 1
	if last < 0 || len(t.chunks[last]) == chunkLen {
		c := make([]T, 0, chunkLen)
		if last < 0 {
			c = make([]T, 0, 8) // small stores stay small
		}
		t.chunks = append(t.chunks, c)
		last++
	}
	c := t.chunks[last]
	if len(c) == cap(c) { // the first chunk, still growing
		c = append(make([]T, 0, min(2*cap(c), chunkLen)), c...)
	}
	var zero T
	t.chunks[last] = append(c, zero)
	return uint32(last<<chunkBits | len(c))
}

// remove zeroes record id and frees its id for reuse.
func (t *table[T]) remove(id uint32) {
	var zero T
	*t.at(id) = zero
	t.free = append(t.free, id)
}

var _ store.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{
		orgs:    map[string]map[uint64]uint32{},
		seed:    maphash.MakeSeed(),
		hash:    maphash.String,
		names:   newInterned[string, struct{}](),
		shapes:  newInterned[shapeKey, map[string]string](),
		catalog: map[string]map[uint64]uint32{},
		words:   newInterned[string, struct{}](),
		pending: map[string]store.PendingLogin{},
		replays: map[string]time.Time{},
		now:     time.Now,
	}
}

// WithClock sets the clock used for expiry (tests); it returns s.
func (s *Store) WithClock(now func() time.Time) *Store {
	s.now = now
	return s
}

// noTime stands for the zero time.Time in a record.
const noTime = math.MinInt64

var (
	minNanos = time.Unix(0, noTime+1)
	maxNanos = time.Unix(0, math.MaxInt64)
)

// nanos returns t in unix nanoseconds, noTime for the zero time. Times
// outside what int64 nanoseconds hold (before 1677-09-21 or after
// 2262-04-11) are clamped to those bounds.
func nanos(t time.Time) int64 {
	switch {
	case t.IsZero():
		return noTime
	case t.Before(minNanos):
		return noTime + 1
	case t.After(maxNanos):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// timeOf is the inverse of nanos, in UTC.
func timeOf(ns int64) time.Time {
	if ns == noTime {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// expired reports whether a session expiring at exp (unix nanoseconds, or
// noTime: never) has expired at now (unix nanoseconds).
func expired(exp, now int64) bool { return exp != noTime && now >= exp }

// find returns the id of user's record among an org's records, or false,
// and its predecessor in its chain (nil for the first); the caller holds
// s.mu.
func (s *Store) find(users map[uint64]uint32, user string) (uint32, *record, bool) {
	id, ok := users[s.hash(s.seed, user)]
	var prev *record
	for ok {
		r := s.recs.at(id)
		if s.strs.get(r.user) == user {
			return id, prev, true
		}
		prev = r
		id, ok = r.next-1, r.next != 0
	}
	return 0, nil, false
}

// unlink takes a record out of the chain that m holds under h: next is
// the record's own next, prevNext its predecessor's (nil for the first).
func unlink(m map[uint64]uint32, h uint64, prevNext *uint32, next uint32) {
	switch {
	case prevNext != nil:
		*prevNext = next
	case next != 0:
		m[h] = next - 1
	default:
		delete(m, h)
	}
}

// lookup returns the record of (org, user), or nil; the caller holds
// s.mu, and the pointer is valid until the next write.
func (s *Store) lookup(org, user string) *record {
	id, _, ok := s.find(s.orgs[store.Fold(org)], user)
	if !ok {
		return nil
	}
	return s.recs.at(id)
}

// ensure returns the record of (org, user), adding an empty one when there
// is none; the caller holds s.mu for writing and has checked user's length
// (store.CheckMembership, store.CheckSession). The pointer is valid until the next write. The org key is a
// copy, so that the store never keeps a caller's larger buffer (a request,
// a decoded file) alive.
func (s *Store) ensure(org, user string) *record {
	org = store.Fold(org)
	users := s.orgs[org]
	if id, _, ok := s.find(users, user); ok {
		return s.recs.at(id)
	}
	if users == nil {
		users = map[uint64]uint32{}
		s.orgs[strings.Clone(org)] = users
	}
	id := s.recs.add()
	r := s.recs.at(id)
	r.user = s.strs.put(user)
	h := s.hash(s.seed, user)
	if head, ok := users[h]; ok {
		r.next = head + 1
	}
	users[h] = id
	return r
}

// drop removes the record of (org, user) once it holds neither a
// membership nor a session; the caller holds s.mu for writing.
func (s *Store) drop(org, user string) {
	org = store.Fold(org)
	users := s.orgs[org]
	id, prev, ok := s.find(users, user)
	if !ok {
		return
	}
	r := s.recs.at(id)
	if r.shape != 0 || r.sOrg != 0 {
		return
	}
	var prevNext *uint32
	if prev != nil {
		prevNext = &prev.next
	}
	unlink(users, s.hash(s.seed, user), prevNext, r.next)
	s.strs.release(r.user)
	s.recs.remove(id)
	if len(users) == 0 {
		delete(s.orgs, org)
	}
}

// setEmail makes email r's session email; the caller holds s.mu for
// writing and has checked email's length.
func (s *Store) setEmail(r *record, email string) {
	if s.strs.get(r.email) == email {
		return
	}
	s.strs.release(r.email)
	r.email = s.strs.put(email)
}

// tidy rebuilds the string arena once most of it is strings no record
// refers to any more: a pause of one copy of the live user ids and emails
// (a few milliseconds for a million sessions), at most once per as many
// bytes written as the arena keeps. The caller holds s.mu for writing.
func (s *Store) tidy() {
	if !s.strs.wasteful() {
		return
	}
	var t strs
	for _, c := range s.recs.chunks {
		for i := range c {
			r := &c[i]
			r.user = t.put(s.strs.get(r.user))
			r.email = t.put(s.strs.get(r.email))
		}
	}
	for _, c := range s.res.chunks {
		for i := range c {
			r := &c[i]
			r.id = t.put(s.strs.get(r.id))
			r.createdBy = t.put(s.strs.get(r.createdBy))
		}
	}
	s.strs = t
}

// Membership implements store.Memberships. The result is the caller's,
// except its ResourceGroups map, which is shared with the store and with
// other members: callers must not modify it.
func (s *Store) Membership(_ context.Context, org, user string) (*store.Membership, error) {
	s.mu.RLock()
	r := s.lookup(org, user)
	if r == nil || r.shape == 0 {
		s.mu.RUnlock()
		return nil, store.ErrNotFound
	}
	sh := s.shapes.get(r.shape)
	m := store.Membership{Org: s.names.get(r.mOrg).key, User: user, Role: sh.key.role,
		ResourceGroups: sh.val, InviteRole: sh.key.invite}
	s.mu.RUnlock()
	return &m, nil
}

// PutMembership implements store.Memberships. The membership's
// ResourceGroups map is copied. It fails for a user id longer than
// MaxStringLen.
func (s *Store) PutMembership(_ context.Context, m store.Membership) error {
	if err := store.CheckMembership(&m); err != nil {
		return fmt.Errorf("memory store: %w", err)
	}
	shape := newShapeKey(m.Role, m.InviteRole, m.ResourceGroups)
	s.mu.Lock()
	defer s.mu.Unlock()
	// Acquire before releasing, so that a value in use by both the old
	// and the new membership is not dropped in between.
	sh, name := s.shapes.acquire(shape, newShape(m.ResourceGroups)), s.names.acquire(m.Org, cloneKey)
	r := s.ensure(m.Org, m.User)
	s.shapes.release(r.shape)
	s.names.release(r.mOrg)
	r.shape, r.mOrg = sh, name
	return nil
}

// DeleteMembership implements store.Memberships.
func (s *Store) DeleteMembership(_ context.Context, org, user string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.lookup(org, user)
	if r == nil || r.shape == 0 {
		return nil
	}
	s.shapes.release(r.shape)
	s.names.release(r.mOrg)
	r.shape, r.mOrg = 0, 0
	s.drop(org, user)
	s.tidy()
	return nil
}

// session builds the store.Session of record r of user; the caller holds s.mu.
func (s *Store) session(user string, r *record) store.Session {
	return store.Session{Org: s.names.get(r.sOrg).key, User: user, AuthenticatedAt: timeOf(r.authAt),
		Email: strings.Clone(s.strs.get(r.email)), ExpiresAt: timeOf(r.expires)}
}

// Session implements store.Sessions. A session whose ExpiresAt has passed
// is not found. Its times are in UTC.
func (s *Store) Session(_ context.Context, org, user string) (*store.Session, error) {
	now := nanos(s.now())
	s.mu.RLock()
	r := s.lookup(org, user)
	if r == nil || r.sOrg == 0 || expired(r.expires, now) {
		s.mu.RUnlock()
		return nil, store.ErrNotFound
	}
	v := s.session(user, r)
	s.mu.RUnlock()
	return &v, nil
}

// PutSession implements store.Sessions. It fails for a user id or email
// longer than MaxStringLen.
func (s *Store) PutSession(_ context.Context, v store.Session) error {
	if err := store.CheckSession(&v); err != nil {
		return fmt.Errorf("memory store: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	name := s.names.acquire(v.Org, cloneKey)
	r := s.ensure(v.Org, v.User)
	s.names.release(r.sOrg)
	s.setEmail(r, v.Email)
	r.sOrg, r.authAt, r.expires = name, nanos(v.AuthenticatedAt), nanos(v.ExpiresAt)
	s.tidy()
	return nil
}

// DeleteSession implements store.Sessions.
func (s *Store) DeleteSession(_ context.Context, org, user string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.lookup(org, user)
	if r == nil || r.sOrg == 0 {
		return nil
	}
	s.names.release(r.sOrg)
	s.strs.release(r.email)
	r.sOrg, r.authAt, r.expires, r.email = 0, 0, 0, 0
	s.drop(org, user)
	s.tidy()
	return nil
}

// ListSessions implements store.Sessions; expired sessions are omitted.
// It reads the org's records only.
func (s *Store) ListSessions(_ context.Context, org string) ([]store.Session, error) {
	now := nanos(s.now())
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []store.Session
	for _, head := range s.orgs[store.Fold(org)] {
		for id, ok := head, true; ok; {
			r := s.recs.at(id)
			if r.sOrg != 0 && !expired(r.expires, now) {
				out = append(out, s.session(strings.Clone(s.strs.get(r.user)), r))
			}
			id, ok = r.next-1, r.next != 0
		}
	}
	return out, nil
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
