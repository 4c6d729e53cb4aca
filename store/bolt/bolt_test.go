package bolt

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, storetest.Backend{New: func(t *testing.T, now func() time.Time) store.Store {
		s, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{Now: now, SweepInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}})
}

func TestStateSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	must(t, err)
	now := time.Now()
	must(t, s.PutMembership(ctx, store.Membership{Org: "acme", User: "u-a", Role: "admin"}))
	must(t, s.PutSession(ctx, store.Session{Org: "acme", User: "u-a", AuthenticatedAt: now, ExpiresAt: now.Add(time.Hour)}))
	must(t, s.PutResource(ctx, store.Resource{Type: "model", ID: "acme/m", Visibility: "public"}))
	must(t, s.PutPendingLogin(ctx, store.PendingLogin{ID: "p", ExpiresAt: now.Add(time.Hour)}))
	must(t, s.Close())
	must(t, s.Close()) // twice is fine

	s, err = Open(path, Options{})
	must(t, err)
	defer s.Close()
	if m, err := s.Membership(ctx, "ACME", "u-a"); err != nil || m.Role != "admin" {
		t.Errorf("membership after reopen: %+v, %v", m, err)
	}
	if v, err := s.Session(ctx, "acme", "u-a"); err != nil || !v.AuthenticatedAt.Equal(now) {
		t.Errorf("session after reopen: %+v, %v", v, err)
	}
	if r, err := s.Resource(ctx, "model", "acme/M"); err != nil || !r.Public() {
		t.Errorf("resource after reopen: %+v, %v", r, err)
	}
	if _, err := s.TakePendingLogin(ctx, "p"); err != nil {
		t.Errorf("pending login after reopen: %v", err)
	}
	if fresh, err := s.Remember(ctx, "x", now.Add(time.Hour)); err != nil || !fresh {
		t.Errorf("Remember after reopen: %v, %v", fresh, err)
	}
}

func TestSweepDeletesOnlyExpired(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{Now: clock, SweepInterval: -1})
	must(t, err)
	defer s.Close()
	must(t, s.PutSession(ctx, store.Session{Org: "acme", User: "old", ExpiresAt: now.Add(time.Minute)}))
	must(t, s.PutSession(ctx, store.Session{Org: "acme", User: "new", ExpiresAt: now.Add(time.Hour)}))
	must(t, s.PutSession(ctx, store.Session{Org: "acme", User: "forever"}))
	must(t, s.PutPendingLogin(ctx, store.PendingLogin{ID: "p-old", ExpiresAt: now.Add(time.Minute)}))
	must(t, s.PutPendingLogin(ctx, store.PendingLogin{ID: "p-new", ExpiresAt: now.Add(time.Hour)}))
	_, err = s.Remember(ctx, "r-old", now.Add(time.Minute))
	must(t, err)
	_, err = s.Remember(ctx, "r-new", now.Add(time.Hour))
	must(t, err)

	if n, err := s.Sweep(); err != nil || n != 0 {
		t.Fatalf("sweep before expiry deleted %d (%v)", n, err)
	}
	now = now.Add(10 * time.Minute)
	if n, err := s.Sweep(); err != nil || n != 3 {
		t.Fatalf("sweep deleted %d (%v), want 3", n, err)
	}
	// Swept records are gone from the file, not just hidden: turn the
	// clock back and they are still not found.
	now = now.Add(-10 * time.Minute)
	if _, err := s.Session(ctx, "acme", "old"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("swept session: %v", err)
	}
	if fresh, _ := s.Remember(ctx, "r-old", now.Add(time.Minute)); !fresh {
		t.Error("swept replay entry still remembered")
	}
	for _, u := range []string{"new", "forever"} {
		if _, err := s.Session(ctx, "acme", u); err != nil {
			t.Errorf("session %s: %v", u, err)
		}
	}
	if _, err := s.TakePendingLogin(ctx, "p-new"); err != nil {
		t.Errorf("p-new: %v", err)
	}
}

func TestSweeperRuns(t *testing.T) {
	ctx := context.Background()
	s, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{SweepInterval: 10 * time.Millisecond})
	must(t, err)
	defer s.Close()
	must(t, s.PutPendingLogin(ctx, store.PendingLogin{ID: "p", ExpiresAt: time.Now().Add(20 * time.Millisecond)}))
	deadline := time.Now().Add(2 * time.Second)
	for {
		n := 0
		must(t, s.db.View(func(tx *bbolt.Tx) error { n = tx.Bucket(bucketPending).Stats().KeyN; return nil }))
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the sweeper did not delete the expired pending login")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db")
	s, err := Open(path, Options{})
	must(t, err)
	defer s.Close()
	notBolt := filepath.Join(dir, "not.db")
	must(t, os.WriteFile(notBolt, []byte(strings.Repeat("not a database\n", 400)), 0o600))
	for _, tc := range []struct {
		name, path, want string
	}{
		{"locked by another opener", path, "locked"},
		{"not a bolt file", notBolt, "not.db"},
		{"missing folder", filepath.Join(dir, "nope", "state.db"), "nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s2, err := Open(tc.path, Options{LockTimeout: 50 * time.Millisecond})
			if err == nil {
				s2.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
