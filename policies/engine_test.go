package policies

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestRego runs the test_ rules of every *_test.rego file beside the policy.
func TestRego(t *testing.T) {
	ctx := context.Background()
	mods := map[string]*ast.Module{}
	files, _ := filepath.Glob("*.rego")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := ast.ParseModule(f, string(b))
		if err != nil {
			t.Fatal(err)
		}
		mods[f] = m
	}
	ch, err := tester.NewRunner().SetModules(mods).EnableTracing(false).RunTests(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for r := range ch {
		n++
		t.Run(r.Name, func(t *testing.T) {
			if r.Error != nil {
				t.Fatalf("%s: %v", r.Location, r.Error)
			}
			if r.Fail {
				t.Fatalf("%s failed", r.Location)
			}
		})
	}
	if n < 10 {
		t.Fatalf("ran %d Rego tests, want the whole suite", n)
	}
}

func testOrgs() map[string]Org {
	return map[string]Org{
		"acme": {SSOEnabled: true, Mode: "enforced", DefaultRole: "read", SessionTimeout: 168 * time.Hour, ExternalCollaborators: []string{"u-bob"}},
	}
}

func TestEngineDecides(t *testing.T) {
	ctx := context.Background()
	e, err := New(ctx, testOrgs(), nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 6, 2, 12, 0, 0, 0, time.UTC)
	in := map[string]any{
		"now_ns": now.UnixNano(), "method": "GET", "org": "acme",
		"route":      map[string]any{"kind": "resource"},
		"user":       "u-alice",
		"membership": map[string]any{"role": "write"},
		"session":    map[string]any{"authenticated_at_ns": now.Add(-time.Hour).UnixNano(), "age_ns": time.Hour.Nanoseconds()},
	}
	d := mustDecide(t, e, in)
	if !d.Allow || d.Role != "write" || !d.Identity || d.Reason != "sso_session_valid" {
		t.Errorf("decision = %+v", d)
	}
	in["session"] = map[string]any{"authenticated_at_ns": now.Add(-200 * time.Hour).UnixNano(), "age_ns": (200 * time.Hour).Nanoseconds()}
	d = mustDecide(t, e, in)
	if d.Allow || d.Status != 401 || d.Reason != "sso_session_expired" {
		t.Errorf("expired session decision = %+v", d)
	}
}

func TestExtraModuleTightens(t *testing.T) {
	ctx := context.Background()
	extra := []Module{{Name: "friday.rego", Source: "package ssogate.custom\n\ndeny contains \"no writes\" if input.method == \"POST\"\n"}}
	e, err := New(ctx, testOrgs(), extra)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := ast.InterfaceToValue(map[string]any{"now_ns": 1, "method": "POST", "route": map[string]any{"kind": "none"}})
	d, err := e.Decide(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	if d.Allow || d.Status != 403 || d.Reason != "policy_denied" || len(d.Messages) != 1 {
		t.Errorf("decision = %+v", d)
	}
}

func TestBrokenModulesAreRefused(t *testing.T) {
	cases := map[string]struct{ src, want string }{
		"syntax":     {"package ssogate.custom\n\ndeny contains x if {\n", "broken.rego:4"},
		"unsafe var": {"package ssogate.custom\n\ndeny contains x if input.y == 1\n", "broken.rego:3"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := New(context.Background(), testOrgs(), []Module{{Name: "broken.rego", Source: c.src}})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one naming %s", err, c.want)
			}
		})
	}
}

