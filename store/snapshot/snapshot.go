// Package snapshot reads and writes the store snapshot format of spec
// section 4 (the file that `serve --state`, `eval --state` and `import`
// take): memberships, SSO sessions and catalog entries in YAML.
//
// Stream reads a snapshot one record at a time and hands each record to a
// callback, so that a snapshot of millions of records can be loaded into a
// store without ever holding the whole snapshot: Load writes the records
// into a store as they are read. Read and Parse collect a whole Snapshot,
// for small files and tests.
//
// A snapshot that is a JSON document (JSON is YAML, so it is a snapshot in
// the format of spec section 4 as well) is decoded as a stream, record by
// record, in constant memory. Any other YAML is parsed into one node tree,
// whose records are then decoded one by one. Both give the same records and
// the same problems for the same document: a JSON document that YAML would
// read differently (or refuse) is left to the YAML reader.
package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ssogate/ssogate/role"
	"github.com/ssogate/ssogate/store"
)

// Snapshot is the whole content of a state file.
type Snapshot struct {
	Memberships []store.Membership `yaml:"memberships"`
	Sessions    []store.Session    `yaml:"sessions"`
	Resources   []store.Resource   `yaml:"resources"`
}

// ResourceTypes are the catalog types of spec section 4.
var ResourceTypes = []string{"model", "dataset", "space"}

// Kind says which section of the snapshot a record is in.
type Kind uint8

// The kinds of record, one per section.
const (
	KindMembership Kind = iota + 1
	KindSession
	KindResource
)

// Section is the name of the snapshot section holding records of kind k:
// "memberships", "sessions" or "resources".
func (k Kind) Section() string {
	switch k {
	case KindMembership:
		return "memberships"
	case KindSession:
		return "sessions"
	case KindResource:
		return "resources"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// maxFields is the largest number of fields a record kind has.
const maxFields = 5

// Record is one valid record of a snapshot, as Stream hands it over.
// Exactly one of Membership, Session and Resource is set, as Kind says.
type Record struct {
	Kind       Kind
	Index      int // position in its section: memberships[Index]
	Line       int // line of the record in the file
	Membership store.Membership
	Session    store.Session
	Resource   store.Resource

	name  string         // file name, for Problem
	lines [maxFields]int // line of each field's value, 0 when absent
	bad   bool           // a field could not be decoded
}

// Problem formats msg about field of the record as Stream reports its own
// problems: "file:line: memberships[3].org: msg", with the line of the
// field when the record has it. Callers that check more than Stream does
// (say, that each org has an org file) can report in the same form.
func (r *Record) Problem(field, msg string) string {
	line := r.Line
	if i := fieldIndex(r.Kind, field); i >= 0 && r.lines[i] > 0 {
		line = r.lines[i]
	}
	return fmt.Sprintf("%s:%d: %s[%d].%s: %s", r.name, line, r.Kind.Section(), r.Index, field, msg)
}

// SetSessionExpiry gives a session record without expires_at the expiry
// AuthenticatedAt + store.MaxSessionTimeout (see Snapshot.SetSessionExpiry);
// other records are left alone.
func (r *Record) SetSessionExpiry() {
	if r.Kind == KindSession {
		setExpiry(&r.Session)
	}
}

func (r *Record) reset(name string, k Kind, index, line int) {
	*r = Record{Kind: k, Index: index, Line: line, name: name}
}

// Problems is the error Stream returns for a snapshot that is not valid:
// every problem found, each as "file:line: message", in file order.
type Problems struct {
	List []string
}

// Error joins the problems with newlines.
func (p *Problems) Error() string { return strings.Join(p.List, "\n") }

// Stream reads the snapshot at path and calls fn with each record, in
// file order. fn may keep the record's values but not r itself, which is
// reused; a nil fn only checks. Once a problem is found, fn is no longer
// called; Stream reads on to report every problem and returns them as a
// *Problems. A file that is not YAML at all (a syntax error), or that
// cannot be read, is an error of another type, possibly after some records
// were handed over. When fn returns an error, Stream stops and returns that
// error as it is (r.Problem names the record). Whatever the error, the
// records handed over are part of a snapshot that is not valid: a caller
// that must write nothing from an invalid snapshot streams it twice, once
// with a callback that only checks, then again to write.
func Stream(path string, fn func(r *Record) error) error {
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		// A pipe cannot be read twice (the YAML reader may need to).
		raw, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("reading state: %w", err)
		}
		return StreamBytes(path, raw, fn)
	}
	return stream(path, fileSource(path), fn)
}

