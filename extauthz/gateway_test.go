package extauthz

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/internal/testkeys"
	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/store/memory"
)

// fixture is a gateway configured from testdata/gateway with a fresh
// platform key, a memory store seeded with state relative to now.
type fixture struct {
	keys  *testkeys.Keys
	cfg   *config.Config
	store *memory.Store
	now   time.Time
	auth  *Authorizer
}

// newFixture copies testdata/gateway into a temp folder, writes the JWKS
// of a fresh key next to it and builds an Authorizer. extraPolicy, when not
// empty, is written to policy_dir.
func newFixture(t testing.TB, extraPolicy string) *fixture {
	t.Helper()
	dir := t.TempDir()
	copyDir(t, "testdata/gateway", dir)
	k := testkeys.New()
	must(t, os.WriteFile(filepath.Join(dir, "platform-jwks.json"), k.JWKS, 0o600))
	if extraPolicy != "" {
		must(t, os.MkdirAll(filepath.Join(dir, "policies"), 0o755))
		must(t, os.WriteFile(filepath.Join(dir, "policies", "extra.rego"), []byte(extraPolicy), 0o600))
		b, err := os.ReadFile(filepath.Join(dir, "ssogate.yaml"))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(dir, "ssogate.yaml"), append(b, "policy_dir: policies\n"...), 0o600))
	}
	cfg, err := config.Load(filepath.Join(dir, "ssogate.yaml"))
	if err != nil {
		t.Fatalf("loading test config: %v", err)
	}
	f := &fixture{keys: k, cfg: cfg, store: memory.New(), now: time.Now()}
	seed(t, f.store, f.now)
	f.auth, err = New(context.Background(), cfg, f.store, Options{Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// seed writes the test state: acme (enforced, 168h) and globex (optional).
func seed(t testing.TB, s store.Store, now time.Time) {
	ctx := context.Background()
	for _, m := range []store.Membership{
		{Org: "acme", User: "u-alice", Role: "write", ResourceGroups: map[string]string{"vision": "read"}},
		{Org: "acme", User: "u-bob", Role: "read"},
		{Org: "acme", User: "u-dave", Role: "admin"},
		{Org: "acme", User: "u-erin", Role: "contributor"},
		{Org: "acme", User: "u-mallory", Role: "read"},
		{Org: "globex", User: "u-alice", Role: "read"},
	} {
		must(t, s.PutMembership(ctx, m))
	}
	for _, v := range []store.Session{
		{Org: "acme", User: "u-alice", AuthenticatedAt: now.Add(-time.Hour)},
		{Org: "acme", User: "u-dave", AuthenticatedAt: now.Add(-200 * time.Hour)},
		{Org: "acme", User: "u-erin", AuthenticatedAt: now.Add(-time.Hour)},
	} {
		must(t, s.PutSession(ctx, v))
	}
	for _, r := range []store.Resource{
		{Type: "model", ID: "acme/secret-model", Visibility: "private"},
		{Type: "model", ID: "acme/open-model", Visibility: "public"},
		{Type: "model", ID: "acme/vision-model", Visibility: "private", ResourceGroup: "vision"},
		{Type: "model", ID: "acme/erin-model", Visibility: "private", CreatedBy: "u-erin"},
		{Type: "dataset", ID: "acme/train-data", Visibility: "private"},
		{Type: "space", ID: "acme/demo", Visibility: "public"},
		{Type: "model", ID: "globex/plans", Visibility: "private"},
	} {
		must(t, s.PutResource(ctx, r))
	}
}

// request builds a CheckRequest as Envoy's ext_authz filter sends it.
func request(method, path string, headers map[string]string) *authv3.CheckRequest {
	h := map[string]string{":authority": "hub.example.test", ":method": method, ":path": path, ":scheme": "https"}
	for k, v := range headers {
		h[k] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "test-1", Method: method, Path: path, Host: "hub.example.test", Scheme: "https",
			Protocol: "HTTP/1.1", Headers: h,
		}},
	}}
}

func copyDir(t testing.TB, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if info.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o600)
	})
	must(t, err)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
