package extauthz

import (
	"context"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// BenchmarkCheck measures one decision through Authorizer.Check with the
// full default policy and a warm token cache.
func BenchmarkCheck(b *testing.B) {
	f := newFixture(b, "")
	alice := "theme=dark; hub_session=" + f.keys.Token("u-alice", 24*time.Hour)
	mallory := "hub_session=" + f.keys.Token("u-mallory", 24*time.Hour)
	for _, bc := range []struct {
		name   string
		path   string
		h      map[string]string
		status int
	}{
		{"session-allow", "/acme/secret-model/resolve/main/config.json", map[string]string{"cookie": alice, "accept": "*/*"}, 200},
		{"public-allow", "/acme/open-model/resolve/main/config.json", map[string]string{"accept": "*/*"}, 200},
		{"redirect", "/acme/open-model", map[string]string{"cookie": mallory, "accept": browserAccept}, 302},
	} {
		req := request("GET", bc.path, bc.h)
		resp, _ := f.auth.Check(context.Background(), req)
		if got := statusOf(resp); got != bc.status {
			b.Fatalf("%s: status %d, want %d", bc.name, got, bc.status)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			for b.Loop() {
				if _, err := f.auth.Check(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func statusOf(resp *authv3.CheckResponse) int {
	if resp.GetStatus().GetCode() == 0 {
		return 200
	}
	return int(resp.GetDeniedResponse().GetStatus().GetCode())
}
