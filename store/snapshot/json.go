package snapshot

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"
)

// The JSON reader decodes a snapshot that is one JSON object token by
// token from a buffered stream, one record at a time, counting lines as it
// goes. It gives the records and problems that the YAML reader gives for
// the same document (JSON is YAML): values of the wrong type, unknown and
// duplicate keys, time formats and YAML's messages for them are those of
// go.yaml.in/yaml/v3. Wherever YAML could read the document differently
// from JSON, or JSON refuses what YAML takes (a trailing comma, a YAML
// escape, a tab in a string, a comment after a value), the reader stops
// with *notJSON and the document goes to the YAML reader, which decides.

// notJSON stops the JSON reader: the document is not JSON that YAML reads
// the same way.
type notJSON struct {
	line int
	msg  string
}

func (e *notJSON) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

var (
	// errTruncated: the input ended inside the object. YAML refuses such
	// a document too (a flow collection or a quoted string not closed).
	errTruncated = errors.New("truncated")
	// errStop: the callback failed (sink.err).
	errStop = errors.New("stopped")
)

const (
	jsonBufSize  = 1 << 20
	maxJSONDepth = 1000 // deeper values go to the YAML reader
	maxKeyLen    = 1000 // YAML's implicit keys are at most 1024 characters
	maxDupMsgs   = 100
)

type jsonReader struct {
	r    io.Reader
	s    *sink
	buf  []byte
	i, n int  // buf[i:n] is read and not consumed
	line int  // line of buf[i]
	cr   bool // buf[i-1] was '\r': a '\n' at buf[i] ends the same line
	tab  bool // peek skipped a tab since the last line break
	eof  bool
	rerr error

	rec     Record
	keys    []keyAt // keys of the record being read
	key     []byte  // the key being read
	scratch []byte  // unescaped strings
}

// keyAt is a mapping key and its line, for YAML's duplicate-key check.
type keyAt struct {
	key  string
	line int
}

// newJSONReader reads r with a buffer of size bytes to begin with.
func newJSONReader(r io.Reader, s *sink, size int) *jsonReader {
	return &jsonReader{r: r, s: s, buf: make([]byte, max(size, 1)), line: 1}
}

// more reads more input into the buffer, keeping buf[i:n] (moved to the
// front, the buffer grown when full). It returns false at the end of the
// input or on a read error (rerr).
func (j *jsonReader) more() bool {
	if j.eof {
		return false
	}
	if j.i > 0 {
		j.n = copy(j.buf, j.buf[j.i:j.n])
		j.i = 0
	}
	if j.n == len(j.buf) {
		b := make([]byte, 2*len(j.buf))
		copy(b, j.buf[:j.n])
		j.buf = b
	}
	for {
		m, err := j.r.Read(j.buf[j.n:])
		j.n += m
		if err != nil {
			j.eof = true
			if err != io.EOF {
				j.rerr = err
			}
			return m > 0
		}
		if m > 0 {
			return true
		}
	}
}

func (j *jsonReader) notJSON(msg string) error { return &notJSON{line: j.line, msg: msg} }

// atEnd is the error for input that ends where more is needed.
func (j *jsonReader) atEnd() error {
	if j.rerr != nil {
		return fmt.Errorf("reading state: %s: %w", j.s.name, j.rerr)
	}
	return errTruncated
}

// peek skips white space and returns the next byte, not consumed; ok is
// false at the end of the input.
func (j *jsonReader) peek() (c byte, ok bool) {
	for {
		for j.i < j.n {
			c = j.buf[j.i]
			switch c {
			case ' ':
				j.cr = false
			case '\t':
				j.cr, j.tab = false, true
			case '\n':
				if !j.cr {
					j.line++
				}
				j.cr, j.tab = false, false
			case '\r':
				j.line++
				j.cr, j.tab = true, false
			default:
				return c, true
			}
			j.i++
		}
		if !j.more() {
			return 0, false
		}
	}
}

// next is peek that fails at the end of the input.
func (j *jsonReader) next() (byte, error) {
	c, ok := j.peek()
	if !ok {
		return 0, j.atEnd()
	}
	return c, nil
}

