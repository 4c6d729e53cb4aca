package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssogate/ssogate/internal/redistest"
	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/store/bolt"
	"github.com/ssogate/ssogate/store/cache"
	"github.com/ssogate/ssogate/store/memory"
	redisstore "github.com/ssogate/ssogate/store/redis"
	"github.com/ssogate/ssogate/store/snapshot"
)

// importSnapshot is a snapshot out of key order, with a membership and a
// session that appear twice (the later must win), orgs in two spellings.
func importSnapshot(now time.Time) *snapshot.Snapshot {
	s := &snapshot.Snapshot{}
	for i := range 7 {
		org := []string{"globex", "Acme", "initech"}[i%3]
		user := fmt.Sprintf("u-%d", 7-i)
		s.Memberships = append(s.Memberships, store.Membership{Org: org, User: user, Role: "read"})
		s.Sessions = append(s.Sessions, store.Session{Org: org, User: user, AuthenticatedAt: now, ExpiresAt: now.Add(time.Hour)})
		s.Resources = append(s.Resources, store.Resource{Type: []string{"space", "model"}[i%2], ID: fmt.Sprintf("%s/R%d", org, 7-i), Visibility: "public"})
	}
	s.Memberships = append(s.Memberships, store.Membership{Org: "globex", User: "u-7", Role: "admin"})
	s.Sessions = append(s.Sessions, store.Session{Org: "GLOBEX", User: "u-7", AuthenticatedAt: now, ExpiresAt: now.Add(2 * time.Hour)})
	return s
}

// checkImported fails t unless st holds every record of importSnapshot.
func checkImported(t *testing.T, st store.Store, now time.Time) {
	t.Helper()
	ctx := context.Background()
	for i := range 7 {
		org := []string{"globex", "acme", "initech"}[i%3]
		user := fmt.Sprintf("u-%d", 7-i)
		if _, err := st.Membership(ctx, org, user); err != nil {
			t.Errorf("membership %s/%s: %v", org, user, err)
		}
		if _, err := st.Session(ctx, org, user); err != nil {
			t.Errorf("session %s/%s: %v", org, user, err)
		}
		typ := []string{"space", "model"}[i%2]
		if _, err := st.Resource(ctx, typ, fmt.Sprintf("%s/r%d", org, 7-i)); err != nil {
			t.Errorf("resource %s %s/r%d: %v", typ, org, 7-i, err)
		}
	}
	if m, err := st.Membership(ctx, "globex", "u-7"); err != nil || m.Role != "admin" {
		t.Errorf("repeated membership: %+v, %v (want the later, admin)", m, err)
	}
	if v, err := st.Session(ctx, "globex", "u-7"); err != nil || !v.ExpiresAt.Equal(now.Add(2*time.Hour)) || v.Org != "GLOBEX" {
		t.Errorf("repeated session: %+v, %v (want the later)", v, err)
	}
}

// batchRecorder is a store with PutBatch that records its batches and
// fails the one numbered failAt (from 1; 0 never).
type batchRecorder struct {
	store.Store
	mu      sync.Mutex
	batches []string
	failAt  int
}

