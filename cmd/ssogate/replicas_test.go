package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssogate/ssogate/internal/oidcop"
	"github.com/ssogate/ssogate/internal/redistest"
)

// TestReplicasShareRedis runs two ssogate processes on one Redis with a
// cache TTL of 30s, so that only cross-replica invalidation can make a
// change on one replica visible on the other within the required second.
// A user logs in on A through the real OIDC login flow; revocations and a
// role change on one replica are applied by the other within a second.
func TestReplicasShareRedis(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	g := newGateway(t)
	httpA := freeAddr(t)
	publicURL := "http://" + httpA // the proxy's origin: here replica A itself
	useTestIdP(t, g, publicURL, oidcop.User{ID: "idp-mallory", Email: "mallory@acme.example", EmailVerified: true})
	storeYAML := fmt.Sprintf("{backend: redis, addr: %q, cache_ttl: 30s}", srv.Addr)
	cfgA, grpcA, _ := writeConfigAt(t, g, "a.yaml", publicURL, httpA, storeYAML)
	cfgB, grpcB, httpB := writeConfigAt(t, g, "b.yaml", publicURL, freeAddr(t), storeYAML)
	if code, out, errOut := runBinary(t, "import", "--config", cfgA, "--state", g.state); code != 0 || !strings.Contains(out, "imported 3 memberships, 1 sessions and 2 catalog entries") {
		t.Fatalf("import: exit %d: %s%s", code, out, errOut)
	}
	a := startProc(t, "replica A", cfgA, grpcA, httpA)
	b := startProc(t, "replica B", cfgB, grpcB, httpB)

	aliceToken, malloryToken := g.keys.Token("u-alice", time.Hour), g.keys.Token("u-mallory", time.Hour)
	alice := checkRequest("GET", "/acme/secret-model", map[string]string{"cookie": "hub_session=" + aliceToken})
	mallory := checkRequest("GET", "/acme/secret-model", map[string]string{"authorization": "Bearer " + malloryToken})
	bobWrite := checkRequest("POST", "/api/models/acme/secret-model/commit/main", map[string]string{"authorization": "Bearer " + g.keys.Token("u-bob", time.Hour)})
	for _, p := range []*proc{a, b} { // warm both caches, "not found" results included
		for i := 0; i < 3; i++ {
			expectStatus(t, p, alice, 200)
			expectStatus(t, p, mallory, 401)
			expectStatus(t, p, bobWrite, 403)
		}
	}

	// Mallory logs in on A: B, which cached "no session", allows her
	// within a second.
	ssoLogin(t, publicURL, malloryToken, "")
	expectStatus(t, a, mallory, 200)
	within(t, time.Second, "B allows mallory after her login on A", func() bool { return mustCheck(t, b, mallory) == 200 })

	// Her session is revoked on B: A denies within a second.
	if code, body := b.admin(t, "DELETE", "/admin/v1/orgs/acme/sessions/u-mallory", ""); code != 204 {
		t.Fatalf("revoke: %d %s", code, body)
	}
	took := within(t, time.Second, "A denies mallory after B revoked her session", func() bool { return mustCheck(t, a, mallory) == 401 })
	t.Logf("revocation on B seen by A after %v", took)

	// Alice logs out on B: A denies within a second.
	if code := logout(t, httpB, aliceToken); code != http.StatusNoContent {
		t.Fatalf("logout on B: %d", code)
	}
	within(t, time.Second, "A denies alice after her logout on B", func() bool { return mustCheck(t, a, alice) == 401 })

	// Alice logs in again, starting on A and finishing on B: the pending
	// login is shared. Both replicas allow her.
	ssoLogin(t, publicURL, aliceToken, httpB)
	expectStatus(t, b, alice, 200)
	within(t, time.Second, "A allows alice after her login finished on B", func() bool { return mustCheck(t, a, alice) == 200 })

	// A membership change on A: B applies the new role within a second.
	if code, body := a.admin(t, "PUT", "/admin/v1/orgs/acme/members/u-bob", `{"role":"write"}`); code != 200 {
		t.Fatalf("put member: %d %s", code, body)
	}
	within(t, time.Second, "B lets bob write after A raised his role", func() bool { return mustCheck(t, b, bobWrite) == 200 })

	if code, body := b.admin(t, "GET", "/admin/v1/orgs/acme/sessions", ""); code != 200 || strings.Contains(body, "u-mallory") || !strings.Contains(body, "u-alice") {
		t.Errorf("sessions: %d %s, want alice's and not mallory's", code, body)
	}
	a.stop(t)
	b.stop(t)
}

