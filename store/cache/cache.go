// Package cache is a read cache in front of a store.Store for the lookups
// of the decision path: Membership, Session and Resource results,
// including "not found", are kept for a short TTL (config store.cache_ttl,
// default 1s) in an expirable LRU (github.com/hashicorp/golang-lru/v2).
// Errors are never cached.
//
// Writes and deletes through the cache invalidate its entry and publish
// the entry's key on a Bus, so that the other replicas drop theirs: with
// the redis backend a change on one replica is seen by every replica as
// soon as the message arrives, and within the TTL when it is lost. While
// the Bus is not live (its subscription is down or not yet confirmed) the
// cache is flushed and bypassed, so that no replica keeps serving an entry
// whose invalidation it may have missed.
//
// Everything else (ListSessions, pending logins, replays) goes straight to
// the store.
package cache

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/ssogate/ssogate/store"
)

// Bus carries invalidated keys between replicas; *redis.Bus implements it.
type Bus interface {
	// Publish sends key to the other replicas.
	Publish(ctx context.Context, key string) error
	// Listen calls onKey with every key published until ctx is done, and
	// onLive whenever delivery starts (true) or may have stopped (false).
	Listen(ctx context.Context, onKey func(key string), onLive func(live bool))
}

// FlushAll is the Bus message that drops every entry.
const FlushAll = "*"

// DefaultSize is the default number of entries.
const DefaultSize = 100_000

// publishTimeout bounds a publication after a write.
const publishTimeout = time.Second

// Options tune a Store.
type Options struct {
	// TTL is how long an entry is served; 0 or less means one second (to
	// cache nothing, do not put a cache in front of the store).
	TTL time.Duration
	// Size is the maximum number of entries (default DefaultSize).
	Size int
	// Bus shares invalidations with other replicas; nil when this process
	// is the only writer (memory and bolt backends).
	Bus Bus
	// Logger receives failed publications; nil discards them.
	Logger *slog.Logger
	// Now is the clock for session expiry; nil means time.Now. Entries
	// themselves expire after TTL of real time.
	Now func() time.Time
}

// entry is one cached lookup; the pointer of its kind is nil for "not found".
type entry struct {
	m *store.Membership
	s *store.Session
	r *store.Resource
}

// Store is a store.Store that caches the decision-path lookups of another.
// It is safe for concurrent use.
type Store struct {
	inner  store.Store
	lru    *expirable.LRU[string, entry]
	bus    Bus
	logger *slog.Logger
	now    func() time.Time

	// mu orders fills against invalidations: a lookup fills the cache only
	// if no invalidation happened since it started reading (epoch), so a
	// value read before a write can never be cached after it.
	mu    sync.Mutex
	epoch atomic.Uint64
	live  atomic.Bool

	cancel context.CancelFunc
	done   chan struct{}
	closed sync.Once
}

var _ store.Store = (*Store)(nil)

