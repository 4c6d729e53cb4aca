package snapshot

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ssogate/ssogate/store"
)

// readYAML decodes a YAML snapshot. A document laid out as snapshots
// usually are (sections of block sequences, without anchors or aliases) is
// cut into chunks of chunkItems records, parsed by yaml/v3 a chunk at a
// time, on every core, and decoded in order: memory stays in proportion
// to a few chunks. Any other document, or one whose chunks do not read as
// the whole would, is parsed into one node tree (readYAMLTree).
func readYAML(name string, raw []byte, s *sink) error {
	return readYAMLItems(name, raw, s, chunkItems)
}

// readYAMLItems is readYAML with chunks of items records.
func readYAMLItems(name string, raw []byte, s *sink, items int) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	if plan := planChunks(raw, items); len(plan) > 1 {
		err := readYAMLChunks(raw, plan, s)
		if err != errWhole {
			return err
		}
		s.restart()
	}
	return readYAMLTree(name, raw, s)
}

// readYAMLTree parses raw into one node tree and decodes its records one
// by one, dropping each from the tree once it has been handed over. Values
// are decoded as go.yaml.in/yaml/v3 decodes them into the store's structs.
// Documents that use anchors, aliases, merge keys, explicit tags or
// complex keys are decoded whole, as a Snapshot, by yaml/v3 itself.
func readYAMLTree(name string, raw []byte, s *sink) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("%s", yamlSyntax(name, err))
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return fmt.Errorf("%s: no YAML document in the file", name)
	}
	top := doc.Content[0]
	if top.Kind == yaml.ScalarNode && top.ShortTag() == "!!null" {
		return nil
	}
	if top.Kind != yaml.MappingNode || exotic(top) {
		return readYAMLWhole(name, raw, &doc, s)
	}
	raw = nil
	y := yamlReader{s: s}
	return y.top(top, "", 0)
}

// top decodes the pairs of the top-level mapping top. In a chunk that
// continues a section (cont, the section's key, at line contLine), the
// first pair is that section's key and the following items.
func (y *yamlReader) top(top *yaml.Node, cont string, contLine int) error {
	s := y.s
	for i := 0; i+1 < len(top.Content); i += 2 {
		kn, vn := top.Content[i], top.Content[i+1]
		if i == 0 && cont != "" {
			sec, ok := y.sections[contLine]
			if kn.Value != cont || !ok || vn.Kind != yaml.SequenceNode {
				return errWhole
			}
			if sec.kind != 0 {
				n, err := y.section(sec.kind, vn, sec.next)
				if err != nil {
					return err
				}
				sec.next += n
				y.sections[contLine] = sec
			}
			top.Content[i+1] = nil
			continue
		}
		dup := false
		for _, k := range y.keys0 {
			if k.key == kn.Value {
				dup = true
				s.problem(kn.Line, fmt.Sprintf("mapping key %q already defined at line %d", kn.Value, k.line))
			}
		}
		y.keys0 = append(y.keys0, keyAt{kn.Value, kn.Line})
		sec := yamlSection{}
		switch k := sectionKind(kn.Value); {
		case dup || kn.ShortTag() == "!!null":
		case k == 0:
			s.problem(kn.Line, unknownKey(kn.Value, ""))
		default:
			n, err := y.section(k, vn, 0)
			if err != nil {
				return err
			}
			sec = yamlSection{kind: k, next: n}
		}
		if y.sections != nil {
			y.sections[kn.Line] = sec
		}
		top.Content[i+1] = nil // done with the section
	}
	return nil
}

// yamlSection is a top-level key seen by a chunked read: the kind of its
// records (0: not decoded) and the index of its next item.
type yamlSection struct {
	kind Kind
	next int
}

// yamlSyntax turns yaml/v3's "yaml: line 3: did not find expected key"
// into "name:3: did not find expected key".
func yamlSyntax(name string, err error) string {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "yaml: line "); ok {
		if n, m, ok := strings.Cut(rest, ": "); ok && n != "" && strings.Trim(n, "0123456789") == "" {
			return name + ":" + n + ": " + m
		}
	}
	return name + ": " + msg
}

