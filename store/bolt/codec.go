package bolt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/ssogate/ssogate/store"
)

// Value encodings.
//
// Schema 1 files hold JSON records (memberships and catalog entries as
// they are, sessions after their 8-byte expiry prefix). Schema 2 writes a
// compact binary record instead, which starts with the tag byte
// compactTag; a JSON record starts with '{', so every reader tells the two
// apart by the first byte and a schema 2 file may hold both (records
// written before the upgrade stay JSON until they are rewritten).
//
// A compact record is the tag, a flags byte, then fields: strings as a
// uvarint length and the bytes, times as described at appendTime. What the
// key already holds is not repeated: the user of a membership or session,
// the org name when it is the key's (folded) spelling, and the catalog
// type and id when the id is already in lower case.
//
//	membership: tag flags [org] role invite_role uvarint(n) n×(group role)
//	session:    tag flags [org] time(authenticated_at) time(expires_at) email
//	resource:   tag flags [type] [id] visibility resource_group created_by
//
// Brackets mark fields present only when the flags say so (flagOrg,
// flagType, flagID). Resource groups are written sorted by name.
const compactTag = 0x01

// Flags of a compact record.
const (
	flagOrg  = 1 << 0 // the org's spelling differs from the key's: written out
	flagType = 1 << 1 // the catalog type contains a NUL byte: written out
	flagID   = 1 << 2 // the catalog id differs from the key's folded id: written out
)

// errCorrupt is wrapped by every decoding error of a compact record.
var errCorrupt = errors.New("corrupt record")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendTime appends t as three varints: Unix seconds (zigzag), the
// nanoseconds within the second, and the zone offset in seconds east of
// UTC (zigzag). Zero is 0001-01-01 UTC, like any other instant; the
// monotonic reading is dropped, as JSON drops it. Typically 7 bytes.
func appendTime(b []byte, t time.Time) []byte {
	_, off := t.Zone()
	b = binary.AppendVarint(b, t.Unix())
	b = binary.AppendUvarint(b, uint64(t.Nanosecond()))
	return binary.AppendVarint(b, int64(off))
}

// reader decodes the fields of a compact record; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: truncated or invalid %s", errCorrupt, what)
	}
}