// New returns a cache in front of inner. With a Bus it starts listening
// and serves from the cache only once the Bus is live. Close stops it and
// closes inner.
func New(inner store.Store, o Options) *Store {
	if o.Size <= 0 {
		o.Size = DefaultSize
	}
	if o.TTL <= 0 {
		o.TTL = time.Second
	}
	c := &Store{inner: inner, lru: expirable.NewLRU[string, entry](o.Size, nil, o.TTL), bus: o.Bus,
		logger: o.Logger, now: o.Now, done: make(chan struct{})}
	if c.now == nil {
		c.now = time.Now
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.bus == nil {
		c.live.Store(true)
		close(c.done)
		c.cancel = func() {}
		return c
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() {
		defer close(c.done)
		c.bus.Listen(ctx, c.invalidateKey, c.setLive)
	}()
	return c
}

// Close stops listening, empties the cache and closes the inner store.
// (The LRU's expiry goroutine cannot be stopped in golang-lru v2.0.7; it
// is left with an empty LRU.)
func (c *Store) Close() error {
	var err error
	c.closed.Do(func() {
		c.cancel()
		<-c.done
		c.setLive(false)
		err = c.inner.Close()
	})
	return err
}

// Live reports whether the cache serves entries (false while the Bus is down).
func (c *Store) Live() bool { return c.live.Load() }

// Keys of cached lookups; the Bus carries them as they are.
func memberKey(org, user string) string  { return "m:" + store.Fold(org) + "\x00" + user }
func sessionKey(org, user string) string { return "s:" + store.Fold(org) + "\x00" + user }
func resourceKey(typ, id string) string  { return "r:" + typ + "\x00" + store.Fold(id) }

// lookup returns the entry for k when the cache is live and holds one.
func (c *Store) lookup(k string) (entry, bool) {
	if !c.live.Load() {
		return entry{}, false
	}
	return c.lru.Get(k)
}

// fill caches e under k unless an invalidation happened since epoch ep.
func (c *Store) fill(k string, ep uint64, e entry) {
	c.mu.Lock()
	if c.live.Load() && c.epoch.Load() == ep {
		c.lru.Add(k, e)
	}
	c.mu.Unlock()
}

// invalidateKey drops k (every entry for FlushAll).
func (c *Store) invalidateKey(k string) {
	c.mu.Lock()
	c.epoch.Add(1)
	if k == FlushAll {
		c.lru.Purge()
	} else {
		c.lru.Remove(k)
	}
	c.mu.Unlock()
}

// setLive flushes the cache and turns serving from it on or off.
func (c *Store) setLive(live bool) {
	c.mu.Lock()
	c.epoch.Add(1)
	c.lru.Purge()
	c.live.Store(live)
	c.mu.Unlock()
}

// changed invalidates k here and on the other replicas after a write
// (whether or not it succeeded: a failed write may still have applied).
func (c *Store) changed(ctx context.Context, k string, writeErr error) {
	c.invalidateKey(k)
	if c.bus == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if err := c.bus.Publish(ctx, k); err != nil && writeErr == nil {
		c.logger.Warn("cache invalidation not published: other replicas may serve the old value until their cache entry expires",
			"error", err)
	}
}

// Membership implements store.Memberships. The result is the caller's own
// copy.
func (c *Store) Membership(ctx context.Context, org, user string) (*store.Membership, error) {
	r, err := c.Records(ctx, store.RecordsQuery{Org: org, User: user, Membership: true})
	if err == nil && r.Membership == nil {
		err = store.ErrNotFound
	}
	return r.Membership, err
}

// Session implements store.Sessions. A cached session past its ExpiresAt
// is not found.
func (c *Store) Session(ctx context.Context, org, user string) (*store.Session, error) {
	r, err := c.Records(ctx, store.RecordsQuery{Org: org, User: user, Session: true})
	if err == nil && r.Session == nil {
		err = store.ErrNotFound
	}
	return r.Session, err
}

// Resource implements store.Catalog.
func (c *Store) Resource(ctx context.Context, typ, id string) (*store.Resource, error) {
	r, err := c.Records(ctx, store.RecordsQuery{Type: typ, ID: id, Resource: true})
	if err == nil && r.Resource == nil {
		err = store.ErrNotFound
	}
	return r.Resource, err
}

// RecordsLookup is a store that reads all of a Check's records in one call;
// *redis.Store implements it.
type RecordsLookup interface {
	Records(ctx context.Context, q store.RecordsQuery) (store.Records, error)
}

// Records implements the decision path's one-call read: each record q asks
// for comes from the cache when it holds it, and the rest from the inner
// store in one call when it is a RecordsLookup (one round trip to Redis
// instead of one per record; a Check's records are cached together, so
// they usually expire together), else one lookup at a time. Results,
// including "not found", are cached as by Membership, Session and
// Resource; errors are not, and fail the whole read. The records returned
// are the caller's own copies.
func (c *Store) Records(ctx context.Context, q store.RecordsQuery) (store.Records, error) {
	var out store.Records
	need := store.RecordsQuery{Org: q.Org, User: q.User, Type: q.Type, ID: q.ID}
	var mk, sk, rk string
	if q.Membership {
		mk = memberKey(q.Org, q.User)
		if e, ok := c.lookup(mk); ok {
			out.Membership = cloneMembership(e.m)
		} else {
			need.Membership = true
		}
	}
	if q.Session {
		sk = sessionKey(q.Org, q.User)
		if e, ok := c.lookup(sk); ok {
			out.Session = c.liveSession(e.s)
		} else {
			need.Session = true
		}
	}
	if q.Resource {
		rk = resourceKey(q.Type, q.ID)
		if e, ok := c.lookup(rk); ok {
			out.Resource = cloneResource(e.r)
		} else {
			need.Resource = true
		}
	}
	if !need.Membership && !need.Session && !need.Resource {
		return out, nil
	}
	ep := c.epoch.Load()
	got, err := c.readInner(ctx, need)
	if err != nil {
		return store.Records{}, err
	}
	if need.Membership {
		out.Membership = got.Membership
		c.fill(mk, ep, entry{m: cloneMembership(got.Membership)})
	}
	if need.Session {
		out.Session = got.Session
		c.fill(sk, ep, entry{s: cloneSession(got.Session)})
	}
	if need.Resource {
		out.Resource = got.Resource
		c.fill(rk, ep, entry{r: cloneResource(got.Resource)})
	}
	return out, nil
}

// readInner reads q from the inner store: in one call when it is a
// RecordsLookup, else one lookup per record (store.ReadRecords).
func (c *Store) readInner(ctx context.Context, q store.RecordsQuery) (store.Records, error) {
	if rl, ok := c.inner.(RecordsLookup); ok {
		return rl.Records(ctx, q)
	}
	return store.ReadRecords(ctx, c.inner, q)
}

// liveSession returns a copy of a cached session, or nil when there is
// none or it is past its ExpiresAt.
func (c *Store) liveSession(s *store.Session) *store.Session {
	if s == nil || (!s.ExpiresAt.IsZero() && !c.now().Before(s.ExpiresAt)) {
		return nil
	}
	return cloneSession(s)
}

func cloneMembership(m *store.Membership) *store.Membership {
	if m == nil {
		return nil
	}
	cp := *m
	cp.ResourceGroups = maps.Clone(m.ResourceGroups)
	return &cp
}

func cloneSession(s *store.Session) *store.Session {
	if s == nil {
		return nil
	}
	cp := *s
	return &cp
}

func cloneResource(r *store.Resource) *store.Resource {
	if r == nil {
		return nil
	}
	cp := *r
	return &cp
}
