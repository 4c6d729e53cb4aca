package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// yamlLine matches the "yaml: line N: msg" form of the parser's syntax errors.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML parses data as a single YAML document and returns its root node,
// nil for an empty document. ok is false when the file is not valid YAML
// (the syntax error is recorded in ps).
func parseYAML(data []byte, ps *problems) (root *yaml.Node, ok bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, true
		}
		addYAMLError(ps, err)
		return nil, false
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		line := extra.Line
		if len(extra.Content) > 0 {
			line = extra.Content[0].Line
		}
		ps.add(line, "only one YAML document is allowed per file")
		return nil, false
	case !errors.Is(err, io.EOF):
		addYAMLError(ps, err)
		return nil, false
	}
	if len(doc.Content) == 0 {
		return nil, true
	}
	return resolve(doc.Content[0]), true
}

// parserProblems are the messages of the YAML parser's (not scanner's)
// errors. For these the library reports a 0-based line: where the enclosing
// collection starts or, when that is the first line, where the problem is.
var parserProblems = []string{
	"did not find expected <stream-start>",
	"did not find expected <document start>",
	"did not find expected node content",
	"did not find expected '-' indicator",
	"did not find expected key",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"found undefined tag handle",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found duplicate %TAG directive",
}

// addYAMLError records a syntax error at the (1-based) line it names.
func addYAMLError(ps *problems, err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	if contains(parserProblems, msg) {
		line++
	}
	ps.add(line, "invalid YAML: "+msg)
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// isNull reports whether n is absent or an explicit YAML null.
func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// reader turns YAML nodes into values, recording every problem.
type reader struct{ ps *problems }

func (r reader) errorf(line int, format string, args ...any) {
	r.ps.add(line, fmt.Sprintf(format, args...))
}

// field is one key/value pair of a mapping.
type field struct{ key, val *yaml.Node }

// object is a YAML mapping whose keys were checked against the known ones.
type object struct {
	r    reader
	path string // dotted path of the mapping, "" at the top of the file
	line int    // line to blame for missing keys (0 at the top)
	vals map[string]field
}

// object reads mapping n found at path (line: where a missing key is blamed).
// It reports unknown and duplicate keys, and a value that is not a mapping.
// A null or absent n yields an empty object. Merge keys ("<<") are honoured.
func (r reader) object(n *yaml.Node, path string, line int, known ...string) *object {
	o := &object{r: r, path: path, line: line, vals: map[string]field{}}
	n = resolve(n)
	if isNull(n) {
		return o
	}
	if n.Kind != yaml.MappingNode {
		r.errorf(n.Line, "%s must be a mapping", orTop(path))
		return o
	}
	r.collect(o, n, known, true, 0)
	return o
}

// collect adds the pairs of mapping n to o. Explicit pairs win over merged
// ones; duplicates are reported only among explicit pairs.
func (r reader) collect(o *object, n *yaml.Node, known []string, explicit bool, depth int) {
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			r.errorf(k.Line, "%s: keys must be strings", orTop(o.path))
			continue
		}
		if !contains(known, k.Value) {
			r.errorf(k.Line, "unknown key %q", k.Value)
			continue
		}
		if prev, dup := o.vals[k.Value]; dup {
			if explicit {
				r.errorf(k.Line, "duplicate key %q (first at line %d)", k.Value, prev.key.Line)
			}
			continue
		}
		o.vals[k.Value] = field{key: k, val: v}
	}
	if depth > 16 {
		return
	}
	for _, m := range merges {
		m = resolve(m)
		srcs := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			srcs = m.Content
		}
		for _, s := range srcs {
			if s = resolve(s); s.Kind != yaml.MappingNode {
				r.errorf(s.Line, "%s: merge key \"<<\" needs a mapping", orTop(o.path))
				continue
			}
			r.collect(o, s, known, false, depth+1)
		}
	}
}

