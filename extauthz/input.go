package extauthz

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/ssogate/ssogate/extauthz/route"
	"github.com/ssogate/ssogate/store"
)

// policyInput is what one Check knows when it asks the policy. value turns
// it into the Rego input documented in policies/authz.rego, as an ast.Value
// so that OPA does not round-trip it through JSON.
type policyInput struct {
	now        time.Time
	method     string
	browser    bool
	route      route.Route
	user       string
	membership *store.Membership
	session    *store.Session
	resource   *store.Resource
}

var (
	kNow        = ast.StringTerm("now_ns")
	kMethod     = ast.StringTerm("method")
	kBrowser    = ast.StringTerm("browser")
	kRoute      = ast.StringTerm("route")
	kKind       = ast.StringTerm("kind")
	kAPI        = ast.StringTerm("api")
	kGit        = ast.StringTerm("git")
	kSettings   = ast.StringTerm("settings")
	kDiscuss    = ast.StringTerm("discussions")
	kGitRead    = ast.StringTerm("git_read")
	kOrg        = ast.StringTerm("org")
	kUser       = ast.StringTerm("user")
	kMembership = ast.StringTerm("membership")
	kRole       = ast.StringTerm("role")
	kGroups     = ast.StringTerm("resource_groups")
	kSession    = ast.StringTerm("session")
	kAuthAt     = ast.StringTerm("authenticated_at_ns")
	kResource   = ast.StringTerm("resource")
	kVisibility = ast.StringTerm("visibility")
	kGroup      = ast.StringTerm("resource_group")
	kCreatedBy  = ast.StringTerm("created_by")
)

func nsTerm(t time.Time) *ast.Term {
	return ast.NumberTerm(json.Number(strconv.FormatInt(t.UnixNano(), 10)))
}

func (in *policyInput) value() ast.Value {
	rt := in.route
	obj := ast.NewObject(
		ast.Item(kNow, nsTerm(in.now)),
		ast.Item(kMethod, ast.StringTerm(in.method)),
		ast.Item(kBrowser, ast.BooleanTerm(in.browser)),
		ast.Item(kRoute, ast.NewTerm(ast.NewObject(
			ast.Item(kKind, ast.StringTerm(rt.Kind.String())),
			ast.Item(kAPI, ast.BooleanTerm(rt.API)),
			ast.Item(kGit, ast.BooleanTerm(rt.Git)),
			ast.Item(kSettings, ast.BooleanTerm(rt.Settings)),
			ast.Item(kDiscuss, ast.BooleanTerm(rt.Discussions)),
			ast.Item(kGitRead, ast.BooleanTerm(rt.GitRead)),
		))),
	)
	if rt.Org != "" {
		obj.Insert(kOrg, ast.StringTerm(rt.Org))
	}
	if in.user != "" {
		obj.Insert(kUser, ast.StringTerm(in.user))
	}
	if m := in.membership; m != nil {
		groups := ast.NewObject()
		for g, r := range m.ResourceGroups {
			groups.Insert(ast.StringTerm(g), ast.StringTerm(r))
		}
		obj.Insert(kMembership, ast.NewTerm(ast.NewObject(
			ast.Item(kRole, ast.StringTerm(m.Role)),
			ast.Item(kGroups, ast.NewTerm(groups)),
		)))
	}
	if s := in.session; s != nil {
		obj.Insert(kSession, ast.NewTerm(ast.NewObject(ast.Item(kAuthAt, nsTerm(s.AuthenticatedAt)))))
	}
	if r := in.resource; r != nil {
		obj.Insert(kResource, ast.NewTerm(ast.NewObject(
			ast.Item(kVisibility, ast.StringTerm(r.Visibility)),
			ast.Item(kGroup, ast.StringTerm(r.ResourceGroup)),
			ast.Item(kCreatedBy, ast.StringTerm(r.CreatedBy)),
		)))
	}
	return obj
}
