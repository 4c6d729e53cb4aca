package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/ssogate/ssogate/store"
)

// recordsLookup is a backend's one-call read of a Check's records
// (store/redis, store/cache).
type recordsLookup interface {
	Records(ctx context.Context, q store.RecordsQuery) (store.Records, error)
}

// recordsCases check that a backend's Records, when it has one, reads
// what Membership, Session and Resource read one at a time, for every
// combination of records asked for and stored.
func recordsCases() []testCase {
	ctx := context.Background()
	return []testCase{
		{"Records reads what the lookups read", func(t *testing.T, s store.Store, c *Clock) {
			rl, ok := s.(recordsLookup)
			if !ok {
				t.Skip("the backend has no Records")
			}
			now := c.Now()
			must(t, s.PutMembership(ctx, store.Membership{Org: "acme", User: "u-a", Role: "write", ResourceGroups: map[string]string{"vision": "read"}}))
			must(t, s.PutSession(ctx, store.Session{Org: "acme", User: "u-a", AuthenticatedAt: now, Email: "a@acme.example", ExpiresAt: now.Add(time.Hour)}))
			must(t, s.PutMembership(ctx, store.Membership{Org: "acme", User: "u-nosession"}))
			must(t, s.PutSession(ctx, store.Session{Org: "acme", User: "u-nomember", AuthenticatedAt: now}))
			must(t, s.PutResource(ctx, store.Resource{Type: "model", ID: "acme/m", Visibility: "private", ResourceGroup: "vision", CreatedBy: "u-b"}))
			// What is stored, by user and by catalog id: expected from the
			// writes above, not from the backend's own lookups (a cache's
			// lookups are Records themselves).
			hasMembership := map[string]bool{"u-a": true, "u-nosession": true}
			hasSession := map[string]bool{"u-a": true, "u-nomember": true}
			for _, user := range []string{"u-a", "u-nosession", "u-nomember", "u-none"} {
				for _, id := range []string{"ACME/M", "acme/none"} {
					for mask := 0; mask < 8; mask++ {
						q := store.RecordsQuery{Org: "Acme", User: user, Membership: mask&1 != 0, Session: mask&2 != 0,
							Type: "model", ID: id, Resource: mask&4 != 0}
						// Twice: a cache answers the second from its entries.
						for range 2 {
							got, err := rl.Records(ctx, q)
							if err != nil {
								t.Fatalf("Records(%+v): %v", q, err)
							}
							if (got.Membership != nil) != (q.Membership && hasMembership[user]) ||
								(got.Session != nil) != (q.Session && hasSession[user]) ||
								(got.Resource != nil) != (q.Resource && id == "ACME/M") {
								t.Fatalf("Records(%+v) = %s", q, show(got))
							}
							if m := got.Membership; m != nil && (m.Org != "acme" || m.User != user) {
								t.Errorf("Records(%+v): membership %+v", q, m)
							}
							if user == "u-a" && got.Membership != nil && (got.Membership.Role != "write" || got.Membership.ResourceGroups["vision"] != "read") {
								t.Errorf("Records(%+v): membership %+v", q, got.Membership)
							}
							if v := got.Session; v != nil && (v.Org != "acme" || v.User != user || !v.AuthenticatedAt.Equal(now)) {
								t.Errorf("Records(%+v): session %+v", q, v)
							}
							if user == "u-a" && got.Session != nil && got.Session.Email != "a@acme.example" {
								t.Errorf("Records(%+v): session %+v", q, got.Session)
							}
							if r := got.Resource; r != nil && (r.ID != "acme/m" || r.Visibility != "private" || r.ResourceGroup != "vision" || r.CreatedBy != "u-b") {
								t.Errorf("Records(%+v): resource %+v", q, r)
							}
						}
					}
				}
			}
			// The records are the caller's own.
			got, err := rl.Records(ctx, store.RecordsQuery{Org: "acme", User: "u-a", Membership: true})
			must(t, err)
			got.Membership.ResourceGroups["vision"] = "admin"
			again, err := s.Membership(ctx, "acme", "u-a")
			must(t, err)
			if again.ResourceGroups["vision"] != "read" {
				t.Errorf("a change to Records' membership reached the store")
			}
		}},
		{"Records omits an expired session", func(t *testing.T, s store.Store, c *Clock) {
			rl, ok := s.(recordsLookup)
			if !ok {
				t.Skip("the backend has no Records")
			}
			now := c.Now()
			must(t, s.PutSession(ctx, store.Session{Org: "acme", User: "u-short", AuthenticatedAt: now, ExpiresAt: now.Add(step)}))
			q := store.RecordsQuery{Org: "acme", User: "u-short", Session: true}
			if r, err := rl.Records(ctx, q); err != nil || r.Session == nil {
				t.Fatalf("before expiry: %s, %v", show(r), err)
			}
			c.Advance(2 * step)
			if r, err := rl.Records(ctx, q); err != nil || r.Session != nil {
				t.Errorf("after expiry: %s, %v", show(r), err)
			}
		}},
	}
}

func show(r store.Records) string {
	out := "{"
	if r.Membership != nil {
		out += " membership " + r.Membership.Org + "/" + r.Membership.User
	}
	if r.Session != nil {
		out += " session " + r.Session.Org + "/" + r.Session.User
	}
	if r.Resource != nil {
		out += " resource " + r.Resource.ID
	}
	return out + " }"
}