func (b *batchRecorder) PutBatch(ctx context.Context, ms []store.Membership, ss []store.Session, rs []store.Resource) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var keys []string
	for _, m := range ms {
		keys = append(keys, "m:"+store.Fold(m.Org)+"/"+m.User)
	}
	for _, v := range ss {
		keys = append(keys, "s:"+store.Fold(v.Org)+"/"+v.User)
	}
	for _, r := range rs {
		keys = append(keys, "r:"+r.Type+"/"+store.Fold(r.ID))
	}
	b.batches = append(b.batches, strings.Join(keys, " "))
	if len(b.batches) == b.failAt {
		return errors.New("disk full")
	}
	for _, m := range ms {
		if err := b.PutMembership(ctx, m); err != nil {
			return err
		}
	}
	for _, v := range ss {
		if err := b.PutSession(ctx, v); err != nil {
			return err
		}
	}
	for _, r := range rs {
		if err := b.PutResource(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

func TestImportRecordsBatchesInKeyOrder(t *testing.T) {
	now := time.Now()
	rec := &batchRecorder{Store: memory.New()}
	must(t, importRecords(context.Background(), rec, importSnapshot(now), 3))
	checkImported(t, rec, now)
	// importSnapshot puts user u-(7-i) in org i%3 (globex, Acme, initech).
	want := []string{
		"m:acme/u-3 m:acme/u-6 m:globex/u-1", "m:globex/u-4 m:globex/u-7 m:globex/u-7", "m:initech/u-2 m:initech/u-5",
		"s:acme/u-3 s:acme/u-6 s:globex/u-1", "s:globex/u-4 s:globex/u-7 s:globex/u-7", "s:initech/u-2 s:initech/u-5",
		"r:model/acme/r6 r:model/globex/r4 r:model/initech/r2", "r:space/acme/r3 r:space/globex/r1 r:space/globex/r7", "r:space/initech/r5",
	}
	if !slices.Equal(rec.batches, want) {
		t.Errorf("batches:\n got %q\nwant %q", rec.batches, want)
	}
}

func TestImportRecordsStopsAtAFailedBatch(t *testing.T) {
	now := time.Now()
	rec := &batchRecorder{Store: memory.New(), failAt: 5}
	err := importRecords(context.Background(), rec, importSnapshot(now), 3)
	if err == nil || !strings.Contains(err.Error(), "sessions: the batch of 3 from sessions[3] (in key order)") || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("importRecords: %v", err)
	}
	if len(rec.batches) != 5 {
		t.Errorf("%d batches tried, want 5 (no batch after the failed one)", len(rec.batches))
	}
	ctx := context.Background()
	if _, err := rec.Session(ctx, "globex", "u-1"); err != nil {
		t.Errorf("session of the batch before the failed one: %v", err)
	}
	if _, err := rec.Session(ctx, "globex", "u-4"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("session of the failed batch: %v", err)
	}
}

// TestImportRecordsWithoutBatches: a store without PutBatch gets every record.
func TestImportRecordsWithoutBatches(t *testing.T) {
	now := time.Now()
	st := memory.New()
	must(t, importRecords(context.Background(), st, importSnapshot(now), 3))
	checkImported(t, st, now)
}

func TestImportRecordsIntoBolt(t *testing.T) {
	now := time.Now()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "state.db"), bolt.Options{SweepInterval: -1})
	must(t, err)
	defer st.Close()
	must(t, st.PutMembership(context.Background(), store.Membership{Org: "acme", User: "u-kept", Role: "write"}))
	must(t, importRecords(context.Background(), st, importSnapshot(now), 4))
	checkImported(t, st, now)
	if m, err := st.Membership(context.Background(), "acme", "u-kept"); err != nil || m.Role != "write" {
		t.Errorf("a membership stored before the import: %+v, %v", m, err)
	}
}

// TestImportRecordsIntoRedisFlushesReplicaCaches: after each batch, the
// replicas are told to drop their caches.
func TestImportRecordsIntoRedisFlushesReplicaCaches(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	st, err := redisstore.New(redisstore.Options{Addrs: []string{srv.Addr}, Prefix: "import:"})
	must(t, err)
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	live, keys := make(chan bool, 4), make(chan string, 100)
	go st.Bus().Listen(ctx, func(k string) { keys <- k }, func(l bool) { live <- l })
	select {
	case <-live:
	case <-time.After(5 * time.Second):
		t.Fatal("no subscription")
	}
	now := time.Now()
	must(t, importRecords(ctx, st, importSnapshot(now), 3))
	checkImported(t, st, now)
	for i := range 9 { // three batches of each kind (7 or 8 records, 3 per batch)
		select {
		case k := <-keys:
			if k != cache.FlushAll {
				t.Fatalf("published %q, want %q", k, cache.FlushAll)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("%d flushes published, want 9", i)
		}
	}
}
