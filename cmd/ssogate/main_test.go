package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/ssogate/ssogate/internal/testkeys"
)

// gateway writes a config with free loopback ports, a fresh platform key,
// a state file relative to now and a set of CheckRequests into a temp dir.
type gateway struct {
	dir, cfg, state string
	grpcAddr        string
	httpAddr        string
	keys            *testkeys.Keys
	requests        map[string]string // name → request file
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func newGateway(t *testing.T) *gateway {
	t.Helper()
	g := &gateway{dir: t.TempDir(), keys: testkeys.New(), grpcAddr: freeAddr(t), httpAddr: freeAddr(t), requests: map[string]string{}}
	write := func(name, content string) string {
		p := filepath.Join(g.dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("platform-jwks.json", string(g.keys.JWKS))
	g.cfg = write("ssogate.yaml", fmt.Sprintf(`public_url: https://hub.example.test
listen: {grpc: %q, http: %q}
identity:
  issuer: %s
  audiences: [%s]
  jwks_file: platform-jwks.json
  cookie: hub_session
store: {backend: memory}
orgs_dir: orgs
`, g.grpcAddr, g.httpAddr, testkeys.Issuer, testkeys.Audience))
	write("orgs/acme.yaml", `name: acme
default_role: read
sso:
  enabled: true
  protocol: oidc
  oidc: {issuer: https://idp.acme.example, client_id: hub-acme}
  external_collaborators: [u-bob]
`)
	now := time.Now().UTC()
	g.state = write("state.yaml", fmt.Sprintf(`memberships:
  - {org: acme, user: u-alice, role: write}
  - {org: acme, user: u-bob, role: read}
  - {org: acme, user: u-mallory, role: read}
sessions:
  - {org: acme, user: u-alice, authenticated_at: %q}
resources:
  - {type: model, id: acme/secret-model, visibility: private}
  - {type: model, id: acme/open-model, visibility: public}
`, now.Add(-time.Hour).Format(time.RFC3339)))
	req := func(name, method, path string, headers map[string]string) {
		h := map[string]string{":method": method, ":path": path, ":authority": "hub.example.test", ":scheme": "https"}
		for k, v := range headers {
			h[k] = v
		}
		r := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
			Http: &authv3.AttributeContext_HttpRequest{Method: method, Path: path, Host: "hub.example.test", Headers: h},
		}}}
		b, err := protojson.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		g.requests[name] = write("requests/"+name+".json", string(b))
	}
	alice := "hub_session=" + g.keys.Token("u-alice", 90*24*time.Hour)
	req("allow", "GET", "/acme/secret-model", map[string]string{"cookie": alice})
	req("public", "GET", "/acme/open-model", map[string]string{"accept": "*/*"})
	req("not-found", "GET", "/acme/secret-model", nil)
	req("redirect", "GET", "/acme/secret-model?x=1", map[string]string{"cookie": "hub_session=" + g.keys.Token("u-mallory", time.Hour), "accept": "text/html"})
	req("forbidden", "POST", "/api/models/acme/secret-model/commit/main", map[string]string{"authorization": "Bearer " + g.keys.Token("u-bob", time.Hour)})
	req("bad-path", "GET", "/acme%2fsecret-model", nil)
	req("spoofed", "GET", "/acme/secret-model", map[string]string{"cookie": alice, "x-sso-role": "admin", "x-sso-prompt": "1"})
	return g
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// startServe runs serve in the background and waits for gRPC health.
func startServe(t *testing.T, g *gateway) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, g.cfg, g.state, 5*time.Second, slog.New(slog.DiscardHandler))
	}()
	conn, err := grpc.NewClient(g.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		hc, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
		if err == nil && hc.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not healthy: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			return fmt.Errorf("serve did not stop")
		}
	}
}

// TestServeAndEvalAgree sends real CheckRequests over a real gRPC
// connection and compares each response with `ssogate eval`'s.
func TestServeAndEvalAgree(t *testing.T) {
	g := newGateway(t)
	stop := startServe(t, g)
	want := map[string]int32{"allow": 0, "public": 0, "not-found": 404, "redirect": 302, "forbidden": 403, "bad-path": 400, "spoofed": 0}
	for name, file := range g.requests {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runCLI("check", "--addr", g.grpcAddr, "--request", file)
			if code != 0 {
				t.Fatalf("check exit %d: %s", code, errOut)
			}
			served := &authv3.CheckResponse{}
			if err := protojson.Unmarshal([]byte(out), served); err != nil {
				t.Fatalf("check output is not a CheckResponse: %v\n%s", err, out)
			}
			code, out, errOut = runCLI("eval", "--config", g.cfg, "--state", g.state, "--request", file)
			if code != 0 {
				t.Fatalf("eval exit %d: %s", code, errOut)
			}
			evaluated := &authv3.CheckResponse{}
			if err := protojson.Unmarshal([]byte(out), evaluated); err != nil {
				t.Fatalf("eval output is not a CheckResponse: %v", err)
			}
			if !proto.Equal(served, evaluated) {
				t.Errorf("serve and eval disagree:\nserve: %v\neval:  %v", served, evaluated)
			}
			if got := evaluated.GetDeniedResponse().GetStatus().GetCode(); int32(got) != want[name] {
				t.Errorf("status %d, want %d", got, want[name])
			}
		})
	}
	resp, err := http.Get("http://" + g.httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `ssogate_decisions_total{reason="not_found",status="404"} 1`) {
		t.Errorf("/metrics does not count the 404:\n%s", body)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve returned %v after shutdown", err)
	}
	if c, err := net.DialTimeout("tcp", g.grpcAddr, time.Second); err == nil {
		c.Close()
		t.Error("gRPC listener still accepts connections after shutdown")
	}
}

