package memory

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/ssogate/ssogate/store"
)

// BenchmarkLookup measures the three lookups of the decision path
// (extauthz's load) in a store of 100,000 members and sessions over 1,000
// orgs: a resource, a membership, a session.
//
//	go test -run '^$' -bench Lookup -benchmem ./store/memory
func BenchmarkLookup(b *testing.B) {
	ctx := context.Background()
	s := New()
	now := time.Now()
	const orgs, users = 1000, 100000
	for i := range users {
		org, user := fmt.Sprintf("org-%05d", i%orgs), fmt.Sprintf("u%07d", i)
		m := store.Membership{Org: org, User: user, Role: "write"}
		if i%10 == 7 {
			m.ResourceGroups = map[string]string{"vision": "write"}
		}
		if err := s.PutMembership(ctx, m); err != nil {
			b.Fatal(err)
		}
		if err := s.PutSession(ctx, store.Session{Org: org, User: user, AuthenticatedAt: now,
			Email: user + "@" + org + ".example", ExpiresAt: now.Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.PutResource(ctx, store.Resource{Type: "model", ID: "org-00042/secret-model", Visibility: "private"}); err != nil {
		b.Fatal(err)
	}
	const org, user = "org-00042", "u0012042"
	b.Run("resource", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Resource(ctx, "model", "org-00042/secret-model"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("membership", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Membership(ctx, org, user); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("session", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Session(ctx, org, user); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("missing", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Membership(ctx, org, "u-nobody"); err == nil {
				b.Fatal("found")
			}
		}
	})
}

// BenchmarkCollect measures one full garbage collection of a process
// holding a memory store of 1,000,000 members with their sessions over
// 10,000 orgs, and 100,000 catalog entries: what each collection costs a
// serving gateway with that state. The store's records, ids and emails
// hold no pointers, so a collection has almost nothing to mark in them
// (docs/performance.md, "Scaling with orgs and sessions"); a layout that
// holds a string per user id costs tens of milliseconds here.
//
//	go test -run '^$' -bench Collect -benchtime 20x ./store/memory
func BenchmarkCollect(b *testing.B) {
	ctx := context.Background()
	s := New()
	now := time.Now()
	const orgs, users, resources = 10000, 1000000, 100000
	for i := range users {
		org, user := fmt.Sprintf("org-%05d", i%orgs), fmt.Sprintf("u%07d", i)
		if err := s.PutMembership(ctx, store.Membership{Org: org, User: user, Role: "write"}); err != nil {
			b.Fatal(err)
		}
		if err := s.PutSession(ctx, store.Session{Org: org, User: user, AuthenticatedAt: now,
			Email: user + "@" + org + ".example", ExpiresAt: now.Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	for i := range resources {
		if err := s.PutResource(ctx, store.Resource{Type: "model", ID: fmt.Sprintf("org-%05d/model-%07d", i%orgs, i),
			Visibility: "private", CreatedBy: fmt.Sprintf("u%07d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	b.ResetTimer()
	for b.Loop() {
		runtime.GC()
	}
	b.StopTimer()
	runtime.KeepAlive(s)
}