func orTop(path string) string {
	if path == "" {
		return "the file"
	}
	return path
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// name returns the dotted path of key k.
func (o *object) name(k string) string {
	if o.path == "" {
		return k
	}
	return o.path + "." + k
}

// get returns the value of k, or nil when absent or null.
func (o *object) get(k string) *yaml.Node {
	f, ok := o.vals[k]
	if !ok || isNull(f.val) {
		return nil
	}
	return resolve(f.val)
}

// has reports whether k is set to a non-null value.
func (o *object) has(k string) bool { return o.get(k) != nil }

// at returns the line of k's value, or the object's line when k is absent.
func (o *object) at(k string) int {
	if f, ok := o.vals[k]; ok {
		return f.val.Line
	}
	return o.line
}

// keyLine returns the line of key k, or the object's line when k is absent.
func (o *object) keyLine(k string) int {
	if f, ok := o.vals[k]; ok {
		return f.key.Line
	}
	return o.line
}

func (o *object) errorf(k string, format string, args ...any) {
	o.r.errorf(o.at(k), "%s: %s", o.name(k), fmt.Sprintf(format, args...))
}

// require reports k as missing when it is absent or empty.
func (o *object) require(k string) {
	if n := o.get(k); n == nil || (n.Kind == yaml.ScalarNode && n.Value == "") {
		o.r.errorf(o.keyLine(k), "%s is required", o.name(k))
	}
}

// str returns the scalar value of k ("" when absent or null).
func (o *object) str(k string) string {
	n := o.get(k)
	if n == nil {
		return ""
	}
	if n.Kind != yaml.ScalarNode {
		o.errorf(k, "must be a string")
		return ""
	}
	return n.Value
}

// boolean returns the value of k (false when absent).
func (o *object) boolean(k string) bool {
	n := o.get(k)
	if n == nil {
		return false
	}
	var b bool
	if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
		o.errorf(k, "must be true or false, not %q", n.Value)
	}
	return b
}

// integer returns the value of k (0 when absent).
func (o *object) integer(k string) int {
	n := o.get(k)
	if n == nil {
		return 0
	}
	var i int
	if n.Kind != yaml.ScalarNode || n.Decode(&i) != nil {
		o.errorf(k, "must be an integer, not %q", n.Value)
	}
	return i
}

// duration returns the value of k in Go duration syntax (e.g. 168h, 90s),
// def when absent. Negative durations are reported.
func (o *object) duration(k string, def time.Duration) time.Duration {
	s := o.str(k)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		o.errorf(k, "invalid duration %q (use Go syntax such as 168h, 30m or 90s)", s)
		return def
	}
	if d < 0 {
		o.errorf(k, "duration %q must not be negative", s)
		return def
	}
	return d
}

// seq returns the items of the sequence at k (nil when absent).
func (o *object) seq(k string) []*yaml.Node {
	n := o.get(k)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		o.errorf(k, "must be a list")
		return nil
	}
	items := make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		items[i] = resolve(c)
	}
	return items
}

// strs returns the list of non-empty strings at k (nil when absent).
func (o *object) strs(k string) []string {
	out, _ := o.strsLines(k)
	return out
}

// strsLines is strs, also returning the line of each string.
func (o *object) strsLines(k string) (out []string, lines []int) {
	for i, n := range o.seq(k) {
		if n.Kind != yaml.ScalarNode || isNull(n) || n.Value == "" {
			o.r.errorf(n.Line, "%s[%d]: must be a non-empty string", o.name(k), i)
			continue
		}
		out = append(out, n.Value)
		lines = append(lines, n.Line)
	}
	return out, lines
}

// sub reads the mapping at k. It returns nil when k is absent or null, or
// (after reporting it) not a mapping.
func (o *object) sub(k string, known ...string) *object {
	n := o.get(k)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		o.r.errorf(n.Line, "%s must be a mapping", o.name(k))
		return nil
	}
	return o.r.object(n, o.name(k), o.keyLine(k), known...)
}
