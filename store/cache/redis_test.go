package cache

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ssogate/ssogate/internal/redistest"
	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/store/redis"
)

// TestReplicasOnRedis runs two caches (two replicas) on one real Redis,
// with a TTL far above a second, so only invalidation messages can make a
// change visible within one.
func TestReplicasOnRedis(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Persistent: true})
	replica := func() *Store {
		r, err := redis.New(redis.Options{Addrs: []string{srv.Addr}, Prefix: "replicas:"})
		must(t, err)
		c := New(r, Options{TTL: time.Hour, Bus: r.Bus()})
		t.Cleanup(func() { c.Close() })
		return c
	}
	a, b := replica(), replica()
	eventually(t, 5*time.Second, "both replicas live", func() bool { return a.Live() && b.Live() })
	ctx := context.Background()
	now := time.Now()
	must(t, a.PutMembership(ctx, store.Membership{Org: "acme", User: "u-a", Role: "write"}))
	must(t, a.PutSession(ctx, store.Session{Org: "acme", User: "u-a", AuthenticatedAt: now, ExpiresAt: now.Add(time.Hour)}))

	// b caches "not found" for u-b, then a creates the session.
	if _, err := b.Session(ctx, "acme", "u-b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("u-b before login: %v", err)
	}
	must(t, a.PutSession(ctx, store.Session{Org: "acme", User: "u-b", AuthenticatedAt: now, ExpiresAt: now.Add(time.Hour)}))
	eventually(t, time.Second, "b sees u-b's new session", func() bool {
		_, err := b.Session(ctx, "acme", "u-b")
		return err == nil
	})

	// b caches u-a's session and membership; a revokes and demotes.
	_, err := b.Session(ctx, "acme", "u-a")
	must(t, err)
	_, err = b.Membership(ctx, "acme", "u-a")
	must(t, err)
	t0 := time.Now()
	must(t, a.DeleteSession(ctx, "acme", "u-a"))
	must(t, a.PutMembership(ctx, store.Membership{Org: "acme", User: "u-a", Role: "read"}))
	eventually(t, time.Second, "b sees the revocation and the new role", func() bool {
		_, err := b.Session(ctx, "acme", "u-a")
		m, merr := b.Membership(ctx, "acme", "u-a")
		return errors.Is(err, store.ErrNotFound) && merr == nil && m.Role == "read"
	})
	t.Logf("revocation seen by the other replica after %v", time.Since(t0))

	// Redis dies: b stops serving from its cache, and reads fail.
	srv.Kill()
	eventually(t, 3*time.Second, "b notices the lost subscription", func() bool { return !b.Live() })
	if _, err := b.Membership(ctx, "acme", "u-a"); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("with Redis down a lookup returned err = %v, want a store error", err)
	}
	// Redis returns: both recover by themselves.
	srv.Restart()
	eventually(t, 5*time.Second, "both replicas live again", func() bool { return a.Live() && b.Live() })
	m, err := b.Membership(ctx, "acme", "u-a")
	if err != nil || m.Role != "read" {
		t.Errorf("after the restart: %+v, %v", m, err)
	}
}

func eventually(t *testing.T, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