func TestEvalInputErrorsExit2(t *testing.T) {
	g := newGateway(t)
	bad := filepath.Join(g.dir, "bad.json")
	os.WriteFile(bad, []byte(`{"attributes": {"request": {"http": {"pathz": "/x"}}}}`), 0o600)
	badState := filepath.Join(g.dir, "bad-state.yaml")
	os.WriteFile(badState, []byte("memberships:\n  - {org: acme, user: u, role: owner}\n"), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad request field", []string{"eval", "--config", g.cfg, "--state", g.state, "--request", bad}, "bad.json"},
		{"bad state", []string{"eval", "--config", g.cfg, "--state", badState, "--request", g.requests["allow"]}, "bad-state.yaml:2"},
		{"bad now", []string{"eval", "--config", g.cfg, "--request", g.requests["allow"], "--now", "yesterday"}, "--now"},
		{"missing config", []string{"eval", "--config", filepath.Join(g.dir, "nope.yaml"), "--request", g.requests["allow"]}, "nope.yaml"},
		{"missing request", []string{"eval", "--config", g.cfg, "--request", filepath.Join(g.dir, "nope.json")}, "nope.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(tc.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if out != "" {
				t.Errorf("stdout not empty: %q", out)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q does not name %q", errOut, tc.want)
			}
		})
	}
}

func TestEvalReadsStdinAndNow(t *testing.T) {
	g := newGateway(t)
	b, _ := os.ReadFile(g.requests["allow"])
	var out bytes.Buffer
	// A month later alice's session (168h) has expired: 401 for a non-browser.
	later := time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	code := run([]string{"eval", "--config", g.cfg, "--state", g.state, "--request", "-", "--now", later}, bytes.NewReader(b), &out, &bytes.Buffer{})
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	resp := &authv3.CheckResponse{}
	if err := protojson.Unmarshal(out.Bytes(), resp); err != nil {
		t.Fatal(err)
	}
	if got := resp.GetDeniedResponse().GetStatus().GetCode(); got != 401 {
		t.Errorf("status %d, want 401 with --now a month later", got)
	}
}

func TestValidate(t *testing.T) {
	g := newGateway(t)
	code, out, _ := runCLI("validate", "--config", g.cfg)
	if code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("valid config: exit %d, %s", code, out)
	}
	os.WriteFile(filepath.Join(g.dir, "orgs", "globex.yaml"), []byte("name: Globex\ndefault_role: owner\nsso:\n  enabled: true\n  protocol: oidc\n  session_timeout: 1x\n  colour: red\n"), 0o600)
	os.MkdirAll(filepath.Join(g.dir, "policies"), 0o755)
	os.WriteFile(filepath.Join(g.dir, "policies", "x.rego"), []byte("package ssogate.custom\n\ndeny contains m if {\n"), 0o600)
	code, out, _ = runCLI("validate", "--config", g.cfg)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{"globex.yaml:1:", "globex.yaml:2:", "globex.yaml:6:", "globex.yaml:7:", `unknown key "colour"`} {
		if !strings.Contains(out, want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
	// With the org file fixed, the broken policy module is reported.
	os.Remove(filepath.Join(g.dir, "orgs", "globex.yaml"))
	os.WriteFile(g.cfg, append(mustRead(t, g.cfg), "policy_dir: policies\n"...), 0o600)
	code, out, _ = runCLI("validate", "--config", g.cfg)
	if code != 1 || !strings.Contains(out, "x.rego:") {
		t.Fatalf("broken policy: exit %d, output %s", code, out)
	}
	// serve refuses the same config at start.
	if err := serve(context.Background(), g.cfg, "", time.Second, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "x.rego") {
		t.Errorf("serve with a broken policy: %v", err)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// --state would re-seed a persistent store at every start, undoing
// revocations made since: serve refuses it and points to import.
func TestServeStateOnlyForMemory(t *testing.T) {
	g := newGateway(t)
	b := mustRead(t, g.cfg)
	b = []byte(strings.Replace(string(b), "store: {backend: memory}", "store: {backend: bolt, path: state.db}", 1))
	if err := os.WriteFile(g.cfg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	err := serve(context.Background(), g.cfg, g.state, time.Second, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "ssogate import") {
		t.Fatalf("serve --state on bolt: err = %v, want a refusal naming import", err)
	}
	if _, statErr := os.Stat(filepath.Join(g.dir, "state.db")); statErr == nil {
		t.Error("the bolt file was created although serve refused to start")
	}
}
