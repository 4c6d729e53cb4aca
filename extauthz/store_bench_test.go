package extauthz

import (
	"context"
	"testing"
	"time"

	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/internal/redistest"
	"github.com/ssogate/ssogate/store/cache"
	redisstore "github.com/ssogate/ssogate/store/redis"
)

// BenchmarkCheckStores measures Check on a member's request that reads
// the catalog entry, the membership and the SSO session, with the memory
// store, with Redis behind the read cache as serve runs it (cache_ttl 1s,
// warm), and with Redis alone (the three records in one pipelined round
// trip per Check, as on a cache miss). It needs redis-server:
//
//	go test -run '^$' -bench CheckStores -benchmem ./extauthz
func BenchmarkCheckStores(b *testing.B) {
	f := newFixture(b, "")
	srv := redistest.Start(b, redistest.Options{})
	r, err := redisstore.New(redisstore.Options{Addrs: []string{srv.Addr}, Prefix: "bench:"})
	must(b, err)
	seed(b, r, f.now)
	cached := cache.New(r, cache.Options{TTL: config.DefaultCacheTTL, Bus: r.Bus()})
	defer cached.Close() // closes r too
	for deadline := time.Now().Add(5 * time.Second); !cached.Live(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the cache's invalidation subscription did not start")
		}
	}
	req := request("GET", "/acme/secret-model/resolve/main/config.json",
		map[string]string{"cookie": "hub_session=" + f.keys.Token("u-alice", 24*time.Hour), "accept": "*/*"})
	for _, bc := range []struct {
		name  string
		store Lookup
	}{
		{"memory", f.store},
		{"redis-cached", cached},
		{"redis-uncached", r},
	} {
		a, err := New(context.Background(), f.cfg, bc.store, Options{Now: func() time.Time { return f.now }})
		must(b, err)
		if got, _ := checkEncoded(context.Background(), a, encode(b, req)); got != 200 { // also warms the cache
			b.Fatalf("%s: status %d, want 200", bc.name, got)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			enc := encode(b, req)
			for b.Loop() {
				if _, err := checkEncoded(ctx, a, enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
