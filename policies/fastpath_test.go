package policies

import (
	"context"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// The fast path at the top of decision in authz.rego must never change a
// decision: on random inputs, decision equals full_decision (the policy
// without the fast path), with and without custom denial modules. Inputs
// are built like extauthz builds them (every field present), so that the
// fast path applies to many of them, and sparse (fields missing), as Rego
// callers may write them.
func TestFastPathAgreesWithFullDecision(t *testing.T) {
	orgs := map[string]Org{
		"acme":     {SSOEnabled: true, Mode: "enforced", DefaultRole: "read", SessionTimeout: 168 * time.Hour, ExternalCollaborators: []string{"u-bob"}},
		"globex":   {SSOEnabled: true, Mode: "optional", DefaultRole: "no_access", SessionTimeout: 12 * time.Hour, ExternalCollaborators: []string{"u-carl"}},
		"initech":  {SSOEnabled: false, Mode: "enforced", DefaultRole: "write", SessionTimeout: 168 * time.Hour},
		"hooli":    {SSOEnabled: true, Mode: "enforced", DefaultRole: "contributor", SessionTimeout: time.Hour},
		"umbrella": {SSOEnabled: true, Mode: "enforced", DefaultRole: "admin", SessionTimeout: 24 * time.Hour},
	}
	custom := "package ssogate.custom\n\ndeny contains \"no writes\" if input.method == \"PUT\"\n"
	for _, extra := range []string{"", custom} {
		ctx := context.Background()
		opts := []func(*rego.Rego){
			rego.Query(`full := data.ssogate.authz.full_decision; d := data.ssogate.authz.decision; ` +
				`f := data.ssogate.authz.decision with data.ssogate.authz.full_decision as "fell through"`),
			rego.StrictBuiltinErrors(true),
			rego.Store(inmem.NewFromObjectWithOpts(orgData(orgs), inmem.OptRoundTripOnWrite(false), inmem.OptReturnASTValuesOnRead(true))),
		}
		for _, m := range DefaultModules() {
			opts = append(opts, rego.Module(m.Name, m.Source))
		}
		if extra != "" {
			opts = append(opts, rego.Module("custom.rego", extra))
		}
		pq, err := rego.New(opts...).PrepareForEval(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// The engine's evaluation, with caches reused from one input to the
		// next, must agree too.
		var mods []Module
		if extra != "" {
			mods = []Module{{Name: "custom.rego", Source: extra}}
		}
		eng, err := New(ctx, orgs, mods)
		if err != nil {
			t.Fatal(err)
		}
		caches := newEvalCaches()
		r := rand.New(rand.NewPCG(6, uint64(len(extra))))
		now := time.Date(2026, 6, 2, 12, 0, 0, 0, time.UTC).UnixNano()
		fast, members, denials, unindexed := 0, 0, 0, 0
		const n = 4000
		for i := range n {
			var in map[string]any
			switch i % 4 {
			case 0:
				in = nearFastPath(r, now)
			case 3:
				in = nearDenialFastPath(r, now)
			case 1:
				in = randomInput(r, now, true)
			default:
				in = randomInput(r, now, false)
			}
			v, err := ast.InterfaceToValue(in)
			if err != nil {
				t.Fatal(err)
			}
			rs, err := pq.Eval(ctx, rego.EvalParsedInput(v))
			if err != nil {
				t.Fatalf("input %v: %v", in, err)
			}
			if len(rs) != 1 {
				t.Fatalf("input %v: %d results", in, len(rs))
			}
			b := rs[0].Bindings
			if ast.MustInterfaceToValue(b["d"]).Compare(ast.MustInterfaceToValue(b["full"])) != 0 {
				t.Fatalf("input %v:\n decision      %v\n full_decision %v", in, b["d"], b["full"])
			}
			if b["f"] != "fell through" {
				m, _ := b["f"].(map[string]any)
				switch {
				case m["allow"] != true:
					denials++
				case m["reason"] == "sso_session_valid":
					members++
					fast++
				default:
					fast++
				}
			}
			want, wantErr := parseDecision(ast.MustInterfaceToValue(b["d"]))
			got, err := eng.evaluate(ctx, v, OrgRef{}, caches)
			if (err != nil) != (wantErr != nil) || !reflect.DeepEqual(got, want) {
				t.Fatalf("input %v: engine decided %+v (%v), want %+v (%v)", in, got, err, want, wantErr)
			}
			// The engine skips OPA's rule index for some inputs (see
			// indexes): with it forced on, the decision is the same.
			if !indexes(v) {
				unindexed++
				skipIndexWithSession = false
				got, err = eng.evaluate(ctx, v, OrgRef{}, caches)
				skipIndexWithSession = true
				if (err != nil) != (wantErr != nil) || !reflect.DeepEqual(got, want) {
					t.Fatalf("input %v: engine decided %+v (%v) with the rule index, want %+v (%v)", in, got, err, want, wantErr)
				}
			}
		}
		t.Logf("custom module %v: the fast paths allowed %d of %d inputs (members %d) and denied %d; %d without the rule index", extra != "", fast, n, members, denials, unindexed)
		// With a custom module the allow fast paths step aside altogether;
		// the denial fast paths apply either way.
		if extra == "" && fast < n/10 || extra != "" && fast != 0 {
			t.Errorf("custom module %v: the allow fast paths decided %d of %d inputs", extra != "", fast, n)
		}
		if unindexed < n/10 {
			t.Errorf("custom module %v: %d of %d inputs evaluated without the rule index", extra != "", unindexed, n)
		}
		if denials < n/20 {
			t.Errorf("custom module %v: the denial fast paths decided %d of %d inputs", extra != "", denials, n)
		}
	}
}

// nearFastPath returns an input the fast path decides, with up to two of
// its fields replaced by random ones: the inputs at the fast path's edges.
func nearFastPath(r *rand.Rand, now int64) map[string]any {
	in := map[string]any{
		"now_ns": now, "method": "GET", "browser": false, "org": "acme",
		"route":      map[string]any{"kind": "resource", "api": false, "git": false, "settings": false, "discussions": false, "git_read": false},
		"user":       "u-a",
		"membership": map[string]any{"role": pick(r, "", "read", "contributor", "write", "admin"), "resource_groups": map[string]any{}},
		"session":    map[string]any{"authenticated_at_ns": now - int64(time.Hour), "age_ns": int64(time.Hour)},
		"resource":   map[string]any{"visibility": pick(r, "private", "public"), "resource_group": "", "created_by": pick(r, "", "u-e")},
	}
	if r.IntN(3) == 0 { // an outsider reading a public resource
		delete(in, "membership")
		in["resource"] = map[string]any{"visibility": "public", "resource_group": "", "created_by": ""}
		if r.IntN(2) == 0 {
			delete(in, "user")
			delete(in, "session")
		}
	}
	return perturb(r, in, now)
}

// nearDenialFastPath returns an input a denial fast path decides (a member
// without a valid session in an enforced org), with up to two of its fields
// replaced by random ones.
func nearDenialFastPath(r *rand.Rand, now int64) map[string]any {
	in := map[string]any{
		"now_ns": now, "method": pick(r, "GET", "POST", "PUT"), "browser": r.IntN(2) == 0,
		"org":        pick(r, "acme", "hooli", "umbrella"),
		"route":      map[string]any{"kind": pick(r, "resource", "org"), "api": r.IntN(3) == 0, "git": r.IntN(3) == 0, "settings": r.IntN(4) == 0, "discussions": false, "git_read": false},
		"user":       pick(r, "u-a", "u-e"),
		"membership": map[string]any{"role": pick(r, "", "no_access", "read", "write", "admin"), "resource_groups": map[string]any{}},
		"resource":   map[string]any{"visibility": pick(r, "private", "public"), "resource_group": pick(r, "", "vision"), "created_by": pick(r, "", "u-e")},
	}
	if r.IntN(2) == 0 { // expired rather than missing
		age := int64(pick(r, time.Hour, 24*time.Hour, 168*time.Hour, 200*time.Hour))
		in["session"] = map[string]any{"authenticated_at_ns": now - age, "age_ns": age}
	}
	return perturb(r, in, now)
}

// perturb replaces up to two fields of in by those of a random input (or
// removes them), and returns in.
func perturb(r *rand.Rand, in map[string]any, now int64) map[string]any {
	other := randomInput(r, now, r.IntN(2) == 0)
	keys := []string{"method", "browser", "route", "org", "user", "membership", "session", "resource"}
	for range r.IntN(3) {
		k := pick(r, keys...)
		if v, ok := other[k]; ok {
			in[k] = v
		} else {
			delete(in, k)
		}
	}
	return in
}

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

// randomInput returns a policy input (see authz.rego). complete inputs have
// every field extauthz sends, with values drawn so that the fast path's
// conditions hold often; the others leave fields out at random.
func randomInput(r *rand.Rand, now int64, complete bool) map[string]any {
	some := func(p int) bool { return complete || r.IntN(p) > 0 }
	roles := []string{"", "no_access", "read", "contributor", "write", "admin", "bogus"}
	in := map[string]any{"now_ns": now, "method": pick(r, "GET", "GET", "GET", "HEAD", "OPTIONS", "POST", "PUT", "DELETE")}
	if some(5) {
		in["browser"] = r.IntN(2) == 0
	}
	rt := map[string]any{"kind": pick(r, "none", "org", "resource", "resource", "resource", "resource", "login_flow")}
	for _, f := range []string{"api", "git", "settings", "discussions", "git_read"} {
		if some(4) {
			rt[f] = r.IntN(5) == 0
		}
	}
	in["route"] = rt
	if some(8) {
		in["org"] = pick(r, "acme", "acme", "globex", "initech", "hooli", "umbrella", "nope")
	}
	users := []string{"u-a", "u-a", "u-bob", "u-carl", "u-e"}
	if some(4) {
		in["user"] = pick(r, users...)
	}
	if r.IntN(4) > 0 {
		m := map[string]any{}
		if some(6) {
			m["role"] = pick(r, roles...)
		}
		if some(3) {
			g := map[string]any{}
			for _, n := range []string{"vision", "nlp"} {
				if r.IntN(3) == 0 {
					g[n] = pick(r, roles[1:6]...)
				}
			}
			m["resource_groups"] = g
		}
		in["membership"] = m
	}
	if r.IntN(4) > 0 {
		age := int64(pick(r, 0, time.Nanosecond, 2*time.Hour, 12*time.Hour-1, 12*time.Hour, 168*time.Hour-1, 168*time.Hour, 200*time.Hour))
		in["session"] = map[string]any{"authenticated_at_ns": now - age, "age_ns": age}
	}
	if r.IntN(5) > 0 {
		res := map[string]any{}
		if some(8) {
			res["visibility"] = pick(r, "public", "private", "private")
		}
		if some(4) {
			res["resource_group"] = pick(r, "", "", "", "vision", "nlp")
		}
		if some(4) {
			res["created_by"] = pick(r, "", "", "u-a", "u-e")
		}
		in["resource"] = res
	}
	return in
}
