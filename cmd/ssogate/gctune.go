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
// collector's CPU per decision falls as the heap may grow further between
// collections. tuneGC lets the heap grow by at least gcHeadroom bytes over
// the live heap, by raising GOGC after each collection while the live heap
// is smaller than gcHeadroom, up to gcMaxPercent; with a large live heap
// (a memory store with many sessions) it leaves GOGC at 100. Setting GOGC
// in the environment turns it off; GOMEMLIMIT still applies.
const (
	gcHeadroom   = 64 << 20
	gcMaxPercent = 400
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

// gcPercent is the GOGC that lets a heap of live bytes grow by gcHeadroom,
// between 100 and gcMaxPercent.
func gcPercent(live uint64) int {
	if live == 0 {
		return gcMaxPercent
	}
	return int(min(max(100, 100*gcHeadroom/live), gcMaxPercent))
}

// gcSentinel is garbage whose finalizer runs after the collection that
// finds it; it holds a pointer so that it is never a tiny allocation, which
// might not be finalized.
type gcSentinel struct {
	_ *int
	_ [8]byte
}
