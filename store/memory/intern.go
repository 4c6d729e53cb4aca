package memory

import (
	"encoding/binary"
	"maps"
	"slices"
	"strings"
)

// interned is a table of values that many records share: each distinct
// key is held once, under a small id, with the number of records that use
// it. A value is dropped when its last record lets go of it, and its id is
// reused, so the table never holds more than the distinct keys in use.
//
// Id 0 is never handed out, so that records can use it for "none". The
// table is not safe for concurrent use: the Store's lock guards it.
type interned[K comparable, V any] struct {
	ids   map[K]uint32
	slots []internSlot[K, V] // by id; slots[0] is unused
	free  []uint32           // ids of dropped slots, reused first
}

type internSlot[K comparable, V any] struct {
	key  K
	val  V
	refs uint32 // records that use this slot; 0 when free
}

func newInterned[K comparable, V any]() interned[K, V] {
	return interned[K, V]{ids: map[K]uint32{}, slots: make([]internSlot[K, V], 1)}
}

// acquire returns the id of k, adding one user. When k is not held yet,
// k and mk's result are stored under a new id; k must then not share
// memory with the caller's buffers (clone strings first: see cloneKey).
func (t *interned[K, V]) acquire(k K, mk func(K) (K, V)) uint32 {
	if id, ok := t.ids[k]; ok {
		t.slots[id].refs++
		return id
	}
	k, v := mk(k)
	var id uint32
	if n := len(t.free); n > 0 {
		id, t.free = t.free[n-1], t.free[:n-1]
	} else {
		id = uint32(len(t.slots))
		t.slots = append(t.slots, internSlot[K, V]{})
	}
	t.slots[id] = internSlot[K, V]{key: k, val: v, refs: 1}
	t.ids[k] = id
	return id
}

// release drops one user of id, and the value with its last user. Id 0
// is ignored.
func (t *interned[K, V]) release(id uint32) {
	if id == 0 {
		return
	}
	sl := &t.slots[id]
	if sl.refs--; sl.refs == 0 {
		delete(t.ids, sl.key)
		*sl = internSlot[K, V]{}
		t.free = append(t.free, id)
	}
}

// get returns the slot of a live id.
func (t *interned[K, V]) get(id uint32) *internSlot[K, V] { return &t.slots[id] }

// shapeKey identifies the attributes of a membership other than its org
// and user: role, invite role and resource groups. Few distinct shapes
// exist (a handful of roles, and the resource-group assignments an
// organisation uses), however many members share them.
type shapeKey struct {
	role, invite string
	// groups is the resource-group map encoded by encodeGroups; hasGroups
	// tells a nil map from an empty one.
	groups    string
	hasGroups bool
}

// newShapeKey returns the shape of a membership with these attributes.
func newShapeKey(role, invite string, groups map[string]string) shapeKey {
	k := shapeKey{role: role, invite: invite, hasGroups: groups != nil}
	if len(groups) > 0 {
		k.groups = encodeGroups(groups)
	}
	return k
}

// encodeGroups encodes a resource-group map as its pairs in name order,
// each string preceded by its length (uvarint), so that equal maps, and
// only they, encode to equal strings.
func encodeGroups(groups map[string]string) string {
	var b []byte
	for _, name := range slices.Sorted(maps.Keys(groups)) {
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
		v := groups[name]
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return string(b)
}

// newShape is the mk function of the shape table: it clones the key's
// strings and builds the resource-group map that every member of the
// shape shares. The map is never modified once built.
func newShape(groups map[string]string) func(shapeKey) (shapeKey, map[string]string) {
	return func(k shapeKey) (shapeKey, map[string]string) {
		k.role, k.invite, k.groups = strings.Clone(k.role), strings.Clone(k.invite), strings.Clone(k.groups)
		if groups == nil {
			return k, nil
		}
		m := make(map[string]string, len(groups))
		for name, r := range groups {
			m[strings.Clone(name)] = strings.Clone(r)
		}
		return k, m
	}
}

// cloneKey is the mk function of string tables whose value is unused.
func cloneKey(k string) (string, struct{}) { return strings.Clone(k), struct{}{} }