func (r *reader) byte(what string) byte {
	if r.err != nil || len(r.b) == 0 {
		r.fail(what)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint(what string) int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) string(what string) string {
	n := r.uvarint(what)
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.fail(what)
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// time reads what appendTime wrote. The location is rebuilt as JSON
// decoding rebuilds it: UTC for offset 0, Local when the local zone has
// that offset at that instant, else a fixed zone.
func (r *reader) time(what string) time.Time {
	sec, nsec, off := r.varint(what), r.uvarint(what), r.varint(what)
	if r.err != nil {
		return time.Time{}
	}
	if nsec >= 1e9 || off < -24*3600 || off > 24*3600 {
		r.fail(what)
		return time.Time{}
	}
	t := time.Unix(sec, int64(nsec))
	switch {
	case off == 0:
		return t.UTC()
	default:
		if _, local := t.Zone(); local == int(off) {
			return t // time.Unix returns local time
		}
		return t.In(time.FixedZone("", int(off)))
	}
}

// end reports the sticky error, or one when bytes are left over.
func (r *reader) end(what string) error {
	if r.err == nil && len(r.b) != 0 {
		r.fail(what + " (trailing bytes)")
	}
	return r.err
}

// splitOrgUser splits an orgUserKey whose org (folded) has no NUL byte.
func splitOrgUser(key []byte) (org, user string, ok bool) {
	i := bytes.IndexByte(key, 0)
	if i < 0 {
		return "", "", false
	}
	return string(key[:i]), string(key[i+1:]), true
}

// orgUserFrom returns the org and user of key, given the org spelled in
// the record when flagOrg is set.
func orgUserFrom(key []byte, flags byte, spelled string) (org, user string, err error) {
	if flags&flagOrg != 0 {
		f := store.Fold(spelled)
		if len(key) <= len(f) || string(key[:len(f)]) != f || key[len(f)] != 0 {
			return "", "", fmt.Errorf("%w: org %q does not match key %q", errCorrupt, spelled, key)
		}
		return spelled, string(key[len(f)+1:]), nil
	}
	org, user, ok := splitOrgUser(key)
	if !ok {
		return "", "", fmt.Errorf("%w: key %q has no org", errCorrupt, key)
	}
	return org, user, nil
}

// orgFlag is flagOrg when org cannot be recovered from its folded key
// (different spelling, or a NUL byte that would make the key ambiguous).
func orgFlag(org string) byte {
	if org != store.Fold(org) || bytes.IndexByte([]byte(org), 0) >= 0 {
		return flagOrg
	}
	return 0
}

// encodeMembership returns the compact record of m (stored under orgUserKey(m.Org, m.User)).
func encodeMembership(m *store.Membership) []byte {
	flags := orgFlag(m.Org)
	b := make([]byte, 0, 16+len(m.Role)+len(m.InviteRole))
	b = append(b, compactTag, flags)
	if flags&flagOrg != 0 {
		b = appendString(b, m.Org)
	}
	b = appendString(b, m.Role)
	b = appendString(b, m.InviteRole)
	b = binary.AppendUvarint(b, uint64(len(m.ResourceGroups)))
	for _, g := range slices.Sorted(maps.Keys(m.ResourceGroups)) {
		b = appendString(b, g)
		b = appendString(b, m.ResourceGroups[g])
	}
	return b
}

// decodeMembership decodes the value v stored under key, compact or JSON.
func decodeMembership(key, v []byte) (*store.Membership, error) {
	var m store.Membership
	if len(v) > 0 && v[0] == '{' {
		if err := json.Unmarshal(v, &m); err != nil {
			return nil, fmt.Errorf("decoding membership %q: %w", key, err)
		}
		return &m, nil
	}
	r := reader{b: v}
	if tag := r.byte("tag"); r.err == nil && tag != compactTag {
		return nil, fmt.Errorf("decoding membership %q: %w: unknown format %#x", key, errCorrupt, tag)
	}
	flags := r.byte("flags")
	var spelled string
	if flags&flagOrg != 0 {
		spelled = r.string("org")
	}
	m.Role = r.string("role")
	m.InviteRole = r.string("invite_role")
	n := r.uvarint("resource group count")
	if r.err == nil && n > uint64(len(r.b)) { // each group takes at least 2 bytes
		r.fail("resource group count")
	}
	if r.err == nil && n > 0 {
		m.ResourceGroups = make(map[string]string, n)
		for range n {
			g := r.string("resource group")
			m.ResourceGroups[g] = r.string("resource group role")
		}
	}
	if err := r.end("membership"); err != nil {
		return nil, fmt.Errorf("decoding membership %q: %w", key, err)
	}
	var err error
	if m.Org, m.User, err = orgUserFrom(key, flags, spelled); err != nil {
		return nil, fmt.Errorf("decoding membership: %w", err)
	}
	return &m, nil
}

// encodeSession returns the expiring value of v: the 8-byte expiry prefix
// and the compact record.
func encodeSession(v *store.Session) []byte {
	flags := orgFlag(v.Org)
	b := make([]byte, expiryLen, expiryLen+24+len(v.Email))
	binary.BigEndian.PutUint64(b, expiryNanos(v.ExpiresAt))
	b = append(b, compactTag, flags)
	if flags&flagOrg != 0 {
		b = appendString(b, v.Org)
	}
	b = appendTime(b, v.AuthenticatedAt)
	b = appendTime(b, v.ExpiresAt)
	return appendString(b, v.Email)
}

// decodeSession decodes the expiring value v stored under key (the part
// after the expiry prefix: compact or JSON).
func decodeSession(key, v []byte) (*store.Session, error) {
	if len(v) < expiryLen {
		return nil, fmt.Errorf("decoding SSO session %q: %w: no expiry", key, errCorrupt)
	}
	v = v[expiryLen:]
	var s store.Session
	if len(v) > 0 && v[0] == '{' {
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, fmt.Errorf("decoding SSO session %q: %w", key, err)
		}
		return &s, nil
	}
	r := reader{b: v}
	if tag := r.byte("tag"); r.err == nil && tag != compactTag {
		return nil, fmt.Errorf("decoding SSO session %q: %w: unknown format %#x", key, errCorrupt, tag)
	}
	flags := r.byte("flags")
	var spelled string
	if flags&flagOrg != 0 {
		spelled = r.string("org")
	}
	s.AuthenticatedAt = r.time("authenticated_at")
	s.ExpiresAt = r.time("expires_at")
	s.Email = r.string("email")
	if err := r.end("session"); err != nil {
		return nil, fmt.Errorf("decoding SSO session %q: %w", key, err)
	}
	var err error
	if s.Org, s.User, err = orgUserFrom(key, flags, spelled); err != nil {
		return nil, fmt.Errorf("decoding SSO session: %w", err)
	}
	return &s, nil
}

// encodeResource returns the compact record of r (stored under resourceKey(r.Type, r.ID)).
func encodeResource(r *store.Resource) []byte {
	var flags byte
	if bytes.IndexByte([]byte(r.Type), 0) >= 0 {
		flags |= flagType
	}
	if r.ID != store.Fold(r.ID) {
		flags |= flagID
	}
	b := make([]byte, 0, 8+len(r.Visibility)+len(r.ResourceGroup)+len(r.CreatedBy))
	b = append(b, compactTag, flags)
	if flags&flagType != 0 {
		b = appendString(b, r.Type)
	}
	if flags&flagID != 0 {
		b = appendString(b, r.ID)
	}
	b = appendString(b, r.Visibility)
	b = appendString(b, r.ResourceGroup)
	return appendString(b, r.CreatedBy)
}

// decodeResource decodes the value v stored under key, compact or JSON.
func decodeResource(key, v []byte) (*store.Resource, error) {
	var res store.Resource
	if len(v) > 0 && v[0] == '{' {
		if err := json.Unmarshal(v, &res); err != nil {
			return nil, fmt.Errorf("decoding catalog entry %q: %w", key, err)
		}
		return &res, nil
	}
	r := reader{b: v}
	if tag := r.byte("tag"); r.err == nil && tag != compactTag {
		return nil, fmt.Errorf("decoding catalog entry %q: %w: unknown format %#x", key, errCorrupt, tag)
	}
	flags := r.byte("flags")
	var typ, id string
	if flags&flagType != 0 {
		typ = r.string("type")
	}
	if flags&flagID != 0 {
		id = r.string("id")
	}
	res.Visibility = r.string("visibility")
	res.ResourceGroup = r.string("resource_group")
	res.CreatedBy = r.string("created_by")
	if err := r.end("catalog entry"); err != nil {
		return nil, fmt.Errorf("decoding catalog entry %q: %w", key, err)
	}
	// The key is "<type>\x00<id folded>".
	var folded []byte
	if flags&flagType != 0 {
		if len(key) <= len(typ) || string(key[:len(typ)]) != typ || key[len(typ)] != 0 {
			return nil, fmt.Errorf("decoding catalog entry: %w: type %q does not match key %q", errCorrupt, typ, key)
		}
		folded = key[len(typ)+1:]
	} else {
		i := bytes.IndexByte(key, 0)
		if i < 0 {
			return nil, fmt.Errorf("decoding catalog entry: %w: key %q has no type", errCorrupt, key)
		}
		typ, folded = string(key[:i]), key[i+1:]
	}
	if flags&flagID == 0 {
		id = string(folded)
	} else if store.Fold(id) != string(folded) {
		return nil, fmt.Errorf("decoding catalog entry: %w: id %q does not match key %q", errCorrupt, id, key)
	}
	res.Type, res.ID = typ, id
	return &res, nil
}

// Bounds of the expiry prefix, which holds Unix nanoseconds.
var (
	unixEpoch   = time.Unix(0, 0)
	maxNanoTime = time.Unix(0, math.MaxInt64)
)

// expiryNanos is the expiry prefix of at: 0 for the zero time (never),
// otherwise Unix nanoseconds clamped to [1, MaxInt64], so that an instant
// at or before 1970 is already expired and one past 2262 never is. Its
// big-endian bytes sort in time order.
func expiryNanos(at time.Time) uint64 {
	switch {
	case at.IsZero():
		return 0
	case !at.After(unixEpoch):
		return 1
	case at.After(maxNanoTime):
		return math.MaxInt64
	}
	return uint64(at.UnixNano())
}