// start reports whether the document is a JSON object: after an optional
// byte order mark, white space and YAML comment lines, a '{'.
func (j *jsonReader) start() (bool, error) {
	for j.n < 3 && j.more() {
	}
	if j.n >= 3 && j.buf[0] == 0xEF && j.buf[1] == 0xBB && j.buf[2] == 0xBF {
		j.i = 3
	}
	for {
		c, ok := j.peek()
		if !ok {
			if j.rerr != nil {
				return false, j.atEnd()
			}
			return false, nil
		}
		switch c {
		case '{':
			// YAML refuses a tab in the white space before the object
			// ("found character that cannot start any token"): let it say so.
			return !j.tab, nil
		case '#':
			if !j.skipComment() {
				return false, nil
			}
		default:
			return false, nil
		}
	}
}

// skipComment skips a YAML comment up to the end of its line; false when
// it holds characters YAML might not take.
func (j *jsonReader) skipComment() bool {
	for {
		for j.i < j.n {
			c := j.buf[j.i]
			if c == '\n' || c == '\r' {
				return true
			}
			if c < 0x20 && c != '\t' || c >= 0x7f {
				return false
			}
			j.i++
		}
		if !j.more() {
			return true
		}
	}
}

// run reads the whole object. Problems go to the sink; the error is
// *notJSON, a read error or the callback's error.
func (j *jsonReader) run() error {
	err := j.top()
	switch err {
	case errStop:
		return j.s.err
	case errTruncated:
		j.s.problem(j.line, "unexpected end of file: the JSON object is not complete")
		return nil
	}
	return err
}

// members reads the members of the object at buf[i] ('{'): for each one,
// the key (in j.key, valid until fn reads the value) and its line, then
// fn, which reads the value.
func (j *jsonReader) members(fn func(key []byte, line int) error) error {
	j.i++ // '{'
	c, err := j.next()
	if err != nil {
		return err
	}
	if c == '}' {
		j.i++
		return nil
	}
	for {
		if c != '"' {
			return j.notJSON("want a string key")
		}
		line := j.line
		kb, err := j.str(true)
		if err != nil {
			return err
		}
		j.key = append(j.key[:0], kb...)
		// YAML wants the ':' on the key's line.
		if c, err = j.next(); err != nil {
			return err
		}
		if c != ':' || j.line != line {
			return j.notJSON("want ':' after the key, on its line")
		}
		j.i++
		if err := fn(j.key, line); err != nil {
			return err
		}
		done, err := j.afterItem('}')
		if done || err != nil {
			return err
		}
		if c, err = j.next(); err != nil {
			return err
		}
	}
}

// afterItem reads what follows a member or an element: the collection's
// closing byte (done) or a ',' before the next item.
func (j *jsonReader) afterItem(closing byte) (done bool, err error) {
	c, err := j.next()
	if err != nil {
		return false, err
	}
	j.i++
	switch c {
	case closing:
		return true, nil
	case ',':
		return false, nil
	}
	j.i--
	return false, j.notJSON(fmt.Sprintf("want ',' or '%c'", closing))
}

// elements reads the elements of the array at buf[i] ('['): fn reads
// each, c being its first byte.
func (j *jsonReader) elements(fn func(c byte, i int) error) error {
	j.i++ // '['
	c, err := j.next()
	if err != nil {
		return err
	}
	if c == ']' {
		j.i++
		return nil
	}
	for i := 0; ; i++ {
		if err := fn(c, i); err != nil {
			return err
		}
		done, err := j.afterItem(']')
		if done || err != nil {
			return err
		}
		if c, err = j.next(); err != nil {
			return err
		}
	}
}

// top reads the snapshot object and what follows it.
func (j *jsonReader) top() error {
	var keys []keyAt
	err := j.members(func(kb []byte, line int) error {
		key := string(kb)
		dup := false
		for _, k := range keys {
			if k.key == key {
				dup = true
				j.s.problem(line, fmt.Sprintf("mapping key %q already defined at line %d", key, k.line))
			}
		}
		keys = append(keys, keyAt{key, line})
		switch k := sectionKind(key); {
		case dup:
			return j.skip(0)
		case k == 0:
			j.s.problem(line, unknownKey(key, ""))
			return j.skip(0)
		default:
			return j.section(k)
		}
	})
	if err != nil {
		return err
	}
	// After the object: white space, and comments after white space.
	if j.i < j.n && j.buf[j.i] == '#' {
		return j.notJSON("a comment right after the object")
	}
	for {
		c, ok := j.peek()
		if !ok {
			if j.rerr != nil {
				return j.atEnd()
			}
			return nil
		}
		if c != '#' || !j.skipComment() {
			return j.notJSON("more after the JSON object")
		}
	}
}

