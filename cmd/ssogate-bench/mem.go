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
// the memberships, sessions and catalog entries that gen would write,
// through the store API, into a memory store in this process, and reports
// the live heap (after a garbage collection) per kind of record and in
// total, and the resident set (VmRSS of /proc/self/status).
//
// Memberships are written first and sessions second, as gen's snapshot
// orders them. The store keeps a member's membership and session in one
// record, so the memberships' figure holds those records' keys and slots
// and the sessions' figure what a session adds to its member's record; the
// figure per session with its membership is the sum of both.
func memCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mem", flag.ContinueOnError)
	fs.SetOutput(stderr)
	orgs := fs.Int("orgs", 10000, "organisations")
	sessions := fs.Int("sessions", 1000000, "SSO sessions")
	members := fs.Int("members", -1, "memberships; default the same number as sessions (each session's member)")
	resources := fs.Int("resources", 1000, "catalog entries, laid out as gen lays them out")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *members < 0 {
		*members = *sessions
	}
	if *orgs < 1 || *sessions < 0 || *resources < 0 {
		fmt.Fprintln(stderr, "ssogate-bench mem: --orgs must be at least 1, --sessions and --resources at least 0")
		return 2
	}
	base := heapInUse()
	rss0, _, _ := procMemory(os.Getpid())
	st := memory.New()
	ctx := context.Background()
	now := time.Now()
	c := genConfig{Roles: []string{"read", "write", "contributor", ""}}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "ssogate-bench mem: %v\n", err)
		return 1
	}
	t0 := time.Now()
	for j := 0; j < *members; j++ {
		m := store.Membership{Org: orgName(j % *orgs), User: userName(j), Role: c.memberRole(j)}
		if j%10 == 7 {
			m.ResourceGroups = map[string]string{"vision": "write"}
		}
		if err := st.PutMembership(ctx, m); err != nil {
			return fail(err)
		}
	}
	afterMembers := heapInUse()
	for i := 0; i < *sessions; i++ {
		at := now.Add(-sessionAge(i))
		s := store.Session{Org: orgName(i % *orgs), User: userName(i), AuthenticatedAt: at,
			Email: userName(i) + "@" + orgName(i%*orgs) + ".example", ExpiresAt: at.Add(store.MaxSessionTimeout)}
		if err := st.PutSession(ctx, s); err != nil {
			return fail(err)
		}
	}
	afterSessions := heapInUse()
	for r := 0; r < *resources; r++ {
		e := store.Resource{Type: "model", ID: orgName(resourceOrg(r, *orgs)) + "/" + resourceName(r), Visibility: "private",
			CreatedBy: userName(resourceCreator(r, *orgs, *members))}
		if resourcePublic(r, *orgs) {
			e.Visibility = "public"
		}
		if resourceGrouped(r, *orgs) {
			e.ResourceGroup = "vision"
		}
		if err := st.PutResource(ctx, e); err != nil {
			return fail(err)
		}
	}
	took := time.Since(t0)
	total := heapInUse()
	rssGC, _, _ := procMemory(os.Getpid())
	debug.FreeOSMemory()
	rss, peak, _ := procMemory(os.Getpid())

	// Differences of live heaps are signed: a phase that adds nothing may
	// show a few bytes less than the one before.
	mib := func(from, to uint64) float64 { return float64(int64(to-from)) / (1 << 20) }
	per := func(from, to uint64, n int) float64 {
		if n == 0 {
			return 0
		}
		return float64(int64(to-from)) / float64(n)
	}
	fmt.Fprintf(stdout, "memory store: %d orgs, %d memberships, %d sessions, %d catalog entries, written in %s\n",
		*orgs, *members, *sessions, *resources, took.Round(time.Millisecond))
	fmt.Fprintf(stdout, "live heap after a collection (MB = 2^20 bytes):\n")
	fmt.Fprintf(stdout, "  memberships  %7.1f MB  %5.0f B each (written first: they create the members' records)\n",
		mib(base, afterMembers), per(base, afterMembers, *members))
	fmt.Fprintf(stdout, "  sessions     %7.1f MB  %5.0f B each (written next, into their members' records)\n",
		mib(afterMembers, afterSessions), per(afterMembers, afterSessions, *sessions))
	fmt.Fprintf(stdout, "  catalog      %7.1f MB  %5.0f B each\n", mib(afterSessions, total), per(afterSessions, total, *resources))
	fmt.Fprintf(stdout, "  total        %7.1f MB  %5.0f B per session with its membership\n",
		mib(base, total), per(base, afterSessions, *sessions))
	fmt.Fprintf(stdout, "resident (VmRSS): %.1f MB after the collection, %.1f MB once free pages are returned to the OS"+
		" (%.1f MB before the store; peak %.1f MB)\n", mb(rssGC), mb(rss), mb(rss0), mb(peak))
	runtime.KeepAlive(st)
	return 0
}

// heapInUse is the live heap after a full collection, in bytes
// (runtime.MemStats.HeapAlloc).
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
