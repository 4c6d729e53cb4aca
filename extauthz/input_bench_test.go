package extauthz

import (
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/ssogate/ssogate/extauthz/route"
	"github.com/ssogate/ssogate/store"
)

// BenchmarkInput builds the policy input of a member's read with a valid
// session: the work Check does between the store and the policy.
func BenchmarkInput(b *testing.B) {
	now := time.Now()
	in := policyInput{
		now: now, method: "GET", route: route.Route{Kind: route.Resource, Org: "acme", Type: "model", Name: "m"},
		org: ast.StringTerm("acme"), user: "u-alice",
		membership: &store.Membership{Role: "read"},
		session:    &store.Session{AuthenticatedAt: now.Add(-time.Hour)},
		resource:   &store.Resource{Visibility: "private", CreatedBy: "u-bob"},
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = in.value()
	}
}
