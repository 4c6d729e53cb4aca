package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/ssogate/ssogate/store"
)

// checkIndex fails t unless the expiry index holds exactly one entry per
// expiring record, under the record's expiry.
func checkIndex(t *testing.T, s *Store) {
	t.Helper()
	must(t, s.db.View(func(tx *bbolt.Tx) error {
		var want, got [][]byte
		for kind, name := range expiringBuckets {
			must(t, tx.Bucket(name).ForEach(func(k, v []byte) error {
				if exp, ok := indexExpiry(v); ok {
					want = append(want, indexKey(kind, exp, k))
				}
				return nil
			}))
		}
		must(t, tx.Bucket(bucketExpiry).ForEach(func(k, _ []byte) error {
			got = append(got, bytes.Clone(k))
			return nil
		}))
		slices.SortFunc(want, bytes.Compare)
		if !slices.EqualFunc(got, want, bytes.Equal) {
			t.Fatalf("expiry index:\n got %q\nwant %q", got, want)
		}
		return nil
	}))
}

// TestExpiryIndexFollowsEveryWrite runs random writes, deletes, takes and
// sweeps and checks the index after each one.
func TestExpiryIndexFollowsEveryWrite(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	s, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{Now: func() time.Time { return now }, SweepInterval: -1})
	must(t, err)
	defer s.Close()
	s.db.NoSync = true // thousands of transactions; durability is not what this tests
	rng := rand.New(rand.NewPCG(1, 2))
	exp := func() time.Time {
		switch rng.IntN(4) {
		case 0:
			return time.Time{}
		case 1:
			return now.Add(-time.Minute)
		}
		return now.Add(time.Duration(rng.IntN(120)) * time.Minute)
	}
	users := []string{"u-a", "u-b", "u-c", "u-d"}
	for step := range 2000 {
		u, org := users[rng.IntN(len(users))], []string{"acme", "Acme", "globex"}[rng.IntN(3)]
		switch op := rng.IntN(9); op {
		case 0, 1:
			must(t, s.PutSession(ctx, store.Session{Org: org, User: u, AuthenticatedAt: now, ExpiresAt: exp()}))
		case 2:
			must(t, s.DeleteSession(ctx, org, u))
		case 3:
			must(t, s.PutBatch(ctx, nil, []store.Session{
				{Org: org, User: u, ExpiresAt: exp()}, {Org: org, User: users[rng.IntN(len(users))], ExpiresAt: exp()},
			}, nil))
		case 4:
			must(t, s.PutPendingLogin(ctx, store.PendingLogin{ID: u, ExpiresAt: exp()}))
		case 5:
			if _, err := s.TakePendingLogin(ctx, u); err != nil && !errors.Is(err, store.ErrNotFound) {
				t.Fatal(err)
			}
		case 6:
			_, err := s.Remember(ctx, u, exp())
			must(t, err)
		case 7:
			now = now.Add(time.Duration(rng.IntN(30)) * time.Minute)
		case 8:
			_, err := s.Sweep()
			must(t, err)
		}
		if step%10 == 0 || step > 1900 {
			checkIndex(t, s)
		}
	}
}

// writeSchema1 writes a file the way the schema 1 store did: JSON records,
// sessions and pending logins after an 8-byte expiry, no expiry index.
func writeSchema1(t *testing.T, path string, fill func(put func(bucket []byte, key string, value []byte))) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	must(t, err)
	must(t, db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketMemberships, bucketSessions, bucketResources, bucketPending, bucketReplays} {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		must(t, tx.Bucket(bucketMeta).Put(keySchema, schemaV1))
		fill(func(bucket []byte, key string, value []byte) { must(t, tx.Bucket(bucket).Put([]byte(key), value)) })
		return nil
	}))
	must(t, db.Close())
}

func schema1Expiring(at time.Time, v any) []byte {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	b := make([]byte, 8, 8+len(raw))
	if !at.IsZero() {
		binary.BigEndian.PutUint64(b, uint64(at.UnixNano()))
	}
	return append(b, raw...)
}

