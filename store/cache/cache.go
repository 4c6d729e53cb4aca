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
	"errors"
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

// miss reports whether err is a lookup result worth caching (nil or not found).
func miss(err error) bool { return err == nil || errors.Is(err, store.ErrNotFound) }

// Membership implements store.Memberships. The result is the caller's own
// copy.
func (c *Store) Membership(ctx context.Context, org, user string) (*store.Membership, error) {
	k := memberKey(org, user)
	if e, ok := c.lookup(k); ok {
		if e.m == nil {
			return nil, store.ErrNotFound
		}
		return cloneMembership(e.m), nil
	}
	ep := c.epoch.Load()
	m, err := c.inner.Membership(ctx, org, user)
	if !miss(err) {
		return nil, err
	}
	var cached *store.Membership
	if m != nil {
		cached = cloneMembership(m)
	}
	c.fill(k, ep, entry{m: cached})
	return m, err
}

func cloneMembership(m *store.Membership) *store.Membership {
	cp := *m
	cp.ResourceGroups = maps.Clone(m.ResourceGroups)
	return &cp
}

// Session implements store.Sessions. A cached session past its ExpiresAt
// is not found.
func (c *Store) Session(ctx context.Context, org, user string) (*store.Session, error) {
	k := sessionKey(org, user)
	if e, ok := c.lookup(k); ok {
		if e.s == nil || (!e.s.ExpiresAt.IsZero() && !c.now().Before(e.s.ExpiresAt)) {
			return nil, store.ErrNotFound
		}
		cp := *e.s
		return &cp, nil
	}
	ep := c.epoch.Load()
	s, err := c.inner.Session(ctx, org, user)
	if !miss(err) {
		return nil, err
	}
	var cached *store.Session
	if s != nil {
		cp := *s
		cached = &cp
	}
	c.fill(k, ep, entry{s: cached})
	return s, err
}

// Resource implements store.Catalog.
func (c *Store) Resource(ctx context.Context, typ, id string) (*store.Resource, error) {
	k := resourceKey(typ, id)
	if e, ok := c.lookup(k); ok {
		if e.r == nil {
			return nil, store.ErrNotFound
		}
		cp := *e.r
		return &cp, nil
	}
	ep := c.epoch.Load()
	r, err := c.inner.Resource(ctx, typ, id)
	if !miss(err) {
		return nil, err
	}
	var cached *store.Resource
	if r != nil {
		cp := *r
		cached = &cp
	}
	c.fill(k, ep, entry{r: cached})
	return r, err
}
