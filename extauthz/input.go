package extauthz

import (
	"math"
	"strconv"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/ssogate/ssogate/extauthz/route"
	"github.com/ssogate/ssogate/store"
)

// maxClockAhead is how far in the future a session's authenticated_at may
// be (another replica's clock ahead of this one's) and still count.
const maxClockAhead = 5 * time.Minute

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

// inputTerms holds the terms one input builds beyond the shared ones
// (numbers, the user, the session and resource objects, the creator), so
// that they take one allocation instead of one each: the input is built on
// every Check, and was a third of a member's Check's allocations (34 of
// 104). OPA does not modify its input's terms.
type inputTerms struct {
	terms [8]ast.Term // value uses at most 8: now, org, user, session (3), resource (2)
	n     int
}

// term returns the next term, holding v.
func (a *inputTerms) term(v ast.Value) *ast.Term {
	t := &a.terms[a.n]
	a.n++
	t.Value = v
	return t
}

// nsDigits returns the decimal digits of a, b and c, cut from one string.
func nsDigits(a, b, c int64) [3]string {
	var buf [3 * 20]byte
	d := strconv.AppendInt(buf[:0], a, 10)
	i := len(d)
	d = strconv.AppendInt(d, b, 10)
	j := len(d)
	d = strconv.AppendInt(d, c, 10)
	all := string(d)
	return [3]string{all[:i], all[i:j], all[j:]}
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
	a := &inputTerms{}
	nowNS := in.now.UnixNano()
	var at int64
	if in.session != nil {
		at = in.session.AuthenticatedAt.UnixNano()
	}
	// age_ns saves the policy big-number arithmetic on timestamps. A
	// session authenticated over 292 years ago would overflow it into a negative (valid)
	// age, and one authenticated in the future (a stored time written
	// wrong) would stay valid until then: both count as the oldest
	// possible instead (fail closed). Replicas' clocks may differ by up to
	// maxClockAhead.
	age := nowNS - at
	if at < 0 && age < 0 || age < -int64(maxClockAhead) {
		age = math.MaxInt64
	}
	digits := nsDigits(nowNS, at, age)
	var buf [9][2]*ast.Term
	items := append(buf[:0],
		ast.Item(kNow, a.term(ast.Number(digits[0]))),
		ast.Item(kMethod, stringTerm(in.method)),
		ast.Item(kBrowser, ast.InternedTerm(in.browser)),
		ast.Item(kRoute, routeTerm(rt)),
	)
	if rt.Org != "" {
		org := in.org
		if org == nil {
			org = a.term(ast.String(rt.Org))
		}
		items = append(items, ast.Item(kOrg, org))
	}
	if in.user != "" {
		items = append(items, ast.Item(kUser, a.term(ast.String(in.user))))
	}
	if m := in.membership; m != nil {
		items = append(items, ast.Item(kMembership, membershipTerm(m)))
	}
	if in.session != nil {
		items = append(items, ast.Item(kSession, a.term(ast.NewObject(
			ast.Item(kAuthAt, a.term(ast.Number(digits[1]))),
			ast.Item(kAge, a.term(ast.Number(digits[2]))),
		))))
	}
	if r := in.resource; r != nil {
		createdBy, ok := commonTerms[r.CreatedBy]
		if !ok {
			createdBy = a.term(ast.String(r.CreatedBy))
		}
		items = append(items, ast.Item(kResource, a.term(ast.NewObject(
			ast.Item(kVisibility, stringTerm(r.Visibility)),
			ast.Item(kGroup, stringTerm(r.ResourceGroup)),
			ast.Item(kCreatedBy, createdBy),
		))))
	}
	return ast.NewObject(items...)
}
