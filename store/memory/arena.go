package memory

import (
	"unsafe"

	"github.com/ssogate/ssogate/store"
)

// strs holds the bytes of the strings that records refer to (user ids and
// emails) in 64 KiB byte chunks, so that a million sessions are a few
// hundred objects without pointers for the garbage collector rather than
// two million small strings it must mark on every cycle (see
// docs/performance.md, "Scaling with orgs and sessions").
//
// Bytes once written are never modified: a string handed out by get stays
// valid (and keeps its chunk alive) after its record lets go of it or
// after the arena is rebuilt. Space let go of is counted in dead and
// reclaimed by rebuilding the arena (Store.compact). Not safe for
// concurrent use: the Store's lock guards it.
type strs struct {
	chunks [][]byte // all full but the last, up to strChunk bytes each
	live   int      // bytes referred to by records
	dead   int      // bytes no record refers to any more
}

// strRef refers to a string in strs: chunk index (bits 32-63), offset in
// the chunk (bits 16-31) and length (bits 0-15). The zero strRef is "".
type strRef uint64

const (
	strChunk = 64 << 10 // bytes per chunk

	// MaxStringLen is the longest user id or email the memory store
	// holds, in bytes: store.MaxFieldLen, which a strRef's 16-bit length
	// holds.
	MaxStringLen = store.MaxFieldLen
)

func (r strRef) chunk() int { return int(r >> 32) }
func (r strRef) off() int   { return int(r>>16) & 0xffff }
func (r strRef) len() int   { return int(r & 0xffff) }

// get returns the string r refers to, without copying it.
func (t *strs) get(r strRef) string {
	if r == 0 {
		return ""
	}
	return unsafe.String(&t.chunks[r.chunk()][r.off()], r.len())
}

// put copies s into the arena and returns its reference; s is at most
// MaxStringLen bytes (the caller checked it: store.CheckSession, ...).
func (t *strs) put(s string) strRef {
	n := len(s)
	if n == 0 {
		return 0
	}
	last := len(t.chunks) - 1
	if last < 0 || len(t.chunks[last])+n > strChunk {
		size := strChunk
		if last < 0 {
			size = 256 // small stores stay small
		}
		t.chunks = append(t.chunks, make([]byte, 0, size))
		last++
	}
	c := t.chunks[last]
	if len(c)+n > cap(c) {
		// The first chunk, still growing: a new array. Strings already
		// handed out keep the old one, whose bytes are the same.
		c = append(make([]byte, 0, min(max(2*cap(c), len(c)+n), strChunk)), c...)
	}
	off := len(c)
	t.chunks[last] = append(c, s...)
	t.live += n
	return strRef(last)<<32 | strRef(off)<<16 | strRef(n)
}

// release counts r's bytes as dead.
func (t *strs) release(r strRef) {
	t.live -= r.len()
	t.dead += r.len()
}

// wasteful reports whether rebuilding the arena would free more than it
// keeps, and at least a chunk.
func (t *strs) wasteful() bool { return t.dead > t.live && t.dead >= strChunk }
