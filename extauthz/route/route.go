package route

import "strconv"

// OrgIndex finds an organisation by name ignoring ASCII case and returns the
// canonical spelling, the `name` of its org file (spec section 5 "Routes":
// headers, bodies and URLs use the file's spelling).
type OrgIndex interface {
	Org(name string) (canonical string, ok bool)
}

// Kind classifies a [Route].
type Kind uint8

// Route kinds (spec section 5 "Routes").
const (
	// None: not an org namespace (user namespaces, /docs/..., /api/whoami,
	// /models/..., ...). Outcome step 1: allow, no identity headers.
	None Kind = iota
	// OrgLevel: /{org}, /datasets/{org}, /spaces/{org},
	// /api/models|datasets|spaces/{org}, /organizations/{org}[/...],
	// /api/organizations/{org}[/...]. Public content of the org unless Settings.
	OrgLevel
	// Resource: a model, dataset or space of an org, web, API or git form.
	Resource
	// LoginFlow: ssogate's own login flow, /organizations/{org}/sso|oidc|saml[/...].
	LoginFlow
)

// String returns "none", "org", "resource" or "login_flow".
func (k Kind) String() string {
	switch k {
	case None:
		return "none"
	case OrgLevel:
		return "org"
	case Resource:
		return "resource"
	case LoginFlow:
		return "login_flow"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Route is what [Resolve] finds in a normalised path.
//
// The shape fields (Namespace, Type, Name and the flags) are filled from the
// path whether or not the namespace names an org; Kind and Org say whether it
// does. Callers must look at Kind first: a Kind None route is not enforced.
type Route struct {
	Kind      Kind
	Org       string // canonical org name when the namespace segment names an org; "" otherwise
	Namespace string // the namespace segment as written in the path (user or org); "" when none
	Type      string // "model" | "dataset" | "space" for Resource routes; for OrgLevel the listing type or ""
	Name      string // resource name as written, with a trailing ".git" removed

	API         bool // path starts with /api/ (first segment "api", any case)
	Git         bool // git or LFS path: {name} ends in ".git", or the segment right after {name} is info, git-upload-pack or git-receive-pack
	Settings    bool // "settings" segment right after {name}, or right after {org} in /organizations/{org}/ and /api/organizations/{org}/
	Discussions bool // "discussions" segment right after {name}
	GitRead     bool // the path is .../git-upload-pack or .../info/lfs/objects/batch right after {name}; callers combine with method POST
}

// ID returns "<Org or Namespace>/<Name>", the catalog id, for Resource
// routes and "" otherwise. It allocates; call it only when needed.
func (r Route) ID() string {
	if r.Kind != Resource {
		return ""
	}
	ns := r.Org
	if ns == "" {
		ns = r.Namespace
	}
	return ns + "/" + r.Name
}

// Resolve maps a path normalised by [Normalize] to its hub route (spec
// section 5 "Routes", hub preset). It does not allocate beyond what orgs does.
//
// Matching rules:
//   - The fixed first segments (api, datasets, spaces, models, organizations,
//     docs, login, logout, join, settings, static, sso) and the second segment
//     after "api" (models, datasets, spaces, organizations) ignore ASCII case,
//     as the spec says for first segments. Any other first segment is a
//     namespace: /{ns} is the org listing, /{ns}/{name}[/...] a model.
//   - /models/... is not a route in the spec, so it is None.
//   - {ns}/{org} names an org when orgs finds it (ignoring case); Org is then
//     the canonical spelling and Namespace the spelling in the path.
//   - Keywords after {name} or {org} match exact lower case (the hub's routes
//     are case sensitive), except "settings", which ignores ASCII case so
//     that a case variant never escapes the admin requirement (fail closed).
//     A ".git" suffix is stripped ignoring ASCII case, so that "m.GIT" is
//     looked up as the catalog entry "m" (with its resource group) rather
//     than as an unknown name. The login-flow segments sso, oidc and saml
//     must be lower case (a variant is OrgLevel, not LoginFlow).
//   - Empty segments are skipped, so a trailing slash does not change the route.
//   - Git and GitRead apply to every resource form (web, datasets, spaces, API).
func Resolve(path string, orgs OrgIndex) Route {
	var r Route
	c := cursor{p: path}
	s0 := c.next()
	switch {
	case s0 == "":
	case foldEq(s0, "api"):
		r.API = true
		switch s1 := c.next(); {
		case foldEq(s1, "models"):
			resolveRepo(&r, &c, orgs, c.next(), "model", "model")
		case foldEq(s1, "datasets"):
			resolveRepo(&r, &c, orgs, c.next(), "dataset", "dataset")
		case foldEq(s1, "spaces"):
			resolveRepo(&r, &c, orgs, c.next(), "space", "space")
		case foldEq(s1, "organizations"):
			resolveOrgPages(&r, &c, orgs, false)
		}
	case foldEq(s0, "datasets"):
		resolveRepo(&r, &c, orgs, c.next(), "dataset", "dataset")
	case foldEq(s0, "spaces"):
		resolveRepo(&r, &c, orgs, c.next(), "space", "space")
	case foldEq(s0, "organizations"):
		resolveOrgPages(&r, &c, orgs, true)
	case reserved(s0):
	default:
		resolveRepo(&r, &c, orgs, s0, "model", "")
	}
	return r
}

// resolveRepo handles {ns}[/{name}[/...]] once the prefix is consumed: typ
// is the resource type and listType the Type of the bare {ns} listing.
func resolveRepo(r *Route, c *cursor, orgs OrgIndex, ns, typ, listType string) {
	if ns == "" {
		return
	}
	r.Namespace = ns
	org, isOrg := lookup(orgs, ns)
	name := c.next()
	if name == "" {
		r.Type = listType
		if isOrg {
			r.Kind, r.Org = OrgLevel, org
		}
		return
	}
	r.Type = typ
	if n := len(name); n >= 4 && foldEq(name[n-4:], ".git") {
		r.Git = true
		if n > 4 {
			name = name[:n-4]
		}
	}
	r.Name = name
	rest := c.rest()
	r.GitRead = rest == "/git-upload-pack" || rest == "/info/lfs/objects/batch"
	switch s := c.next(); s {
	case "info", "git-upload-pack", "git-receive-pack":
		r.Git = true
	case "discussions":
		r.Discussions = true
	default:
		r.Settings = foldEq(s, "settings")
	}
	if isOrg {
		r.Kind, r.Org = Resource, org
	}
}

// resolveOrgPages handles /organizations/{org}[/...] (login true) and
// /api/organizations/{org}[/...] (login false) once the prefix is consumed.
func resolveOrgPages(r *Route, c *cursor, orgs OrgIndex, login bool) {
	ns := c.next()
	if ns == "" {
		return
	}
	r.Namespace = ns
	s := c.next()
	r.Settings = foldEq(s, "settings")
	org, ok := lookup(orgs, ns)
	if !ok {
		return
	}
	r.Kind, r.Org = OrgLevel, org
	if login && (s == "sso" || s == "oidc" || s == "saml") {
		r.Kind = LoginFlow
	}
}

func lookup(orgs OrgIndex, ns string) (string, bool) {
	if orgs == nil {
		return "", false
	}
	return orgs.Org(ns)
}

// reserved reports whether s, ignoring ASCII case, is one of the first
// segments that are never namespaces (spec section 5 "Routes").
func reserved(s string) bool {
	switch len(s) {
	case 3:
		return foldEq(s, "api") || foldEq(s, "sso")
	case 4:
		return foldEq(s, "docs") || foldEq(s, "join")
	case 5:
		return foldEq(s, "login")
	case 6:
		return foldEq(s, "models") || foldEq(s, "spaces") || foldEq(s, "logout") || foldEq(s, "static")
	case 8:
		return foldEq(s, "datasets") || foldEq(s, "settings")
	case 13:
		return foldEq(s, "organizations")
	}
	return false
}

// foldEq reports whether s equals the lower-case ASCII keyword kw, ignoring
// ASCII case only (unlike strings.EqualFold, "ſpaces" is not "spaces").
func foldEq(s, kw string) bool {
	if len(s) != len(kw) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if lower(s[i]) != kw[i] {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// cursor walks the segments of a path without allocating.
type cursor struct {
	p string
	i int // next unread byte
}

// next returns the next non-empty segment, or "" at the end.
func (c *cursor) next() string {
	for c.i < len(c.p) && c.p[c.i] == '/' {
		c.i++
	}
	start := c.i
	for c.i < len(c.p) && c.p[c.i] != '/' {
		c.i++
	}
	return c.p[start:c.i]
}

// rest returns the unread part of the path: "" or a string starting with '/'.
func (c *cursor) rest() string { return c.p[c.i:] }

// OrgMap is a ready-made [OrgIndex] that also holds a value of type V per
// org, found by [OrgMap.Get] ignoring ASCII case like [OrgMap.Org]: a caller
// that resolves a route and then needs its org's value looks the name up in
// one map, whose entry is then already in the CPU cache, rather than in two
// (docs/performance.md). Build it with [NewOrgMap] and [OrgMap.Add]; it is
// not safe for concurrent Adds, and safe for concurrent lookups. Lookups of
// names up to 64 bytes do not allocate.
type OrgMap[V any] struct {
	m map[string]orgSlot[V] // ASCII-lower-cased name → canonical name and value
}

type orgSlot[V any] struct {
	name string
	v    V
}

// NewOrgMap returns an empty OrgMap with room for n orgs.
func NewOrgMap[V any](n int) *OrgMap[V] {
	return &OrgMap[V]{m: make(map[string]orgSlot[V], n)}
}

// Add indexes the canonical name with v. It returns false, and changes
// nothing, when a name equal to it ignoring ASCII case is indexed already.
func (m *OrgMap[V]) Add(name string, v V) bool {
	k := string(appendLower(nil, name))
	if _, dup := m.m[k]; dup {
		return false
	}
	m.m[k] = orgSlot[V]{name: name, v: v}
	return true
}

// Org implements [OrgIndex], ignoring ASCII case.
func (m *OrgMap[V]) Org(name string) (string, bool) {
	s, ok := m.slot(name)
	return s.name, ok
}

// Get returns the value of the org named name, ignoring ASCII case.
func (m *OrgMap[V]) Get(name string) (V, bool) {
	s, ok := m.slot(name)
	return s.v, ok
}

// Len is the number of orgs indexed.
func (m *OrgMap[V]) Len() int { return len(m.m) }

func (m *OrgMap[V]) slot(name string) (orgSlot[V], bool) {
	var buf [64]byte
	var k []byte
	if len(name) <= len(buf) {
		k = appendLower(buf[:0], name)
	} else {
		k = appendLower(nil, name)
	}
	s, ok := m.m[string(k)]
	return s, ok
}

func appendLower(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		b = append(b, lower(s[i]))
	}
	return b
}