// Extra modules may not redefine the default policy or its data, from any
// package: they could loosen it (e.g. make session_valid true for someone,
// or add an external collaborator, who is exempt from SSO).
func TestReservedPathsAreRefused(t *testing.T) {
	// want is the phrase of the refusal: reserved paths could loosen the
	// policy; data.ssogate.custom.deny is a set, and any other kind of
	// rule at, above or below it would deny nothing (the policy iterates
	// the set).
	const reserved, set = "reserved", "must be a set"
	for _, c := range []struct {
		src  string
		line int
		want string
	}{
		{"package ssogate.authz\n\ndecision := {\"allow\": true, \"reason\": \"x\"} if input.method == \"GET\"\n", 1, reserved},
		{"package ssogate.authz\n\nsession_valid if input.user == \"u-carol\"\n", 1, reserved},
		{"package ssogate.authz.more\n\nx := 1\n", 1, reserved},
		{"package ssogate.orgs\n\nacme := {}\n", 1, reserved},
		{"package ssogate\n\nauthz.public_content if not input.user\n", 3, reserved},
		{"package ssogate\n\norgs.acme.external_collaborators[\"u-carol\"] := true\n", 3, reserved},
		{"package ssogate\n\norgs[x] := {} if x := \"acme\"\n", 3, reserved},
		{"package ssogate\n\nauthz := {\"decision\": 1}\n", 3, reserved},
		{"package ssogate\n\nok := 1\n\norgs contains \"x\"\n", 5, reserved},
		{"package ssogate.custom\n\ndeny := \"no\"\n", 3, set},
		{"package ssogate.custom\n\ndeny := {\"no\"} if input.method == \"PUT\"\n", 3, set},
		{"package ssogate.custom\n\ndeny[x] := true if x := \"no\"\n", 3, set},
		{"package ssogate.custom\n\ndeny.writes := \"no\"\n", 3, set},
		{"package ssogate.custom\n\ndefault deny := false\n", 3, set},
		{"package ssogate.custom\n\ndeny[x] contains \"no\" if x := \"k\"\n", 3, set},
		{"package ssogate\n\ncustom.deny[x] contains \"no\" if x := \"k\"\n", 3, set},
		{"package ssogate\n\ncustom := {\"deny\": \"no\"}\n", 3, set},
	} {
		_, err := New(context.Background(), testOrgs(), []Module{{Name: "extra.rego", Source: c.src}})
		want := fmt.Sprintf("extra.rego:%d: data.ssogate.", c.line)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("module %q: err = %v, want it refused naming %s (%s)", c.src, err, want, c.want)
		}
	}
	// Other rules of package ssogate, and package ssogate.custom, are fine.
	for _, src := range []string{
		"package ssogate\n\nhelpers.allowed_domains := {\"example.com\"}\n",
		"package ssogate.custom\n\ndeny contains \"no\" if input.method == \"DELETE\"\n",
		"package ssogate\n\ncustom.deny contains \"no\" if input.method == \"DELETE\"\n",
		"package ssogate.custom\n\nwrites := {\"PUT\", \"POST\"}\n\ndeny contains \"no\" if input.method in writes\n",
	} {
		if _, err := New(context.Background(), testOrgs(), []Module{{Name: "ok.rego", Source: src}}); err != nil {
			t.Errorf("module %q refused: %v", src, err)
		}
	}
}

// A custom module whose deny set errors at eval time fails closed.
func TestEvalErrorIsError(t *testing.T) {
	src := "package ssogate.custom\n\ndeny contains m if {\n\tm := sprintf(\"%s\", [1/0])\n}\n"
	e, err := New(context.Background(), testOrgs(), []Module{{Name: "div.rego", Source: src}})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := ast.InterfaceToValue(map[string]any{"now_ns": 1, "method": "GET", "route": map[string]any{"kind": "none"}})
	if d, err := e.Decide(context.Background(), v); err == nil && d.Allow {
		t.Fatalf("a failing custom module evaluated to %+v, want an error or a deny", d)
	}
}

func TestUndefinedDecisionIsError(t *testing.T) {
	// A module that makes the decision a non-object must be refused at eval.
	_, err := parseDecision(ast.String("allow"))
	if err == nil {
		t.Fatal("a string decision was accepted")
	}
	for name, d := range map[string]string{
		"deny without status": `{"allow": false, "reason": "x"}`,
		"status not a number": `{"allow": false, "reason": "x", "status": "403"}`,
		"status not HTTP":     `{"allow": false, "reason": "x", "status": 42}`,
		"allow not a boolean": `{"allow": "yes", "reason": "x"}`,
		"no reason":           `{"allow": true}`,
		"messages not a list": `{"allow": false, "reason": "x", "status": 403, "messages": "m"}`,
	} {
		if _, err := parseDecision(ast.MustParseTerm(d).Value); err == nil {
			t.Errorf("%s: %s was accepted", name, d)
		}
	}
	d, err := parseDecision(ast.MustParseTerm(`{"allow": false, "reason": "policy_denied", "status": 403, "messages": ["a", 1]}`).Value)
	if err != nil || d.Status != 403 || len(d.Messages) != 2 || d.Messages[0] != "a" || d.Messages[1] != "1" {
		t.Errorf("decision %+v, %v", d, err)
	}
}

