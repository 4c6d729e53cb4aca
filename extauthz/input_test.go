package extauthz

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/ssogate/ssogate/extauthz/route"
	"github.com/ssogate/ssogate/store"
)

// The shared route objects match the route they stand for.
func TestRouteTerms(t *testing.T) {
	for k := route.Kind(0); k < routeKinds; k++ {
		for f := 0; f < 32; f++ {
			rt := route.Route{Kind: k, API: f&1 != 0, Git: f&2 != 0, Settings: f&4 != 0, Discussions: f&8 != 0, GitRead: f&16 != 0}
			want := ast.MustInterfaceToValue(map[string]any{
				"kind": k.String(), "api": rt.API, "git": rt.Git, "settings": rt.Settings,
				"discussions": rt.Discussions, "git_read": rt.GitRead,
			})
			if got := routeTerm(rt).Value; got.Compare(want) != 0 {
				t.Errorf("route %+v: %v, want %v", rt, got, want)
			}
		}
	}
}

func TestPolicyInputValue(t *testing.T) {
	now := time.Date(2026, 6, 2, 12, 0, 0, 0, time.UTC)
	in := policyInput{
		now: now, method: "PUT", browser: true,
		route: route.Route{Kind: route.Resource, Org: "acme", Git: true},
		user:  "u-alice",
		membership: &store.Membership{Org: "acme", User: "u-alice", Role: "write",
			ResourceGroups: map[string]string{"vision": "read", "nlp": "admin"}},
		session:  &store.Session{AuthenticatedAt: now.Add(-time.Hour)},
		resource: &store.Resource{Visibility: "private", ResourceGroup: "vision", CreatedBy: "u-bob"},
	}
	want := ast.MustInterfaceToValue(map[string]any{
		"now_ns": now.UnixNano(), "method": "PUT", "browser": true,
		"route": map[string]any{"kind": "resource", "api": false, "git": true, "settings": false, "discussions": false, "git_read": false},
		"org":   "acme", "user": "u-alice",
		"membership": map[string]any{"role": "write", "resource_groups": map[string]any{"vision": "read", "nlp": "admin"}},
		"session":    map[string]any{"authenticated_at_ns": now.Add(-time.Hour).UnixNano(), "age_ns": time.Hour.Nanoseconds()},
		"resource":   map[string]any{"visibility": "private", "resource_group": "vision", "created_by": "u-bob"},
	})
	if got := in.value(); got.Compare(want) != 0 || got.Hash() != want.Hash() {
		t.Errorf("input\n %v\nwant\n %v", got, want)
	}
	anon := policyInput{now: now, method: "GET", route: route.Route{Kind: route.None}}
	want = ast.MustInterfaceToValue(map[string]any{
		"now_ns": now.UnixNano(), "method": "GET", "browser": false,
		"route": map[string]any{"kind": "none", "api": false, "git": false, "settings": false, "discussions": false, "git_read": false},
	})
	if got := anon.value(); got.Compare(want) != 0 || got.Hash() != want.Hash() {
		t.Errorf("anonymous input\n %v\nwant\n %v", got, want)
	}
}

func TestMembershipTerm(t *testing.T) {
	for _, m := range []store.Membership{
		{Role: "write"}, {Role: ""}, {Role: "bogus"},
		{Role: "read", ResourceGroups: map[string]string{"vision": "admin"}},
	} {
		groups := map[string]any{}
		for k, v := range m.ResourceGroups {
			groups[k] = v
		}
		want := ast.MustInterfaceToValue(map[string]any{"role": m.Role, "resource_groups": groups})
		if got := membershipTerm(&m).Value; got.Compare(want) != 0 {
			t.Errorf("membership %+v: %v, want %v", m, got, want)
		}
	}
}

// A session so old that now - authenticated_at overflows int64 gets the
// largest age, which no session timeout admits, not a wrapped negative one.
func TestPolicyInputAgeOverflow(t *testing.T) {
	now := time.Date(2026, 6, 2, 12, 0, 0, 0, time.UTC)
	in := policyInput{now: now, method: "GET", route: route.Route{Kind: route.Resource, Org: "acme"}, user: "u-alice",
		membership: &store.Membership{Role: "read"},
		session:    &store.Session{AuthenticatedAt: time.Date(1690, 1, 1, 0, 0, 0, 0, time.UTC)}}
	obj := in.value().(ast.Object)
	age := obj.Get(ast.StringTerm("session")).Value.(ast.Object).Get(ast.StringTerm("age_ns")).Value
	if age.Compare(ast.Number(fmt.Sprint(int64(math.MaxInt64)))) != 0 {
		t.Errorf("age_ns = %v, want %d", age, int64(math.MaxInt64))
	}
}

// A session authenticated in the future counts as the oldest possible,
// beyond a few minutes of clock difference between replicas.
func TestPolicyInputAgeInTheFuture(t *testing.T) {
	now := time.Date(2026, 6, 2, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		at   time.Time
		want int64
	}{
		{now.Add(-time.Hour), int64(time.Hour)},
		{now.Add(time.Minute), -int64(time.Minute)}, // another replica's clock a minute ahead
		{now.Add(maxClockAhead + time.Second), math.MaxInt64},
		{time.Date(2062, 1, 1, 0, 0, 0, 0, time.UTC), math.MaxInt64},
	} {
		in := policyInput{now: now, method: "GET", route: route.Route{Kind: route.Resource, Org: "acme"}, user: "u-alice",
			membership: &store.Membership{Role: "read"}, session: &store.Session{AuthenticatedAt: tc.at}}
		obj := in.value().(ast.Object)
		age := obj.Get(ast.StringTerm("session")).Value.(ast.Object).Get(ast.StringTerm("age_ns")).Value
		if age.Compare(ast.Number(fmt.Sprint(tc.want))) != 0 {
			t.Errorf("authenticated at %v: age_ns = %v, want %d", tc.at, age, tc.want)
		}
	}
}
