package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ssogate/ssogate/internal/syncbuf"
	"github.com/ssogate/ssogate/internal/testkeys"
)

// Helpers for tests that run ssogate as separate processes (replicas,
// restarts, store outages).

const adminToken = "test-admin-token-7f3a"

var build struct {
	once sync.Once
	dir  string // removed by TestMain after the tests
	bin  string
	err  error
	out  []byte
}

// TestMain removes the ssogate binary the tests built (about 60 MB).
func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// ssogateBinary builds cmd/ssogate once per test run.
func ssogateBinary(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "ssogate-bin-")
		if err != nil {
			build.err = err
			return
		}
		build.dir = dir
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		build.bin = filepath.Join(dir, "ssogate")
		build.out, build.err = exec.Command(goTool, "build", "-o", build.bin, ".").CombinedOutput()
	})
	if build.err != nil {
		t.Fatalf("building ssogate: %v\n%s", build.err, build.out)
	}
	return build.bin
}

// writeConfig writes a gateway file named name into g's folder, sharing
// g's platform keys and org files, with fresh listen addresses, the admin
// token from SSOGATE_TEST_ADMIN_TOKEN and the given store mapping.
func writeConfig(t *testing.T, g *gateway, name, storeYAML string) (cfgPath, grpcAddr, httpAddr string) {
	t.Helper()
	return writeConfigAt(t, g, name, "https://hub.example.test", freeAddr(t), storeYAML)
}

// writeConfigAt is writeConfig with a given public_url and HTTP address.
func writeConfigAt(t *testing.T, g *gateway, name, publicURL, httpAddr, storeYAML string) (cfgPath, grpcAddr, _ string) {
	t.Helper()
	grpcAddr = freeAddr(t)
	cfgPath = filepath.Join(g.dir, name)
	content := fmt.Sprintf(`public_url: %s
listen: {grpc: %q, http: %q}
identity:
  issuer: %s
  audiences: [%s]
  jwks_file: platform-jwks.json
  cookie: hub_session
store: %s
orgs_dir: orgs
admin_token_env: SSOGATE_TEST_ADMIN_TOKEN
`, publicURL, grpcAddr, httpAddr, testkeys.Issuer, testkeys.Audience, storeYAML)
	if err := os.WriteFile(cfgPath, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, grpcAddr, httpAddr
}

// syncBuffer collects logs or process output written concurrently.
type syncBuffer = syncbuf.Buffer

// proc is a running `ssogate serve`.
type proc struct {
	name, cfg, grpcAddr, httpAddr string
	cmd                           *exec.Cmd
	stderr                        *syncBuffer
	exited                        chan struct{}
	conn                          *grpc.ClientConn
	authz                         authv3.AuthorizationClient
}

// oidcSecret is the OIDC client secret of the test org files that use
// internal/oidcop (SSOGATE_TEST_OIDC_SECRET).
const oidcSecret = "test-oidc-secret-91c2"

func binaryEnv() []string {
	return append(os.Environ(), "SSOGATE_TEST_ADMIN_TOKEN="+adminToken, "SSOGATE_TEST_OIDC_SECRET="+oidcSecret)
}

// startProc starts serve on cfg and waits until gRPC health is SERVING.
func startProc(t *testing.T, name, cfg, grpcAddr, httpAddr string) *proc {
	t.Helper()
	return startProcLevel(t, name, cfg, grpcAddr, httpAddr, "warn")
}

// startProcLevel is startProc with the given --log-level.
func startProcLevel(t *testing.T, name, cfg, grpcAddr, httpAddr, level string) *proc {
	t.Helper()
	p := &proc{name: name, cfg: cfg, grpcAddr: grpcAddr, httpAddr: httpAddr, stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(ssogateBinary(t), "serve", "--config", cfg, "--log-level", level)
	p.cmd.Env = binaryEnv()
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s stderr:\n%s", p.name, p.stderr.String())
		}
	})
	var err error
	p.conn, err = grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.conn.Close() })
	p.authz = authv3.NewAuthorizationClient(p.conn)
	deadline := time.Now().Add(15 * time.Second)
	for !p.healthy() {
		select {
		case <-p.exited:
			t.Fatalf("%s exited at start: %s\n%s", name, p.cmd.ProcessState, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not healthy within 15s:\n%s", name, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

func (p *proc) healthy() bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	hc, err := healthpb.NewHealthClient(p.conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err == nil && hc.GetStatus() == healthpb.HealthCheckResponse_SERVING
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if !p.cmd.ProcessState.Success() {
			t.Errorf("%s exited with %s:\n%s", p.name, p.cmd.ProcessState, p.stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("%s did not stop after SIGTERM", p.name)
	}
}

func (p *proc) kill() {
	select {
	case <-p.exited:
	default:
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// check sends one CheckRequest and returns the decision's HTTP status
// (200 for allow).
func (p *proc) check(req *authv3.CheckRequest) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := p.authz.Check(ctx, req)
	if err != nil {
		return 0, err
	}
	if resp.GetStatus().GetCode() == 0 {
		return 200, nil
	}
	return int(resp.GetDeniedResponse().GetStatus().GetCode()), nil
}

// admin calls the admin API with the test token.
func (p *proc) admin(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+p.httpAddr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("admin %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// runBinary runs the ssogate binary to completion.
func runBinary(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(ssogateBinary(t), args...)
	cmd.Env = binaryEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil && cmd.ProcessState == nil {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// checkReq is a CheckRequest.
type checkReq = authv3.CheckRequest

// checkRequest builds a CheckRequest as Envoy's ext_authz filter sends it.
func checkRequest(method, path string, headers map[string]string) *authv3.CheckRequest {
	h := map[string]string{":method": method, ":path": path, ":authority": "hub.example.test", ":scheme": "https"}
	for k, v := range headers {
		h[k] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: method, Path: path, Host: "hub.example.test", Headers: h},
	}}}
}

// within polls ok every 5ms until it holds or d has passed, and returns
// how long it took.
func within(t *testing.T, d time.Duration, what string, ok func() bool) time.Duration {
	t.Helper()
	t0 := time.Now()
	for !ok() {
		if time.Since(t0) > d {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(t0)
}
