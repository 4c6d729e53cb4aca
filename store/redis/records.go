package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ssogate/ssogate/store"
)

// Records reads the records q asks for in one pipelined round trip (with
// Redis Cluster, one per node the keys live on): what Membership, Session
// and Resource return one command at a time. A record that is not stored
// (or a session past its ExpiresAt) is nil.
//
// Errors: any command's failure, or a stored value that does not decode,
// fails the whole read with an error naming the records asked for (the
// record, when one of them failed on its own); nothing is returned then,
// so that a caller cannot act on part of a Check's records.
func (s *Store) Records(ctx context.Context, q store.RecordsQuery) (store.Records, error) {
	var out store.Records
	var m, v, r *goredis.StringCmd
	p := s.c.Pipeline()
	if q.Membership {
		m = p.Get(ctx, s.membershipKey(q.Org, q.User))
	}
	if q.Session {
		v = p.Get(ctx, s.sessionKey(q.Org, q.User))
	}
	if q.Resource {
		r = p.Get(ctx, s.resourceKey(q.Type, q.ID))
	}
	if p.Len() == 0 {
		return out, nil
	}
	// Exec's error is the first command's; each command is looked at below.
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return store.Records{}, wrap(err, "reading the %s", q)
	}
	var err error
	if m != nil {
		out.Membership, err = decode[store.Membership](m)
		if err != nil {
			return store.Records{}, wrap(err, "reading membership of %s in %s", q.User, q.Org)
		}
	}
	if v != nil {
		out.Session, err = decode[store.Session](v)
		if err != nil {
			return store.Records{}, wrap(err, "reading SSO session of %s in %s", q.User, q.Org)
		}
		if out.Session != nil && expired(out.Session.ExpiresAt, s.now()) {
			out.Session = nil
		}
	}
	if r != nil {
		out.Resource, err = decode[store.Resource](r)
		if err != nil {
			return store.Records{}, wrap(err, "reading catalog entry %s %s", q.Type, q.ID)
		}
	}
	return out, nil
}

// decode returns cmd's JSON value as a T: nil for a key that is not stored.
func decode[T any](cmd *goredis.StringCmd) (*T, error) {
	raw, err := cmd.Bytes()
	switch {
	case errors.Is(err, goredis.Nil):
		return nil, nil
	case err != nil:
		return nil, err
	}
	var t T
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", cmd.Args()[1], err)
	}
	return &t, nil
}
