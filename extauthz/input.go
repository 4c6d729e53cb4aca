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
	org        *ast.Term // route.Org as a term, built at load time; nil builds one
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
	kAge        = ast.StringTerm("age_ns")
	kResource   = ast.StringTerm("resource")
	kVisibility = ast.StringTerm("visibility")
	kGroup      = ast.StringTerm("resource_group")
	kCreatedBy  = ast.StringTerm("created_by")
)

func nsTerm(ns int64) *ast.Term {
	return ast.NumberTerm(json.Number(strconv.FormatInt(ns, 10)))
}

// Terms that recur in every input are built once and shared: OPA does not
// modify its input, and building an object hashes every key and value.
var (
	routeTerms = buildRouteTerms()
	noGroups   = ast.NewTerm(ast.NewObject())
	// Memberships without resource groups, by role.
	plainMemberships = func() map[string]*ast.Term {
		m := map[string]*ast.Term{}
		for _, r := range []string{"", "no_access", "read", "contributor", "write", "admin"} {
			m[r] = ast.NewTerm(ast.NewObject(ast.Item(kRole, ast.StringTerm(r)), ast.Item(kGroups, noGroups)))
		}
		return m
	}()
	commonTerms = func() map[string]*ast.Term {
		m := map[string]*ast.Term{}
		for _, s := range []string{
			"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE",
			"no_access", "read", "contributor", "write", "admin",
			"public", "private", "",
		} {
			m[s] = ast.StringTerm(s)
		}
		return m
	}()
)

// stringTerm returns a shared term for the common method, role and
// visibility values and a new one otherwise.
func stringTerm(s string) *ast.Term {
	if t, ok := commonTerms[s]; ok {
		return t
	}
	return ast.StringTerm(s)
}

// routeKinds bounds the route.Kind values routeTerms covers.
const routeKinds = route.LoginFlow + 1

// buildRouteTerms builds the input.route object of every Kind and flag
// combination: 4 kinds x 2^5 flags.
func buildRouteTerms() []*ast.Term {
	out := make([]*ast.Term, int(routeKinds)<<5)
	for k := route.Kind(0); k < routeKinds; k++ {
		for f := 0; f < 32; f++ {
			rt := route.Route{Kind: k, API: f&1 != 0, Git: f&2 != 0, Settings: f&4 != 0, Discussions: f&8 != 0, GitRead: f&16 != 0}
			out[routeIndex(rt)] = ast.NewTerm(ast.NewObject(
				ast.Item(kKind, ast.StringTerm(rt.Kind.String())),
				ast.Item(kAPI, ast.InternedTerm(rt.API)),
				ast.Item(kGit, ast.InternedTerm(rt.Git)),
				ast.Item(kSettings, ast.InternedTerm(rt.Settings)),
				ast.Item(kDiscuss, ast.InternedTerm(rt.Discussions)),
				ast.Item(kGitRead, ast.InternedTerm(rt.GitRead)),
			))
		}
	}
	return out
}

func routeIndex(rt route.Route) int {
	i := int(rt.Kind) << 5
	for bit, set := range [...]bool{rt.API, rt.Git, rt.Settings, rt.Discussions, rt.GitRead} {
		if set {
			i |= 1 << bit
		}
	}
	return i
}

func routeTerm(rt route.Route) *ast.Term {
	if rt.Kind < routeKinds {
		return routeTerms[routeIndex(rt)]
	}
	return ast.NewTerm(ast.NewObject(ast.Item(kKind, ast.StringTerm(rt.Kind.String()))))
}

func membershipTerm(m *store.Membership) *ast.Term {
	if len(m.ResourceGroups) == 0 {
		if t, ok := plainMemberships[m.Role]; ok {
			return t
		}
	}
	groups := noGroups
	if len(m.ResourceGroups) > 0 {
		g := make([][2]*ast.Term, 0, len(m.ResourceGroups))
		for name, r := range m.ResourceGroups {
			g = append(g, ast.Item(ast.StringTerm(name), stringTerm(r)))
		}
		groups = ast.NewTerm(ast.NewObject(g...))
	}
	return ast.NewTerm(ast.NewObject(
		ast.Item(kRole, stringTerm(m.Role)),
		ast.Item(kGroups, groups),
	))
}

func (in *policyInput) value() ast.Value {
	rt := in.route
	var buf [9][2]*ast.Term
	items := append(buf[:0],
		ast.Item(kNow, nsTerm(in.now.UnixNano())),
		ast.Item(kMethod, stringTerm(in.method)),
		ast.Item(kBrowser, ast.InternedTerm(in.browser)),
		ast.Item(kRoute, routeTerm(rt)),
	)
	if rt.Org != "" {
		org := in.org
		if org == nil {
			org = ast.StringTerm(rt.Org)
		}
		items = append(items, ast.Item(kOrg, org))
	}
	if in.user != "" {
		items = append(items, ast.Item(kUser, ast.StringTerm(in.user)))
	}
	if m := in.membership; m != nil {
		items = append(items, ast.Item(kMembership, membershipTerm(m)))
	}
	if s := in.session; s != nil {
		// age_ns saves the policy big-number arithmetic on timestamps.
		at := s.AuthenticatedAt.UnixNano()
		items = append(items, ast.Item(kSession, ast.NewTerm(ast.NewObject(
			ast.Item(kAuthAt, nsTerm(at)),
			ast.Item(kAge, nsTerm(in.now.UnixNano()-at)),
		))))
	}
	if r := in.resource; r != nil {
		items = append(items, ast.Item(kResource, ast.NewTerm(ast.NewObject(
			ast.Item(kVisibility, stringTerm(r.Visibility)),
			ast.Item(kGroup, stringTerm(r.ResourceGroup)),
			ast.Item(kCreatedBy, stringTerm(r.CreatedBy)),
		))))
	}
	return ast.NewObject(items...)
}
