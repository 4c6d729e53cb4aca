package policies

import (
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// The evaluator keeps two caches per evaluation: rules already evaluated
// (topdown.VirtualCache) and documents already read from the store
// (topdown.BaseCache). topdown's own implementations are tries of hash
// maps, built anew for every evaluation; they were a third of the bytes an
// evaluation allocated, and so of the garbage collector's work. Each
// evaluation worker owns one of each below and resets them between
// evaluations, keeping their memory. They are not safe for concurrent use.

// entryCache maps refs to cached values, bucketed by ref hash. Its buckets
// and entries are reused after reset.
type entryCache[V any] struct {
	buckets map[int][]cacheEntry[V]
	// used holds the hashes of the buckets that have entries, so that
	// reset visits those only: buckets kept from earlier evaluations are
	// many more than an evaluation fills (iterating all of them was 2% of
	// the server's CPU).
	used []int
}

type cacheEntry[V any] struct {
	ref   ast.Ref
	value V
}

func (c *entryCache[V]) get(ref ast.Ref) (V, bool) {
	for _, e := range c.buckets[ref.Hash()] {
		if e.ref.Equal(ref) {
			return e.value, true
		}
	}
	var zero V
	return zero, false
}

// set stores v under a copy of ref: topdown may reuse the memory of the
// refs it passes.
func (c *entryCache[V]) set(ref ast.Ref, v V) {
	if c.buckets == nil {
		c.buckets = map[int][]cacheEntry[V]{}
	}
	h := ref.Hash()
	b := c.buckets[h]
	for i := range b {
		if b[i].ref.Equal(ref) {
			b[i].value = v
			return
		}
	}
	if len(b) == 0 {
		c.used = append(c.used, h)
	}
	if len(b) < cap(b) {
		b = b[:len(b)+1] // reuse the slot and its ref's memory
	} else {
		b = append(b, cacheEntry[V]{})
	}
	e := &b[len(b)-1]
	e.ref = append(e.ref[:0], ref...)
	e.value = v
	c.buckets[h] = b
}

// maxBuckets bounds the distinct ref hashes a cache keeps buckets for
// between evaluations.
const maxBuckets = 256

// reset empties the cache. It keeps its memory, which still points at the
// previous evaluation's terms until reused.
func (c *entryCache[V]) reset() {
	if len(c.buckets) > maxBuckets {
		c.buckets, c.used = nil, c.used[:0]
		return
	}
	for _, h := range c.used {
		c.buckets[h] = c.buckets[h][:0]
	}
	c.used = c.used[:0]
}

func (c *entryCache[V]) each(fn func(ast.Ref, V)) {
	for _, h := range c.used {
		for _, e := range c.buckets[h] {
			fn(e.ref, e.value)
		}
	}
}

// virtualCache implements topdown.VirtualCache: a stack of frames (a frame
// is pushed while a `with` modifier applies), each mapping a rule's ref to
// its value, or to "undefined".
type virtualCache struct {
	frames []entryCache[virtualValue]
	depth  int // frames in use; frames[depth-1] is the active one
}

type virtualValue struct {
	term      *ast.Term
	undefined bool
}

var _ topdown.VirtualCache = (*virtualCache)(nil)

func newVirtualCache() *virtualCache {
	c := &virtualCache{}
	c.Push()
	return c
}

// reset empties the cache, leaving one frame, as newVirtualCache does.
func (c *virtualCache) reset() {
	for i := 0; i < c.depth; i++ {
		c.frames[i].reset()
	}
	c.depth = 1
}

// Push implements topdown.VirtualCache.
func (c *virtualCache) Push() {
	if c.depth == len(c.frames) {
		c.frames = append(c.frames, entryCache[virtualValue]{})
	}
	c.depth++
}

// Pop implements topdown.VirtualCache.
func (c *virtualCache) Pop() {
	c.depth--
	c.frames[c.depth].reset()
}

// Get implements topdown.VirtualCache: (value, false) for a cached value,
// (nil, true) for a cached "undefined" and (nil, false) when ref is not
// cached, like topdown's own implementation.
func (c *virtualCache) Get(ref ast.Ref) (*ast.Term, bool) {
	v, ok := c.frames[c.depth-1].get(ref)
	if !ok {
		return nil, false
	}
	if v.undefined {
		return nil, true
	}
	return v.term, false
}

// Put implements topdown.VirtualCache; a nil value records "undefined".
// As in topdown's implementation, "undefined" sticks once recorded.
func (c *virtualCache) Put(ref ast.Ref, value *ast.Term) {
	f := &c.frames[c.depth-1]
	v, _ := f.get(ref)
	if value != nil {
		v.term = value
	} else {
		v.undefined = true
	}
	f.set(ref, v)
}

// Keys implements topdown.VirtualCache: the refs with a value in the
// active frame.
func (c *virtualCache) Keys() []ast.Ref {
	var out []ast.Ref
	c.frames[c.depth-1].each(func(r ast.Ref, v virtualValue) {
		if v.term != nil {
			out = append(out, r)
		}
	})
	return out
}

// baseCache implements topdown.BaseCache: documents read from the store,
// by ref. A document also answers refs below it, and caching one forgets
// those below it, like topdown's own implementation.
type baseCache struct {
	entries []cacheEntry[ast.Value]
}

var _ topdown.BaseCache = (*baseCache)(nil)

func (c *baseCache) reset() {
	clear(c.entries)
	c.entries = c.entries[:0]
}

// seed caches value at ref, which the cache keeps and must not change.
func (c *baseCache) seed(ref ast.Ref, value ast.Value) {
	c.entries = append(c.entries, cacheEntry[ast.Value]{ref: ref, value: value})
}

// Get implements topdown.BaseCache: the value at ref inside the cached
// document whose ref is the shortest prefix of ref, or nil.
func (c *baseCache) Get(ref ast.Ref) ast.Value {
	best := -1
	for i, e := range c.entries {
		if ref.HasPrefix(e.ref) && (best < 0 || len(e.ref) < len(c.entries[best].ref)) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	e := c.entries[best]
	if len(e.ref) == len(ref) {
		return e.value
	}
	v, err := e.value.Find(ref[len(e.ref):])
	if err != nil {
		return nil
	}
	return v
}

// Put implements topdown.BaseCache. It stores a copy of ref.
func (c *baseCache) Put(ref ast.Ref, value ast.Value) {
	kept := c.entries[:0]
	for _, e := range c.entries {
		if !e.ref.HasPrefix(ref) {
			kept = append(kept, e)
		}
	}
	clear(c.entries[len(kept):])
	c.entries = append(kept, cacheEntry[ast.Value]{ref: append(ast.Ref(nil), ref...), value: value})
}
