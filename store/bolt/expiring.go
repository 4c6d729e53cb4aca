package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/ssogate/ssogate/store"
)

// expiryLen is the length of the expiry prefix of expiring values.
const expiryLen = 8

// Kinds of expiring records in the expiry index.
const (
	kindSession byte = 's'
	kindPending byte = 'p'
	kindReplay  byte = 'r'
)

// expiringBuckets maps each kind of expiring record to its bucket.
var expiringBuckets = map[byte][]byte{
	kindSession: bucketSessions,
	kindPending: bucketPending,
	kindReplay:  bucketReplays,
}

// sweepBatch is the most expired records one sweep transaction deletes, so
// that a sweep after a long pause neither holds the writer lock for long
// nor grows the heap by much: a transaction keeps a copy of every page it
// changes, and expired records sit on pages scattered over the file.
const sweepBatch = 1000

// indexFillPercent is how full writes pack the expiry index's pages when
// they split. New entries mostly go to the end (a session written now
// expires after every older one) and sweeps delete from the start, so
// full pages stay full; bbolt's default would leave them half empty.
const indexFillPercent = 1.0

// withExpiry returns the 8-byte expiry prefix of at (see expiryNanos)
// followed by raw.
func withExpiry(at time.Time, raw []byte) []byte {
	v := make([]byte, expiryLen, expiryLen+len(raw))
	binary.BigEndian.PutUint64(v, expiryNanos(at))
	return append(v, raw...)
}

// expiryOf returns the expiry prefix of the expiring value v; 0 (never)
// for a value too short to carry one.
func expiryOf(v []byte) uint64 {
	if len(v) < expiryLen {
		return 0
	}
	return binary.BigEndian.Uint64(v[:expiryLen])
}

// expiredAt reports whether the expiring value v has expired at now; a
// value too short to carry an expiry counts as expired (and is swept).
func expiredAt(v []byte, now time.Time) bool {
	if len(v) < expiryLen {
		return true
	}
	n := binary.BigEndian.Uint64(v[:expiryLen])
	return n != 0 && now.UnixNano() >= int64(n)
}

// indexKey is the expiry index key of the record key of kind expiring at
// exp: 8-byte big-endian exp, the kind byte, then key.
func indexKey(kind byte, exp uint64, key []byte) []byte {
	k := make([]byte, expiryLen+1, expiryLen+1+len(key))
	binary.BigEndian.PutUint64(k, exp)
	k[expiryLen] = kind
	return append(k, key...)
}

// indexExpiry returns the expiry under which the expiring value v is in
// the expiry index, and whether it is there at all: a value that never
// expires is not; a value too short to carry an expiry is, at 0, so that
// the next sweep deletes it; a prefix past MaxInt64 (a schema 1 value
// expiring before 1970) is, at 1.
func indexExpiry(v []byte) (exp uint64, ok bool) {
	switch e := expiryOf(v); {
	case len(v) < expiryLen:
		return 0, true
	case e == 0:
		return 0, false
	case e > math.MaxInt64:
		return 1, true
	default:
		return e, true
	}
}

// putExpiring stores the expiring value v under key in the bucket of kind
// and keeps the expiry index in step: the entry of the value it replaces
// goes, the new value's comes.
func putExpiring(tx *bbolt.Tx, kind byte, key, v []byte) error {
	b, idx := tx.Bucket(expiringBuckets[kind]), tx.Bucket(bucketExpiry)
	idx.FillPercent = indexFillPercent
	if old := b.Get(key); old != nil {
		if exp, ok := indexExpiry(old); ok {
			if err := idx.Delete(indexKey(kind, exp, key)); err != nil {
				return fmt.Errorf("deleting expiry index entry: %w", err)
			}
		}
	}
	if err := b.Put(key, v); err != nil {
		return err
	}
	if exp, ok := indexExpiry(v); ok {
		if err := idx.Put(indexKey(kind, exp, key), nil); err != nil {
			return fmt.Errorf("writing expiry index entry: %w", err)
		}
	}
	return nil
}

// deleteExpiring deletes key from the bucket of kind and its expiry index entry.
func deleteExpiring(tx *bbolt.Tx, kind byte, key []byte) error {
	b := tx.Bucket(expiringBuckets[kind])
	old := b.Get(key)
	if old == nil {
		return nil
	}
	if exp, ok := indexExpiry(old); ok {
		if err := tx.Bucket(bucketExpiry).Delete(indexKey(kind, exp, key)); err != nil {
			return fmt.Errorf("deleting expiry index entry: %w", err)
		}
	}
	return b.Delete(key)
}

// Session implements store.Sessions; an expired session is not found.
func (s *Store) Session(_ context.Context, org, user string) (*store.Session, error) {
	var v *store.Session
	now := s.now()
	key := orgUserKey(org, user)
	err := s.db.View(func(tx *bbolt.Tx) error {
		raw := tx.Bucket(bucketSessions).Get(key)
		if raw == nil || expiredAt(raw, now) {
			return store.ErrNotFound
		}
		var err error
		v, err = decodeSession(key, raw)
		return err
	})
	if err != nil {
		return nil, wrap(err, "reading SSO session of %s in %s", user, org)
	}
	return v, nil
}

// PutSession implements store.Sessions. A session whose ExpiresAt has
// already passed replaces the stored one and is then not found.
func (s *Store) PutSession(_ context.Context, v store.Session) error {
	if err := store.CheckSession(&v); err != nil {
		return fmt.Errorf("bolt: %w", err)
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		return putExpiring(tx, kindSession, orgUserKey(v.Org, v.User), encodeSession(&v))
	})
	return wrap(err, "writing SSO session of %s in %s", v.User, v.Org)
}