// StreamBytes is Stream on the snapshot in raw; name is used in messages.
func StreamBytes(name string, raw []byte, fn func(r *Record) error) error {
	return stream(name, bytesSource(raw), fn)
}

// Read parses and validates the snapshot at path. Errors name the file, the
// line and the field ("state.yaml:7: memberships[1].role: unknown role ...");
// every problem found is reported, joined by newlines. Read holds the whole
// snapshot: loading a large one into a store is cheaper with Load.
func Read(path string) (*Snapshot, error) {
	var s Snapshot
	if err := Stream(path, s.add); err != nil {
		return nil, err
	}
	return &s, nil
}

// Parse is Read on bytes; name is used in error messages.
func Parse(name string, raw []byte) (*Snapshot, error) {
	var s Snapshot
	if err := StreamBytes(name, raw, s.add); err != nil {
		return nil, err
	}
	return &s, nil
}

func (s *Snapshot) add(r *Record) error {
	switch r.Kind {
	case KindMembership:
		s.Memberships = append(s.Memberships, r.Membership)
	case KindSession:
		s.Sessions = append(s.Sessions, r.Session)
	case KindResource:
		s.Resources = append(s.Resources, r.Resource)
	}
	return nil
}

// Writer is what Apply writes to: any store.Store satisfies it.
type Writer interface {
	PutMembership(ctx context.Context, m store.Membership) error
	PutSession(ctx context.Context, s store.Session) error
	PutResource(ctx context.Context, r store.Resource) error
}

// Apply writes every record of s to w, stopping at the first error, which
// it returns wrapped with the record it concerns. Records written before
// the error stay written; every write replaces, so applying again is safe.
// Records are written as they are: a session without expires_at is kept
// until it is deleted (see SetSessionExpiry).
func (s *Snapshot) Apply(ctx context.Context, w Writer) error {
	for i, m := range s.Memberships {
		if err := w.PutMembership(ctx, m); err != nil {
			return fmt.Errorf("memberships[%d]: %w", i, err)
		}
	}
	for i, v := range s.Sessions {
		if err := w.PutSession(ctx, v); err != nil {
			return fmt.Errorf("sessions[%d]: %w", i, err)
		}
	}
	for i, r := range s.Resources {
		if err := w.PutResource(ctx, r); err != nil {
			return fmt.Errorf("resources[%d]: %w", i, err)
		}
	}
	return nil
}

// Counts is how many records of each kind Load wrote.
type Counts struct {
	Memberships, Sessions, Resources int
}

// Load streams the snapshot at path into w: each record is written as soon
// as it is read, and nothing of the snapshot is kept. Records are written
// as they are (see Apply). An invalid snapshot returns a *Problems; the
// records before the first problem have been written then, so a caller
// that must not write anything from an invalid snapshot streams it once
// with a checking callback first (see Stream). A write error stops Load
// and is returned as "<path>: memberships[3]: <error>".
func Load(ctx context.Context, path string, w Writer) (Counts, error) {
	var n Counts
	err := Stream(path, func(r *Record) error {
		if err := put(ctx, w, r, &n); err != nil {
			return fmt.Errorf("%s: %s[%d]: %w", path, r.Kind.Section(), r.Index, err)
		}
		return nil
	})
	return n, err
}

// put writes r to w and counts it in n.
func put(ctx context.Context, w Writer, r *Record, n *Counts) error {
	var err error
	switch r.Kind {
	case KindMembership:
		if err = w.PutMembership(ctx, r.Membership); err == nil {
			n.Memberships++
		}
	case KindSession:
		if err = w.PutSession(ctx, r.Session); err == nil {
			n.Sessions++
		}
	case KindResource:
		if err = w.PutResource(ctx, r.Resource); err == nil {
			n.Resources++
		}
	}
	return err
}