func mustJSON(v any) []byte {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return raw
}

// TestOpenUpgradesSchema1: a file written by the schema 1 store opens with
// every record readable, gets its expiry index, and is swept by it.
func TestOpenUpgradesSchema1(t *testing.T) {
	defer func(n int) { upgradeChunkSize = n }(upgradeChunkSize)
	upgradeChunkSize = 2 // several transactions per bucket
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "state.db")
	live := store.Session{Org: "Acme", User: "u-a", AuthenticatedAt: now.Add(-time.Hour), Email: "a@acme.example", ExpiresAt: now.Add(time.Hour)}
	old := store.Session{Org: "acme", User: "u-old", AuthenticatedAt: now.Add(-3 * time.Hour), ExpiresAt: now.Add(-time.Hour)}
	forever := store.Session{Org: "acme", User: "u-forever", AuthenticatedAt: now}
	m := store.Membership{Org: "Acme", User: "u-a", Role: "write", ResourceGroups: map[string]string{"vision": "admin"}}
	r := store.Resource{Type: "model", ID: "Acme/Secret", Visibility: "private", CreatedBy: "u-a"}
	writeSchema1(t, path, func(put func([]byte, string, []byte)) {
		put(bucketMemberships, "acme\x00u-a", mustJSON(m))
		put(bucketResources, "model\x00acme/secret", mustJSON(r))
		put(bucketSessions, "acme\x00u-a", schema1Expiring(live.ExpiresAt, live))
		put(bucketSessions, "acme\x00u-old", schema1Expiring(old.ExpiresAt, old))
		put(bucketSessions, "acme\x00u-forever", schema1Expiring(forever.ExpiresAt, forever))
		put(bucketSessions, "acme\x00u-broken", []byte("x")) // too short: expired
		put(bucketMemberships, "acme\x00u-garbled", []byte("{not JSON"))
		put(bucketPending, "p", schema1Expiring(now.Add(time.Minute), store.PendingLogin{ID: "p", Org: "acme", ExpiresAt: now.Add(time.Minute)}))
		put(bucketReplays, "code-old", schema1Expiring(now.Add(-time.Minute), nil)[:8])
		put(bucketReplays, "code-1960", schema1Expiring(time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC), nil)[:8])
		put(bucketReplays, "code", schema1Expiring(now.Add(time.Hour), nil)[:8])
	})

	s, err := Open(path, Options{Now: func() time.Time { return now }, SweepInterval: -1})
	must(t, err)
	defer s.Close()
	checkIndex(t, s)
	must(t, s.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keySchema); !bytes.Equal(v, schemaV2) {
			t.Errorf("schema after the upgrade: %q", v)
		}
		if tx.Bucket(bucketMeta).Get(keyIndexReady) == nil {
			t.Error("the index is not marked complete")
		}
		if n := tx.Bucket(bucketExpiry).Stats().KeyN; n != 7 {
			t.Errorf("expiry index: %d entries, want 7", n)
		}
		// Every record that decodes is compact now; the others are as they were.
		for _, kv := range []struct {
			bucket []byte
			key    string
			at     int
		}{{bucketMemberships, "acme\x00u-a", 0}, {bucketResources, "model\x00acme/secret", 0}, {bucketSessions, "acme\x00u-a", expiryLen}, {bucketSessions, "acme\x00u-forever", expiryLen}} {
			if v := tx.Bucket(kv.bucket).Get([]byte(kv.key)); len(v) <= kv.at || v[kv.at] != compactTag {
				t.Errorf("%s %q after the upgrade: %q, not compact", kv.bucket, kv.key, v)
			}
		}
		if v := tx.Bucket(bucketMemberships).Get([]byte("acme\x00u-garbled")); string(v) != "{not JSON" {
			t.Errorf("undecodable record after the upgrade: %q", v)
		}
		if v := tx.Bucket(bucketSessions).Get([]byte("acme\x00u-broken")); string(v) != "x" {
			t.Errorf("short session value after the upgrade: %q", v)
		}
		return nil
	}))
	if got, err := s.Membership(ctx, "acme", "u-a"); err != nil || got.Org != "Acme" || got.ResourceGroups["vision"] != "admin" {
		t.Errorf("membership: %+v, %v", got, err)
	}
	if got, err := s.Resource(ctx, "model", "acme/SECRET"); err != nil || got.ID != "Acme/Secret" {
		t.Errorf("resource: %+v, %v", got, err)
	}
	if got, err := s.Session(ctx, "acme", "u-a"); err != nil || got.Email != live.Email || !got.ExpiresAt.Equal(live.ExpiresAt) || got.Org != "Acme" {
		t.Errorf("session: %+v, %v", got, err)
	}
	if list, err := s.ListSessions(ctx, "acme"); err != nil || len(list) != 2 {
		t.Errorf("ListSessions: %+v, %v", list, err)
	}
	if fresh, err := s.Remember(ctx, "code", now.Add(time.Hour)); err != nil || fresh {
		t.Errorf("Remember(code) after the upgrade = %v, %v; want a replay", fresh, err)
	}
	if n, err := s.Sweep(); err != nil || n != 4 {
		t.Errorf("Sweep = %d, %v; want the old session, the broken one and two old codes", n, err)
	}
	checkIndex(t, s)
	if _, err := s.Session(ctx, "acme", "u-forever"); err != nil {
		t.Errorf("session without expiry: %v", err)
	}
	if _, err := s.Membership(ctx, "acme", "u-garbled"); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("undecodable membership: %v, want a decoding error", err)
	}
	live.Email = "new@acme.example"
	must(t, s.PutSession(ctx, live))
	checkIndex(t, s)
	if _, err := s.TakePendingLogin(ctx, "p"); err != nil {
		t.Errorf("pending login: %v", err)
	}
	checkIndex(t, s)
	must(t, s.Close())

	// Opening again does not rebuild anything.
	s2, err := Open(path, Options{Now: func() time.Time { return now }, SweepInterval: -1})
	must(t, err)
	defer s2.Close()
	checkIndex(t, s2)
	if got, err := s2.Session(ctx, "acme", "u-a"); err != nil || got.Email != "new@acme.example" {
		t.Errorf("session after reopening: %+v, %v", got, err)
	}
}

