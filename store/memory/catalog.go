package memory

import (
	"context"
	"fmt"
	"strings"
	"unsafe"

	"github.com/ssogate/ssogate/store"
)

// resource is what the store holds for one catalog entry: 32 bytes, no
// pointers. Its type is the key of the catalog map it is reached from.
type resource struct {
	id         strRef // ID as written
	createdBy  strRef // CreatedBy
	typ        uint32 // Type: id in Store.words
	visibility uint32 // Visibility: id in Store.words; 0 for ""
	group      uint32 // ResourceGroup: id in Store.words; 0 for ""
	next       uint32 // 1 + id of the next record in this one's chain; 0: the last
}

// word returns the id in s.words of w, adding a user; 0 for "".
func (s *Store) word(w string) uint32 {
	if w == "" {
		return 0
	}
	return s.words.acquire(w, cloneKey)
}

// wordOf returns the string of a word id (0: "").
func (s *Store) wordOf(id uint32) string {
	if id == 0 {
		return ""
	}
	return s.words.get(id).key
}

// findResource returns the id of the entry with folded id fid among one
// type's entries, or false, and its predecessor in its chain (nil for the
// first); the caller holds s.mu.
func (s *Store) findResource(ids map[uint64]uint32, fid string) (uint32, *resource, bool) {
	id, ok := ids[s.hash(s.seed, fid)]
	var prev *resource
	for ok {
		r := s.res.at(id)
		if foldEqual(s.strs.get(r.id), fid) {
			return id, prev, true
		}
		prev = r
		id, ok = r.next-1, r.next != 0
	}
	return 0, nil, false
}

// foldEqual reports whether store.Fold(a) == folded, without building
// store.Fold(a).
func foldEqual(a, folded string) bool {
	if len(a) != len(folded) {
		return false
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != folded[i] {
			return false
		}
	}
	return true
}

// Resource implements store.Catalog. The id is matched case-insensitively
// (ASCII, as store.Fold); the result is the caller's (one allocation for
// the entry, one for the bytes of its ID and CreatedBy).
func (s *Store) Resource(_ context.Context, typ, id string) (*store.Resource, error) {
	fid := store.Fold(id)
	s.mu.RLock()
	rid, _, ok := s.findResource(s.catalog[typ], fid)
	if !ok {
		s.mu.RUnlock()
		return nil, store.ErrNotFound
	}
	r := s.res.at(rid)
	out := &store.Resource{Type: s.wordOf(r.typ), Visibility: s.wordOf(r.visibility), ResourceGroup: s.wordOf(r.group)}
	out.ID, out.CreatedBy = clone2(s.strs.get(r.id), s.strs.get(r.createdBy))
	s.mu.RUnlock()
	return out, nil
}

// clone2 returns copies of a and b in one allocation.
func clone2(a, b string) (string, string) {
	if len(a)+len(b) == 0 {
		return "", ""
	}
	buf := make([]byte, len(a)+len(b))
	copy(buf, a)
	copy(buf[len(a):], b)
	ab := unsafe.String(unsafe.SliceData(buf), len(buf)) // buf is never written again
	return ab[:len(a)], ab[len(a):]
}

// PutResource implements store.Catalog. It fails for an ID or CreatedBy
// longer than MaxStringLen.
func (s *Store) PutResource(_ context.Context, e store.Resource) error {
	if err := store.CheckResource(&e); err != nil {
		return fmt.Errorf("memory store: %w", err)
	}
	fid := store.Fold(e.ID)
	s.mu.Lock()
	defer s.mu.Unlock()
	// Acquire before releasing, so that a word in use by both the old
	// and the new entry is not dropped in between.
	typ, vis, group := s.word(e.Type), s.word(e.Visibility), s.word(e.ResourceGroup)
	ids := s.catalog[e.Type]
	rid, _, ok := s.findResource(ids, fid)
	var r *resource
	if ok {
		r = s.res.at(rid)
		s.words.release(r.typ)
		s.words.release(r.visibility)
		s.words.release(r.group)
		s.strs.release(r.id)
		s.strs.release(r.createdBy)
	} else {
		if ids == nil {
			ids = map[uint64]uint32{}
			s.catalog[strings.Clone(e.Type)] = ids
		}
		rid = s.res.add()
		r = s.res.at(rid)
		h := s.hash(s.seed, fid)
		if head, ok := ids[h]; ok {
			r.next = head + 1
		}
		ids[h] = rid
	}
	r.typ, r.visibility, r.group = typ, vis, group
	r.id, r.createdBy = s.strs.put(e.ID), s.strs.put(e.CreatedBy)
	s.tidy()
	return nil
}

// DeleteResource implements store.Catalog.
func (s *Store) DeleteResource(_ context.Context, typ, id string) error {
	fid := store.Fold(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := s.catalog[typ]
	rid, prev, ok := s.findResource(ids, fid)
	if !ok {
		return nil
	}
	r := s.res.at(rid)
	var prevNext *uint32
	if prev != nil {
		prevNext = &prev.next
	}
	unlink(ids, s.hash(s.seed, fid), prevNext, r.next)
	s.words.release(r.typ)
	s.words.release(r.visibility)
	s.words.release(r.group)
	s.strs.release(r.id)
	s.strs.release(r.createdBy)
	s.res.remove(rid)
	if len(ids) == 0 {
		delete(s.catalog, typ)
	}
	s.tidy()
	return nil
}