// DeleteSession implements store.Sessions.
func (s *Store) DeleteSession(_ context.Context, org, user string) error {
	err := s.db.Update(func(tx *bbolt.Tx) error { return deleteExpiring(tx, kindSession, orgUserKey(org, user)) })
	return wrap(err, "deleting SSO session of %s in %s", user, org)
}

// ListSessions implements store.Sessions; expired sessions are omitted.
func (s *Store) ListSessions(_ context.Context, org string) ([]store.Session, error) {
	prefix := orgUserKey(org, "")
	now := s.now()
	var out []store.Session
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketSessions).Cursor()
		for k, raw := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, raw = c.Next() {
			if expiredAt(raw, now) {
				continue
			}
			v, err := decodeSession(k, raw)
			if err != nil {
				return err
			}
			out = append(out, *v)
		}
		return nil
	})
	if err != nil {
		return nil, wrap(err, "listing SSO sessions of %s", org)
	}
	return out, nil
}

// PutPendingLogin implements store.PendingLogins. A login whose ExpiresAt
// is not in the future is not stored.
func (s *Store) PutPendingLogin(_ context.Context, p store.PendingLogin) error {
	if !s.now().Before(p.ExpiresAt) {
		return nil
	}
	raw, err := json.Marshal(p)
	if err == nil {
		err = s.db.Update(func(tx *bbolt.Tx) error {
			return putExpiring(tx, kindPending, []byte(p.ID), withExpiry(p.ExpiresAt, raw))
		})
	}
	return wrap(err, "writing pending login")
}

// TakePendingLogin implements store.PendingLogins: reading and deleting
// happen in one write transaction, so concurrent takes have one winner. An
// expired login is deleted too, and not found.
func (s *Store) TakePendingLogin(_ context.Context, id string) (*store.PendingLogin, error) {
	var p store.PendingLogin
	now := s.now()
	found := false
	var decodeErr error
	err := s.db.Update(func(tx *bbolt.Tx) error {
		raw := tx.Bucket(bucketPending).Get([]byte(id))
		if raw == nil {
			return nil
		}
		// raw is valid only until the transaction writes: decode first.
		if !expiredAt(raw, now) {
			found = true
			decodeErr = json.Unmarshal(raw[expiryLen:], &p)
		}
		return deleteExpiring(tx, kindPending, []byte(id))
	})
	switch {
	case err != nil:
		return nil, wrap(err, "taking pending login")
	case !found:
		return nil, store.ErrNotFound
	case decodeErr != nil:
		return nil, wrap(decodeErr, "decoding pending login")
	}
	return &p, nil
}

// Remember implements store.Replays: the check and the write happen in
// one write transaction. An id whose expiresAt has passed is fresh and is
// not stored.
func (s *Store) Remember(_ context.Context, id string, expiresAt time.Time) (bool, error) {
	now := s.now()
	if !now.Before(expiresAt) {
		return true, nil
	}
	fresh := false
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if raw := tx.Bucket(bucketReplays).Get([]byte(id)); raw != nil && !expiredAt(raw, now) {
			return nil
		}
		fresh = true
		return putExpiring(tx, kindReplay, []byte(id), withExpiry(expiresAt, nil))
	})
	if err != nil {
		return false, wrap(err, "recording one-time id")
	}
	return fresh, nil
}

// Sweep deletes expired sessions, pending logins and replay entries and
// returns how many it deleted. It reads the expiry index from its start up
// to now, and the records it names, in transactions of at most sweepBatch
// records; nothing that has not expired is read. The sweeper calls it;
// tests may too.
func (s *Store) Sweep() (int, error) {
	now := s.now()
	total := 0
	for {
		n, more, err := s.sweepOnce(now)
		total += n
		if err != nil {
			return total, wrap(err, "sweeping expired records")
		}
		if !more {
			return total, nil
		}
	}
}

// sweepOnce deletes up to sweepBatch expired records in one transaction;
// more reports whether there may be others.
func (s *Store) sweepOnce(now time.Time) (deleted int, more bool, err error) {
	limit := now.UnixNano()
	err = s.db.Update(func(tx *bbolt.Tx) error {
		idx := tx.Bucket(bucketExpiry)
		var entries [][]byte
		c := idx.Cursor()
		for k, _ := c.First(); k != nil && len(entries) < sweepBatch; k, _ = c.Next() {
			if len(k) < expiryLen+1 {
				entries = append(entries, bytes.Clone(k)) // not an index key: drop it
				continue
			}
			if exp := binary.BigEndian.Uint64(k[:expiryLen]); int64(exp) > limit {
				break
			}
			entries = append(entries, bytes.Clone(k))
		}
		more = len(entries) == sweepBatch
		for _, k := range entries {
			if len(k) > expiryLen {
				if name, ok := expiringBuckets[k[expiryLen]]; ok {
					b, key := tx.Bucket(name), k[expiryLen+1:]
					// The record may have been rewritten with another expiry
					// (then it has its own entry): delete only what has expired.
					if v := b.Get(key); v != nil && expiredAt(v, now) {
						if err := b.Delete(key); err != nil {
							return fmt.Errorf("deleting %s %q: %w", name, key, err)
						}
						deleted++
					}
				}
			}
			if err := idx.Delete(k); err != nil {
				return fmt.Errorf("deleting expiry index entry: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return deleted, more, nil
}

func (s *Store) sweepEvery(d time.Duration) {
	defer s.done.Done()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			n, err := s.Sweep()
			switch {
			case errors.Is(err, bbolt.ErrDatabaseNotOpen):
				return
			case err != nil:
				s.logger.Error("bolt store sweep", "error", err)
			case n > 0:
				s.logger.Debug("bolt store sweep", "deleted", n)
			}
		}
	}
}
