// Package redis is the shared store.Store: state lives in Redis
// (github.com/redis/go-redis/v9), so that several ssogate replicas agree
// and nothing is lost when one restarts. It works with one server, with
// Redis Sentinel (Options.MasterName) and with Redis Cluster (several
// Options.Addrs).
//
// Key layout, with the prefix P (default "ssogate:") and org names folded
// to lower case (store.Fold). Keys of one org share the hash tag {org}, so
// that the multi-key transactions below stay in one cluster slot:
//
//	P{org}:m:<user>      membership, JSON
//	P{org}:s:<user>      SSO session, JSON; expires at Session.ExpiresAt (PEXPIREAT)
//	P{org}:sessions      sorted set of the org's session users, scored by expiry (ms; +inf = never)
//	Pr:<type>:<id>       catalog entry, JSON; id folded
//	Ppending:<id>        pending login, JSON; expires at PendingLogin.ExpiresAt
//	Preplay:<id>         one-time id; expires when the id does
//	Pinvalidate          pub/sub channel of cache invalidations (see Bus)
//
// Every write is one command or one MULTI/EXEC transaction, so a failed
// write is reported and never half applied. Expiry is the server's: a
// session or pending login disappears at its expiry even when no ssogate
// runs.
package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ssogate/ssogate/store"
)

// DefaultPrefix starts every key and the invalidation channel.
const DefaultPrefix = "ssogate:"

// Options configure a Store.
type Options struct {
	// Addrs are "host:port" addresses: one server; with MasterName, the
	// Sentinel addresses; otherwise, when there are several, Cluster seed
	// nodes. At least one is required.
	Addrs []string
	// MasterName is the Sentinel master name, "" without Sentinel.
	MasterName string
	// Username and Password authenticate to the data nodes (AUTH); both
	// may be empty. Sentinels are contacted without authentication.
	Username, Password string
	// DB is the database number (not with Cluster).
	DB int
	// Prefix starts every key and the channel (default DefaultPrefix).
	Prefix string
	// Timeout bounds dialling and each read and write on a connection
	// (default 1s), so that an unreachable server fails decisions fast
	// (503) instead of holding them.
	Timeout time.Duration
	// Now is the clock used to skip writes that are already expired and to
	// trim the session index; nil means time.Now. Expiry itself is the
	// server's clock.
	Now func() time.Time
	// Logger receives pub/sub connection changes; nil discards them.
	Logger *slog.Logger
}

// Store is a store.Store in Redis. It is safe for concurrent use.
type Store struct {
	c      goredis.UniversalClient
	prefix string
	now    func() time.Time
	logger *slog.Logger
}

var _ store.Store = (*Store)(nil)

// New returns a Store for o. It does not contact the server: connections
// are made when needed and re-made after failures (call Ping to check).
func New(o Options) (*Store, error) {
	if len(o.Addrs) == 0 {
		return nil, errors.New("redis store: no address")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	s := &Store{prefix: o.Prefix, now: o.Now, logger: o.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	s.c = goredis.NewUniversalClient(&goredis.UniversalOptions{
		Addrs:                 o.Addrs,
		MasterName:            o.MasterName,
		Username:              o.Username,
		Password:              o.Password,
		DB:                    o.DB,
		ClientName:            "ssogate",
		DialTimeout:           o.Timeout,
		ReadTimeout:           o.Timeout,
		WriteTimeout:          o.Timeout,
		PoolTimeout:           o.Timeout,
		ContextTimeoutEnabled: true,
		// One retry replaces a pooled connection that died with a server
		// restart; every command here is safe to repeat.
		MaxRetries:         1,
		DialerRetries:      1,
		DialerRetryTimeout: 50 * time.Millisecond,
	})
	return s, nil
}

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: ping: %w", err)
	}
	return nil
}

// Close closes the connections.
func (s *Store) Close() error { return s.c.Close() }

// orgKey returns P{org}:<kind>:<user> (user may be empty).
func (s *Store) orgKey(org, kind, user string) string {
	return s.prefix + "{" + store.Fold(org) + "}:" + kind + user
}

func (s *Store) membershipKey(org, user string) string { return s.orgKey(org, "m:", user) }
func (s *Store) sessionKey(org, user string) string    { return s.orgKey(org, "s:", user) }
func (s *Store) sessionIndex(org string) string        { return s.orgKey(org, "sessions", "") }
func (s *Store) resourceKey(typ, id string) string {
	return s.prefix + "r:" + typ + ":" + store.Fold(id)
}

// wrap adds context to err; redis.Nil becomes store.ErrNotFound.
func wrap(err error, format string, args ...any) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, goredis.Nil), errors.Is(err, store.ErrNotFound):
		return store.ErrNotFound
	}
	return fmt.Errorf("redis: "+format+": %w", append(args, err)...)
}

// getJSON reads key and decodes it into v.
func (s *Store) getJSON(ctx context.Context, key string, v any) error {
	raw, err := s.c.Get(ctx, key).Bytes()
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decoding %s: %w", key, err)
	}
	return nil
}

func (s *Store) setJSON(ctx context.Context, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.c.Set(ctx, key, raw, 0).Err()
}

// Membership implements store.Memberships.
func (s *Store) Membership(ctx context.Context, org, user string) (*store.Membership, error) {
	var m store.Membership
	if err := s.getJSON(ctx, s.membershipKey(org, user), &m); err != nil {
		return nil, wrap(err, "reading membership of %s in %s", user, org)
	}
	return &m, nil
}

// PutMembership implements store.Memberships.
func (s *Store) PutMembership(ctx context.Context, m store.Membership) error {
	if err := store.CheckMembership(&m); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return wrap(s.setJSON(ctx, s.membershipKey(m.Org, m.User), m), "writing membership of %s in %s", m.User, m.Org)
}

// DeleteMembership implements store.Memberships.
func (s *Store) DeleteMembership(ctx context.Context, org, user string) error {
	return wrap(s.c.Del(ctx, s.membershipKey(org, user)).Err(), "deleting membership of %s in %s", user, org)
}

// Resource implements store.Catalog.
func (s *Store) Resource(ctx context.Context, typ, id string) (*store.Resource, error) {
	var r store.Resource
	if err := s.getJSON(ctx, s.resourceKey(typ, id), &r); err != nil {
		return nil, wrap(err, "reading catalog entry %s %s", typ, id)
	}
	return &r, nil
}

// PutResource implements store.Catalog.
func (s *Store) PutResource(ctx context.Context, r store.Resource) error {
	if err := store.CheckResource(&r); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return wrap(s.setJSON(ctx, s.resourceKey(r.Type, r.ID), r), "writing catalog entry %s %s", r.Type, r.ID)
}

// DeleteResource implements store.Catalog.
func (s *Store) DeleteResource(ctx context.Context, typ, id string) error {
	return wrap(s.c.Del(ctx, s.resourceKey(typ, id)).Err(), "deleting catalog entry %s %s", typ, id)
}

// SetLogger sends the Redis client library's own messages (dial failures,
// reconnections) to l at debug level; by default they go to the standard
// logger. It is process-wide, like the library's setting.
func SetLogger(l *slog.Logger) { goredis.SetLogger(libLogger{l}) }

type libLogger struct{ l *slog.Logger }

func (g libLogger) Printf(ctx context.Context, format string, v ...any) {
	if g.l.Enabled(ctx, slog.LevelDebug) {
		g.l.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
	}
}
