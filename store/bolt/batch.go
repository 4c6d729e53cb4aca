package bolt

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	bbolt "go.etcd.io/bbolt"

	"github.com/ssogate/ssogate/store"
)

// batchFillPercent is how full PutBatch packs the pages it splits. A bulk
// load usually comes in key order (ssogate import sorts it), and bbolt's
// default (0.5) would leave every page of an appended run half empty and
// the file twice as large. Pages are left 10% free so that a few later
// inserts (new logins) fit before a page splits in two half-full ones.
const batchFillPercent = 0.9

// kv is one record of a batch, encoded; i is its index in the batch's
// slice of its kind.
type kv struct {
	key, value []byte
	i          int
}

// sortedUnique sorts recs by key, stably, and keeps the last record of
// each key: the one that writing them in order would leave.
func sortedUnique(recs []kv) []kv {
	slices.SortStableFunc(recs, func(a, b kv) int { return bytes.Compare(a.key, b.key) })
	out := recs[:0]
	for i, r := range recs {
		if i+1 < len(recs) && bytes.Equal(recs[i+1].key, r.key) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// PutBatch writes memberships ms, sessions ss and catalog entries rs in one
// transaction, synced to disk once before it returns: when it returns an
// error none of them is stored. The result is what PutMembership,
// PutSession and PutResource would leave if called in slice order (a later
// record with the same key replaces an earlier one), expiry index
// included. It is the bulk path of `ssogate import`: one transaction per
// batch instead of one per record.
//
// The records are written in key order, which is what bbolt does fastest:
// a node takes new keys by shifting the ones after them, and it splits
// only when the transaction commits. The transaction holds the file's
// writer lock while it runs and keeps every page it changes in memory
// until it commits: ten thousand records, a few MB.
func (s *Store) PutBatch(ctx context.Context, ms []store.Membership, ss []store.Session, rs []store.Resource) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: writing a batch of records: %w", err)
	}
	if err := store.CheckBatch(ms, ss, rs); err != nil {
		return fmt.Errorf("bolt: %w", err)
	}
	mrecs := make([]kv, len(ms))
	for i := range ms {
		m := &ms[i]
		mrecs[i] = kv{orgUserKey(m.Org, m.User), encodeMembership(m), i}
	}
	srecs := make([]kv, len(ss))
	for i := range ss {
		v := &ss[i]
		srecs[i] = kv{orgUserKey(v.Org, v.User), encodeSession(v), i}
	}
	rrecs := make([]kv, len(rs))
	for i := range rs {
		r := &rs[i]
		rrecs[i] = kv{resourceKey(r.Type, r.ID), encodeResource(r), i}
	}
	mrecs, srecs, rrecs = sortedUnique(mrecs), sortedUnique(srecs), sortedUnique(rrecs)

	err := s.db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketMemberships, bucketSessions, bucketResources} {
			tx.Bucket(name).FillPercent = batchFillPercent
		}
		tx.Bucket(bucketExpiry).FillPercent = indexFillPercent
		b := tx.Bucket(bucketMemberships)
		for _, r := range mrecs {
			if err := b.Put(r.key, r.value); err != nil {
				return fmt.Errorf("membership of %s in %s: %w", ms[r.i].User, ms[r.i].Org, err)
			}
		}
		b = tx.Bucket(bucketResources)
		for _, r := range rrecs {
			if err := b.Put(r.key, r.value); err != nil {
				return fmt.Errorf("catalog entry %s %s: %w", rs[r.i].Type, rs[r.i].ID, err)
			}
		}
		// Sessions: the records, then their index entries, each in key
		// order. Every key is in srecs once, so deleting the entries of
		// the values replaced before adding the new ones is exact.
		b = tx.Bucket(bucketSessions)
		var gone, added [][]byte
		for _, r := range srecs {
			if old := b.Get(r.key); old != nil {
				if exp, ok := indexExpiry(old); ok {
					gone = append(gone, indexKey(kindSession, exp, r.key))
				}
			}
			if err := b.Put(r.key, r.value); err != nil {
				return fmt.Errorf("SSO session of %s in %s: %w", ss[r.i].User, ss[r.i].Org, err)
			}
			if exp, ok := indexExpiry(r.value); ok {
				added = append(added, indexKey(kindSession, exp, r.key))
			}
		}
		idx := tx.Bucket(bucketExpiry)
		slices.SortFunc(gone, bytes.Compare)
		for _, k := range gone {
			if err := idx.Delete(k); err != nil {
				return fmt.Errorf("deleting expiry index entry: %w", err)
			}
		}
		slices.SortFunc(added, bytes.Compare)
		for _, k := range added {
			if err := idx.Put(k, nil); err != nil {
				return fmt.Errorf("writing expiry index entry: %w", err)
			}
		}
		return ctx.Err()
	})
	if err != nil {
		return fmt.Errorf("bolt: writing a batch of %d memberships, %d sessions and %d catalog entries: %w", len(ms), len(ss), len(rs), err)
	}
	return nil
}