// exotic reports whether the tree uses YAML features that the record
// decoder leaves to yaml/v3: anchors, aliases, explicit tags, merge keys
// and keys that are not scalars.
func exotic(n *yaml.Node) bool {
	if n.Kind == yaml.AliasNode || n.Anchor != "" || n.Style&yaml.TaggedStyle != 0 {
		return true
	}
	if n.Kind == yaml.MappingNode {
		for i := 0; i < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || k.Value == "<<" && k.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
				return true
			}
		}
	}
	for _, c := range n.Content {
		if exotic(c) {
			return true
		}
	}
	return false
}

type yamlReader struct {
	s        *sink
	rec      Record
	keys     []keyAt             // keys of the record being decoded
	keys0    []keyAt             // top-level keys
	sections map[int]yamlSection // chunked read: by the line of the key
}

// section decodes the value of a section key; a sequence's items are
// records from index first on. It returns the number of items.
func (y *yamlReader) section(k Kind, n *yaml.Node, first int) (int, error) {
	switch {
	case n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			if err := y.record(k, first+i, item); err != nil {
				return 0, err
			}
			n.Content[i] = nil
		}
		return len(n.Content), nil
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null":
	default:
		var err error
		switch k {
		case KindMembership:
			err = n.Decode(new([]store.Membership))
		case KindSession:
			err = n.Decode(new([]store.Session))
		case KindResource:
			err = n.Decode(new([]store.Resource))
		}
		for _, p := range decodeProblems(err) {
			y.s.problem(lineOr(p.line, n.Line), k.Section()+": "+p.msg)
		}
	}
	return 0, nil
}

func (y *yamlReader) record(k Kind, i int, n *yaml.Node) error {
	s := y.s
	r := &y.rec
	r.reset(s.name, k, i, n.Line)
	switch {
	case n.Kind == yaml.MappingNode:
		y.fields(r, n)
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null":
		return nil // yaml/v3 drops null items
	default:
		var err error
		switch k {
		case KindMembership:
			err = n.Decode(new(store.Membership))
		case KindSession:
			err = n.Decode(new(store.Session))
		case KindResource:
			err = n.Decode(new(store.Resource))
		}
		y.problems(r, "", err)
	}
	if s.done(r) != nil {
		return s.err
	}
	return nil
}

func (y *yamlReader) fields(r *Record, n *yaml.Node) {
	s := y.s
	y.keys = y.keys[:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		y.keys = append(y.keys, keyAt{n.Content[i].Value, n.Content[i].Line})
	}
	if d := dups(y.keys); len(d) > 0 {
		// yaml/v3 decodes nothing of a mapping with a duplicate key.
		for _, p := range d {
			s.fieldProblem(r, p.line, "", p.msg)
		}
		r.bad = true
		return
	}
	fs := fields[r.Kind]
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		if kn.ShortTag() == "!!null" {
			continue // yaml/v3 skips null keys
		}
		fi := -1
		for j := range fs {
			if fs[j].name == kn.Value {
				fi = j
				break
			}
		}
		if fi < 0 {
			r.bad = true
			s.problem(kn.Line, unknownKey(kn.Value, fmt.Sprintf("%s[%d]", r.Kind.Section(), r.Index)))
			continue
		}
		r.lines[fi] = vn.Line
		y.field(r, &fs[fi], vn)
	}
}

// field decodes vn into f of r as yaml/v3 would.
func (y *yamlReader) field(r *Record, f *field, vn *yaml.Node) {
	scalar := vn.Kind == yaml.ScalarNode
	null := scalar && vn.ShortTag() == "!!null"
	switch f.typ {
	case fString:
		switch {
		case null:
		case scalar:
			*f.str(r) = y.s.share(vn.Value, f.share)
		default:
			y.problems(r, f.name, vn.Decode(new(string)))
		}
	case fTime:
		switch {
		case null:
		case scalar && vn.ShortTag() == "!!timestamp":
			if err := vn.Decode(f.time(r)); err != nil {
				y.problems(r, f.name, err)
			}
		case scalar:
			// yaml/v3 hands any other scalar to time.Time's UnmarshalText.
			if err := f.time(r).UnmarshalText([]byte(vn.Value)); err != nil {
				y.problems(r, f.name, err)
			}
		case vn.Kind == yaml.MappingNode:
			var keys []keyAt
			for i := 0; i+1 < len(vn.Content); i += 2 {
				if k := vn.Content[i]; k.ShortTag() != "!!null" {
					keys = append(keys, keyAt{k.Value, k.Line})
				}
			}
			timeMappingProblems(y.s, r, f.name, keys)
		default:
			y.problems(r, f.name, vn.Decode(new(time.Time)))
		}
	case fMap:
		if null {
			*f.m(r) = nil
			return
		}
		var m map[string]string
		if err := vn.Decode(&m); err != nil {
			y.problems(r, f.name, err)
			return
		}
		*f.m(r) = m
	}
}

