package route

import (
	"strings"
	"testing"
)

// testOrgs has the orgs of the conformance fixtures, spelt as in their org
// files (one with a mixed-case canonical name).
var testOrgs = orgNames("acme", "globex", "initech", "Hooli")

// orgNames indexes org names without values.
func orgNames(names ...string) *OrgMap[struct{}] {
	m := NewOrgMap[struct{}](len(names))
	for _, n := range names {
		m.Add(n, struct{}{})
	}
	return m
}

func TestResolve(t *testing.T) {
	const (
		api  = 1 << iota
		git  // Git
		set  // Settings
		disc // Discussions
		gr   // GitRead
	)
	tests := []struct {
		path  string
		kind  Kind
		org   string
		ns    string
		typ   string
		name  string
		flags int
	}{
		// not namespaces
		{"/", None, "", "", "", "", 0},
		{"/docs/hub/security-sso", None, "", "", "", "", 0},
		{"/DOCS/acme", None, "", "", "", "", 0},
		{"/login", None, "", "", "", "", 0},
		{"/logout/acme", None, "", "", "", "", 0},
		{"/join/acme", None, "", "", "", "", 0},
		{"/settings/profile", None, "", "", "", "", 0},
		{"/static/acme/x.js", None, "", "", "", "", 0},
		{"/sso/acme", None, "", "", "", "", 0},
		{"/Sso/acme", None, "", "", "", "", 0},
		{"/models", None, "", "", "", "", 0},
		{"/models/acme/secret-model", None, "", "", "", "", 0},
		{"/MODELS/acme", None, "", "", "", "", 0},
		{"/datasets", None, "", "", "", "", 0},
		{"/spaces/", None, "", "", "", "", 0},
		{"/organizations", None, "", "", "", "", 0},
		{"/api", None, "", "", "", "", api},
		{"/api/whoami-v2", None, "", "", "", "", api},
		{"/api/models", None, "", "", "", "", api},
		{"/api/acme/secret-model", None, "", "", "", "", api},
		{"/api/organizations", None, "", "", "", "", api},
		// user namespaces pass through, shape still filled
		{"/carol", None, "", "carol", "", "", 0},
		{"/carol/notes", None, "", "carol", "model", "notes", 0},
		{"/carol/notes.git/git-upload-pack", None, "", "carol", "model", "notes", git | gr},
		{"/datasets/carol/d", None, "", "carol", "dataset", "d", 0},
		{"/spaces/carol", None, "", "carol", "space", "", 0},
		{"/api/models/carol/notes/settings", None, "", "carol", "model", "notes", api | set},
		{"/organizations/carol/sso/login", None, "", "carol", "", "", 0},
		{"/organizations/carol/settings", None, "", "carol", "", "", set},
		{"/acmex/m", None, "", "acmex", "model", "m", 0},
		// models
		{"/acme/secret-model", Resource, "acme", "acme", "model", "secret-model", 0},
		{"/acme/secret-model/", Resource, "acme", "acme", "model", "secret-model", 0},
		{"/acme/open-model/resolve/main/config.json", Resource, "acme", "acme", "model", "open-model", 0},
		{"/acme/secret-model/blob/main/README.md", Resource, "acme", "acme", "model", "secret-model", 0},
		{"/ACME/open-model", Resource, "acme", "ACME", "model", "open-model", 0},
		{"/aCmE/Open-Model", Resource, "acme", "aCmE", "model", "Open-Model", 0},
		{"/hooli/m", Resource, "Hooli", "hooli", "model", "m", 0},
		{"/globex/plans", Resource, "globex", "globex", "model", "plans", 0},
		{"/acme/settings", Resource, "acme", "acme", "model", "settings", 0},
		{"/acme/datasets", Resource, "acme", "acme", "model", "datasets", 0},
		// datasets, spaces
		{"/datasets/acme/train-data", Resource, "acme", "acme", "dataset", "train-data", 0},
		{"/Datasets/ACME/train-data/tree/main", Resource, "acme", "ACME", "dataset", "train-data", 0},
		{"/spaces/acme/demo", Resource, "acme", "acme", "space", "demo", 0},
		{"/SPACES/acme/demo/", Resource, "acme", "acme", "space", "demo", 0},
		// API forms
		{"/api/models/acme/secret-model", Resource, "acme", "acme", "model", "secret-model", api},
		{"/api/models/acme/secret-model/commit/main", Resource, "acme", "acme", "model", "secret-model", api},
		{"/api/datasets/acme/train-data", Resource, "acme", "acme", "dataset", "train-data", api},
		{"/api/spaces/acme/demo/runtime", Resource, "acme", "acme", "space", "demo", api},
		{"/API/Models/Acme/m", Resource, "acme", "Acme", "model", "m", api},
		// org-level
		{"/acme", OrgLevel, "acme", "acme", "", "", 0},
		{"/acme/", OrgLevel, "acme", "acme", "", "", 0},
		{"/Hooli", OrgLevel, "Hooli", "Hooli", "", "", 0},
		{"/datasets/acme", OrgLevel, "acme", "acme", "dataset", "", 0},
		{"/spaces/ACME", OrgLevel, "acme", "ACME", "space", "", 0},
		{"/api/models/acme", OrgLevel, "acme", "acme", "model", "", api},
		{"/api/datasets/acme/", OrgLevel, "acme", "acme", "dataset", "", api},
		{"/api/spaces/acme", OrgLevel, "acme", "acme", "space", "", api},
		{"/organizations/acme", OrgLevel, "acme", "acme", "", "", 0},
		{"/organizations/acme/members", OrgLevel, "acme", "acme", "", "", 0},
		{"/organizations/Acme/share/xyz", OrgLevel, "acme", "Acme", "", "", 0},
		{"/api/organizations/acme/members", OrgLevel, "acme", "acme", "", "", api},
		{"/api/organizations/acme", OrgLevel, "acme", "acme", "", "", api},
		// settings
		{"/acme/secret-model/settings", Resource, "acme", "acme", "model", "secret-model", set},
		{"/acme/secret-model/settings/webhooks", Resource, "acme", "acme", "model", "secret-model", set},
		{"/acme/secret-model/Settings", Resource, "acme", "acme", "model", "secret-model", set},
		{"/datasets/acme/d/settings", Resource, "acme", "acme", "dataset", "d", set},
		{"/api/spaces/acme/demo/settings", Resource, "acme", "acme", "space", "demo", api | set},
		{"/acme/m/tree/main/settings", Resource, "acme", "acme", "model", "m", 0},
		{"/organizations/acme/settings", OrgLevel, "acme", "acme", "", "", set},
		{"/organizations/acme/settings/sso", OrgLevel, "acme", "acme", "", "", set},
		{"/organizations/acme/SETTINGS", OrgLevel, "acme", "acme", "", "", set},
		{"/api/organizations/acme/settings/members", OrgLevel, "acme", "acme", "", "", api | set},
		{"/organizations/acme/members/settings", OrgLevel, "acme", "acme", "", "", 0},
		// discussions
		{"/api/models/acme/secret-model/discussions", Resource, "acme", "acme", "model", "secret-model", api | disc},
		{"/acme/m/discussions/3", Resource, "acme", "acme", "model", "m", disc},
		{"/spaces/acme/demo/discussions", Resource, "acme", "acme", "space", "demo", disc},
		{"/acme/m/Discussions", Resource, "acme", "acme", "model", "m", 0},
		{"/acme/m/blob/main/discussions", Resource, "acme", "acme", "model", "m", 0},
		// git and LFS
		{"/acme/secret-model.git/info/refs", Resource, "acme", "acme", "model", "secret-model", git},
		{"/acme/m.git", Resource, "acme", "acme", "model", "m", git},
		{"/acme/m.git/", Resource, "acme", "acme", "model", "m", git},
		{"/acme/m.git/git-upload-pack", Resource, "acme", "acme", "model", "m", git | gr},
		{"/acme/m.git/git-receive-pack", Resource, "acme", "acme", "model", "m", git},
		{"/acme/m.git/info/lfs/objects/batch", Resource, "acme", "acme", "model", "m", git | gr},
		{"/acme/m.git/info/lfs/locks", Resource, "acme", "acme", "model", "m", git},
		{"/acme/m/info/refs", Resource, "acme", "acme", "model", "m", git},
		{"/acme/m/info/lfs/objects/batch", Resource, "acme", "acme", "model", "m", git | gr},
		{"/acme/m/git-upload-pack", Resource, "acme", "acme", "model", "m", git | gr},
		{"/acme/m/git-receive-pack", Resource, "acme", "acme", "model", "m", git},
		{"/acme/m/git-upload-pack/x", Resource, "acme", "acme", "model", "m", git},
		{"/acme/m/info/lfs/objects/batch/", Resource, "acme", "acme", "model", "m", git},
		{"/acme/m/info/lfs/objects", Resource, "acme", "acme", "model", "m", git},
		{"/acme/m/Info/refs", Resource, "acme", "acme", "model", "m", 0},
		{"/acme/m.GIT/info/refs", Resource, "acme", "acme", "model", "m", git},
		{"/acme/.git", Resource, "acme", "acme", "model", ".git", git},
		{"/acme/m.git.git", Resource, "acme", "acme", "model", "m.git", git},
		{"/datasets/acme/d.git/info/lfs/objects/batch", Resource, "acme", "acme", "dataset", "d", git | gr},
		{"/spaces/acme/demo.git/git-upload-pack", Resource, "acme", "acme", "space", "demo", git | gr},
		{"/acme/m/blob/main/info", Resource, "acme", "acme", "model", "m", 0},
		{"/acme/m/resolve/main/git-upload-pack", Resource, "acme", "acme", "model", "m", 0},
		// login flow
		{"/organizations/acme/sso/login", LoginFlow, "acme", "acme", "", "", 0},
		{"/organizations/ACME/sso", LoginFlow, "acme", "ACME", "", "", 0},
		{"/organizations/acme/oidc/consume", LoginFlow, "acme", "acme", "", "", 0},
		{"/organizations/hooli/saml/consume", LoginFlow, "Hooli", "hooli", "", "", 0},
		{"/Organizations/acme/saml/metadata", LoginFlow, "acme", "acme", "", "", 0},
		{"/organizations/acme/SSO/login", OrgLevel, "acme", "acme", "", "", 0},
		{"/api/organizations/acme/sso/login", OrgLevel, "acme", "acme", "", "", api},
		{"/acme/sso/login", Resource, "acme", "acme", "model", "sso", 0},
	}
	for _, tt := range tests {
		want := Route{
			Kind: tt.kind, Org: tt.org, Namespace: tt.ns, Type: tt.typ, Name: tt.name,
			API: tt.flags&api != 0, Git: tt.flags&git != 0, Settings: tt.flags&set != 0,
			Discussions: tt.flags&disc != 0, GitRead: tt.flags&gr != 0,
		}
		if got := Resolve(tt.path, testOrgs); got != want {
			t.Errorf("Resolve(%q)\n got %+v\nwant %+v", tt.path, got, want)
		}
	}
}