// section reads the value of a section key.
func (j *jsonReader) section(k Kind) error {
	c, err := j.next()
	if err != nil {
		return err
	}
	if c != '[' {
		v, err := j.value()
		if err != nil {
			return err
		}
		if v.kind != 'z' {
			j.s.problem(v.line, k.Section()+": "+mismatch(v.tag(), v.text, "[]"+goType[k]))
		}
		return nil
	}
	return j.elements(func(c byte, idx int) error {
		r := &j.rec
		r.reset(j.s.name, k, idx, j.line)
		if c == '{' {
			return j.record(r)
		}
		v, err := j.value()
		if err != nil || v.kind == 'z' {
			return err // YAML drops null items
		}
		r.bad = true
		j.s.fieldProblem(r, v.line, "", mismatch(v.tag(), v.text, goType[k]))
		return nil
	})
}

// record reads one record object into r and hands it to the sink.
func (j *jsonReader) record(r *Record) error {
	s := j.s
	start := len(s.problems)
	j.keys = j.keys[:0]
	fs := fields[r.Kind]
	err := j.members(func(kb []byte, line int) error {
		fi := -1
		for i := range fs {
			if fs[i].name == string(kb) {
				fi = i
				break
			}
		}
		if fi < 0 {
			key := string(kb)
			j.keys = append(j.keys, keyAt{key, line})
			r.bad = true
			s.problem(line, unknownKey(key, fmt.Sprintf("%s[%d]", r.Kind.Section(), r.Index)))
			return j.skip(0)
		}
		j.keys = append(j.keys, keyAt{fs[fi].name, line})
		return j.field(r, fi)
	})
	if err != nil {
		return err
	}
	if d := dups(j.keys); len(d) > 0 {
		// YAML decodes nothing of a mapping with a duplicate key.
		s.problems = s.problems[:start]
		for _, p := range d {
			s.fieldProblem(r, p.line, "", p.msg)
		}
		r.bad = true
	}
	if s.done(r) != nil {
		return errStop
	}
	return nil
}

// field reads the value of field fi of r.
func (j *jsonReader) field(r *Record, fi int) error {
	f := &fields[r.Kind][fi]
	c, err := j.next()
	if err != nil {
		return err
	}
	line := j.line
	r.lines[fi] = line
	if c == '{' {
		switch f.typ {
		case fMap:
			return j.groups(r, f)
		case fTime:
			return j.timeMapping(r, f.name)
		}
	}
	if c == '"' {
		b, err := j.str(false)
		if err != nil {
			return err
		}
		switch f.typ {
		case fString:
			*f.str(r) = j.s.str(b, f.share)
		case fTime:
			if err := f.time(r).UnmarshalText(b); err != nil {
				r.bad = true
				j.s.fieldProblem(r, line, f.name, err.Error())
			}
		case fMap:
			r.bad = true
			j.s.fieldProblem(r, line, f.name, mismatch("!!str", string(b), "map[string]string"))
		}
		return nil
	}
	v, err := j.value()
	if err != nil {
		return err
	}
	if v.kind == 'z' {
		if f.typ == fMap {
			*f.m(r) = nil
		}
		return nil
	}
	switch f.typ {
	case fString:
		if v.kind == '{' || v.kind == '[' {
			r.bad = true
			j.s.fieldProblem(r, line, f.name, mismatch(v.tag(), "", "string"))
			return nil
		}
		*f.str(r) = j.s.str([]byte(v.text), f.share)
	case fTime:
		if v.kind == '[' {
			r.bad = true
			j.s.fieldProblem(r, line, f.name, mismatch("!!seq", "", "time.Time"))
			return nil
		}
		// YAML hands any scalar to time.Time's UnmarshalText.
		var t time.Time
		if err := t.UnmarshalText([]byte(v.text)); err != nil {
			r.bad = true
			j.s.fieldProblem(r, line, f.name, err.Error())
			return nil
		}
		*f.time(r) = t
	case fMap:
		r.bad = true
		j.s.fieldProblem(r, line, f.name, mismatch(v.tag(), v.text, "map[string]string"))
	}
	return nil
}

