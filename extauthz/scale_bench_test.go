package extauthz

import (
	"context"
	"fmt"
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

// BenchmarkCheckScale measures a member's read (valid SSO session, token
// in a cookie, a private model, full default policy) with 10 and 10,000
// orgs and 1,000 and 1,000,000 SSO sessions in the memory store (issue 6:
// CPU per decision may grow at most 15% between them). Like the load
// generator's pool, the loop cycles through 1,000 distinct requests of
// 1,000 members with their own tokens, spread over up to 1,000 orgs, with
// ten catalog entries per org. In-process, so without gRPC and the load
// generator; docs/performance.md has the server-side figures.
//
//	go test -run '^$' -bench CheckScale -benchmem ./extauthz
func BenchmarkCheckScale(b *testing.B) {
	for _, sc := range []struct{ orgs, sessions int }{
		{10, 1000}, {10000, 1000}, {10, 1000000}, {10000, 1000000},
	} {
		b.Run(fmt.Sprintf("orgs=%d/sessions=%d", sc.orgs, sc.sessions), func(b *testing.B) {
			auth, reqs := scaleFixture(b, sc.orgs, sc.sessions)
			b.ReportAllocs()
			ctx := context.Background()
			done := make(chan error)
			enc := make([][]byte, len(reqs))
			for i, r := range reqs {
				enc[i] = encode(b, r)
			}
			var req []byte
			check := func() {
				status, err := checkEncoded(ctx, auth, req)
				if err == nil && status != 200 {
					err = fmt.Errorf("status %d", status)
				}
				done <- err
			}
			i := 0
			cpu := processCPU()
			for b.Loop() {
				req = enc[i%len(enc)]
				i++
				go check()
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

const scaleOrg = `name: %[1]s
default_role: read
sso:
  enabled: true
  mode: enforced
  protocol: oidc
  oidc: {issuer: "https://idp.%[1]s.example", client_id: hub-%[1]s}
  session_timeout: 168h
`

// scaleFixture builds an Authorizer over orgs org files and a memory store
// with sessions members with sessions (one membership each) and ten catalog
// entries per org, and the 1,000 requests the benchmark cycles through.
func scaleFixture(b *testing.B, orgs, sessions int) (*Authorizer, []*authv3.CheckRequest) {
	b.Helper()
	dir := b.TempDir()
	copyDir(b, "testdata/gateway", dir)
	must(b, os.RemoveAll(filepath.Join(dir, "orgs")))
	must(b, os.Mkdir(filepath.Join(dir, "orgs"), 0o755))
	org := func(i int) string { return fmt.Sprintf("org-%05d", i) }
	for i := range orgs {
		must(b, os.WriteFile(filepath.Join(dir, "orgs", org(i)+".yaml"), fmt.Appendf(nil, scaleOrg, org(i)), 0o600))
	}
	k := testkeys.New()
	must(b, os.WriteFile(filepath.Join(dir, "platform-jwks.json"), k.JWKS, 0o600))
	cfg, err := config.Load(filepath.Join(dir, "ssogate.yaml"))
	must(b, err)

	ctx := context.Background()
	now := time.Now()
	st := memory.New()
	for j := range sessions {
		o, u := org(j%orgs), fmt.Sprintf("u%07d", j)
		must(b, st.PutMembership(ctx, store.Membership{Org: o, User: u, Role: "write"}))
		must(b, st.PutSession(ctx, store.Session{Org: o, User: u, AuthenticatedAt: now.Add(-time.Hour),
			Email: u + "@" + o + ".example", ExpiresAt: now.Add(time.Hour)}))
	}
	for r := range 10 * orgs {
		must(b, st.PutResource(ctx, store.Resource{Type: "model", ID: fmt.Sprintf("%s/model-%07d", org(r%orgs), r),
			Visibility: "private", CreatedBy: fmt.Sprintf("u%07d", (r*7919)%sessions)}))
	}
	auth, err := New(ctx, cfg, st, Options{Now: func() time.Time { return now }})
	must(b, err)

	reqs := make([]*authv3.CheckRequest, 1000)
	for j := range reqs {
		o := j % orgs
		model := fmt.Sprintf("model-%07d", o+orgs*(j%10)) // one of org o's ten
		reqs[j] = request("GET", "/"+org(o)+"/"+model+"/resolve/main/config.json", map[string]string{
			"cookie": "theme=dark; hub_session=" + k.Token(fmt.Sprintf("u%07d", j), 24*time.Hour), "accept": "*/*"})
	}
	return auth, reqs
}