// problems reports a decoding error of field of r (of r when field is "").
func (y *yamlReader) problems(r *Record, field string, err error) {
	if err == nil {
		return
	}
	r.bad = true
	for _, p := range decodeProblems(err) {
		y.s.fieldProblem(r, p.line, field, p.msg)
	}
}

// decodeProblems splits a yaml/v3 decoding error into its messages and
// their lines (0 when the message has none).
func decodeProblems(err error) []lineMsg {
	if err == nil {
		return nil
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return []lineMsg{{0, err.Error()}}
	}
	out := make([]lineMsg, 0, len(te.Errors))
	for _, m := range te.Errors {
		line := 0
		if rest, ok := strings.CutPrefix(m, "line "); ok {
			if n, msg, ok := strings.Cut(rest, ": "); ok {
				fmt.Sscan(n, &line)
				m = msg
			}
		}
		out = append(out, lineMsg{line, m})
	}
	return out
}

func lineOr(line, or int) int {
	if line > 0 {
		return line
	}
	return or
}

// share is str for a string already allocated.
func (s *sink) share(v string, share bool) string {
	if !share || len(v) > 64 {
		return v
	}
	if w, ok := s.intern[v]; ok {
		return w
	}
	if s.intern == nil {
		s.intern = make(map[string]string)
	}
	if len(s.intern) < 1<<16 {
		s.intern[v] = v
	}
	return v
}

// readYAMLWhole decodes the whole document with yaml/v3 into a Snapshot
// (unknown keys refused), as the first versions of this package did, and
// hands its records over. Lines come from the node tree.
func readYAMLWhole(name string, raw []byte, doc *yaml.Node, s *sink) error {
	var snap Snapshot
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&snap); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, m := range te.Errors {
				s.problems = append(s.problems, yamlProblem(name, m))
			}
			return nil
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	top := doc.Content[0]
	var r Record
	each := func(k Kind, n int, set func(i int)) error {
		// The i-th record decoded is the i-th item that is not null
		// (yaml/v3 drops null items).
		var items []int
		sec := deref(child(top, k.Section()))
		if sec != nil && sec.Kind == yaml.SequenceNode {
			for pos, item := range sec.Content {
				if d := deref(item); d == nil || d.Kind != yaml.ScalarNode || d.ShortTag() != "!!null" {
					items = append(items, pos)
				}
			}
		}
		for i := 0; i < n; i++ {
			pos, line := i, 0
			var item *yaml.Node
			if i < len(items) {
				pos = items[i]
				item = sec.Content[pos]
				line = item.Line
			}
			r.reset(name, k, pos, line)
			for fi, f := range fields[k] {
				if v := child(deref(item), f.name); v != nil {
					r.lines[fi] = v.Line
				}
			}
			set(i)
			if s.done(&r) != nil {
				return s.err
			}
		}
		return nil
	}
	if err := each(KindMembership, len(snap.Memberships), func(i int) { r.Membership = snap.Memberships[i] }); err != nil {
		return err
	}
	if err := each(KindSession, len(snap.Sessions), func(i int) { r.Session = snap.Sessions[i] }); err != nil {
		return err
	}
	return each(KindResource, len(snap.Resources), func(i int) { r.Resource = snap.Resources[i] })
}

// deref follows an alias to its anchored node.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// yamlProblem turns a yaml/v3 decode message ("line 2: field colour not
// found in type store.Membership") into "name:2: unknown key \"colour\"".
func yamlProblem(name, msg string) string {
	line := ""
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, m, ok := strings.Cut(rest, ": "); ok {
			line, msg = n, m
		}
	}
	if f, ok := strings.CutPrefix(msg, "field "); ok {
		if key, _, ok := strings.Cut(f, " not found in type "); ok {
			msg = fmt.Sprintf("unknown key %q", key)
		}
	}
	if line == "" {
		return name + ": " + msg
	}
	return name + ":" + line + ": " + msg
}

func child(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for j := 0; j+1 < len(n.Content); j += 2 {
		if n.Content[j].Value == key {
			return n.Content[j+1]
		}
	}
	return nil
}
