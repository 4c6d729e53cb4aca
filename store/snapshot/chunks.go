package snapshot

import (
	"bytes"
	"errors"
	"runtime"

	"go.yaml.in/yaml/v3"
)

// A YAML snapshot of a million records parses into a node tree of several
// gigabytes. Snapshots are usually laid out as a few top-level keys, each
// followed by a block sequence of records:
//
//	memberships:
//	  - {org: acme, user: u-alice}
//	  - org: acme
//	    user: u-bob
//
// Such a document can be cut before any item of a sequence: each chunk,
// with the section's key put back in front, is a document whose records
// are those of the whole. planChunks finds the cuts; readYAMLChunks parses
// the chunks on every core and decodes them in order, so that only a few
// chunks' trees exist at a time.
//
// A cut is only made before a line that starts a sequence item at the
// indentation of the section's first item, in a section whose key line
// holds nothing else, in a document without anchors and aliases (which
// could refer across chunks), document markers, directives or lone
// carriage returns. A line that looks like an item but is inside a quoted
// scalar or a flow collection leaves the chunk before it unterminated:
// that chunk fails to parse, and the document is read whole (errWhole), as
// it is when a chunk uses what the record decoder leaves to yaml/v3.

// chunkItems is how many items a chunk holds.
const chunkItems = 16384

// errWhole: the document must be read as one tree.
var errWhole = errors.New("read the YAML document whole")

// chunk is a part of a YAML document: raw[start:end], starting at line.
// The first chunk starts the document; the others continue the section
// whose key (at keyLine) they are preceded by when parsed.
type chunk struct {
	start, end int
	line       int
	key        string
	keyLine    int
}

// planChunks cuts raw into chunks of at most items sequence items; it
// returns nil when the document does not lend itself to cutting.
func planChunks(raw []byte, items int) []chunk {
	if bytes.IndexByte(raw, '&') >= 0 || bytes.IndexByte(raw, '*') >= 0 {
		return nil
	}
	plan := []chunk{{start: 0, line: 1}}
	var (
		key        string
		keyLine    int
		chunkable  bool // in a section whose items may be cut
		itemIndent = -1 // of the section's first item
		n          int  // items in the current chunk
		started    bool // a significant line was seen
	)
	line := 0
	for pos := 0; pos < len(raw); {
		line++
		end := len(raw)
		next := len(raw)
		if i := bytes.IndexByte(raw[pos:], '\n'); i >= 0 {
			end, next = pos+i, pos+i+1
		}
		text := raw[pos:end]
		start := pos
		pos = next
		if len(text) > 0 && text[len(text)-1] == '\r' {
			text = text[:len(text)-1]
		}
		if bytes.IndexByte(text, '\r') >= 0 {
			return nil
		}
		ind := 0
		for ind < len(text) && text[ind] == ' ' {
			ind++
		}
		if ind == len(text) || text[ind] == '#' {
			continue // blank or comment
		}
		if text[ind] == '\t' {
			return nil
		}
		if ind == 0 && (bytes.HasPrefix(text, []byte("---")) || bytes.HasPrefix(text, []byte("...")) || text[0] == '%') {
			return nil
		}
		if ind == 0 && text[0] != '-' {
			// A top-level key: the section it starts may be cut if the
			// key line holds only the key.
			k, ok := sectionKey(text)
			if !started && bytes.IndexByte(text, ':') < 0 {
				return nil
			}
			started = true
			key, keyLine, chunkable, itemIndent, n = k, line, ok, -1, 0
			continue
		}
		if !started {
			return nil // not a block mapping at the top
		}
		if !chunkable {
			continue
		}
		item := text[ind] == '-' && (ind+1 == len(text) || text[ind+1] == ' ')
		if itemIndent < 0 {
			if !item {
				chunkable = false
				continue
			}
			itemIndent = ind
		}
		if item && ind == itemIndent {
			if n++; n > items {
				plan[len(plan)-1].end = start
				plan = append(plan, chunk{start: start, line: line, key: key, keyLine: keyLine})
				n = 1
			}
		}
	}
	plan[len(plan)-1].end = len(raw)
	return plan
}

// sectionKey returns the key of a line "key:" (plain key, then at most
// spaces and a comment).
func sectionKey(text []byte) (string, bool) {
	i := 0
	for i < len(text) {
		c := text[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' {
			i++
			continue
		}
		break
	}
	if i == 0 || i >= len(text) || text[i] != ':' {
		return "", false
	}
	rest := bytes.TrimLeft(text[i+1:], " ")
	if len(rest) > 0 && (rest[0] != '#' || len(rest) == len(text)-i-1) {
		return "", false // a value, or a '#' not after a space
	}
	return string(text[:i]), true
}

// readYAMLChunks parses the chunks of plan (on up to GOMAXPROCS
// goroutines, a few chunks ahead) and decodes them in order.
func readYAMLChunks(raw []byte, plan []chunk, s *sink) error {
	y := &yamlReader{s: s, sections: map[int]yamlSection{}}
	type parsed struct {
		top *yaml.Node // nil: read the document whole
	}
	results := make([]chan parsed, len(plan))
	for i := range results {
		results[i] = make(chan parsed, 1)
	}
	workers := runtime.GOMAXPROCS(0)
	slots := make(chan struct{}, workers+1)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for i := range plan {
			select {
			case slots <- struct{}{}:
			case <-done:
				return
			}
			go func() { results[i] <- parsed{parseChunk(raw, plan[i])} }()
		}
	}()
	for i, c := range plan {
		p := <-results[i]
		if p.top == nil {
			return errWhole
		}
		err := y.top(p.top, c.key, c.keyLine)
		<-slots
		if err != nil {
			return err
		}
	}
	return nil
}

// parseChunk parses one chunk into its top-level mapping, with the lines
// of the whole document; nil when it must be read whole.
func parseChunk(raw []byte, c chunk) *yaml.Node {
	text := raw[c.start:c.end]
	if c.key != "" {
		text = append(append(make([]byte, 0, len(c.key)+2+len(text)), c.key+":\n"...), text...)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(text, &doc); err != nil || doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode || exotic(top) {
		return nil
	}
	if c.key != "" {
		shiftLines(top, c.line-2)
	}
	return top
}

func shiftLines(n *yaml.Node, d int) {
	n.Line += d
	for _, c := range n.Content {
		shiftLines(c, d)
	}
}
