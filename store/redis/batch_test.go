package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ssogate/ssogate/internal/redistest"
	"github.com/ssogate/ssogate/store"
)

// testPutBatch writes more than txBatch records of each kind with PutBatch
// and reads them back as PutMembership, PutSession and PutResource would
// have left them.
func testPutBatch(t *testing.T, s *Store) {
	ctx := context.Background()
	now := time.Now()
	must(t, s.PutSession(ctx, store.Session{Org: "acme", User: "u-gone", AuthenticatedAt: now, ExpiresAt: now.Add(time.Hour)}))
	n := txBatch + 7
	var ms []store.Membership
	var ss []store.Session
	var rs []store.Resource
	for i := range n {
		org := fmt.Sprintf("Org-%d", i%5)
		ms = append(ms, store.Membership{Org: org, User: fmt.Sprintf("u%d", i), Role: "read"})
		ss = append(ss, store.Session{Org: org, User: fmt.Sprintf("u%d", i), AuthenticatedAt: now, ExpiresAt: now.Add(time.Hour), Email: "e@x"})
		rs = append(rs, store.Resource{Type: "model", ID: fmt.Sprintf("%s/M%d", org, i), Visibility: "public"})
	}
	ms = append(ms, store.Membership{Org: "org-0", User: "u0", Role: "admin"})                    // replaces the first one
	ss = append(ss, store.Session{Org: "acme", User: "u-gone", ExpiresAt: now.Add(-time.Second)}) // deletes the stored one
	must(t, s.PutBatch(ctx, ms, ss, rs))
	if m, err := s.Membership(ctx, "org-0", "u0"); err != nil || m.Role != "admin" {
		t.Errorf("membership written twice: %+v, %v", m, err)
	}
	for _, i := range []int{1, txBatch - 1, txBatch, n - 1} {
		org := fmt.Sprintf("org-%d", i%5)
		if m, err := s.Membership(ctx, org, fmt.Sprintf("u%d", i)); err != nil || m.Role != "read" {
			t.Errorf("membership %d: %+v, %v", i, m, err)
		}
		if v, err := s.Session(ctx, org, fmt.Sprintf("u%d", i)); err != nil || v.Email != "e@x" {
			t.Errorf("session %d: %+v, %v", i, v, err)
		}
		if r, err := s.Resource(ctx, "model", fmt.Sprintf("%s/m%d", org, i)); err != nil || !r.Public() {
			t.Errorf("resource %d: %+v, %v", i, r, err)
		}
		ttl, err := s.c.PTTL(ctx, s.sessionKey(org, fmt.Sprintf("u%d", i))).Result()
		if err != nil || ttl <= 0 || ttl > time.Hour {
			t.Errorf("session %d TTL %v, %v", i, ttl, err)
		}
	}
	if list, err := s.ListSessions(ctx, "ORG-3"); err != nil || len(list) != (n+1)/5 {
		t.Errorf("ListSessions(org-3) = %d sessions, %v; want %d", len(list), err, (n+1)/5)
	}
	if _, err := s.Session(ctx, "acme", "u-gone"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("session replaced by an expired one: %v", err)
	}
	if list, err := s.ListSessions(ctx, "acme"); err != nil || len(list) != 0 {
		t.Errorf("ListSessions(acme) = %+v, %v", list, err)
	}
}

func TestPutBatch(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	defer s.Close()
	testPutBatch(t, s)
}

func TestPutBatchCluster(t *testing.T) {
	nodes := redistest.StartCluster(t, 3)
	s, err := New(Options{Addrs: []string{nodes[0].Addr, nodes[1].Addr, nodes[2].Addr}, Prefix: fmt.Sprintf("test%d:", prefixes.Add(1))})
	must(t, err)
	defer s.Close()
	testPutBatch(t, s)
}

// TestPutBatchReportsFailure: with the server gone, PutBatch fails naming
// the first record of the transaction that failed.
func TestPutBatchReportsFailure(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	defer s.Close()
	srv.Kill()
	err := s.PutBatch(context.Background(), []store.Membership{{Org: "acme", User: "u-a"}}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "membership of u-a in acme") {
		t.Fatalf("PutBatch with the server down: %v", err)
	}
}
