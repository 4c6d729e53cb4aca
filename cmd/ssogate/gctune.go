package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// GC headroom (docs/performance.md): each decision allocates a few
// kilobytes, and with Go's default (GOGC=100) a small live heap is
// collected very often: a collection marks the whole live heap, so the
// collector's CPU per decision is the live heap over the headroom (how far
// the heap may grow between collections) times what a decision allocates.
// tuneGC sets GOGC after each collection from the live heap:
//
//   - up to 128 MiB live, a headroom of gcMaxHeadroom (128 MiB), so that
//     the collector's share stays small as orgs, resources and members add
//     live data (10,000 orgs hold ~40 MB, a million sessions ~130 MB);
//   - from 128 to 192 MiB live, a heap goal of gcHeapGoal (256 MiB), so
//     that the heap stays within the memory budget (400 MB resident with a
//     million sessions; 283–304 MB measured with the memory store, 297 MB
//     with bolt);
//   - beyond, a headroom of gcMinHeadroom (64 MiB) or half the live heap,
//     whichever is more (GOGC 50 from 192 MiB on).
//
// A million sessions (~130 MB live) thus get 128 MiB between collections
// instead of the ~62 MiB a 192 MiB goal left them: with 10,000 orgs, whose
// configuration and policy data each collection marks, the growth of CPU
// per check over 10 orgs and 1,000 sessions fell from +14–22% to +9–13%
// in paired runs (docs/performance.md).
//
// Setting GOGC in the environment turns it off; GOMEMLIMIT still applies.
const (
	gcMaxHeadroom = 128 << 20
	gcMinHeadroom = 64 << 20
	gcHeapGoal    = 256 << 20
	gcMaxPercent  = 1600
	gcMinPercent  = 50
)

func tuneGC() {
	if os.Getenv("GOGC") != "" {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var retune func()
	retune = func() {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			debug.SetGCPercent(gcPercent(sample[0].Value.Uint64()))
		}
		// Run again after the next collection.
		runtime.SetFinalizer(&gcSentinel{}, func(*gcSentinel) { retune() })
	}
	retune()
}

// gcPercent is the GOGC that gives a heap of live bytes the headroom
// described above, between gcMinPercent and gcMaxPercent.
func gcPercent(live uint64) int {
	if live == 0 {
		return gcMaxPercent
	}
	headroom := max(live/2, min(gcMaxHeadroom, max(gcMinHeadroom, gcHeapGoal-min(live, gcHeapGoal))))
	return int(min(max(gcMinPercent, 100*headroom/live), gcMaxPercent))
}

// gcSentinel is garbage whose finalizer runs after the collection that
// finds it; it holds a pointer so that it is never a tiny allocation, which
// might not be finalized.
type gcSentinel struct {
	_ *int
	_ [8]byte
}
