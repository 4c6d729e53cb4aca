package memory

import (
	"context"
	"fmt"
	"hash/maphash"
	"maps"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, storetest.Backend{New: func(_ *testing.T, now func() time.Time) store.Store {
		return New().WithClock(now)
	}})
}

// TestRecords covers what the contract suite does not see: a member's
// membership and session share one record, and shared values are dropped
// with their last record.
func TestRecords(t *testing.T) {
	ctx := context.Background()
	s := New()
	at := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	must(t, s.PutMembership(ctx, store.Membership{Org: "Acme", User: "u-a", Role: "write", ResourceGroups: map[string]string{"vision": "read", "nlp": "admin"}}))
	must(t, s.PutMembership(ctx, store.Membership{Org: "acme", User: "u-b", Role: "write", ResourceGroups: map[string]string{"nlp": "admin", "vision": "read"}}))
	must(t, s.PutMembership(ctx, store.Membership{Org: "acme", User: "u-c", Role: "read", ResourceGroups: map[string]string{}}))
	must(t, s.PutSession(ctx, store.Session{Org: "acme", User: "u-a", AuthenticatedAt: at, Email: "a@acme.example"}))

	a, err := s.Membership(ctx, "acme", "u-a")
	must(t, err)
	b, err := s.Membership(ctx, "acme", "u-b")
	must(t, err)
	if a.Org != "Acme" || b.Org != "acme" || a.User != "u-a" || a.Role != "write" || len(a.ResourceGroups) != 2 {
		t.Errorf("memberships %+v, %+v", a, b)
	}
	if s.shapes.ids[newShapeKey("write", "", a.ResourceGroups)] == 0 || len(s.shapes.ids) != 2 {
		t.Errorf("equal role and resource groups must share one shape: %d shapes", len(s.shapes.ids))
	}
	if c, err := s.Membership(ctx, "acme", "u-c"); err != nil || c.ResourceGroups == nil || len(c.ResourceGroups) != 0 {
		t.Errorf("an empty resource-group map must stay empty, not nil: %+v, %v", c, err)
	}
	if len(s.orgs) != 1 || len(s.orgs["acme"]) != 3 {
		t.Fatalf("records: %v", s.orgs)
	}

	// Deleting the membership keeps the session, and the other way round.
	must(t, s.DeleteMembership(ctx, "ACME", "u-a"))
	if _, err := s.Session(ctx, "acme", "u-a"); err != nil {
		t.Errorf("deleting the membership dropped the session: %v", err)
	}
	must(t, s.PutMembership(ctx, store.Membership{Org: "acme", User: "u-a", Role: "admin"}))
	must(t, s.DeleteSession(ctx, "acme", "u-a"))
	if m, err := s.Membership(ctx, "acme", "u-a"); err != nil || m.Role != "admin" {
		t.Errorf("deleting the session touched the membership: %+v, %v", m, err)
	}

	// Once every record is gone, so are the org and every shared value.
	for _, u := range []string{"u-a", "u-b", "u-c"} {
		must(t, s.DeleteMembership(ctx, "acme", u))
	}
	must(t, s.DeleteSession(ctx, "acme", "u-a")) // already gone: not an error
	if len(s.orgs) != 0 || len(s.shapes.ids) != 0 || len(s.names.ids) != 0 {
		t.Errorf("left behind: orgs %v, shapes %v, names %v", s.orgs, s.shapes.ids, s.names.ids)
	}
	// Freed ids are reused.
	n := len(s.names.slots)
	must(t, s.PutSession(ctx, store.Session{Org: "globex", User: "u-a", AuthenticatedAt: at}))
	if len(s.names.slots) != n {
		t.Errorf("names table grew from %d to %d slots with free ids", n, len(s.names.slots))
	}
}