// TestResolveConformancePaths runs the raw paths of the conformance cases
// through Normalize and Resolve.
func TestResolveConformancePaths(t *testing.T) {
	tests := []struct {
		raw  string
		kind Kind
		id   string
	}{
		{"/carol/notes/../../acme/secret-model", Resource, "acme/secret-model"},                                         // 18
		{"/ACME/open-model", Resource, "acme/open-model"},                                                               // 19
		{"//acme//secret-model", Resource, "acme/secret-model"},                                                         // 21
		{"/docs/hub/security-sso", None, ""},                                                                            // 27
		{"/initech/tps", Resource, "initech/tps"},                                                                       // 26
		{"/acme/secret-model.git/info/refs?service=git-upload-pack", Resource, "acme/secret-model"},                     // 30
		{"/organizations/acme/settings/sso", OrgLevel, ""},                                                              // 31
		{"/carol/notes", None, ""},                                                                                      // 32
		{"/acme/secret-model.git/git-upload-pack", Resource, "acme/secret-model"},                                       // 34
		{"/organizations/acme/sso/login?return_to=https%3A%2F%2Fhub.example.test%2Facme%2Fsecret-model", LoginFlow, ""}, // 28
	}
	for _, tt := range tests {
		p, err := Normalize(tt.raw)
		if err != nil {
			t.Fatalf("Normalize(%q): %v", tt.raw, err)
		}
		r := Resolve(p, testOrgs)
		if r.Kind != tt.kind || r.ID() != tt.id {
			t.Errorf("%q → %q → %+v (ID %q); want %v %q", tt.raw, p, r, r.ID(), tt.kind, tt.id)
		}
	}
	if _, err := Normalize("/api/models/acme%2Fsecret-model"); err == nil { // 20
		t.Error("encoded slash accepted")
	}
}