// TestOpenRefusesUnknownSchema: a file from a later version is not touched.
func TestOpenRefusesUnknownSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	writeSchema1(t, path, func(put func([]byte, string, []byte)) { put(bucketMeta, "schema", []byte("3")) })
	_, err := Open(path, Options{SweepInterval: -1})
	if err == nil || !strings.Contains(err.Error(), `unsupported schema version "3"`) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open: %v", err)
	}
}

// TestOpenRebuildsAMissingIndex: a schema 2 file whose index bucket is gone
// gets it back.
func TestOpenRebuildsAMissingIndex(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{SweepInterval: -1})
	must(t, err)
	must(t, s.PutSession(ctx, store.Session{Org: "acme", User: "u-a", ExpiresAt: time.Now().Add(time.Hour)}))
	must(t, s.db.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket(bucketExpiry) }))
	must(t, s.Close())
	s, err = Open(path, Options{SweepInterval: -1})
	must(t, err)
	defer s.Close()
	checkIndex(t, s)
}

// TestSweepReadsOnlyWhatExpired: with many live sessions and a few
// expired ones, a sweep deletes the expired ones in transactions of at
// most sweepBatch, and leaves the rest (and their index entries) alone.
func TestSweepReadsOnlyWhatExpired(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	s, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{Now: func() time.Time { return now }, SweepInterval: -1})
	must(t, err)
	defer s.Close()
	var batch []store.Session
	expired := sweepBatch + 5
	for i := range 3 * sweepBatch {
		v := store.Session{Org: fmt.Sprintf("org-%d", i%7), User: fmt.Sprintf("u%06d", i), AuthenticatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if i < expired {
			v.ExpiresAt = now.Add(-time.Duration(i) * time.Second)
		}
		batch = append(batch, v)
	}
	must(t, s.PutBatch(ctx, nil, batch, nil))
	checkIndex(t, s)
	n, err := s.Sweep()
	if err != nil || n != expired {
		t.Fatalf("Sweep = %d, %v; want %d", n, err, expired)
	}
	checkIndex(t, s)
	if n, err := s.Sweep(); err != nil || n != 0 {
		t.Fatalf("second Sweep = %d, %v", n, err)
	}
}

