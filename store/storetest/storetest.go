// Package storetest is the contract suite that every store.Store backend
// passes (memory, bolt, redis): call Run from the backend's tests.
package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ssogate/ssogate/store"
)

// Run runs the contract suite. newStore returns an empty store for each
// subtest; the suite closes it.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	ctx := context.Background()
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"missing records are ErrNotFound", func(t *testing.T, s store.Store) {
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
		{"membership round trip, org ignoring case", func(t *testing.T, s store.Store) {
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
		{"stored maps are not aliased", func(t *testing.T, s store.Store) {
			rg := map[string]string{"vision": "read"}
			must(t, s.PutMembership(ctx, store.Membership{Org: "acme", User: "u-a", ResourceGroups: rg}))
			rg["vision"] = "admin"
			got, err := s.Membership(ctx, "acme", "u-a")
			must(t, err)
			if got.ResourceGroups["vision"] != "read" {
				t.Errorf("caller's map changed the stored membership")
			}
		}},
		{"sessions per org and user", func(t *testing.T, s store.Store) {
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
		{"catalog by type and id ignoring case", func(t *testing.T, s store.Store) {
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
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { _ = s.Close() })
			tc.fn(t, s)
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