func TestResolveNilIndex(t *testing.T) {
	want := Route{Namespace: "acme", Type: "model", Name: "m"}
	if got := Resolve("/acme/m", nil); got != want {
		t.Errorf("Resolve with nil index = %+v", got)
	}
}

func TestRouteID(t *testing.T) {
	tests := []struct {
		r    Route
		want string
	}{
		{Route{Kind: Resource, Org: "Hooli", Namespace: "hooli", Name: "m"}, "Hooli/m"},
		{Route{Kind: Resource, Namespace: "acme", Name: "m"}, "acme/m"},
		{Route{Kind: OrgLevel, Org: "acme", Namespace: "acme"}, ""},
		{Route{Kind: None, Namespace: "carol", Name: "notes"}, ""},
		{Route{Kind: LoginFlow, Org: "acme"}, ""},
	}
	for _, tt := range tests {
		if got := tt.r.ID(); got != tt.want {
			t.Errorf("%+v.ID() = %q, want %q", tt.r, got, tt.want)
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{None: "none", OrgLevel: "org", Resource: "resource", LoginFlow: "login_flow", 9: "Kind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
	}
}

func TestReserved(t *testing.T) {
	for _, s := range []string{"api", "datasets", "spaces", "models", "organizations", "docs", "login", "logout", "join", "settings", "static", "sso"} {
		for _, v := range []string{s, strings.ToUpper(s), strings.ToUpper(s[:1]) + s[1:]} {
			if !reserved(v) {
				t.Errorf("reserved(%q) = false", v)
			}
		}
	}
	for _, s := range []string{"", "acme", "apis", "ap", "doc", "setting", "organisation", "ſso", "ſpaces", "\u212Aoin"} {
		if reserved(s) {
			t.Errorf("reserved(%q) = true", s)
		}
	}
}

func TestOrgMap(t *testing.T) {
	m := NewOrgMap[int](4)
	for i, name := range []string{"Acme", "acme", "globex", strings.Repeat("Long", 20)} {
		if added := m.Add(name, i+1); added != (name != "acme") {
			t.Errorf("Add(%q) = %v", name, added)
		}
	}
	if m.Len() != 3 {
		t.Errorf("Len = %d, want 3", m.Len())
	}
	tests := []struct {
		name, want string
		v          int
		ok         bool
	}{
		{"acme", "Acme", 1, true},
		{"ACME", "Acme", 1, true},
		{"aCmE", "Acme", 1, true},
		{"globex", "globex", 3, true},
		{"GLOBEX", "globex", 3, true},
		{strings.Repeat("LONG", 20), strings.Repeat("Long", 20), 4, true},
		{"acm", "", 0, false},
		{"", "", 0, false},
		{"ſacme", "", 0, false},
	}
	for _, tt := range tests {
		if got, ok := m.Org(tt.name); got != tt.want || ok != tt.ok {
			t.Errorf("Org(%q) = %q, %v; want %q, %v", tt.name, got, ok, tt.want, tt.ok)
		}
		if v, ok := m.Get(tt.name); v != tt.v || ok != tt.ok {
			t.Errorf("Get(%q) = %d, %v; want %d, %v", tt.name, v, ok, tt.v, tt.ok)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = m.Get("GLOBEX") }); n != 0 {
		t.Errorf("Get allocates %v times", n)
	}
}

func TestNoAllocs(t *testing.T) {
	for _, p := range benchPaths {
		if n := testing.AllocsPerRun(100, func() { _ = Resolve(p, testOrgs) }); n != 0 {
			t.Errorf("Resolve(%q) allocates %v times", p, n)
		}
	}
}

var benchPaths = []string{
	"/acme/open-model/resolve/main/config.json",
	"/api/models/acme/secret-model/commit/main",
	"/ACME/m.git/info/lfs/objects/batch",
	"/organizations/acme/sso/login",
	"/carol/notes",
	"/docs/hub/security-sso",
}

var sinkRoute Route
var sinkString string

func BenchmarkResolve(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		sinkRoute = Resolve(benchPaths[i%len(benchPaths)], testOrgs)
	}
}

func BenchmarkNormalize(b *testing.B) {
	for _, bc := range []struct{ name, path string }{
		{"normal", "/acme/open-model/resolve/main/config.json"},
		{"query", "/acme/secret-model.git/info/refs?service=git-upload-pack"},
		{"dirty", "//carol/notes/../../acme/%73ecret-model/%2e/blob/main"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkString, _ = Normalize(bc.path)
			}
		})
	}
}

func BenchmarkNormalizeResolve(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p, _ := Normalize(benchPaths[i%len(benchPaths)])
		sinkRoute = Resolve(p, testOrgs)
	}
}