// TestTimes checks that session times survive the int64 nanoseconds a
// record holds them in: the zero time, sub-second precision, and times
// beyond what int64 nanoseconds hold, which are clamped.
func TestTimes(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	s := New().WithClock(func() time.Time { return now })
	at := time.Date(2026, 6, 1, 9, 0, 0, 123456789, time.FixedZone("CEST", 2*3600))
	far := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		user        string
		at, expires time.Time
		wantAt      time.Time
		wantExpires time.Time
	}{
		{"u-zero", time.Time{}, time.Time{}, time.Time{}, time.Time{}},
		{"u-ns", at, at.Add(store.MaxSessionTimeout), at, at.Add(store.MaxSessionTimeout)},
		{"u-far", time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), far, time.Unix(0, math.MinInt64+1), time.Unix(0, math.MaxInt64)},
	} {
		must(t, s.PutSession(ctx, store.Session{Org: "acme", User: tc.user, AuthenticatedAt: tc.at, ExpiresAt: tc.expires}))
		got, err := s.Session(ctx, "acme", tc.user)
		if err != nil {
			t.Errorf("%s: %v", tc.user, err)
			continue
		}
		if !got.AuthenticatedAt.Equal(tc.wantAt) || !got.ExpiresAt.Equal(tc.wantExpires) ||
			got.AuthenticatedAt.IsZero() != tc.wantAt.IsZero() || got.ExpiresAt.IsZero() != tc.wantExpires.IsZero() {
			t.Errorf("%s: got %v / %v, want %v / %v", tc.user, got.AuthenticatedAt, got.ExpiresAt, tc.wantAt, tc.wantExpires)
		}
		if loc := got.AuthenticatedAt.Location(); !tc.wantAt.IsZero() && loc != time.UTC {
			t.Errorf("%s: location %v, want UTC", tc.user, loc)
		}
	}
	// Expiry is exact to the nanosecond.
	must(t, s.PutSession(ctx, store.Session{Org: "acme", User: "u-edge", AuthenticatedAt: at, ExpiresAt: now.Add(time.Nanosecond)}))
	if _, err := s.Session(ctx, "acme", "u-edge"); err != nil {
		t.Errorf("a session expiring 1 ns from now: %v", err)
	}
	now = now.Add(time.Nanosecond)
	if _, err := s.Session(ctx, "acme", "u-edge"); err == nil {
		t.Errorf("a session at its ExpiresAt is still found")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestModel runs random writes against the store and against a plain map
// of whole records (the layout the store had before it was made compact),
// and compares every lookup. The user ids are spread so that the records
// fill several chunks and reuse freed ids; emails change, so that the
// string chunks are rebuilt. With a hash of a few values, every lookup
// walks a chain of records.
func TestModel(t *testing.T) {
	for _, tc := range hashes(0xff) {
		t.Run(tc.name, func(t *testing.T) { testModel(t, tc.hash) })
	}
}

// hashes are the hashes the model tests run with: the store's own (nil),
// and maphash reduced by mask, so that records share chains.
func hashes(mask uint64) []struct {
	name string
	hash func(maphash.Seed, string) uint64
} {
	return []struct {
		name string
		hash func(maphash.Seed, string) uint64
	}{
		{"maphash", nil},
		{"collisions", func(seed maphash.Seed, s string) uint64 { return maphash.String(seed, s) & mask }},
	}
}

func testModel(t *testing.T, hash func(maphash.Seed, string) uint64) {
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	s := New().WithClock(func() time.Time { return now })
	if hash != nil {
		s.hash = hash
	}
	tidied, dead := 0, 0
	type k struct{ org, user string }
	members := map[k]store.Membership{}
	sessions := map[k]store.Session{}
	rnd := rand.New(rand.NewPCG(1, 2))
	orgs := []string{"acme", "Acme", "ACME", "globex", "initech"}
	roles := []string{"", "read", "write", "admin"}
	groups := []map[string]string{nil, {}, {"vision": "read"}, {"vision": "read", "nlp": "admin"}}
	for i := range 50000 {
		org, user := orgs[rnd.IntN(len(orgs))], fmt.Sprintf("u-%d", rnd.IntN(3*chunkLen))
		key := k{store.Fold(org), user}
		switch op := rnd.IntN(10); {
		case op < 4:
			m := store.Membership{Org: org, User: user, Role: roles[rnd.IntN(len(roles))],
				ResourceGroups: maps.Clone(groups[rnd.IntN(len(groups))]), InviteRole: roles[rnd.IntN(len(roles))]}
			must(t, s.PutMembership(ctx, m))
			members[key] = m
		case op < 7:
			at := now.Add(-time.Duration(rnd.IntN(1000)) * time.Minute)
			v := store.Session{Org: org, User: user, AuthenticatedAt: at, Email: fmt.Sprintf("%s@%s.example.com", user, strings.Repeat("x", rnd.IntN(100))),
				ExpiresAt: at.Add(time.Duration(rnd.IntN(2000)) * time.Minute)}
			must(t, s.PutSession(ctx, v))
			sessions[key] = v
		case op < 8:
			must(t, s.DeleteMembership(ctx, org, user))
			delete(members, key)
		default:
			must(t, s.DeleteSession(ctx, org, user))
			delete(sessions, key)
		}
		if s.strs.dead > max(s.strs.live, strChunk) {
			t.Fatalf("op %d: %d dead bytes for %d live: the string chunks were not rebuilt", i, s.strs.dead, s.strs.live)
		}
		if dead > 0 && s.strs.dead == 0 {
			tidied++
		}
		dead = s.strs.dead
		if i%1000 != 999 {
			continue
		}
		for key, want := range members {
			got, err := s.Membership(ctx, key.org, key.user)
			if err != nil || !reflect.DeepEqual(*got, want) {
				t.Fatalf("op %d: Membership(%v) = %+v, %v; want %+v", i, key, got, err, want)
			}
		}
		for _, org := range []string{"acme", "globex", "initech"} {
			list, err := s.ListSessions(ctx, org)
			must(t, err)
			n := 0
			for key, want := range sessions {
				if key.org != org || !now.Before(want.ExpiresAt) {
					continue
				}
				n++
				got, err := s.Session(ctx, key.org, key.user)
				if err != nil || got.Org != want.Org || got.User != want.User || got.Email != want.Email ||
					!got.AuthenticatedAt.Equal(want.AuthenticatedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) {
					t.Fatalf("op %d: Session(%v) = %+v, %v; want %+v", i, key, got, err, want)
				}
			}
			if len(list) != n {
				t.Fatalf("op %d: ListSessions(%s) = %d sessions, want %d", i, org, len(list), n)
			}
		}
		records, bytes := 0, 0
		for _, users := range s.orgs {
			for _, id := range users {
				for ok := true; ok; {
					r := s.recs.at(id)
					records++
					bytes += len(s.strs.get(r.user)) + len(s.strs.get(r.email))
					id, ok = r.next-1, r.next != 0
				}
			}
		}
		if bytes != s.strs.live {
			t.Fatalf("op %d: records hold %d string bytes, the arena counts %d live", i, bytes, s.strs.live)
		}
		keys := map[k]bool{}
		for key := range members {
			keys[key] = true
		}
		for key := range sessions {
			keys[key] = true
		}
		if records != len(keys) {
			t.Fatalf("op %d: %d records for %d (org, user) pairs", i, records, len(keys))
		}
		if used := len(s.recs.chunks)*chunkLen - (chunkLen - len(s.recs.chunks[len(s.recs.chunks)-1])) - len(s.recs.free); used != records {
			t.Fatalf("op %d: %d record ids in use for %d records", i, used, records)
		}
		now = now.Add(10 * time.Minute)
	}
	if len(s.recs.chunks) < 2 {
		t.Errorf("the records fit in %d chunk: the test does not cross chunks", len(s.recs.chunks))
	}
	if tidied == 0 {
		t.Errorf("the string chunks were never rebuilt (%d dead, %d live bytes): the test does not cover it", s.strs.dead, s.strs.live)
	}
}

// TestCatalogModel runs random writes of catalog entries (ids in mixed
// case, the same id under several types) against the store and a plain
// map, with the store's hash and with one of 16 values (long chains), and
// compares every lookup, including the string bytes the arena counts.
func TestCatalogModel(t *testing.T) {
	for _, tc := range hashes(0xf) {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := New()
			if tc.hash != nil {
				s.hash = tc.hash
			}
			type k struct{ typ, fid string }
			want := map[k]store.Resource{}
			rnd := rand.New(rand.NewPCG(3, 4))
			types := []string{"model", "dataset", "space"}
			vis := []string{"", "public", "private"}
			for i := range 30000 {
				typ := types[rnd.IntN(len(types))]
				id := fmt.Sprintf("Org-%d/Name-%d", rnd.IntN(5), rnd.IntN(300))
				if rnd.IntN(2) == 0 {
					id = strings.ToLower(id)
				}
				key := k{typ, store.Fold(id)}
				if rnd.IntN(4) == 0 {
					must(t, s.DeleteResource(ctx, typ, id))
					delete(want, key)
				} else {
					e := store.Resource{Type: typ, ID: id, Visibility: vis[rnd.IntN(len(vis))],
						ResourceGroup: fmt.Sprintf("g%d", rnd.IntN(3)), CreatedBy: strings.Repeat("u", rnd.IntN(60))}
					must(t, s.PutResource(ctx, e))
					want[key] = e
				}
				if i%3000 != 2999 {
					continue
				}
				bytes := 0
				for key, e := range want {
					got, err := s.Resource(ctx, key.typ, strings.ToUpper(key.fid))
					if err != nil || *got != e {
						t.Fatalf("op %d: Resource(%v) = %+v, %v; want %+v", i, key, got, err, e)
					}
					bytes += len(e.ID) + len(e.CreatedBy)
				}
				if bytes != s.strs.live {
					t.Fatalf("op %d: entries hold %d string bytes, the arena counts %d live", i, bytes, s.strs.live)
				}
			}
			for key := range want {
				must(t, s.DeleteResource(ctx, key.typ, key.fid))
			}
			if len(s.catalog) != 0 || len(s.words.ids) != 0 || s.strs.live != 0 {
				t.Errorf("left behind: catalog %v, words %v, %d live bytes", s.catalog, s.words.ids, s.strs.live)
			}
		})
	}
}