// LoadDir reads the folder's *.rego files but tests and subfolders, and
// takes the folder's name literally (a name like policies[prod] is not a
// glob pattern).
func TestLoadDirSkipsTests(t *testing.T) {
	for _, name := range []string{"policies", "policies[prod]", "p*?"} {
		dir := filepath.Join(t.TempDir(), name)
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(os.MkdirAll(filepath.Join(dir, "sub.rego"), 0o700))
		must(os.WriteFile(filepath.Join(dir, "b.rego"), []byte("package ssogate.custom\n"), 0o600))
		must(os.WriteFile(filepath.Join(dir, "a.rego"), []byte("package ssogate.custom\n"), 0o600))
		must(os.WriteFile(filepath.Join(dir, "a_test.rego"), []byte("package x\n"), 0o600))
		must(os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o600))
		mods, err := LoadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(mods) != 2 || mods[0].Name != filepath.Join(dir, "a.rego") || mods[1].Name != filepath.Join(dir, "b.rego") {
			t.Errorf("%s: mods = %+v", name, mods)
		}
	}
	if _, err := LoadDir(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Errorf("a missing policy_dir was not an error")
	}
}

// Two modules of one name would leave one of them out (rego keeps the
// last), and a module named like the default policy would replace it.
func TestDuplicateModuleNamesAreRefused(t *testing.T) {
	deny := "package ssogate.custom\n\ndeny contains \"m\" if input.method == \"PUT\"\n"
	for _, mods := range [][]Module{
		{{Name: DefaultModuleName, Source: deny}},
		{{Name: "a.rego", Source: deny}, {Name: "a.rego", Source: "package ssogate.custom\n\nx := 1\n"}},
	} {
		_, err := New(context.Background(), testOrgs(), mods)
		if err == nil || !strings.Contains(err.Error(), "already loaded") {
			t.Errorf("modules %q, %q...: err = %v, want them refused", mods[0].Name, mods[len(mods)-1].Name, err)
		}
	}
}

func TestDropFastPathGuards(t *testing.T) {
	src := DefaultModules()[0].Source
	got, err := dropFastPathGuards(src)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got, "data.ssogate.custom.deny # fast path guard") {
		t.Error("a fast path guard is left")
	}
	if strings.Count(got, "\n") != strings.Count(src, "\n") {
		t.Error("line numbers moved")
	}
	for _, bad := range []string{
		strings.Replace(src, fastPathGuard, "\tnot data.ssogate.custom.deny\n", 1), // one guard unmarked
		src + fastPathGuard, // one too many
	} {
		if _, err := dropFastPathGuards(bad); err == nil || !strings.Contains(err.Error(), "fast path guards") {
			t.Errorf("got %v, want a count error", err)
		}
	}
}

// A deadline stops an evaluation already running: a custom module that
// loops for seconds must not hold an evaluation worker (or the Check)
// past its context.
func TestDecideStopsAtDeadline(t *testing.T) {
	src := "package ssogate.custom\n\ndeny contains \"never\" if {\n\tsome i in numbers.range(1, 2000)\n\tsome j in numbers.range(1, 2000)\n\ti * j < 0\n}\n"
	e, err := New(context.Background(), testOrgs(), []Module{{Name: "slow.rego", Source: src}})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := ast.InterfaceToValue(map[string]any{"now_ns": 1, "method": "GET", "route": map[string]any{"kind": "none"}})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	d, err := e.Decide(ctx, v)
	if err == nil {
		t.Fatalf("decided %+v after %v, want an error at the deadline", d, time.Since(t0))
	}
	// The loop's 4 million steps take seconds (about 15 s on the 2-core
	// machine this was written on).
	if took := time.Since(t0); took > 2*time.Second {
		t.Errorf("returned after %v, want soon after the 50ms deadline", took)
	}
}

