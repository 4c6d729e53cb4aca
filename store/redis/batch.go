package redis

import (
	"context"
	"encoding/json"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ssogate/ssogate/store"
)

// txBatch is the most records PutBatch writes in one MULTI/EXEC: Redis
// runs a transaction without serving anyone else, and a thousand records
// take it about a millisecond.
const txBatch = 1000

// PutBatch writes memberships ms, sessions ss and catalog entries rs, each
// as PutMembership, PutSession and PutResource write it, in slice order.
// It is the bulk path of `ssogate import`. On one server or with Sentinel
// the records go in MULTI/EXEC transactions of up to txBatch records, one
// round trip each: a transaction is stored whole or not at all, and when
// PutBatch fails the transactions before the failing one stay written.
// Redis Cluster refuses transactions across slots, and the keys of a
// batch are in many: there each record is written as by its Put method,
// one after the other, and a failure leaves the records before it written.
// It publishes no cache invalidation (import does, once per batch).
func (s *Store) PutBatch(ctx context.Context, ms []store.Membership, ss []store.Session, rs []store.Resource) error {
	if err := store.CheckBatch(ms, ss, rs); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	if _, cluster := s.c.(*goredis.ClusterClient); cluster {
		return s.putEach(ctx, ms, ss, rs)
	}
	type rec struct {
		kind byte // 'm', 's', 'r': ms[i], ss[i] or rs[i]
		i    int
		key  string // not for sessions
		raw  []byte // JSON
	}
	describe := func(r rec) string {
		switch r.kind {
		case 'm':
			return fmt.Sprintf("membership of %s in %s", ms[r.i].User, ms[r.i].Org)
		case 's':
			return fmt.Sprintf("SSO session of %s in %s", ss[r.i].User, ss[r.i].Org)
		}
		return fmt.Sprintf("catalog entry %s %s", rs[r.i].Type, rs[r.i].ID)
	}
	recs := make([]rec, 0, min(txBatch, len(ms)+len(ss)+len(rs)))
	flush := func() error {
		if len(recs) == 0 {
			return nil
		}
		now := s.now()
		_, err := s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			for _, r := range recs {
				switch r.kind {
				case 's':
					s.queueSession(ctx, p, &ss[r.i], r.raw, now)
				default:
					p.Set(ctx, r.key, r.raw, 0)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("redis: writing %d records from %s: %w", len(recs), describe(recs[0]), err)
		}
		recs = recs[:0]
		return nil
	}
	add := func(r rec) error {
		recs = append(recs, r)
		if len(recs) == txBatch {
			return flush()
		}
		return nil
	}
	for i := range ms {
		m := &ms[i]
		raw, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("redis: encoding membership of %s in %s: %w", m.User, m.Org, err)
		}
		if err := add(rec{'m', i, s.membershipKey(m.Org, m.User), raw}); err != nil {
			return err
		}
	}
	for i := range ss {
		v := &ss[i]
		raw, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("redis: encoding SSO session of %s in %s: %w", v.User, v.Org, err)
		}
		if err := add(rec{'s', i, "", raw}); err != nil {
			return err
		}
	}
	for i := range rs {
		r := &rs[i]
		raw, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("redis: encoding catalog entry %s %s: %w", r.Type, r.ID, err)
		}
		if err := add(rec{'r', i, s.resourceKey(r.Type, r.ID), raw}); err != nil {
			return err
		}
	}
	return flush()
}

// putEach is PutBatch one record at a time.
func (s *Store) putEach(ctx context.Context, ms []store.Membership, ss []store.Session, rs []store.Resource) error {
	for _, m := range ms {
		if err := s.PutMembership(ctx, m); err != nil {
			return err
		}
	}
	for _, v := range ss {
		if err := s.PutSession(ctx, v); err != nil {
			return err
		}
	}
	for _, r := range rs {
		if err := s.PutResource(ctx, r); err != nil {
			return err
		}
	}
	return nil
}
