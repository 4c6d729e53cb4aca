package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/store/memory"
)

// memCmd measures what the memory store holds per SSO session: it writes
// the memberships and sessions that gen would write, through the store
// API, into a memory store in this process, and reports the live heap and
// the resident set after a garbage collection, per session.
func memCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mem", flag.ContinueOnError)
	fs.SetOutput(stderr)
	orgs := fs.Int("orgs", 10000, "organisations")
	sessions := fs.Int("sessions", 1000000, "SSO sessions")
	members := fs.Int("members", -1, "memberships; default the same number as sessions (each session's member)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *members < 0 {
		*members = *sessions
	}
	base := heapInUse()
	rss0, _, _ := procMemory(os.Getpid())
	st := memory.New()
	ctx := context.Background()
	now := time.Now()
	c := genConfig{Roles: []string{"read", "write", "contributor", ""}}
	t0 := time.Now()
	for j := 0; j < *members; j++ {
		m := store.Membership{Org: orgName(j % *orgs), User: userName(j), Role: c.memberRole(j)}
		if j%10 == 7 {
			m.ResourceGroups = map[string]string{"vision": "write"}
		}
		if err := st.PutMembership(ctx, m); err != nil {
			fmt.Fprintf(stderr, "ssogate-bench mem: %v\n", err)
			return 1
		}
	}
	afterMembers := heapInUse()
	for i := 0; i < *sessions; i++ {
		at := now.Add(-sessionAge(i))
		s := store.Session{Org: orgName(i % *orgs), User: userName(i), AuthenticatedAt: at,
			Email: userName(i) + "@" + orgName(i%*orgs) + ".example", ExpiresAt: at.Add(store.MaxSessionTimeout)}
		if err := st.PutSession(ctx, s); err != nil {
			fmt.Fprintf(stderr, "ssogate-bench mem: %v\n", err)
			return 1
		}
	}
	took := time.Since(t0)
	total := heapInUse()
	debug.FreeOSMemory()
	rss, peak, _ := procMemory(os.Getpid())
	fmt.Fprintf(stdout, "memory store: %d orgs, %d memberships, %d sessions, written in %s\n", *orgs, *members, *sessions, took.Round(time.Millisecond))
	per := func(b uint64, n int) float64 {
		if n == 0 {
			return 0
		}
		return float64(b) / float64(n)
	}
	fmt.Fprintf(stdout, "live heap: memberships %.1f MB (%.0f B each), sessions %.1f MB (%.0f B each), total %.1f MB\n",
		float64(afterMembers-base)/(1<<20), per(afterMembers-base, *members),
		float64(total-afterMembers)/(1<<20), per(total-afterMembers, *sessions),
		float64(total-base)/(1<<20))
	fmt.Fprintf(stdout, "resident: %.1f MB after a collection (%.1f MB before the store; peak %.1f MB)\n",
		mb(rss), mb(rss0), mb(peak))
	runtime.KeepAlive(st)
	return 0
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
