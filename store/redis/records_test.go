package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ssogate/ssogate/internal/redistest"
	"github.com/ssogate/ssogate/store"
)

var allRecords = store.RecordsQuery{Org: "Acme", User: "u-a", Membership: true, Session: true, Type: "model", ID: "acme/M", Resource: true}

// A failed Records returns no records and an error naming what failed: the
// record whose value does not decode, or everything asked for when the
// server does not answer.
func TestRecordsErrorsNameTheRecords(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	defer s.Close()
	ctx := context.Background()
	must(t, s.PutMembership(ctx, store.Membership{Org: "acme", User: "u-a", Role: "read"}))
	must(t, s.PutSession(ctx, store.Session{Org: "acme", User: "u-a", AuthenticatedAt: time.Now()}))
	raw := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer raw.Close()
	must(t, raw.Set(ctx, s.resourceKey("model", "acme/m"), "{not json", 0).Err())

	r, err := s.Records(ctx, allRecords)
	if err == nil || errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "catalog entry model acme/M") ||
		!strings.Contains(err.Error(), "decoding") {
		t.Errorf("undecodable catalog entry: err = %v", err)
	}
	if r != (store.Records{}) {
		t.Errorf("records returned with the error: %+v", r)
	}
	// A key of another type is a command error, even after a missing key.
	must(t, raw.Del(ctx, s.membershipKey("acme", "u-a")).Err())
	must(t, raw.Del(ctx, s.sessionKey("acme", "u-a")).Err())
	must(t, raw.HSet(ctx, s.sessionKey("acme", "u-a"), "f", "v").Err())
	if _, err := s.Records(ctx, store.RecordsQuery{Org: "acme", User: "u-a", Membership: true, Session: true}); err == nil ||
		!strings.Contains(err.Error(), "SSO session of u-a in acme") || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Errorf("session of the wrong type: err = %v", err)
	}

	srv.Kill()
	r, err = s.Records(ctx, allRecords)
	want := "membership and SSO session of u-a in Acme, catalog entry model acme/M"
	if err == nil || errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), want) {
		t.Errorf("server down: err = %v, want it to name %q", err, want)
	}
	if r != (store.Records{}) {
		t.Errorf("records returned with the error: %+v", r)
	}
}

// A session past its ExpiresAt by ssogate's clock is not returned even
// while the server, whose clock is behind, still holds it.
func TestRecordsSessionExpiredByTheClock(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ahead := time.Now().Add(2 * time.Hour)
	s, err := New(Options{Addrs: []string{srv.Addr}, Prefix: fmt.Sprintf("test%d:", prefixes.Add(1)), Now: func() time.Time { return ahead }})
	must(t, err)
	defer s.Close()
	ctx := context.Background()
	now := time.Now()
	// Written with the server's real clock, so the server keeps it an hour.
	w := newStore(t, srv)
	defer w.Close()
	w.prefix = s.prefix
	must(t, w.PutMembership(ctx, store.Membership{Org: "acme", User: "u-a"}))
	must(t, w.PutSession(ctx, store.Session{Org: "acme", User: "u-a", AuthenticatedAt: now, ExpiresAt: now.Add(time.Hour)}))
	if _, err := w.Session(ctx, "acme", "u-a"); err != nil {
		t.Fatalf("the server does not hold the session: %v", err)
	}
	r, err := s.Records(ctx, store.RecordsQuery{Org: "acme", User: "u-a", Membership: true, Session: true})
	if err != nil || r.Membership == nil || r.Session != nil {
		t.Errorf("Records = %+v, %v; want the membership without the expired session", r, err)
	}
}
