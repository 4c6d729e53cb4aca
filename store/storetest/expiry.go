package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssogate/ssogate/store"
)

// expiryCases cover what expires or is single use: sessions past
// ExpiresAt, pending logins and the replay cache.
func expiryCases() []testCase {
	ctx := context.Background()
	return []testCase{
		{"sessions expire at ExpiresAt", func(t *testing.T, s store.Store, c *Clock) {
			now := c.Now()
			must(t, s.PutSession(ctx, store.Session{Org: "acme", User: "u-short", AuthenticatedAt: now, ExpiresAt: now.Add(step)}))
			must(t, s.PutSession(ctx, store.Session{Org: "acme", User: "u-long", AuthenticatedAt: now, ExpiresAt: now.Add(time.Hour)}))
			must(t, s.PutSession(ctx, store.Session{Org: "acme", User: "u-past", AuthenticatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)}))
			if _, err := s.Session(ctx, "acme", "u-short"); err != nil {
				t.Fatalf("before expiry: %v", err)
			}
			if _, err := s.Session(ctx, "acme", "u-past"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("a session written already expired is found: err = %v", err)
			}
			c.Advance(2 * step)
			if _, err := s.Session(ctx, "acme", "u-short"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("after expiry: err = %v", err)
			}
			if _, err := s.Session(ctx, "acme", "u-long"); err != nil {
				t.Errorf("unexpired session: %v", err)
			}
			list, err := s.ListSessions(ctx, "acme")
			must(t, err)
			if len(list) != 1 || list[0].User != "u-long" {
				t.Errorf("ListSessions after expiry = %+v, want only u-long", list)
			}
		}},
		{"a session without ExpiresAt is kept", func(t *testing.T, s store.Store, c *Clock) {
			must(t, s.PutSession(ctx, store.Session{Org: "acme", User: "u-a", AuthenticatedAt: c.Now().Add(-1000 * time.Hour)}))
			c.Advance(2 * step)
			if _, err := s.Session(ctx, "acme", "u-a"); err != nil {
				t.Errorf("err = %v", err)
			}
		}},
		{"pending logins are single use", func(t *testing.T, s store.Store, c *Clock) {
			now := c.Now().Truncate(time.Millisecond)
			in := store.PendingLogin{ID: "p-1", Org: "acme", User: "u-a", Protocol: "oidc", Join: true,
				ReturnTo: "https://hub.example.test/acme/x", State: "st", Nonce: "n", Verifier: "v",
				RequestID: "id-1", Browser: "b", CreatedAt: now, ExpiresAt: now.Add(store.PendingLoginTTL)}
			must(t, s.PutPendingLogin(ctx, in))
			if _, err := s.TakePendingLogin(ctx, "P-1"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("ids must match exactly: err = %v", err)
			}
			got, err := s.TakePendingLogin(ctx, "p-1")
			must(t, err)
			if !got.CreatedAt.Equal(in.CreatedAt) || !got.ExpiresAt.Equal(in.ExpiresAt) {
				t.Errorf("times: got %v/%v, want %v/%v", got.CreatedAt, got.ExpiresAt, in.CreatedAt, in.ExpiresAt)
			}
			got.CreatedAt, got.ExpiresAt = in.CreatedAt, in.ExpiresAt
			if *got != in {
				t.Errorf("got %+v, want %+v", *got, in)
			}
			if _, err := s.TakePendingLogin(ctx, "p-1"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("second take: err = %v", err)
			}
			if _, err := s.TakePendingLogin(ctx, "never-stored"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("unknown id: err = %v", err)
			}
		}},
		{"pending logins expire", func(t *testing.T, s store.Store, c *Clock) {
			now := c.Now()
			must(t, s.PutPendingLogin(ctx, store.PendingLogin{ID: "p-short", Org: "acme", CreatedAt: now, ExpiresAt: now.Add(step)}))
			must(t, s.PutPendingLogin(ctx, store.PendingLogin{ID: "p-long", Org: "acme", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))
			c.Advance(2 * step)
			if _, err := s.TakePendingLogin(ctx, "p-short"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("expired: err = %v", err)
			}
			if _, err := s.TakePendingLogin(ctx, "p-long"); err != nil {
				t.Errorf("unexpired: %v", err)
			}
		}},
		{"a pending login without a future ExpiresAt is never taken", func(t *testing.T, s store.Store, c *Clock) {
			must(t, s.PutPendingLogin(ctx, store.PendingLogin{ID: "p-zero", Org: "acme", CreatedAt: c.Now()}))
			must(t, s.PutPendingLogin(ctx, store.PendingLogin{ID: "p-past", Org: "acme", ExpiresAt: c.Now().Add(-time.Second)}))
			for _, id := range []string{"p-zero", "p-past"} {
				if _, err := s.TakePendingLogin(ctx, id); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("%s: err = %v", id, err)
				}
			}
		}},
		{"concurrent takes of a pending login have one winner", func(t *testing.T, s store.Store, c *Clock) {
			now := c.Now()
			must(t, s.PutPendingLogin(ctx, store.PendingLogin{ID: "p-race", Org: "acme", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))
			var wins atomic.Int32
			race(t, 16, func() error {
				_, err := s.TakePendingLogin(ctx, "p-race")
				if err == nil {
					wins.Add(1)
					return nil
				}
				if errors.Is(err, store.ErrNotFound) {
					return nil
				}
				return err
			})
			if n := wins.Load(); n != 1 {
				t.Errorf("%d takes succeeded, want exactly 1", n)
			}
		}},
		{"replays are remembered until they expire", func(t *testing.T, s store.Store, c *Clock) {
			now := c.Now()
			for _, tc := range []struct {
				id      string
				expires time.Time
				want    bool
			}{
				{"a-1", now.Add(step), true},
				{"a-1", now.Add(step), false},
				{"a-1", now.Add(time.Hour), false}, // a replay does not extend or reset the entry
				{"A-1", now.Add(step), true},       // ids match exactly
				{"a-2", now.Add(time.Hour), true},
			} {
				fresh, err := s.Remember(ctx, tc.id, tc.expires)
				must(t, err)
				if fresh != tc.want {
					t.Errorf("Remember(%q) fresh = %v, want %v", tc.id, fresh, tc.want)
				}
			}
			c.Advance(2 * step)
			if fresh, err := s.Remember(ctx, "a-1", c.Now().Add(time.Hour)); err != nil || !fresh {
				t.Errorf("after expiry: fresh = %v, err = %v", fresh, err)
			}
			if fresh, err := s.Remember(ctx, "a-2", c.Now().Add(time.Hour)); err != nil || fresh {
				t.Errorf("unexpired a-2: fresh = %v, err = %v", fresh, err)
			}
		}},
		{"concurrent Remember of one id has one fresh", func(t *testing.T, s store.Store, c *Clock) {
			var fresh atomic.Int32
			race(t, 16, func() error {
				ok, err := s.Remember(ctx, "assertion-race", c.Now().Add(time.Hour))
				if ok {
					fresh.Add(1)
				}
				return err
			})
			if n := fresh.Load(); n != 1 {
				t.Errorf("%d calls saw the id fresh, want exactly 1", n)
			}
		}},
	}
}

// race runs fn in n goroutines released together and fails t on errors.
func race(t *testing.T, n int, fn func() error) {
	t.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if err := fn(); err != nil {
				errs <- fmt.Errorf("goroutine: %w", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