// TestOrgDataReadsAreByInputOrg guards orgsFor: the default policy may read
// the org data only as data.ssogate.orgs[input.org] (and below), since the
// engine evaluates it with the requested org's data alone. A rule reading
// another org, iterating the orgs or reading data.ssogate whole must
// change orgsFor first.
func TestOrgDataReadsAreByInputOrg(t *testing.T) {
	orgs := ast.MustParseRef("data.ssogate.orgs")
	inputOrg := ast.MustParseRef("input.org")
	for _, m := range DefaultModules() {
		mod, err := ast.ParseModuleWithOpts(m.Name, m.Source, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		ast.WalkRefs(mod, func(r ast.Ref) bool {
			if !r.HasPrefix(ast.DefaultRootRef) {
				return false
			}
			switch {
			case r.HasPrefix(orgs):
				n++
				if len(r) < 4 || !r[3].Equal(ast.NewTerm(inputOrg)) {
					t.Errorf("%s: %v reads the org data by other than input.org", m.Name, r)
				}
			case orgs.HasPrefix(r.GroundPrefix()):
				t.Errorf("%s: %v may read the whole org data", m.Name, r)
			}
			return false
		})
		if n == 0 {
			t.Errorf("%s: no read of data.ssogate.orgs[input.org] found: the check looks for the wrong thing", m.Name)
		}
	}
	e, err := New(context.Background(), testOrgs(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !e.oneOrg {
		t.Error("the engine evaluates the default policy with every org's data")
	}
}

// TestExtraModuleSeesEveryOrg checks that extra modules, which may read
// any org's data, are evaluated with all of it (orgsFor): a request for
// org acme is denied by a module that counts the orgs.
func TestExtraModuleSeesEveryOrg(t *testing.T) {
	ctx := context.Background()
	extra := []Module{{Name: "peer.rego", Source: "package ssogate.custom\n\ndeny contains \"orgs\" if count(data.ssogate.orgs) == 2\n"}}
	e, err := New(ctx, benchOrgs(), extra)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(benchOrgs()); n != 2 {
		t.Fatalf("%d orgs: the module counts 2", n)
	}
	v, _ := ast.InterfaceToValue(map[string]any{"now_ns": 1, "method": "GET", "org": "acme", "route": map[string]any{"kind": "org"}})
	d, err := e.Decide(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	if d.Allow || d.Reason != "policy_denied" {
		t.Errorf("decision %+v, want policy_denied", d)
	}
}

// TestOrgsForOddInputs compares the engine with plain OPA (the whole org
// data in the store) on inputs whose org is not a configured org's name:
// non-strings, unknown and empty names, and no org at all. An input with a
// variable anywhere (OPA would bind it, e.g. iterate every org) is refused.
func TestOrgsForOddInputs(t *testing.T) {
	ctx := context.Background()
	orgs := benchOrgs()
	opts := []func(*rego.Rego){
		rego.Query(Query),
		rego.StrictBuiltinErrors(true),
		rego.Store(inmem.NewFromObjectWithOpts(orgData(orgs), inmem.OptRoundTripOnWrite(false), inmem.OptReturnASTValuesOnRead(true))),
	}
	for _, m := range DefaultModules() {
		opts = append(opts, rego.Module(m.Name, m.Source))
	}
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(ctx, orgs, nil)
	if err != nil {
		t.Fatal(err)
	}
	// References of this engine's orgs, of a name that is no org, of
	// another engine's org with other settings, and none.
	other := benchOrgs()
	acme := other["acme"]
	acme.SessionTimeout = time.Nanosecond
	other["acme"] = acme
	e2, err := New(ctx, other, nil)
	if err != nil {
		t.Fatal(err)
	}
	refs := []OrgRef{e.Org("acme"), e.Org("initech"), e.Org("nope"), e.Org("ACME"), e2.Org("acme"), {}}
	base := `"now_ns": 1, "method": "GET", "route": {"kind": "resource"}, "user": "u-alice",
		"membership": {"role": "write", "resource_groups": {}}, "session": {"authenticated_at_ns": 0, "age_ns": 1000},
		"resource": {"visibility": "private", "resource_group": "", "created_by": ""}`
	for _, org := range []string{`"org": "acme"`, `"org": 1`, `"org": ["acme"]`, `"org": null`, `"org": "nope"`, `"org": ""`, `"org": "ACME"`, `"org": "initech"`, ``} {
		src := "{" + base
		if org != "" {
			src += ", " + org
		}
		src += "}"
		in := ast.MustParseTerm(src).Value
		rs, err := pq.Eval(ctx, rego.EvalParsedInput(in))
		var want Decision
		var wantErr error
		switch {
		case err != nil:
			wantErr = err
		case len(rs) != 1:
			wantErr = fmt.Errorf("%d results", len(rs))
		default:
			want, wantErr = parseDecision(ast.MustInterfaceToValue(rs[0].Expressions[0].Value))
		}
		got, err := e.Decide(ctx, in)
		if (err != nil) != (wantErr != nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: engine decided %+v (%v), plain OPA %+v (%v)", org, got, err, want, wantErr)
		}
		// An org reference, right or wrong, never changes the decision.
		for _, ref := range refs {
			got, err := e.DecideOrg(ctx, in, ref)
			if (err != nil) != (wantErr != nil) || !reflect.DeepEqual(got, want) {
				t.Errorf("%s with the reference of %v: engine decided %+v (%v), plain OPA %+v (%v)", org, ref.Name(), got, err, want, wantErr)
			}
		}
	}
	for _, v := range []string{`"org": x`, `"resource": {"visibility": x, "resource_group": "", "created_by": ""}`, `"membership": {x: "write"}`} {
		in := ast.MustParseTerm("{" + base + ", " + v + "}").Value
		if d, err := e.Decide(ctx, in); err == nil || !strings.Contains(err.Error(), "variables") {
			t.Errorf("%s: decided %+v (%v), want the input refused", v, d, err)
		}
	}
}

// Orgs with equal settings share one object of org data (orgData); an org
// with other settings or with external collaborators has its own, and
// each org's decision follows its own settings.
func TestOrgsWithEqualSettingsShareData(t *testing.T) {
	ctx := context.Background()
	base := Org{SSOEnabled: true, Mode: "enforced", DefaultRole: "read", SessionTimeout: 8 * time.Hour}
	longer, collab := base, base
	longer.SessionTimeout = 48 * time.Hour
	collab.ExternalCollaborators = []string{"u-ext"}
	orgs := map[string]Org{"a": base, "b": base, "c": longer, "d": collab, "e": collab}
	e, err := New(ctx, orgs, nil)
	if err != nil {
		t.Fatal(err)
	}
	obj := e.orgs.(ast.Object)
	of := func(name string) ast.Value { return obj.Get(ast.StringTerm(name)).Value }
	if of("a") != of("b") {
		t.Error("orgs a and b have equal settings but separate data")
	}
	for _, pair := range [][2]string{{"a", "c"}, {"a", "d"}, {"d", "e"}} {
		if of(pair[0]) == of(pair[1]) {
			t.Errorf("orgs %s and %s share data", pair[0], pair[1])
		}
	}
	now := time.Date(2026, 6, 2, 12, 0, 0, 0, time.UTC)
	// A member; age 0 is no SSO session.
	decide := func(org, user string, age time.Duration) Decision {
		t.Helper()
		in := map[string]any{"now_ns": now.UnixNano(), "method": "GET", "org": org, "route": map[string]any{"kind": "resource"},
			"user": user, "membership": map[string]any{"role": ""}}
		if age > 0 {
			in["session"] = map[string]any{"authenticated_at_ns": now.Add(-age).UnixNano(), "age_ns": age.Nanoseconds()}
		}
		return mustDecide(t, e, in)
	}
	for _, tt := range []struct {
		org, user string
		age       time.Duration
		allow     bool
		reason    string
	}{
		{"a", "u-1", 24 * time.Hour, false, "sso_session_expired"},
		{"b", "u-1", time.Hour, true, "sso_session_valid"},
		{"c", "u-1", 24 * time.Hour, true, "sso_session_valid"},
		{"d", "u-ext", 0, true, "external_collaborator"},
		{"e", "u-ext", 0, true, "external_collaborator"},
		{"a", "u-ext", 0, false, "sso_session_missing"},
	} {
		d := decide(tt.org, tt.user, tt.age)
		if d.Allow != tt.allow || d.Reason != tt.reason {
			t.Errorf("org %s, user %s, session age %s: decision %+v; want allow %v, reason %q", tt.org, tt.user, tt.age, d, tt.allow, tt.reason)
		}
	}
}

// mustDecide decides the input given as Go values, failing the test on
// any error.
func mustDecide(t *testing.T, e *Engine, in map[string]any) Decision {
	t.Helper()
	v, err := ast.InterfaceToValue(in)
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.Decide(context.Background(), v)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
