package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ssogate/ssogate/store"
)

// ceilMS rounds t up to the millisecond, the precision of PXAT, so that
// a key never expires before t.
func ceilMS(t time.Time) time.Time {
	if r := t.Truncate(time.Millisecond); !r.Equal(t) {
		return r.Add(time.Millisecond)
	}
	return t
}

func expired(at, now time.Time) bool { return !at.IsZero() && !now.Before(at) }

// Session implements store.Sessions; an expired session is not found.
func (s *Store) Session(ctx context.Context, org, user string) (*store.Session, error) {
	var v store.Session
	if err := s.getJSON(ctx, s.sessionKey(org, user), &v); err != nil {
		return nil, wrap(err, "reading SSO session of %s in %s", user, org)
	}
	if expired(v.ExpiresAt, s.now()) {
		return nil, store.ErrNotFound
	}
	return &v, nil
}

// PutSession implements store.Sessions: the session key (expiring at
// ExpiresAt) and the org's session index change in one transaction. A
// session whose ExpiresAt has passed deletes the stored one.
func (s *Store) PutSession(ctx context.Context, v store.Session) error {
	if err := store.CheckSession(&v); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("redis: encoding SSO session: %w", err)
	}
	now := s.now()
	_, err = s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		s.queueSession(ctx, p, &v, raw, now)
		return nil
	})
	return wrap(err, "writing SSO session of %s in %s", v.User, v.Org)
}

// queueSession queues on p the commands that write session v (JSON raw)
// at now: the key and the org's index entry, or their deletion when v has
// expired. They must run in one MULTI/EXEC.
func (s *Store) queueSession(ctx context.Context, p goredis.Pipeliner, v *store.Session, raw []byte, now time.Time) {
	key, idx := s.sessionKey(v.Org, v.User), s.sessionIndex(v.Org)
	if expired(v.ExpiresAt, now) {
		p.Del(ctx, key)
		p.ZRem(ctx, idx, v.User)
		return
	}
	var args goredis.SetArgs
	score := math.Inf(1)
	if !v.ExpiresAt.IsZero() {
		args.ExpireAt = ceilMS(v.ExpiresAt)
		score = float64(args.ExpireAt.UnixMilli())
	}
	p.SetArgs(ctx, key, raw, args)
	p.ZAdd(ctx, idx, goredis.Z{Score: score, Member: v.User})
	p.ZRemRangeByScore(ctx, idx, "-inf", strconv.FormatInt(now.UnixMilli(), 10))
}

// DeleteSession implements store.Sessions.
func (s *Store) DeleteSession(ctx context.Context, org, user string) error {
	_, err := s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.Del(ctx, s.sessionKey(org, user))
		p.ZRem(ctx, s.sessionIndex(org), user)
		return nil
	})
	return wrap(err, "deleting SSO session of %s in %s", user, org)
}

// ListSessions implements store.Sessions; expired sessions are omitted.
func (s *Store) ListSessions(ctx context.Context, org string) ([]store.Session, error) {
	now := s.now()
	users, err := s.c.ZRangeByScore(ctx, s.sessionIndex(org), &goredis.ZRangeBy{
		Min: "(" + strconv.FormatInt(now.UnixMilli(), 10), Max: "+inf",
	}).Result()
	if err != nil || len(users) == 0 {
		return nil, wrap(err, "listing SSO sessions of %s", org)
	}
	keys := make([]string, len(users))
	for i, u := range users {
		keys[i] = s.sessionKey(org, u)
	}
	vals, err := s.c.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, wrap(err, "listing SSO sessions of %s", org)
	}
	out := make([]store.Session, 0, len(vals))
	for i, raw := range vals {
		str, ok := raw.(string)
		if !ok {
			continue // expired or deleted since the index was read
		}
		var v store.Session
		if err := json.Unmarshal([]byte(str), &v); err != nil {
			return nil, fmt.Errorf("redis: decoding %s: %w", keys[i], err)
		}
		if !expired(v.ExpiresAt, now) {
			out = append(out, v)
		}
	}
	return out, nil
}

// PutPendingLogin implements store.PendingLogins. The key expires at
// p.ExpiresAt; a login whose ExpiresAt is not in the future is not stored.
func (s *Store) PutPendingLogin(ctx context.Context, p store.PendingLogin) error {
	if !s.now().Before(p.ExpiresAt) {
		return nil
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("redis: encoding pending login: %w", err)
	}
	err = s.c.SetArgs(ctx, s.prefix+"pending:"+p.ID, raw, goredis.SetArgs{ExpireAt: ceilMS(p.ExpiresAt)}).Err()
	return wrap(err, "writing pending login")
}

// TakePendingLogin implements store.PendingLogins with GETDEL, which is
// atomic: concurrent takes have one winner.
func (s *Store) TakePendingLogin(ctx context.Context, id string) (*store.PendingLogin, error) {
	raw, err := s.c.GetDel(ctx, s.prefix+"pending:"+id).Bytes()
	if err != nil {
		return nil, wrap(err, "taking pending login")
	}
	var p store.PendingLogin
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("redis: decoding pending login: %w", err)
	}
	if expired(p.ExpiresAt, s.now()) {
		return nil, store.ErrNotFound
	}
	return &p, nil
}

// Remember implements store.Replays with SET NX PXAT, which is atomic. An
// id whose expiresAt has passed is fresh and is not stored.
func (s *Store) Remember(ctx context.Context, id string, expiresAt time.Time) (bool, error) {
	if !s.now().Before(expiresAt) {
		return true, nil
	}
	err := s.c.SetArgs(ctx, s.prefix+"replay:"+id, "1", goredis.SetArgs{Mode: "NX", ExpireAt: ceilMS(expiresAt)}).Err()
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, goredis.Nil):
		return false, nil
	}
	return false, fmt.Errorf("redis: recording one-time id: %w", err)
}
