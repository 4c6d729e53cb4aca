package policies

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// benchInputs are the policy inputs of the request mixes that ssogate-bench
// sends, as extauthz builds them.
func benchInputs(now time.Time) map[string]map[string]any {
	route := func(kind string) map[string]any {
		return map[string]any{"kind": kind, "api": false, "git": false, "settings": false, "discussions": false, "git_read": false}
	}
	api := route("resource")
	api["api"] = true
	sessionAllow := func(org string) map[string]any {
		return map[string]any{
			"now_ns": now.UnixNano(), "method": "GET", "browser": false, "org": org, "route": route("resource"),
			"user":       "u-alice",
			"membership": map[string]any{"role": "write", "resource_groups": map[string]any{"vision": "read"}},
			"session":    map[string]any{"authenticated_at_ns": now.Add(-time.Hour).UnixNano(), "age_ns": time.Hour.Nanoseconds()},
			"resource":   map[string]any{"visibility": "private", "resource_group": "", "created_by": ""},
		}
	}
	return map[string]map[string]any{
		"session-allow": sessionAllow("initech"),
		// The same in an org with external collaborators (another fast path body).
		"session-allow-ext-org": sessionAllow("acme"),
		// A member with a valid session writes (full_decision).
		"session-write": func() map[string]any {
			in := sessionAllow("initech")
			in["method"] = "PUT"
			return in
		}(),
		"public-read": {
			"now_ns": now.UnixNano(), "method": "GET", "browser": false, "org": "acme", "route": route("resource"),
			"resource": map[string]any{"visibility": "public", "resource_group": "", "created_by": ""},
		},
		"redirect": {
			"now_ns": now.UnixNano(), "method": "GET", "browser": true, "org": "acme", "route": route("resource"),
			"user":       "u-mallory",
			"membership": map[string]any{"role": "read", "resource_groups": map[string]any{}},
			"resource":   map[string]any{"visibility": "public", "resource_group": "", "created_by": ""},
		},
		"api-401": {
			"now_ns": now.UnixNano(), "method": "GET", "browser": false, "org": "acme", "route": api,
			"user":       "u-dave",
			"membership": map[string]any{"role": "admin", "resource_groups": map[string]any{}},
			"session":    map[string]any{"authenticated_at_ns": now.Add(-300 * time.Hour).UnixNano(), "age_ns": (300 * time.Hour).Nanoseconds()},
			"resource":   map[string]any{"visibility": "private", "resource_group": "", "created_by": ""},
		},
		"not-org": {
			"now_ns": now.UnixNano(), "method": "GET", "browser": false, "route": route("none"),
		},
	}
}

// benchOrgs are testOrgs plus an org without external collaborators, as
// most orgs are.
func benchOrgs() map[string]Org {
	orgs := testOrgs()
	orgs["initech"] = Org{SSOEnabled: true, Mode: "enforced", DefaultRole: "read", SessionTimeout: 168 * time.Hour}
	return orgs
}

// BenchmarkDecide measures one policy evaluation (Engine.Decide) per
// request mix, without the gRPC, identity and store parts of a Check.
func BenchmarkDecide(b *testing.B) {
	ctx := context.Background()
	e, err := New(ctx, benchOrgs(), nil)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	for _, name := range []string{"session-allow", "session-allow-ext-org", "session-write", "public-read", "redirect", "api-401", "not-org"} {
		v, err := ast.InterfaceToValue(benchInputs(now)[name])
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.Decide(ctx, v); err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := processCPU()
			for b.Loop() {
				if _, err := e.Decide(ctx, v); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu)
		})
	}
}

// processCPU returns the CPU time (user+system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process CPU time per operation since start: on a
// shared machine it is steadier than wall time, and it includes the
// garbage collector's work on other threads.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkEvaluate is BenchmarkDecide without the hand-off to an
// evaluation worker: the policy evaluation alone.
func BenchmarkEvaluate(b *testing.B) {
	ctx := context.Background()
	e, err := New(ctx, benchOrgs(), nil)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	for _, name := range []string{"session-allow", "session-allow-ext-org", "session-write", "public-read", "redirect", "api-401", "not-org"} {
		v, err := ast.InterfaceToValue(benchInputs(now)[name])
		if err != nil {
			b.Fatal(err)
		}
		c := newEvalCaches()
		// The org's reference, as extauthz holds it.
		var org OrgRef
		if t := v.(ast.Object).Get(keyOrg); t != nil {
			if s, ok := t.Value.(ast.String); ok {
				org = e.Org(string(s))
			}
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := processCPU()
			for b.Loop() {
				if _, err := e.evaluate(ctx, v, org, c); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu)
		})
	}
}
