// Package bolt is the embedded store.Store: one bbolt file (go.etcd.io/bbolt)
// that survives restarts. Every write is one transaction, synced to disk
// before it returns, so a crash leaves the file with or without the write,
// never half of it. The file is locked by the process that opened it: it
// serves one ssogate process (use the redis backend for several replicas).
//
// Expired sessions, pending logins and replay entries are never returned,
// and a sweeper deletes them periodically (Options.SweepInterval).
//
// Layout: one bucket per kind. Memberships and sessions are keyed
// "<org folded>\x00<user>", catalog entries "<type>\x00<id folded>", pending
// logins and replay entries by their id. Sessions and pending logins are
// stored as an 8-byte big-endian expiry (Unix nanoseconds, 0 = never)
// followed by the JSON record, so that sweeping reads no JSON; replay
// entries are the expiry alone.
package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/ssogate/ssogate/store"
)

var (
	bucketMeta        = []byte("meta")
	bucketMemberships = []byte("memberships")
	bucketSessions    = []byte("sessions")
	bucketResources   = []byte("resources")
	bucketPending     = []byte("pending_logins")
	bucketReplays     = []byte("replays")

	allBuckets = [][]byte{bucketMeta, bucketMemberships, bucketSessions, bucketResources, bucketPending, bucketReplays}

	keySchema = []byte("schema")
	schemaV1  = []byte("1")
)

// Defaults of Options.
const (
	DefaultSweepInterval = time.Minute
	DefaultLockTimeout   = time.Second
)

// Options tune a Store. The zero value is ready to use.
type Options struct {
	// Now is the clock for expiry; nil means time.Now.
	Now func() time.Time
	// SweepInterval is how often expired records are deleted from the file
	// (default DefaultSweepInterval; negative disables the sweeper, Sweep
	// can still be called).
	SweepInterval time.Duration
	// LockTimeout is how long Open waits for another process to release
	// the file (default DefaultLockTimeout).
	LockTimeout time.Duration
	// Logger receives sweep errors; nil discards them.
	Logger *slog.Logger
}

// Store is a store.Store in one bbolt file. It is safe for concurrent use.
type Store struct {
	db     *bbolt.DB
	now    func() time.Time
	logger *slog.Logger

	stop chan struct{}
	done sync.WaitGroup
	once sync.Once
}

var _ store.Store = (*Store)(nil)

// Open opens or creates the database file at path (mode 0600) and starts
// the sweeper. It fails when the file is not a bbolt database or another
// process holds it for longer than o.LockTimeout.
func Open(path string, o Options) (*Store, error) {
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: o.LockTimeout})
	if err != nil {
		if errors.Is(err, bbolt.ErrTimeout) {
			return nil, fmt.Errorf("opening bolt store %s: the file is locked by another process (another ssogate?): %w", path, err)
		}
		return nil, fmt.Errorf("opening bolt store %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch v := meta.Get(keySchema); {
		case v == nil:
			return meta.Put(keySchema, schemaV1)
		case !bytes.Equal(v, schemaV1):
			return fmt.Errorf("unsupported schema version %q (want %q)", v, schemaV1)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("opening bolt store %s: %w", path, err)
	}
	s := &Store{db: db, now: o.Now, logger: o.Logger, stop: make(chan struct{})}
	if s.now == nil {
		s.now = time.Now
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if o.SweepInterval == 0 {
		o.SweepInterval = DefaultSweepInterval
	}
	if o.SweepInterval > 0 {
		s.done.Add(1)
		go s.sweepEvery(o.SweepInterval)
	}
	return s, nil
}

// Close stops the sweeper and closes the file. It is safe to call twice.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		close(s.stop)
		s.done.Wait()
		err = s.db.Close()
	})
	return err
}

func orgUserKey(org, user string) []byte {
	org = store.Fold(org)
	k := make([]byte, 0, len(org)+1+len(user))
	k = append(k, org...)
	k = append(k, 0)
	return append(k, user...)
}

func resourceKey(typ, id string) []byte {
	id = store.Fold(id)
	k := make([]byte, 0, len(typ)+1+len(id))
	k = append(k, typ...)
	k = append(k, 0)
	return append(k, id...)
}

// get decodes the JSON value of key in bucket into v; ErrNotFound when absent.
func (s *Store) get(bucket, key []byte, v any) error {
	return s.db.View(func(tx *bbolt.Tx) error {
		raw := tx.Bucket(bucket).Get(key)
		if raw == nil {
			return store.ErrNotFound
		}
		return json.Unmarshal(raw, v)
	})
}

// put stores v as JSON under key in bucket, in its own transaction.
func (s *Store) put(bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucket).Put(key, raw) })
}

func (s *Store) del(bucket, key []byte) error {
	return s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucket).Delete(key) })
}

// wrap adds context to err, leaving ErrNotFound as it is.
func wrap(err error, format string, args ...any) error {
	if err == nil || errors.Is(err, store.ErrNotFound) {
		return err
	}
	return fmt.Errorf("bolt: "+format+": %w", append(args, err)...)
}

// Membership implements store.Memberships.
func (s *Store) Membership(_ context.Context, org, user string) (*store.Membership, error) {
	var m store.Membership
	if err := s.get(bucketMemberships, orgUserKey(org, user), &m); err != nil {
		return nil, wrap(err, "reading membership of %s in %s", user, org)
	}
	return &m, nil
}

// PutMembership implements store.Memberships.
func (s *Store) PutMembership(_ context.Context, m store.Membership) error {
	return wrap(s.put(bucketMemberships, orgUserKey(m.Org, m.User), m), "writing membership of %s in %s", m.User, m.Org)
}

// DeleteMembership implements store.Memberships.
func (s *Store) DeleteMembership(_ context.Context, org, user string) error {
	return wrap(s.del(bucketMemberships, orgUserKey(org, user)), "deleting membership of %s in %s", user, org)
}

// Resource implements store.Catalog.
func (s *Store) Resource(_ context.Context, typ, id string) (*store.Resource, error) {
	var r store.Resource
	if err := s.get(bucketResources, resourceKey(typ, id), &r); err != nil {
		return nil, wrap(err, "reading catalog entry %s %s", typ, id)
	}
	return &r, nil
}

// PutResource implements store.Catalog.
func (s *Store) PutResource(_ context.Context, r store.Resource) error {
	return wrap(s.put(bucketResources, resourceKey(r.Type, r.ID), r), "writing catalog entry %s %s", r.Type, r.ID)
}

// DeleteResource implements store.Catalog.
func (s *Store) DeleteResource(_ context.Context, typ, id string) error {
	return wrap(s.del(bucketResources, resourceKey(typ, id)), "deleting catalog entry %s %s", typ, id)
}