// groups reads a mapping of strings to strings (resource_groups).
func (j *jsonReader) groups(r *Record, f *field) error {
	s := j.s
	start := len(s.problems)
	var keys []keyAt
	m := map[string]string{}
	err := j.members(func(kb []byte, line int) error {
		key := s.str(kb, true)
		keys = append(keys, keyAt{key, line})
		c, err := j.next()
		if err != nil {
			return err
		}
		if c == '"' {
			b, err := j.str(false)
			if err != nil {
				return err
			}
			m[key] = s.str(b, true)
			return nil
		}
		v, err := j.value()
		if err != nil {
			return err
		}
		switch v.kind {
		case '{', '[':
			r.bad = true
			s.fieldProblem(r, v.line, f.name, mismatch(v.tag(), "", "string"))
		case 'z':
			m[key] = ""
		default:
			m[key] = s.str([]byte(v.text), true)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if d := dups(keys); len(d) > 0 {
		s.problems = s.problems[:start]
		for _, p := range d {
			s.fieldProblem(r, p.line, f.name, p.msg)
		}
		r.bad = true
		return nil
	}
	*f.m(r) = m
	return nil
}

// timeMapping reads a mapping given for a time: YAML decodes it into a
// zero time.Time, each key being unknown.
func (j *jsonReader) timeMapping(r *Record, field string) error {
	var keys []keyAt
	err := j.members(func(kb []byte, line int) error {
		keys = append(keys, keyAt{string(kb), line})
		return j.skip(0)
	})
	if err != nil {
		return err
	}
	timeMappingProblems(j.s, r, field, keys)
	return nil
}

// timeMappingProblems reports the keys of a mapping given for a time, as
// YAML does: duplicates, else each key as unknown.
func timeMappingProblems(s *sink, r *Record, field string, keys []keyAt) {
	if len(keys) == 0 {
		return
	}
	r.bad = true
	if d := dups(keys); len(d) > 0 {
		for _, p := range d {
			s.fieldProblem(r, p.line, field, p.msg)
		}
		return
	}
	in := fmt.Sprintf("%s[%d].%s", r.Kind.Section(), r.Index, field)
	for _, k := range keys {
		s.problem(k.line, unknownKey(k.key, in))
	}
}

type lineMsg struct {
	line int
	msg  string
}

// dups returns YAML's message for each key defined again, in YAML's order
// (by the first definition, then the repeat).
func dups(keys []keyAt) []lineMsg {
	if len(keys) < 2 {
		return nil
	}
	var out []lineMsg
	add := func(i, k int) bool {
		out = append(out, lineMsg{keys[k].line, fmt.Sprintf("mapping key %q already defined at line %d", keys[k].key, keys[i].line)})
		return len(out) < maxDupMsgs
	}
	if len(keys) <= 64 {
		for i := range keys {
			for k := i + 1; k < len(keys); k++ {
				if keys[i].key == keys[k].key && !add(i, k) {
					return out
				}
			}
		}
		return out
	}
	at := make(map[string][]int, len(keys))
	for k, key := range keys {
		at[key.key] = append(at[key.key], k)
	}
	for i, key := range keys {
		for _, k := range at[key.key] {
			if k > i && !add(i, k) {
				return out
			}
		}
	}
	return out
}

// jval is a value read by value: kind 's' string, 'n' number, 't' true,
// 'f' false, 'z' null, '{' object and '[' array (skipped).
type jval struct {
	kind byte
	text string
	line int
}

// tag is the YAML tag the value resolves to.
func (v jval) tag() string {
	switch v.kind {
	case 's':
		return "!!str"
	case 't', 'f':
		return "!!bool"
	case 'z':
		return "!!null"
	case '{':
		return "!!map"
	case '[':
		return "!!seq"
	}
	// A number, as YAML resolves the plain scalar.
	if _, err := strconv.ParseInt(v.text, 0, 64); err == nil {
		return "!!int"
	}
	if _, err := strconv.ParseUint(v.text, 0, 64); err == nil {
		return "!!int"
	}
	if _, err := strconv.ParseFloat(v.text, 64); err == nil {
		return "!!float"
	}
	return "!!str"
}

// value reads any value; objects and arrays are skipped.
func (j *jsonReader) value() (jval, error) {
	c, err := j.next()
	if err != nil {
		return jval{}, err
	}
	v := jval{kind: c, line: j.line}
	switch c {
	case '"':
		b, err := j.str(false)
		if err != nil {
			return jval{}, err
		}
		v.kind, v.text = 's', string(b)
	case '{', '[':
		if err := j.skip(0); err != nil {
			return jval{}, err
		}
	default:
		lit, err := j.literal()
		if err != nil {
			return jval{}, err
		}
		switch string(lit) {
		case "true":
			v.kind = 't'
		case "false":
			v.kind = 'f'
		case "null":
			v.kind = 'z'
		default:
			if !validNumber(lit) {
				return jval{}, j.notJSON(fmt.Sprintf("unexpected %q", lit))
			}
			v.kind = 'n'
		}
		v.text = string(lit)
	}
	return v, nil
}

// skip reads and drops one value, checking its syntax.
func (j *jsonReader) skip(depth int) error {
	c, err := j.next()
	if err != nil {
		return err
	}
	switch c {
	case '{':
		if depth >= maxJSONDepth {
			return j.notJSON("nested too deep")
		}
		return j.members(func([]byte, int) error { return j.skip(depth + 1) })
	case '[':
		if depth >= maxJSONDepth {
			return j.notJSON("nested too deep")
		}
		return j.elements(func(byte, int) error { return j.skip(depth + 1) })
	}
	_, err = j.value()
	return err
}

// literal reads the bytes of a number, true, false or null (checked by
// the caller), valid until the next read.
func (j *jsonReader) literal() ([]byte, error) {
	off := 0
	for {
		for j.i+off < j.n {
			c := j.buf[j.i+off]
			if 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'E' {
				off++
				continue
			}
			if off == 0 {
				return nil, j.notJSON(fmt.Sprintf("unexpected %q", c))
			}
			b := j.buf[j.i : j.i+off]
			j.i += off
			j.cr = false
			return b, nil
		}
		if !j.more() {
			// A value at the very end: the object is not closed.
			return nil, j.atEnd()
		}
	}
}

// validNumber reports whether b is a JSON number.
func validNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	return i == len(b)
}

// str reads the string at buf[i] ('"') and returns its value, valid until
// the next read. Strings that YAML reads differently from JSON (escapes
// YAML lacks, characters YAML refuses or folds) and strings that are not
// JSON (control characters) give way to the YAML reader, as do keys too
// long for YAML.
func (j *jsonReader) str(key bool) ([]byte, error) {
	off := 1
	esc, wide := false, false
	for {
		for j.i+off < j.n {
			c := j.buf[j.i+off]
			switch {
			case c == '"':
				raw := j.buf[j.i+1 : j.i+off]
				j.i += off + 1
				j.cr = false
				if key && len(raw) > maxKeyLen {
					return nil, j.notJSON("key too long for YAML")
				}
				if wide && !yamlPrintable(raw) {
					return nil, j.notJSON("a character YAML refuses or folds")
				}
				if esc {
					return j.unescape(raw)
				}
				return raw, nil
			case c == '\\':
				esc = true
				off += 2
				continue
			case c < 0x20 || c == 0x7f:
				return nil, j.notJSON("a control character in a string")
			case c >= 0x80:
				wide = true
			}
			off++
		}
		if !j.more() {
			return nil, j.atEnd()
		}
	}
}

// unescape decodes the escapes of a JSON string that YAML's double-quoted
// scalars decode the same way.
func (j *jsonReader) unescape(raw []byte) ([]byte, error) {
	out := j.scratch[:0]
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(raw) {
			return nil, j.notJSON("bad escape")
		}
		switch raw[i] {
		case '"', '\\':
			out = append(out, raw[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if i+4 >= len(raw) {
				return nil, j.notJSON("bad \\u escape")
			}
			v, err := strconv.ParseUint(string(raw[i+1:i+5]), 16, 32)
			if err != nil {
				return nil, j.notJSON("bad \\u escape")
			}
			if 0xD800 <= v && v <= 0xDFFF {
				// YAML does not combine surrogate pairs.
				return nil, j.notJSON("a surrogate \\u escape")
			}
			out = utf8.AppendRune(out, rune(v))
			i += 4
		default:
			// \/ and anything else: not in YAML's set, or not JSON.
			return nil, j.notJSON("an escape YAML reads differently")
		}
	}
	j.scratch = out
	return out, nil
}

// yamlPrintable reports whether YAML reads the UTF-8 text b as it is:
// valid UTF-8 in YAML's printable set, without the line breaks YAML folds
// (U+0085, U+2028, U+2029) or a byte order mark.
func yamlPrintable(b []byte) bool {
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size <= 1 {
			return false
		}
		switch {
		case r < 0x80:
		case r == 0x2028 || r == 0x2029 || r == 0xFEFF:
			return false
		case 0xA0 <= r && r <= 0xD7FF, 0xE000 <= r && r <= 0xFFFD, 0x10000 <= r && r <= 0x10FFFF:
		default:
			return false
		}
		b = b[size:]
	}
	return true
}