// logout posts the SSO logout of org acme with a bearer platform token.
func logout(t *testing.T, httpAddr, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+httpAddr+"/organizations/acme/sso/logout", nil)
	req.Header.Set("authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("logout: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRedisOutageFailsClosed kills redis-server during a burst of Checks
// and restarts it: no decision that should deny allows, the process keeps
// serving, and decisions recover by themselves.
func TestRedisOutageFailsClosed(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Persistent: true})
	g := newGateway(t)
	cfg, grpcAddr, httpAddr := writeConfig(t, g, "r.yaml", fmt.Sprintf("{backend: redis, addr: %q}", srv.Addr))
	if code, out, errOut := runBinary(t, "import", "--config", cfg, "--state", g.state); code != 0 {
		t.Fatalf("import: exit %d: %s%s", code, out, errOut)
	}
	p := startProc(t, "serve", cfg, grpcAddr, httpAddr)

	// Each kind of request, with the statuses it may get: its right
	// answer, or 503 while the store is down. Nothing else.
	kinds := []struct {
		name    string
		req     *checkReq
		allowed [2]int
	}{
		{"member with session", checkRequest("GET", "/acme/secret-model", map[string]string{"cookie": "hub_session=" + g.keys.Token("u-alice", time.Hour)}), [2]int{200, 503}},
		{"member without session", checkRequest("GET", "/acme/secret-model", map[string]string{"authorization": "Bearer " + g.keys.Token("u-mallory", time.Hour), "accept": "text/html"}), [2]int{302, 503}},
		{"anonymous, private model", checkRequest("GET", "/acme/secret-model", nil), [2]int{404, 503}},
		{"non-member, private model", checkRequest("GET", "/acme/secret-model", map[string]string{"authorization": "Bearer " + g.keys.Token("u-eve", time.Hour)}), [2]int{404, 503}},
		{"reader writing", checkRequest("POST", "/api/models/acme/secret-model/commit/main", map[string]string{"authorization": "Bearer " + g.keys.Token("u-bob", time.Hour)}), [2]int{403, 503}},
	}
	for _, k := range kinds {
		expectStatus(t, p, k.req, k.allowed[0])
	}

	var (
		stop      atomic.Bool
		checks    atomic.Int64
		unavail   atomic.Int64
		mu        sync.Mutex
		wrong     []string
		wg        sync.WaitGroup
		rpcErrors atomic.Int64
	)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; !stop.Load(); i++ {
				k := kinds[i%len(kinds)]
				st, err := p.check(k.req)
				checks.Add(1)
				switch {
				case err != nil:
					rpcErrors.Add(1)
				case st == 503:
					unavail.Add(1)
				case st != k.allowed[0]:
					mu.Lock()
					wrong = append(wrong, fmt.Sprintf("%s: %d", k.name, st))
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	srv.Kill()
	within(t, 3*time.Second, "decisions deny with 503 while Redis is down", func() bool { return unavail.Load() > 0 })
	time.Sleep(500 * time.Millisecond)
	if !p.healthy() {
		t.Error("the gRPC health service stopped serving during the outage")
	}
	srv.Restart()
	took := within(t, 10*time.Second, "decisions recover after Redis returns", func() bool {
		return mustCheck(t, p, kinds[0].req) == 200 && mustCheck(t, p, kinds[1].req) == 302
	})
	time.Sleep(300 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	t.Logf("%d checks, %d answered 503; recovered %v after the restart", checks.Load(), unavail.Load(), took)
	if len(wrong) > 0 {
		t.Errorf("%d decisions were neither right nor 503, e.g. %v", len(wrong), wrong[:min(len(wrong), 5)])
	}
	if n := rpcErrors.Load(); n > 0 {
		t.Errorf("%d Checks failed at the gRPC level instead of returning a decision", n)
	}
	for _, k := range kinds {
		expectStatus(t, p, k.req, k.allowed[0])
	}
	p.stop(t)
	if s := p.stderr.String(); strings.Contains(s, "panic") {
		t.Errorf("serve logged a panic:\n%s", s)
	}
}

// TestBoltStateSurvivesRestart: sessions, memberships and catalog entries
// written to the bolt file (by import and by the admin API) are there
// after serve restarts.
func TestBoltStateSurvivesRestart(t *testing.T) {
	g := newGateway(t)
	cfg, grpcAddr, httpAddr := writeConfig(t, g, "bolt.yaml", "{backend: bolt, path: state.db}")
	if code, out, errOut := runBinary(t, "import", "--config", cfg, "--state", g.state); code != 0 {
		t.Fatalf("import: exit %d: %s%s", code, out, errOut)
	}
	alice := checkRequest("GET", "/acme/secret-model", map[string]string{"cookie": "hub_session=" + g.keys.Token("u-alice", time.Hour)})
	carol := checkRequest("GET", "/acme/secret-model", map[string]string{"authorization": "Bearer " + g.keys.Token("u-carol", time.Hour)})
	anonNew := checkRequest("GET", "/acme/new-model", nil)

	p := startProc(t, "serve 1", cfg, grpcAddr, httpAddr)
	expectStatus(t, p, alice, 200)
	expectStatus(t, p, carol, 404) // not a member yet
	expectStatus(t, p, anonNew, 404)
	if code, body := p.admin(t, "PUT", "/admin/v1/orgs/acme/members/u-carol", `{"role":"read"}`); code != 200 {
		t.Fatalf("put member: %d %s", code, body)
	}
	if code, body := p.admin(t, "PUT", "/admin/v1/resources/model/acme/new-model", `{"visibility":"public"}`); code != 200 {
		t.Fatalf("put resource: %d %s", code, body)
	}
	expectStatus(t, p, carol, 401) // a member without a session
	expectStatus(t, p, anonNew, 200)
	p.stop(t)

	p = startProc(t, "serve 2", cfg, grpcAddr, httpAddr)
	expectStatus(t, p, alice, 200)
	expectStatus(t, p, carol, 401)
	expectStatus(t, p, anonNew, 200)
	p.stop(t)
}

// TestImportValidatesFirst: a snapshot with any problem writes nothing.
func TestImportValidatesFirst(t *testing.T) {
	g := newGateway(t)
	boltCfg, _, _ := writeConfig(t, g, "bolt.yaml", "{backend: bolt, path: state.db}")
	memCfg, _, _ := writeConfig(t, g, "mem.yaml", "{backend: memory}")
	bad := filepath.Join(g.dir, "bad.yaml")
	writeFile(t, bad, `memberships:
  - {org: acme, user: u-ok, role: read}
  - {org: initech, user: u-x, role: read}
resources:
  - {type: model, id: globex/m, visibility: public}
`)
	badRole := filepath.Join(g.dir, "bad-role.yaml")
	writeFile(t, badRole, "memberships:\n  - {org: acme, user: u-ok, role: owner}\n")
	for _, tc := range []struct {
		name  string
		args  []string
		want  []string
		code  int
		wrote bool
	}{
		{"unknown orgs", []string{"import", "--config", boltCfg, "--state", bad}, []string{`bad.yaml: memberships[1].org: org "initech" has no org file`, `resources[0].id: org "globex"`}, 2, false},
		{"unknown role", []string{"import", "--config", boltCfg, "--state", badRole}, []string{"bad-role.yaml:2:", `unknown role "owner"`}, 2, false},
		{"memory backend", []string{"import", "--config", memCfg, "--state", g.state}, []string{"memory"}, 2, false},
		{"missing flags", []string{"import", "--config", boltCfg}, []string{"--state"}, 2, false},
		{"valid", []string{"import", "--config", boltCfg, "--state", g.state}, nil, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d: %s%s", code, tc.code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			_, err := os.Stat(filepath.Join(g.dir, "state.db"))
			if wrote := err == nil; wrote != tc.wrote {
				t.Errorf("state.db exists = %v, want %v", wrote, tc.wrote)
			}
		})
	}
}

func expectStatus(t *testing.T, p *proc, req *checkReq, want int) {
	t.Helper()
	if got := mustCheck(t, p, req); got != want {
		t.Fatalf("%s: %s %s: status %d, want %d", p.name, req.GetAttributes().GetRequest().GetHttp().GetMethod(),
			req.GetAttributes().GetRequest().GetHttp().GetPath(), got, want)
	}
}

func mustCheck(t *testing.T, p *proc, req *checkReq) int {
	t.Helper()
	st, err := p.check(req)
	if err != nil {
		t.Fatalf("%s: Check: %v", p.name, err)
	}
	return st
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
