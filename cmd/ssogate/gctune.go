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
// collections. tuneGC sets GOGC after each collection so that the heap may
// grow by gcHeadroom bytes or half the live heap, whichever is more, over
// the live heap: GOGC up to gcMaxPercent (400) while the live heap is small,
// 100 at 64 MiB, down to gcMinPercent (50) from 128 MiB, so that a memory
// store holding a million sessions (~130 MB) does not double its resident
// size between collections. Setting GOGC in the environment turns it off;
// GOMEMLIMIT still applies.
const (
	gcHeadroom   = 64 << 20
	gcMaxPercent = 400
	gcMinPercent = 50
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

// gcPercent is the GOGC that lets a heap of live bytes grow by
// max(gcHeadroom, live/2) bytes, between gcMinPercent and gcMaxPercent.
func gcPercent(live uint64) int {
	if live == 0 {
		return gcMaxPercent
	}
	headroom := max(gcHeadroom, live/2)
	return int(min(max(gcMinPercent, 100*headroom/live), gcMaxPercent))
}

// gcSentinel is garbage whose finalizer runs after the collection that
// finds it; it holds a pointer so that it is never a tiny allocation, which
// might not be finalized.
type gcSentinel struct {
	_ *int
	_ [8]byte
}
