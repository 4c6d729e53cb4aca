package extauthz

import (
	"context"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/ssogate/ssogate/extauthz/wire"
)

// BenchmarkCheck measures one decision with the full default policy and a
// warm token cache, from the encoded CheckRequest as the gRPC service gets
// it (checkEncoded). Like grpc-go, which serves
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
		req := encode(b, request("GET", bc.path, bc.h))
		if got, _ := checkEncoded(context.Background(), f.auth, req); got != bc.status {
			b.Fatalf("%s: status %d, want %d", bc.name, got, bc.status)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			done := make(chan error)
			check := func() {
				_, err := checkEncoded(ctx, f.auth, req)
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

// encode returns req as it travels on the wire.
func encode(b testing.TB, req *authv3.CheckRequest) []byte {
	enc, err := proto.Marshal(req)
	must(b, err)
	return enc
}

// checkEncoded decides an encoded CheckRequest as the gRPC service does
// (Register with wire.Codec): decoded by the codec, checked, and the
// response encoded by the codec. It returns the response's HTTP status.
func checkEncoded(ctx context.Context, a *Authorizer, req []byte) (int, error) {
	var w wire.CheckRequest
	if err := (wire.Codec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(req)}, &w); err != nil {
		return 0, err
	}
	resp := a.check(ctx, &w, nil)
	enc, err := (wire.Codec{}).Marshal(resp)
	if err != nil {
		return 0, err
	}
	enc.Free()
	if resp.GetStatus().GetCode() == 0 {
		return 200, nil
	}
	return int(resp.GetDeniedResponse().GetStatus().GetCode()), nil
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

// BenchmarkLowerKeysCaseVariants measures a hand-written headers map with
// 4,096 case variants of one name, as a client with direct access to the
// gRPC port could send: joining each name's values once keeps it linear.
func BenchmarkLowerKeysCaseVariants(b *testing.B) {
	m := map[string]string{}
	for i := range 1 << 12 {
		name := []byte("xcustomheade") // 12 letters: 4,096 spellings
		for j := range name {
			if i&(1<<j) != 0 {
				name[j] &^= 0x20
			}
		}
		m[string(name)] = "value"
	}
	b.ReportAllocs()
	for b.Loop() {
		lowerKeys(m)
	}
}