func TestPutBatch(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{Now: func() time.Time { return now }, SweepInterval: -1})
	must(t, err)
	defer s.Close()
	must(t, s.PutSession(ctx, store.Session{Org: "acme", User: "u-a", ExpiresAt: now.Add(time.Minute)}))
	must(t, s.PutBatch(ctx,
		[]store.Membership{{Org: "Acme", User: "u-a", Role: "read"}, {Org: "acme", User: "u-a", Role: "admin"}, {Org: "acme", User: "u-b"}},
		[]store.Session{{Org: "acme", User: "u-a", AuthenticatedAt: now, ExpiresAt: now.Add(time.Hour)}, {Org: "acme", User: "u-b", ExpiresAt: now.Add(-time.Hour)}},
		[]store.Resource{{Type: "model", ID: "Acme/M", Visibility: "public"}}))
	checkIndex(t, s)
	if m, err := s.Membership(ctx, "ACME", "u-a"); err != nil || m.Role != "admin" || m.Org != "acme" {
		t.Errorf("membership written twice in a batch: %+v, %v (want the later)", m, err)
	}
	if v, err := s.Session(ctx, "acme", "u-a"); err != nil || !v.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Errorf("session replaced by the batch: %+v, %v", v, err)
	}
	if _, err := s.Session(ctx, "acme", "u-b"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("expired session from the batch: %v", err)
	}
	if r, err := s.Resource(ctx, "model", "acme/m"); err != nil || r.ID != "Acme/M" {
		t.Errorf("resource: %+v, %v", r, err)
	}

	// A batch that fails stores none of its records. (Fields over
	// store.MaxFieldLen are refused before the transaction; an org name
	// that long is not, and fails inside it.)
	err = s.PutBatch(ctx, []store.Membership{{Org: "acme", User: "u-c", Role: "read"}},
		[]store.Session{{Org: "acme", User: "u-c", ExpiresAt: now.Add(time.Hour)}, {Org: strings.Repeat("o", bbolt.MaxKeySize), User: "u-long"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "SSO session of u-long") {
		t.Fatalf("PutBatch with a key too long: %.200v", err)
	}
	if err := s.PutBatch(ctx, nil, []store.Session{{Org: "acme", User: strings.Repeat("x", store.MaxFieldLen+1)}}, nil); !errors.Is(err, store.ErrTooLong) {
		t.Errorf("PutBatch with a user id over store.MaxFieldLen: %.200v", err)
	}
	if _, err := s.Membership(ctx, "acme", "u-c"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("membership of a failed batch: %v", err)
	}
	if _, err := s.Session(ctx, "acme", "u-c"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("session of a failed batch: %v", err)
	}
	checkIndex(t, s)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.PutBatch(cctx, []store.Membership{{Org: "acme", User: "u-d"}}, nil, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("PutBatch with a cancelled context: %v", err)
	}
}

// TestOpenFinishesAnInterruptedBuild: an upgrade that stopped before its
// last transaction (schema 2 without the completion mark; or a schema 1
// file with an index bucket from elsewhere) leaves a partial index, which
// the next Open replaces.
func TestOpenFinishesAnInterruptedBuild(t *testing.T) {
	now := time.Now()
	for _, schema := range [][]byte{schemaV1, schemaV2} {
		path := filepath.Join(t.TempDir(), "state.db")
		writeSchema1(t, path, func(put func([]byte, string, []byte)) {
			put(bucketMeta, string(keySchema), schema)
			for i := range 5 {
				v := store.Session{Org: "acme", User: fmt.Sprintf("u-%d", i), ExpiresAt: now.Add(time.Duration(i) * time.Hour)}
				put(bucketSessions, "acme\x00"+v.User, schema1Expiring(v.ExpiresAt, v))
			}
		})
		db, err := bbolt.Open(path, 0o600, nil)
		must(t, err)
		must(t, db.Update(func(tx *bbolt.Tx) error {
			idx, err := tx.CreateBucket(bucketExpiry)
			must(t, err)
			must(t, idx.Put(indexKey(kindSession, 42, []byte("acme\x00u-0")), nil)) // stale
			return idx.Put(indexKey(kindSession, expiryNanos(now), []byte("acme\x00u-0")), nil)
		}))
		must(t, db.Close())
		s, err := Open(path, Options{SweepInterval: -1})
		must(t, err)
		checkIndex(t, s)
		must(t, s.db.View(func(tx *bbolt.Tx) error {
			if n := tx.Bucket(bucketExpiry).Stats().KeyN; n != 5 {
				t.Errorf("schema %s: %d index entries, want 5", schema, n)
			}
			return nil
		}))
		must(t, s.Close())
	}
}

// TestInterruptedUpgrade: from the upgrade's first transaction on, the
// file says schema 2, so that a build that knows only schema 1 (and JSON
// records) refuses it even when the upgrade stopped part way; every record
// stays readable, and the next Open finishes the upgrade.
func TestInterruptedUpgrade(t *testing.T) {
	defer func(n int, f func() error) { upgradeChunkSize, afterUpgradeChunk = n, f }(upgradeChunkSize, afterUpgradeChunk)
	upgradeChunkSize = 2
	ctx := context.Background()
	now := time.Now()
	path := filepath.Join(t.TempDir(), "state.db")
	writeSchema1(t, path, func(put func([]byte, string, []byte)) {
		for i := range 5 {
			m := store.Membership{Org: "acme", User: fmt.Sprintf("u-%d", i), Role: "read"}
			put(bucketMemberships, "acme\x00"+m.User, mustJSON(m))
			v := store.Session{Org: "acme", User: m.User, ExpiresAt: now.Add(time.Hour)}
			put(bucketSessions, "acme\x00"+m.User, schema1Expiring(v.ExpiresAt, v))
		}
	})
	chunks := 0
	afterUpgradeChunk = func() error {
		if chunks++; chunks == 2 {
			return errors.New("power cut")
		}
		return nil
	}
	if _, err := Open(path, Options{SweepInterval: -1}); err == nil || !strings.Contains(err.Error(), "power cut") {
		t.Fatalf("Open with an interrupted upgrade: %v", err)
	}
	db, err := bbolt.Open(path, 0o600, nil)
	must(t, err)
	must(t, db.View(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keySchema); !bytes.Equal(v, schemaV2) {
			t.Errorf("schema after an interrupted upgrade: %q, want 2", v)
		}
		if meta.Get(keyIndexReady) != nil {
			t.Error("an interrupted upgrade marked the index complete")
		}
		compact := 0
		for i := range 5 {
			v := tx.Bucket(bucketMemberships).Get([]byte(fmt.Sprintf("acme\x00u-%d", i)))
			if v[0] == compactTag {
				compact++
			}
			if _, err := decodeMembership([]byte(fmt.Sprintf("acme\x00u-%d", i)), v); err != nil {
				t.Errorf("membership %d: %v", i, err)
			}
		}
		if compact != 4 { // two chunks of two committed, the third not
			t.Errorf("%d memberships re-encoded, want 4", compact)
		}
		return nil
	}))
	must(t, db.Close())

	afterUpgradeChunk = func() error { return nil }
	s, err := Open(path, Options{SweepInterval: -1})
	must(t, err)
	defer s.Close()
	checkIndex(t, s)
	for i := range 5 {
		if m, err := s.Membership(ctx, "acme", fmt.Sprintf("u-%d", i)); err != nil || m.Role != "read" {
			t.Errorf("membership %d: %+v, %v", i, m, err)
		}
		if _, err := s.Session(ctx, "acme", fmt.Sprintf("u-%d", i)); err != nil {
			t.Errorf("session %d: %v", i, err)
		}
	}
}
