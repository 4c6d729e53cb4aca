package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ssogate/ssogate/internal/redistest"
	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/store/storetest"
)

// prefixes gives every store of a test run its own key prefix, so that
// the cases share one server without seeing each other's keys.
var prefixes atomic.Int64

func newStore(t *testing.T, srv *redistest.Server) *Store {
	t.Helper()
	s, err := New(Options{Addrs: []string{srv.Addr}, Prefix: fmt.Sprintf("test%d:", prefixes.Add(1))})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestContract(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	storetest.Run(t, storetest.Backend{RealTime: true, New: func(t *testing.T, _ func() time.Time) store.Store {
		return newStore(t, srv)
	}})
}

// TestKeysExpireOnTheServer checks the TTLs Redis holds, not just what
// the store returns: sessions at ExpiresAt, pending logins at theirs,
// replay entries when the id does.
func TestKeysExpireOnTheServer(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	defer s.Close()
	ctx := context.Background()
	now := time.Now()
	must(t, s.PutSession(ctx, store.Session{Org: "Acme", User: "u-a", AuthenticatedAt: now, ExpiresAt: now.Add(store.MaxSessionTimeout)}))
	must(t, s.PutSession(ctx, store.Session{Org: "acme", User: "u-forever", AuthenticatedAt: now}))
	must(t, s.PutPendingLogin(ctx, store.PendingLogin{ID: "p", ExpiresAt: now.Add(store.PendingLoginTTL)}))
	_, err := s.Remember(ctx, "assertion-1", now.Add(5*time.Minute))
	must(t, err)
	must(t, s.PutMembership(ctx, store.Membership{Org: "ACME", User: "u-a"}))
	for _, tc := range []struct {
		key  string
		want time.Duration // 0: no expiry
	}{
		{s.sessionKey("acme", "u-a"), store.MaxSessionTimeout},
		{s.sessionKey("acme", "u-forever"), 0},
		{s.prefix + "pending:p", store.PendingLoginTTL},
		{s.prefix + "replay:assertion-1", 5 * time.Minute},
		{s.membershipKey("acme", "u-a"), 0},
	} {
		ttl, err := s.c.PTTL(ctx, tc.key).Result()
		must(t, err)
		switch {
		case ttl == -2:
			t.Errorf("%s: no such key", tc.key)
		case tc.want == 0 && ttl != -1:
			t.Errorf("%s: TTL %v, want none", tc.key, ttl)
		case tc.want != 0 && (ttl > tc.want || ttl < tc.want-5*time.Second):
			t.Errorf("%s: TTL %v, want about %v", tc.key, ttl, tc.want)
		}
	}
	if !strings.Contains(s.sessionKey("Acme", "u-a"), "{acme}") {
		t.Errorf("session key %q lacks the org hash tag", s.sessionKey("Acme", "u-a"))
	}
}

// TestUnreachableServerFailsFast: with no server, reads and writes
// return errors (not ErrNotFound) within the configured timeout, and the
// same store works once a server listens.
func TestUnreachableServerFailsFast(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Persistent: true})
	s := newStore(t, srv)
	defer s.Close()
	ctx := context.Background()
	must(t, s.PutMembership(ctx, store.Membership{Org: "acme", User: "u-a", Role: "read"}))
	srv.Kill()
	t0 := time.Now()
	for _, op := range []struct {
		name string
		err  func() error
	}{
		{"Membership", func() error { _, err := s.Membership(ctx, "acme", "u-a"); return err }},
		{"Session", func() error { _, err := s.Session(ctx, "acme", "u-a"); return err }},
		{"Resource", func() error { _, err := s.Resource(ctx, "model", "acme/x"); return err }},
		{"PutSession", func() error { return s.PutSession(ctx, store.Session{Org: "acme", User: "u-a"}) }},
		{"TakePendingLogin", func() error { _, err := s.TakePendingLogin(ctx, "p"); return err }},
		{"Remember", func() error { _, err := s.Remember(ctx, "x", time.Now().Add(time.Minute)); return err }},
	} {
		err := op.err()
		if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, goredis.Nil) {
			t.Errorf("%s with the server down: err = %v, want a connection error", op.name, err)
		}
	}
	if took := time.Since(t0); took > 3*time.Second {
		t.Errorf("six operations against a dead server took %v", took)
	}
	srv.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, err := s.Membership(ctx, "acme", "u-a")
		if err == nil && m.Role == "read" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store did not recover after restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNewNeedsAnAddress(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without addresses succeeded")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestContractSentinel runs the suite through a Sentinel that monitors
// one master.
func TestContractSentinel(t *testing.T) {
	master := redistest.Start(t, redistest.Options{})
	sentinel := redistest.StartSentinel(t, master, "mymaster")
	storetest.Run(t, storetest.Backend{RealTime: true, New: func(t *testing.T, _ func() time.Time) store.Store {
		s, err := New(Options{Addrs: []string{sentinel.Addr}, MasterName: "mymaster", Prefix: fmt.Sprintf("test%d:", prefixes.Add(1))})
		must(t, err)
		return s
	}})
}

// TestContractCluster runs the suite on a three-node Redis Cluster: every
// multi-key operation must stay in one slot.
func TestContractCluster(t *testing.T) {
	nodes := redistest.StartCluster(t, 3)
	addrs := []string{nodes[0].Addr, nodes[1].Addr, nodes[2].Addr}
	storetest.Run(t, storetest.Backend{RealTime: true, New: func(t *testing.T, _ func() time.Time) store.Store {
		s, err := New(Options{Addrs: addrs, Prefix: fmt.Sprintf("test%d:", prefixes.Add(1))})
		must(t, err)
		return s
	}})
	t.Run("invalidations reach a subscriber on any node", func(t *testing.T) {
		pub, err := New(Options{Addrs: addrs[:1], Prefix: "bus:"}) // a plain client of one node
		must(t, err)
		defer pub.Close()
		sub, err := New(Options{Addrs: addrs, Prefix: "bus:"})
		must(t, err)
		defer sub.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		live, keys := make(chan bool, 4), make(chan string, 4)
		go sub.Bus().Listen(ctx, func(k string) { keys <- k }, func(l bool) { live <- l })
		select {
		case l := <-live:
			if !l {
				t.Fatal("onLive(false) before the subscription")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no subscription")
		}
		must(t, pub.Bus().Publish(ctx, "s:acme\x00u-a"))
		select {
		case k := <-keys:
			if k != "s:acme\x00u-a" {
				t.Errorf("received %q", k)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("the invalidation did not arrive")
		}
	})
}