// SetSessionExpiry gives every session without expires_at the expiry
// AuthenticatedAt + store.MaxSessionTimeout, past which no org's
// session_timeout can keep it valid, so that a persistent store drops it
// then. Snapshots evaluated at a fixed clock (eval) must not call it: the
// memory store would drop sessions by the real clock.
func (s *Snapshot) SetSessionExpiry() {
	for i := range s.Sessions {
		setExpiry(&s.Sessions[i])
	}
}

func setExpiry(v *store.Session) {
	if v.ExpiresAt.IsZero() {
		v.ExpiresAt = v.AuthenticatedAt.Add(store.MaxSessionTimeout)
	}
}

// source opens the snapshot's bytes; a JSON pass that has to give way to
// the YAML reader opens them a second time.
type source struct {
	open  func() (readCloser, error)
	bytes func() ([]byte, error)
}

type readCloser interface {
	Read(p []byte) (int, error)
	Close() error
}

func fileSource(path string) source {
	return source{
		open: func() (readCloser, error) {
			f, err := os.Open(path)
			if err != nil {
				return nil, fmt.Errorf("reading state: %w", err)
			}
			return f, nil
		},
		bytes: func() ([]byte, error) {
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("reading state: %w", err)
			}
			return b, nil
		},
	}
}

func bytesSource(raw []byte) source {
	return source{
		open:  func() (readCloser, error) { return nopCloser{bytes.NewReader(raw)}, nil },
		bytes: func() ([]byte, error) { return raw, nil },
	}
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// stream picks the reader: JSON when the document is one JSON object,
// YAML otherwise, or when the JSON reader gives way (errNotJSON).
func stream(name string, src source, fn func(*Record) error) error {
	s := &sink{name: name, fn: fn}
	f, err := src.open()
	if err != nil {
		return err
	}
	j := newJSONReader(f, s, jsonBufSize)
	isJSON, err := j.start()
	if err == nil && isJSON {
		err = j.run()
	}
	f.Close()
	var nj *notJSON
	switch {
	case err == nil && isJSON:
		return s.result()
	case err != nil && !errors.As(err, &nj):
		return err
	}
	// YAML: the records the JSON pass handed over are not handed over again.
	raw, err := src.bytes()
	if err != nil {
		return err
	}
	s.restart()
	if err := readYAML(name, raw, s); err != nil {
		return err
	}
	return s.result()
}

// sink collects problems and hands valid records to fn until the first
// problem.
type sink struct {
	name     string
	fn       func(*Record) error
	problems []string
	err      error  // fn's error: stop reading
	given    [4]int // of each kind, the records before index given[k] were handed to fn
	skip     [4]int // after a restart: given of the first reader
	intern   map[string]string
}

// restart forgets the problems found and remembers the records handed
// over, for a second reader over the same document.
func (s *sink) restart() {
	s.problems = nil
	for k := range s.skip {
		s.skip[k] = max(s.skip[k], s.given[k])
	}
	s.given = [4]int{}
}

func (s *sink) problem(line int, msg string) {
	if line > 0 {
		s.problems = append(s.problems, fmt.Sprintf("%s:%d: %s", s.name, line, msg))
	} else {
		s.problems = append(s.problems, s.name+": "+msg)
	}
}

// fieldProblem reports msg about field of r (or the record itself when
// field is "") at line, or at the field's or the record's line when line
// is 0.
func (s *sink) fieldProblem(r *Record, line int, field, msg string) {
	if line == 0 {
		line = r.Line
		if i := fieldIndex(r.Kind, field); i >= 0 && r.lines[i] > 0 {
			line = r.lines[i]
		}
	}
	where := fmt.Sprintf("%s[%d]", r.Kind.Section(), r.Index)
	if field != "" {
		where += "." + field
	}
	s.problem(line, where+": "+msg)
}

// done validates a decoded record and hands it to fn when the snapshot
// is valid so far. It returns fn's error.
func (s *sink) done(r *Record) error {
	if r.bad {
		return nil
	}
	s.validate(r)
	if len(s.problems) > 0 || s.fn == nil {
		return nil
	}
	k := r.Kind
	s.given[k] = r.Index + 1
	if r.Index < s.skip[k] {
		return nil
	}
	if err := s.fn(r); err != nil {
		s.err = err
		return err
	}
	return nil
}

func (s *sink) result() error {
	if s.err != nil {
		return s.err
	}
	if len(s.problems) > 0 {
		return &Problems{List: s.problems}
	}
	return nil
}

// str returns b as a string, sharing one copy of the short, often
// repeated values (org names, roles, types) between records.
func (s *sink) str(b []byte, share bool) string {
	if !share || len(b) > 64 {
		return string(b)
	}
	if v, ok := s.intern[string(b)]; ok {
		return v
	}
	v := string(b)
	if s.intern == nil {
		s.intern = make(map[string]string)
	}
	if len(s.intern) < 1<<16 {
		s.intern[v] = v
	}
	return v
}

// validate checks roles, resource types, visibilities and required fields.
func (s *sink) validate(r *Record) {
	bad := func(field, msg string) { s.fieldProblem(r, 0, field, msg) }
	checkRole := func(field, v string) {
		if v != "" && !role.Valid(v) {
			bad(field, fmt.Sprintf("unknown role %s", Quote(v)))
		}
	}
	switch r.Kind {
	case KindMembership:
		m := &r.Membership
		if m.Org == "" {
			bad("org", "required")
		}
		switch {
		case m.User == "":
			bad("user", "required")
		case len(m.User) > store.MaxFieldLen:
			bad("user", store.CheckMembership(m).Error())
		case badUserID(m.User) != "":
			bad("user", badUserID(m.User))
		}
		checkRole("role", m.Role)
		checkRole("invite_role", m.InviteRole)
		if len(m.ResourceGroups) > 0 {
			groups := make([]string, 0, len(m.ResourceGroups))
			for g := range m.ResourceGroups {
				groups = append(groups, g)
			}
			sort.Strings(groups)
			for _, g := range groups {
				checkRole("resource_groups", m.ResourceGroups[g])
				if g == "" {
					bad("resource_groups", "empty group name")
				}
			}
		}
	case KindSession:
		v := &r.Session
		if v.Org == "" {
			bad("org", "required")
		}
		switch {
		case v.User == "":
			bad("user", "required")
		case len(v.User) > store.MaxFieldLen:
			bad("user", store.CheckSession(&store.Session{User: v.User}).Error())
		case badUserID(v.User) != "":
			bad("user", badUserID(v.User))
		}
		if len(v.Email) > store.MaxFieldLen {
			bad("email", store.CheckSession(&store.Session{Email: v.Email}).Error())
		}
		if v.AuthenticatedAt.IsZero() {
			bad("authenticated_at", "required (RFC 3339 time)")
		} else if y := v.AuthenticatedAt.Year(); y < 1970 || y > 2200 {
			bad("authenticated_at", fmt.Sprintf("year %d is out of range (1970..2200)", y))
		}
	case KindResource:
		v := &r.Resource
		if !validType(v.Type) {
			bad("type", fmt.Sprintf("unknown type %s (want model, dataset or space)", Quote(v.Type)))
		}
		if ns, n, ok := strings.Cut(v.ID, "/"); len(v.ID) > store.MaxFieldLen {
			bad("id", store.CheckResource(&store.Resource{ID: v.ID}).Error())
		} else if !ok || ns == "" || n == "" || strings.Contains(n, "/") {
			bad("id", fmt.Sprintf("id %s is not <namespace>/<name>", Quote(v.ID)))
		}
		if len(v.CreatedBy) > store.MaxFieldLen {
			bad("created_by", store.CheckResource(&store.Resource{CreatedBy: v.CreatedBy}).Error())
		}
		if v.Visibility != "public" && v.Visibility != "private" {
			bad("visibility", fmt.Sprintf("visibility %s (want public or private)", Quote(v.Visibility)))
		}
	}
}

// quoteMax is the most bytes of a value Quote shows.
const quoteMax = 64

// Quote returns s quoted (Go syntax) for a problem message: whole when it
// has at most 64 bytes, else its first 64 bytes (whole characters) and its
// length, so that a problem never echoes a huge value.
func Quote(s string) string {
	if len(s) <= quoteMax {
		return strconv.Quote(s)
	}
	cut := quoteMax
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s...(%d bytes)", strconv.Quote(s[:cut]), len(s))
}

// badUserID explains why id cannot be a platform user id, or returns "".
// Ids with '/' or control characters could be stored but never addressed
// through the admin API's /members/{user} and /sessions/{user} paths.
func badUserID(id string) string {
	for i := 0; i < len(id); i++ {
		if c := id[i]; c == '/' || c < 0x20 || c == 0x7f {
			return fmt.Sprintf("user id %s contains '/' or a control character", Quote(id))
		}
	}
	return ""
}

func validType(t string) bool {
	for _, v := range ResourceTypes {
		if v == t {
			return true
		}
	}
	return false
}

// Fields of each kind of record, in the order of store's structs.
type fieldType uint8

const (
	fString fieldType = iota
	fTime
	fMap
)

type field struct {
	name  string
	typ   fieldType
	share bool // a short value often repeated: one copy per distinct value
	str   func(r *Record) *string
	time  func(r *Record) *time.Time
	m     func(r *Record) *map[string]string
}

var fields = [4][]field{
	KindMembership: {
		{name: "org", share: true, str: func(r *Record) *string { return &r.Membership.Org }},
		{name: "user", str: func(r *Record) *string { return &r.Membership.User }},
		{name: "role", share: true, str: func(r *Record) *string { return &r.Membership.Role }},
		{name: "resource_groups", typ: fMap, share: true, m: func(r *Record) *map[string]string { return &r.Membership.ResourceGroups }},
		{name: "invite_role", share: true, str: func(r *Record) *string { return &r.Membership.InviteRole }},
	},
	KindSession: {
		{name: "org", share: true, str: func(r *Record) *string { return &r.Session.Org }},
		{name: "user", str: func(r *Record) *string { return &r.Session.User }},
		{name: "authenticated_at", typ: fTime, time: func(r *Record) *time.Time { return &r.Session.AuthenticatedAt }},
		{name: "email", str: func(r *Record) *string { return &r.Session.Email }},
		{name: "expires_at", typ: fTime, time: func(r *Record) *time.Time { return &r.Session.ExpiresAt }},
	},
	KindResource: {
		{name: "type", share: true, str: func(r *Record) *string { return &r.Resource.Type }},
		{name: "id", str: func(r *Record) *string { return &r.Resource.ID }},
		{name: "visibility", share: true, str: func(r *Record) *string { return &r.Resource.Visibility }},
		{name: "resource_group", share: true, str: func(r *Record) *string { return &r.Resource.ResourceGroup }},
		{name: "created_by", str: func(r *Record) *string { return &r.Resource.CreatedBy }},
	},
}

// goType is the Go type of a record kind, as YAML's messages name it.
var goType = [4]string{KindMembership: "store.Membership", KindSession: "store.Session", KindResource: "store.Resource"}

func fieldIndex(k Kind, name string) int {
	if int(k) >= len(fields) {
		return -1
	}
	for i := range fields[k] {
		if fields[k][i].name == name {
			return i
		}
	}
	return -1
}

func sectionKind(name string) Kind {
	switch name {
	case "memberships":
		return KindMembership
	case "sessions":
		return KindSession
	case "resources":
		return KindResource
	}
	return 0
}

// unknownKey is the message for a key the format does not have; in is the
// record ("memberships[2]") or "" at the top level.
func unknownKey(key, in string) string {
	if in == "" {
		return fmt.Sprintf("unknown key %s", Quote(key))
	}
	return fmt.Sprintf("unknown key %s in %s", Quote(key), in)
}

// mismatch is YAML's message for a value of the wrong type: "cannot
// unmarshal !!str `abc` into map[string]string".
func mismatch(tag, value, into string) string {
	if tag != "!!seq" && tag != "!!map" {
		if len(value) > 10 {
			value = " `" + value[:7] + "...`"
		} else {
			value = " `" + value + "`"
		}
	} else {
		value = ""
	}
	return fmt.Sprintf("cannot unmarshal %s%s into %s", tag, value, into)
}
