package extauthz

import (
	"context"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// BenchmarkCheck measures one decision through Authorizer.Check with the
// full default policy and a warm token cache. Like grpc-go, which serves
// each stream on a new goroutine, every Check runs on a fresh goroutine:
// a benchmark loop on one goroutine would hide the cost of growing the
// stack that policy evaluation needs. cpu-ns/op is the process CPU time
// (garbage collector included) per Check, steadier than ns/op on a shared
// machine.
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
		{"api-401", "/api/models/acme/open-model", map[string]string{"cookie": mallory, "accept": "application/json"}, 401},
		{"not-org", "/docs/hub", map[string]string{"cookie": alice, "accept": "*/*"}, 200},
	} {
		req := request("GET", bc.path, bc.h)
		resp, _ := f.auth.Check(context.Background(), req)
		if got := statusOf(resp); got != bc.status {
			b.Fatalf("%s: status %d, want %d", bc.name, got, bc.status)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			done := make(chan error)
			check := func() {
				_, err := f.auth.Check(ctx, req)
				done <- err
			}
			cpu := processCPU()
			for b.Loop() {
				go check()
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

func statusOf(resp *authv3.CheckResponse) int {
	if resp.GetStatus().GetCode() == 0 {
		return 200
	}
	return int(resp.GetDeniedResponse().GetStatus().GetCode())
}

// processCPU returns the CPU time (user+system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
