// Package bolt is the embedded store.Store: one bbolt file (go.etcd.io/bbolt)
// that survives restarts. Every write is one transaction, synced to disk
// before it returns, so a crash leaves the file with or without the write,
// never half of it. The file is locked by the process that opened it: it
// serves one ssogate process (use the redis backend for several replicas).
//
// Expired sessions, pending logins and replay entries are never returned,
// and a sweeper deletes them periodically (Options.SweepInterval). It finds
// them through an expiry index, so that a sweep reads what has expired and
// nothing else: the file's pages are mapped into memory, and a sweep that
// read every session would make the whole file resident.
//
// Layout (schema 2): one bucket per kind. Memberships and sessions are
// keyed "<org folded>\x00<user>", catalog entries "<type>\x00<id folded>",
// pending logins and replay entries by their id. Sessions and pending
// logins are stored as an 8-byte big-endian expiry (Unix nanoseconds, 0 =
// never) followed by the record; replay entries are the expiry alone.
// Memberships, sessions and catalog entries are written in a compact
// binary encoding (codec.go); pending logins are JSON. The bucket
// "expiry" holds one empty-valued key per expiring record:
// 8-byte big-endian expiry, one byte for the kind ('s' session, 'p'
// pending login, 'r' replay entry) and the record's key. The bucket
// "meta" holds "schema" ("2") and "expiry_index_ready" (set once the
// index is complete).
//
// Schema 1 files (JSON records, no expiry index) are upgraded when they
// are opened (upgrade.go): records are rewritten compactly and the index
// is built, in transactions of 100,000 records. The file says schema 2
// from the first of them on, so a build that knows only schema 1 refuses
// it rather than misread compact records; readers accept both encodings,
// so an upgrade that stops part way loses nothing and is finished by the
// next Open. The upgrade does not shrink the file (bbolt never does):
// `bbolt compact` does, offline.
package bolt

import (
	"context"
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
	bucketExpiry      = []byte("expiry")

	allBuckets = [][]byte{bucketMeta, bucketMemberships, bucketSessions, bucketResources, bucketPending, bucketReplays, bucketExpiry}

	keySchema     = []byte("schema")
	schemaV1      = []byte("1") // JSON records, no expiry index
	schemaV2      = []byte("2") // compact records, expiry index
	keyIndexReady = []byte("expiry_index_ready")
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
	// Logger receives sweep errors and the schema upgrade; nil discards them.
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
// the sweeper. It fails when the file is not a bbolt database, has a schema
// this build does not know, or another process holds it for longer than
// o.LockTimeout. A schema 1 file is upgraded to schema 2 first (see
// upgrade.go); the upgrade reads every record, so the file is then closed
// and opened again to unmap the pages it read.
func Open(path string, o Options) (*Store, error) {
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	db, err := openDB(path, o.LockTimeout)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	up, err := prepare(db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("opening bolt store %s: %w", path, err)
	}
	if up.read > 0 {
		logger.Info("bolt store: upgraded the file to schema 2", "path", path, "records", up.read,
			"re_encoded", up.recoded, "indexed", up.indexed, "took", time.Since(t0).Round(time.Millisecond).String())
		if up.unreadable > 0 {
			logger.Warn("bolt store: records that could not be decoded were left as they were (reading them fails as before)",
				"path", path, "count", up.unreadable)
		}
		if err := db.Close(); err != nil {
			return nil, fmt.Errorf("opening bolt store %s: closing after the upgrade: %w", path, err)
		}
		if db, err = openDB(path, o.LockTimeout); err != nil {
			return nil, err
		}
	}
	s := &Store{db: db, now: o.Now, logger: logger, stop: make(chan struct{})}
	if s.now == nil {
		s.now = time.Now
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

// openDB opens the bbolt file, naming path and a lock held elsewhere in errors.
func openDB(path string, lockTimeout time.Duration) (*bbolt.DB, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: lockTimeout})
	if err != nil {
		if errors.Is(err, bbolt.ErrTimeout) {
			return nil, fmt.Errorf("opening bolt store %s: the file is locked by another process (another ssogate?): %w", path, err)
		}
		return nil, fmt.Errorf("opening bolt store %s: %w", path, err)
	}
	return db, nil
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

// get decodes the value of key in bucket with decode; ErrNotFound when absent.
func get[T any](s *Store, bucket, key []byte, decode func(key, v []byte) (*T, error)) (*T, error) {
	var out *T
	err := s.db.View(func(tx *bbolt.Tx) error {
		raw := tx.Bucket(bucket).Get(key)
		if raw == nil {
			return store.ErrNotFound
		}
		var err error
		out, err = decode(key, raw)
		return err
	})
	return out, err
}

// put stores raw under key in bucket, in its own transaction.
func (s *Store) put(bucket, key, raw []byte) error {
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
	m, err := get(s, bucketMemberships, orgUserKey(org, user), decodeMembership)
	if err != nil {
		return nil, wrap(err, "reading membership of %s in %s", user, org)
	}
	return m, nil
}

// PutMembership implements store.Memberships.
func (s *Store) PutMembership(_ context.Context, m store.Membership) error {
	if err := store.CheckMembership(&m); err != nil {
		return fmt.Errorf("bolt: %w", err)
	}
	return wrap(s.put(bucketMemberships, orgUserKey(m.Org, m.User), encodeMembership(&m)), "writing membership of %s in %s", m.User, m.Org)
}

// DeleteMembership implements store.Memberships.
func (s *Store) DeleteMembership(_ context.Context, org, user string) error {
	return wrap(s.del(bucketMemberships, orgUserKey(org, user)), "deleting membership of %s in %s", user, org)
}

// Resource implements store.Catalog.
func (s *Store) Resource(_ context.Context, typ, id string) (*store.Resource, error) {
	r, err := get(s, bucketResources, resourceKey(typ, id), decodeResource)
	if err != nil {
		return nil, wrap(err, "reading catalog entry %s %s", typ, id)
	}
	return r, nil
}

// PutResource implements store.Catalog.
func (s *Store) PutResource(_ context.Context, r store.Resource) error {
	if err := store.CheckResource(&r); err != nil {
		return fmt.Errorf("bolt: %w", err)
	}
	return wrap(s.put(bucketResources, resourceKey(r.Type, r.ID), encodeResource(&r)), "writing catalog entry %s %s", r.Type, r.ID)
}

// DeleteResource implements store.Catalog.
func (s *Store) DeleteResource(_ context.Context, typ, id string) error {
	return wrap(s.del(bucketResources, resourceKey(typ, id)), "deleting catalog entry %s %s", typ, id)
}
