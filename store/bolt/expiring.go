package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/ssogate/ssogate/store"
)

// expiryLen is the length of the expiry prefix of expiring values.
const expiryLen = 8

// withExpiry returns the 8-byte expiry of at (0 for the zero time) followed by raw.
func withExpiry(at time.Time, raw []byte) []byte {
	v := make([]byte, expiryLen, expiryLen+len(raw))
	if !at.IsZero() {
		binary.BigEndian.PutUint64(v, uint64(at.UnixNano()))
	}
	return append(v, raw...)
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

// Session implements store.Sessions; an expired session is not found.
func (s *Store) Session(_ context.Context, org, user string) (*store.Session, error) {
	var v store.Session
	now := s.now()
	err := s.db.View(func(tx *bbolt.Tx) error {
		raw := tx.Bucket(bucketSessions).Get(orgUserKey(org, user))
		if raw == nil || expiredAt(raw, now) {
			return store.ErrNotFound
		}
		return json.Unmarshal(raw[expiryLen:], &v)
	})
	if err != nil {
		return nil, wrap(err, "reading SSO session of %s in %s", user, org)
	}
	return &v, nil
}

// PutSession implements store.Sessions. A session whose ExpiresAt has
// already passed replaces the stored one and is then not found.
func (s *Store) PutSession(_ context.Context, v store.Session) error {
	raw, err := json.Marshal(v)
	if err == nil {
		err = s.db.Update(func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketSessions).Put(orgUserKey(v.Org, v.User), withExpiry(v.ExpiresAt, raw))
		})
	}
	return wrap(err, "writing SSO session of %s in %s", v.User, v.Org)
}

// DeleteSession implements store.Sessions.
func (s *Store) DeleteSession(_ context.Context, org, user string) error {
	return wrap(s.del(bucketSessions, orgUserKey(org, user)), "deleting SSO session of %s in %s", user, org)
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
			var v store.Session
			if err := json.Unmarshal(raw[expiryLen:], &v); err != nil {
				return fmt.Errorf("session %q: %w", k, err)
			}
			out = append(out, v)
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
			return tx.Bucket(bucketPending).Put([]byte(p.ID), withExpiry(p.ExpiresAt, raw))
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
		b := tx.Bucket(bucketPending)
		raw := b.Get([]byte(id))
		if raw == nil {
			return nil
		}
		// raw is valid only until the transaction writes: decode first.
		if !expiredAt(raw, now) {
			found = true
			decodeErr = json.Unmarshal(raw[expiryLen:], &p)
		}
		return b.Delete([]byte(id))
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
		b := tx.Bucket(bucketReplays)
		if raw := b.Get([]byte(id)); raw != nil && !expiredAt(raw, now) {
			return nil
		}
		fresh = true
		return b.Put([]byte(id), withExpiry(expiresAt, nil))
	})
	if err != nil {
		return false, wrap(err, "recording one-time id")
	}
	return fresh, nil
}

// Sweep deletes expired sessions, pending logins and replay entries and
// returns how many it deleted. The sweeper calls it; tests may too.
func (s *Store) Sweep() (int, error) {
	now := s.now()
	n := 0
	for _, name := range [][]byte{bucketSessions, bucketPending, bucketReplays} {
		err := s.db.Update(func(tx *bbolt.Tx) error {
			b := tx.Bucket(name)
			var dead [][]byte
			err := b.ForEach(func(k, v []byte) error {
				if expiredAt(v, now) {
					dead = append(dead, bytes.Clone(k))
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, k := range dead {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			n += len(dead)
			return nil
		})
		if err != nil {
			return n, wrap(err, "sweeping %s", name)
		}
	}
	return n, nil
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
