// Package storetest is the contract suite that every store.Store backend
// passes (memory, bolt, redis, and the cache in front of them): call Run
// from the backend's tests.
package storetest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssogate/ssogate/store"
)

// Backend describes the store under test.
type Backend struct {
	// New returns an empty store that uses now as its clock for expiry. The
	// suite closes it at the end of the subtest.
	New func(t *testing.T, now func() time.Time) store.Store
	// RealTime says that expiry is enforced by a clock the suite cannot
	// move (a Redis server's): now is then time.Now and the suite sleeps
	// through expiry steps instead of advancing a fake clock.
	RealTime bool
}

// step is the lifetime the expiry cases give records. It is short because
// a RealTime backend sleeps through it; server clocks have millisecond
// precision, so it leaves ample margin.
const step = 150 * time.Millisecond

// Clock is the time source of one subtest: a fake clock that moves only
// when advanced, or the real clock, which Advance sleeps through.
type Clock struct {
	mu   sync.Mutex
	now  time.Time
	real bool
}

// Now returns the current time of c.
func (c *Clock) Now() time.Time {
	if c.real {
		return time.Now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves c forward by d (sleeps d on the real clock).
func (c *Clock) Advance(d time.Duration) {
	if c.real {
		time.Sleep(d)
		return
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type testCase struct {
	name string
	fn   func(t *testing.T, s store.Store, c *Clock)
}

// Run runs the contract suite: every case gets a fresh store from b.New.
func Run(t *testing.T, b Backend) {
	cases := append(append(recordCases(), expiryCases()...), recordsCases()...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &Clock{now: time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC), real: b.RealTime}
			s := b.New(t, c.Now)
			t.Cleanup(func() { _ = s.Close() })
			tc.fn(t, s, c)
		})
	}
}

// recordCases cover memberships, sessions and the catalog.
func recordCases() []testCase {
	ctx := context.Background()
	return []testCase{
		{"missing records are ErrNotFound", func(t *testing.T, s store.Store, _ *Clock) {
			if _, err := s.Membership(ctx, "acme", "u-x"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Membership: err = %v", err)
			}
			if _, err := s.Session(ctx, "acme", "u-x"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Session: err = %v", err)
			}
			if _, err := s.Resource(ctx, "model", "acme/x"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Resource: err = %v", err)
			}
		}},
		{"membership round trip, org ignoring case", func(t *testing.T, s store.Store, _ *Clock) {
			in := store.Membership{Org: "acme", User: "u-a", Role: "write", ResourceGroups: map[string]string{"vision": "admin"}, InviteRole: "read"}
			must(t, s.PutMembership(ctx, in))
			got, err := s.Membership(ctx, "ACME", "u-a")
			must(t, err)
			if got.Role != "write" || got.ResourceGroups["vision"] != "admin" || got.InviteRole != "read" {
				t.Errorf("got %+v", got)
			}
			if _, err := s.Membership(ctx, "acme", "U-A"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("user ids must match exactly: err = %v", err)
			}
			in.Role = "read"
			must(t, s.PutMembership(ctx, in))
			got, err = s.Membership(ctx, "acme", "u-a")
			must(t, err)
			if got.Role != "read" {
				t.Errorf("after replace role = %q", got.Role)
			}
			must(t, s.DeleteMembership(ctx, "acme", "u-a"))
			must(t, s.DeleteMembership(ctx, "acme", "u-a"))
			if _, err := s.Membership(ctx, "acme", "u-a"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("after delete: err = %v", err)
			}
		}},
		{"stored maps are not aliased", func(t *testing.T, s store.Store, _ *Clock) {
			rg := map[string]string{"vision": "read"}
			must(t, s.PutMembership(ctx, store.Membership{Org: "acme", User: "u-a", ResourceGroups: rg}))
			rg["vision"] = "admin"
			got, err := s.Membership(ctx, "acme", "u-a")
			must(t, err)
			if got.ResourceGroups["vision"] != "read" {
				t.Errorf("caller's map changed the stored membership")
			}
		}},
		{"sessions per org and user", func(t *testing.T, s store.Store, _ *Clock) {
			at := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
			must(t, s.PutSession(ctx, store.Session{Org: "acme", User: "u-a", AuthenticatedAt: at, Email: "a@acme.example"}))
			must(t, s.PutSession(ctx, store.Session{Org: "acme", User: "u-b", AuthenticatedAt: at}))
			must(t, s.PutSession(ctx, store.Session{Org: "globex", User: "u-a", AuthenticatedAt: at}))
			got, err := s.Session(ctx, "Acme", "u-a")
			must(t, err)
			if !got.AuthenticatedAt.Equal(at) || got.Email != "a@acme.example" {
				t.Errorf("got %+v", got)
			}
			list, err := s.ListSessions(ctx, "acme")
			must(t, err)
			if len(list) != 2 {
				t.Errorf("ListSessions(acme) = %d sessions, want 2", len(list))
			}
			must(t, s.DeleteSession(ctx, "acme", "u-a"))
			if _, err := s.Session(ctx, "acme", "u-a"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("after delete: err = %v", err)
			}
			if _, err := s.Session(ctx, "globex", "u-a"); err != nil {
				t.Errorf("deleting acme's session touched globex's: %v", err)
			}
		}},
		{"catalog by type and id ignoring case", func(t *testing.T, s store.Store, _ *Clock) {
			must(t, s.PutResource(ctx, store.Resource{Type: "model", ID: "acme/Secret", Visibility: "private", ResourceGroup: "vision", CreatedBy: "u-a"}))
			got, err := s.Resource(ctx, "model", "ACME/secret")
			must(t, err)
			if got.ID != "acme/Secret" || got.ResourceGroup != "vision" || got.CreatedBy != "u-a" {
				t.Errorf("got %+v", got)
			}
			if _, err := s.Resource(ctx, "dataset", "acme/secret"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("type must be part of the key: err = %v", err)
			}
			must(t, s.DeleteResource(ctx, "model", "acme/secret"))
			if _, err := s.Resource(ctx, "model", "acme/secret"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("after delete: err = %v", err)
			}
		}},
		{"writes key the org and the catalog id ignoring case", func(t *testing.T, s store.Store, _ *Clock) {
			must(t, s.PutMembership(ctx, store.Membership{Org: "Acme", User: "u-a", Role: "read"}))
			must(t, s.PutMembership(ctx, store.Membership{Org: "ACME", User: "u-a", Role: "admin"}))
			got, err := s.Membership(ctx, "acme", "u-a")
			must(t, err)
			if got.Role != "admin" {
				t.Errorf("a write under ACME did not replace the one under Acme: role %q", got.Role)
			}
			must(t, s.DeleteMembership(ctx, "aCME", "u-a"))
			if _, err := s.Membership(ctx, "Acme", "u-a"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("delete under aCME: err = %v", err)
			}
			must(t, s.PutResource(ctx, store.Resource{Type: "space", ID: "Acme/Demo", Visibility: "private"}))
			must(t, s.PutResource(ctx, store.Resource{Type: "space", ID: "acme/demo", Visibility: "public"}))
			r, err := s.Resource(ctx, "space", "ACME/DEMO")
			must(t, err)
			if !r.Public() || r.ID != "acme/demo" {
				t.Errorf("replaced entry = %+v", r)
			}
		}},
		{"ListSessions returns whole sessions of one org, ignoring case", func(t *testing.T, s store.Store, c *Clock) {
			at := c.Now().Add(-time.Hour).Truncate(time.Millisecond)
			exp := at.Add(store.MaxSessionTimeout)
			if list, err := s.ListSessions(ctx, "acme"); err != nil || len(list) != 0 {
				t.Fatalf("empty store: %v, %v", list, err)
			}
			must(t, s.PutSession(ctx, store.Session{Org: "Acme", User: "u-a", AuthenticatedAt: at, Email: "a@acme.example", ExpiresAt: exp}))
			must(t, s.PutSession(ctx, store.Session{Org: "acme", User: "u-b", AuthenticatedAt: at, ExpiresAt: exp}))
			must(t, s.PutSession(ctx, store.Session{Org: "acme-labs", User: "u-c", AuthenticatedAt: at, ExpiresAt: exp}))
			list, err := s.ListSessions(ctx, "ACME")
			must(t, err)
			byUser := map[string]store.Session{}
			for _, v := range list {
				byUser[v.User] = v
			}
			if len(list) != 2 || len(byUser) != 2 {
				t.Fatalf("ListSessions(ACME) = %+v, want u-a and u-b", list)
			}
			a := byUser["u-a"]
			if a.Org != "Acme" || !a.AuthenticatedAt.Equal(at) || !a.ExpiresAt.Equal(exp) || a.Email != "a@acme.example" {
				t.Errorf("listed session %+v", a)
			}
			must(t, s.DeleteSession(ctx, "acme", "u-b"))
			list, err = s.ListSessions(ctx, "acme")
			must(t, err)
			if len(list) != 1 || list[0].User != "u-a" {
				t.Errorf("after deleting u-b: %+v", list)
			}
		}},
		{"fields longer than MaxFieldLen are refused, the longest held", func(t *testing.T, s store.Store, _ *Clock) {
			max := strings.Repeat("u", store.MaxFieldLen)
			over := max + "u"
			id := "acme/" + max[5:]
			// The longest of every field is held whole.
			must(t, s.PutMembership(ctx, store.Membership{Org: "acme", User: max, Role: "read"}))
			must(t, s.PutSession(ctx, store.Session{Org: "acme", User: max, Email: max, AuthenticatedAt: time.Unix(1, 0)}))
			must(t, s.PutResource(ctx, store.Resource{Type: "model", ID: id, Visibility: "private", CreatedBy: max}))
			if v, err := s.Session(ctx, "acme", max); err != nil || v.Email != max {
				t.Errorf("a %d-byte user id and email: %v", store.MaxFieldLen, err)
			}
			if r, err := s.Resource(ctx, "model", id); err != nil || r.ID != id || r.CreatedBy != max {
				t.Errorf("a %d-byte resource id and created_by: %v", store.MaxFieldLen, err)
			}
			for name, put := range map[string]func() error{
				"membership user": func() error { return s.PutMembership(ctx, store.Membership{Org: "acme", User: over}) },
				"session user":    func() error { return s.PutSession(ctx, store.Session{Org: "acme", User: over}) },
				"session email":   func() error { return s.PutSession(ctx, store.Session{Org: "acme", User: max, Email: over}) },
				"resource id":     func() error { return s.PutResource(ctx, store.Resource{Type: "model", ID: id + "x"}) },
				"created_by":      func() error { return s.PutResource(ctx, store.Resource{Type: "model", ID: id, CreatedBy: over}) },
			} {
				err := put()
				if !errors.Is(err, store.ErrTooLong) || len(err.Error()) > 200 {
					t.Errorf("%s: err = %.200v, want ErrTooLong without the value", name, err)
				}
			}
			// Nothing stored was changed by the refused writes.
			if v, err := s.Session(ctx, "acme", max); err != nil || v.Email != max {
				t.Errorf("after refused writes, the session: %v", err)
			}
			if r, err := s.Resource(ctx, "model", id); err != nil || r.CreatedBy != max {
				t.Errorf("after refused writes, the catalog entry: %v", err)
			}
			if _, err := s.Membership(ctx, "acme", over); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("a refused membership: err = %v", err)
			}
		}},
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
