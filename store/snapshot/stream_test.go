package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unsafe"

	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/store/memory"
)

// result is what one reader made of a document.
type result struct {
	snap     Snapshot
	calls    int
	problems []string // the *Problems list, if any
	err      error    // any other error
}

func (r *result) add(rec *Record) error {
	r.calls++
	return r.snap.add(rec)
}

func (r *result) finish(err error) {
	var p *Problems
	switch {
	case errors.As(err, &p):
		r.problems = p.List
	case err != nil:
		r.err = err
	}
}

func (r *result) ok() bool { return r.problems == nil && r.err == nil }

// viaJSON runs the JSON reader alone, over a reader that hands over one
// byte at a time into a buffer of size bytes; gaveWay is true when the
// document is not JSON or the reader leaves it to the YAML reader.
func viaJSON(doc string, size int) (r result, gaveWay bool) {
	s := &sink{name: "s.yaml", fn: r.add}
	j := newJSONReader(iotest.OneByteReader(strings.NewReader(doc)), s, size)
	isJSON, err := j.start()
	if err != nil {
		r.finish(err)
		return r, false
	}
	if !isJSON {
		return r, true
	}
	err = j.run()
	var nj *notJSON
	if errors.As(err, &nj) {
		return r, true
	}
	if err == nil {
		err = s.result()
	}
	r.finish(err)
	return r, false
}

// viaYAML runs the YAML reader alone.
func viaYAML(doc string) (r result) {
	s := &sink{name: "s.yaml", fn: r.add}
	err := readYAML("s.yaml", []byte(doc), s)
	if err == nil {
		err = s.result()
	}
	r.finish(err)
	return r
}

// viaYAMLItems runs the YAML reader alone, with chunks of items records
// (1<<30: one tree).
func viaYAMLItems(doc string, items int) (r result) {
	s := &sink{name: "s.yaml", fn: r.add}
	err := readYAMLItems("s.yaml", []byte(doc), s, items)
	if err == nil {
		err = s.result()
	}
	r.finish(err)
	return r
}

// viaStream runs StreamBytes: the JSON reader, giving way to YAML.
func viaStream(doc string) (r result) {
	r.finish(StreamBytes("s.yaml", []byte(doc), r.add))
	return r
}

// jsonDocs are JSON documents, valid and not, that both readers must read
// alike, and as the first version of the package did.
var jsonDocs = []string{
	`{}`,
	`{"memberships": [], "sessions": null, "resources": []}`,
	`{"memberships": [{"org": "acme", "user": "u-alice", "role": "write", "resource_groups": {"vision": "read"}, "invite_role": "read"}, {"org": "acme", "user": "u-bob"}],
"sessions": [{"org": "acme", "user": "u-alice", "authenticated_at": "2026-06-01T10:00:00Z", "email": "alice@acme.example", "expires_at": "2026-09-01T10:00:00+02:00"}],
"resources": [{"type": "model", "id": "acme/secret-model", "visibility": "private", "resource_group": "vision", "created_by": "u-alice"}]}`,
	// ssogate-bench gen's layout
	"{\"memberships\": [\n  {\"org\": \"org-00000\", \"user\": \"u0000000\", \"role\": \"read\"},\n  {\"org\": \"org-00001\", \"user\": \"u0000001\", \"resource_groups\": {\"vision\": \"write\"}}\n],\n\"sessions\": [\n  {\"org\": \"org-00000\", \"user\": \"u0000000\", \"authenticated_at\": \"2026-11-29T10:12:56Z\", \"email\": \"u0000000@org-00000.example\"}\n],\n\"resources\": [\n  {\"type\": \"model\", \"id\": \"org-00000/model-0000000\", \"visibility\": \"public\", \"created_by\": \"u0000001\"}\n]}\n",
	"{\"memberships\": [\r\n  {\"org\": \"a\", \"user\": \"u\", \"role\": \"owner\"},\r\n  {\"org\": \"a\"}\r\n]}\r\n",
	"{\"memberships\": [\r  {\"org\": \"a\", \"user\": \"u\", \"role\": \"owner\"}\r]}",
	`{"memberships":[{"org":"a","user":"u"},{"org":"b","user":"v","role":"admin"}]}`,
	`{ "memberships" : [ { "org" : "a" , "user" : "u" } ] }`,
	"{\n\t\"memberships\": [\n\t\t{\"org\": \"a\", \"user\": \"u\"}\n\t]\n}",
	"# a comment\n\n  # another\n{\"memberships\": [{\"org\": \"a\", \"user\": \"u\"}]}\n# trailing\n",
	"\ufeff{\"memberships\": [{\"org\": \"a\", \"user\": \"u\"}]}",
	// scalars into strings, as YAML reads them
	`{"memberships": [{"org": "a", "user": 5, "role": null, "invite_role": "read"}]}`,
	`{"memberships": [{"org": "a", "user": true}, {"org": "a", "user": -0.5e3}, {"org": "a", "user": 12345678901234567890123}, {"org": "a", "user": 1e400}]}`,
	`{"memberships": [{"org": "a", "user": "é😀\u00e9\u4e2d", "role": "read"}]}`,
	`{"memberships": [{"org": "a", "user": "u\"q\\b\b\f\n\r\t"}]}`,
	`{"memberships": [{"org": "a", "user": "u\u0000"}]}`,
	`{"memberships": [{"org": "\u0061", "\u0075ser": "x"}]}`,
	// resource groups
	`{"memberships": [{"org": "a", "user": "u", "resource_groups": {}}]}`,
	`{"memberships": [{"org": "a", "user": "u", "resource_groups": null}]}`,
	`{"memberships": [{"org": "a", "user": "u", "resource_groups": {"vision": null, "nlp": 5}}]}`,
	`{"memberships": [{"org": "a", "user": "u", "resource_groups": {"": "read"}}]}`,
	`{"memberships": [{"org": "a", "user": "u", "resource_groups": {"vision": "owner", "nlp": "read"}}]}`,
	`{"memberships": [{"org": "a", "user": "u", "resource_groups": "vision"}]}`,
	`{"memberships": [{"org": "a", "user": "u", "resource_groups": "a-long-group-name"}]}`,
	`{"memberships": [{"org": "a", "user": "u", "resource_groups": 5}]}`,
	`{"memberships": [{"org": "a", "user": "u", "resource_groups": ["vision"]}]}`,
	`{"memberships": [{"org": "a", "user": "u", "resource_groups": {"vision": ["read"], "nlp": {"a": 1}}}]}`,
	`{"memberships": [{"org": "a", "user": "u", "resource_groups": {"vision": "read", "vision": "write"}}]}`,
	// problems of every kind
	`{"memberships": [{"org": "a", "user": "u", "role": "owner", "invite_role": "boss"}]}`,
	`{"memberships": [{"org": "a"}, {"user": "u"}, null, {"org": "a", "user": "u/slash"}, {"org": "a", "user": "u\u0001"}]}`,
	`{"memberships": [{"org": "a", "user": "u", "colour": "red", "size": {"x": [1, 2]}}]}`,
	`{"memberships": [{"org": "a", "user": "u", "org": "b"}]}`,
	`{"memberships": [{"org": "a", "colour": 1, "org": "b", "org": "c"}]}`,
	`{"memberships": [{"org": "a", "user": "u"}], "memberships": [{"org": "b", "user": "v"}]}`,
	`{"members": [], "x": {"y": [1, {"z": null}]}, "x": 1}`,
	`{"memberships": {"org": "a"}}`,
	`{"memberships": 5}`,
	`{"memberships": 1e400}`,
	`{"memberships": "a-long-section-value"}`,
	`{"memberships": true}`,
	`{"memberships": [5, "s", [1], true, 1.5, {"org": "a", "user": "u"}]}`,
	`{"memberships": [{"org": ["a"], "user": {"x": 1}}]}`,
	`{"sessions": [{"org": "a", "user": "u", "authenticated_at": "2026-06-01"}]}`,
	`{"sessions": [{"org": "a", "user": "u", "authenticated_at": "yesterday"}, {"org": "a", "user": "v", "authenticated_at": 5}]}`,
	`{"sessions": [{"org": "a", "user": "u", "authenticated_at": true}]}`,
	`{"sessions": [{"org": "a", "user": "u", "authenticated_at": null}]}`,
	`{"sessions": [{"org": "a", "user": "u", "authenticated_at": ""}]}`,
	`{"sessions": [{"org": "a", "user": "u", "authenticated_at": {}}]}`,
	`{"sessions": [{"org": "a", "user": "u", "authenticated_at": {"at": "2026-06-01T10:00:00Z", "zone": 1}}]}`,
	`{"sessions": [{"org": "a", "user": "u", "authenticated_at": {"at": 1, "at": 2}}]}`,
	`{"sessions": [{"org": "a", "user": "u", "authenticated_at": ["2026-06-01T10:00:00Z"]}]}`,
	`{"sessions": [{"org": "a", "user": "u", "authenticated_at": "1500-01-01T00:00:00Z"}]}`,
	`{"sessions": [{"org": "a", "user": "u", "authenticated_at": "2026-06-01T10:00:00Z", "expires_at": "soon"}]}`,
	`{"sessions": [{"org": "a", "user": "u", "authenticated_at": "2026-06-01T10:00:00.123456789-07:00"}]}`,
	`{"resources": [{"type": "notebook", "id": "acme/x", "visibility": "private"}, {"type": "model", "id": "nope", "visibility": "hidden"}, {"type": "model", "id": "a/b/c", "visibility": "public"}, {}]}`,
	// JSON that YAML reads differently, or that is not JSON: the YAML reader decides
	`{"memberships": [{"org": "a", "user": "u"},]}`,
	`{"memberships": [{"org": "a", "user": "u"}, {"org": "b", "user": "v"},], "sessions": []}`,
	`{"memberships": [{"org": "a", "user": "u\/v"}]}`,
	`{"memberships": [{"org": "a", "user": "\ud83d\ude00"}]}`,
	"{\"memberships\": [{\"org\": \"a\", \"user\": \"u\tv\"}]}",
	"{\"memberships\": [{\"org\": \"a\", \"user\": \"u\u2028v\"}]}",
	"{\"memberships\": [{\"org\": \"a\", \"user\": \"u\u0085v\"}]}",
	"{\"memberships\": [{\"org\": \"a\", \"user\": \"u\x7fv\"}]}",
	"{\"memberships\": [{\"org\": \"a\", \"user\": \"u\xffv\"}]}",
	`{"memberships": [{"org": "a", "user": "u"}]} # done`,
	`{"memberships": [{"org": "a", "user": "u"}]}# done`,
	`{"memberships": []} {}`,
	"{\"memberships\": []}\n---\n{\"sessions\": 5}\n",
	`{memberships: [{org: a, user: u}]}`,
	`{"memberships": [{org: a, user: u}]}`,
	`{'memberships': [{'org': 'a', 'user': 'u'}]}`,
	"{\"memberships\"\n: []}",
	`{"memberships": [{"org": "a", "user": u}]}`,
	`{"memberships": [{"org": "a", "user": 0x1F}]}`,
	`{"memberships": [{"org": "a", "user": 01}]}`,
	`{"memberships": [{"org": "a", "user": "u", "role": tru}]}`,
	`{"x": ` + strings.Repeat("[", 1200) + strings.Repeat("]", 1200) + `}`,
	`{"memberships": [{"org": "a", "user": "u", "resource_groups": {"` + strings.Repeat("g", 1100) + `": "read"}}]}`,
	// not valid anywhere
	`{"memberships": [}`,
	`{"memberships" "x"}`,
	`{"memberships": [{"org": "a" "user": "u"}]}`,
	`{"memberships": [{"org": "a", "user": "u"}]]`,
	// truncated
	`{`,
	`{"mem`,
	`{"memberships"`,
	`{"memberships": `,
	`{"memberships": [`,
	`{"memberships": [{"org": "a", "user": "u"}`,
	`{"memberships": [{"org": "a", "user": "u"}, {"org": "a", "us`,
	`{"memberships": [{"org": "a", "user": 12`,
	`{"memberships": [{"org": "a", "user": tr`,
	`{"memberships": [{"org": "a", "resource_groups": {"x": "y"`,
	`{"memberships": [{"org": "a", "x": [1, [2, {"y": `,
}

// yamlDocs are YAML documents that are not JSON objects.
var yamlDocs = []string{
	"",
	"  \n",
	"# only a comment\n",
	"null\n",
	"~",
	"- a\n",
	"hello\n",
	"memberships:\n",
	"memberships: ~\nsessions: []\n",
	"memberships:\n  - {org: acme, user: u-alice, role: write, resource_groups: {vision: read}, invite_role: read}\n  - org: acme\n    user: u-bob\n    role: owner\n",
	"sessions:\n  - {org: a, user: u, authenticated_at: 2026-06-01T10:00:00Z}\n  - {org: a, user: v, authenticated_at: 2026-06-01}\n  - {org: a, user: w, authenticated_at: 2026-6-1 10:00:00}\n",
	"sessions:\n  - {org: a, user: u, authenticated_at: \"2026-06-01\"}\n",
	"sessions:\n  - org: a\n    user: u\n    authenticated_at:\n      at: 1\n",
	"memberships:\n  - {org: a, user: u, colour: red}\n  - {org: a, user: 5, 7: x, ~: y, null: z}\n",
	"memberships:\n  - {org: a, user: u, org: b}\n",
	"memberships:\n  - {org: a, user: u, resource_groups: {5: read, vision: write}}\n",
	"memberships:\n  - {org: a, user: u, role: [read]}\n",
	"memberships:\n  - {org: a, user: u, resource_groups: {vision: [read]}}\n",
	"memberships:\n  - {org: a, user: |\n      block\n    }\n",
	"memberships:\n  - {org: a, user: !!str 5}\n",
	"memberships:\n  - {org: a, user: !!binary dXNlcg==}\n",
	"base: &b {org: x}\nmemberships:\n  - <<: *b\n    user: u\n",
	"memberships:\n  - &r {org: x, user: u}\n  - *r\n",
	"memberships:\n  - {org: x, user: u, <<: {colour: 1}}\n",
	"memberships:\n  - {org: x, user: u, ? [a]: y}\n",
	"memberships:\n  - ~\n  - &a {org: a, user: u, role: boss}\n  - *a\n",
	"memberships:\n  - ~\n  - &a {org: a, user: u}\n  - *a\n  - {org: a, user: v, role: admin}\n",
	`{"memberships": [{"org": "a", "user": "u"}, null, {"org": "a", "user": "v"}, &x {"org": "a", "user": "w"}, *x]}`,
	"memberships: [\n",
	"memberships:\n  - {org: a, user: u}\n---\nsessions: 5\n",
	"members: []\n",
	"\t{\"memberships\": []}\n", // YAML refuses a tab before the object
	"  \t {\"memberships\": []}\n",
	"memberships: {org: a}\n",
	"memberships: [5, s, [1]]\n",
	"resources:\n  - {type: notebook, id: acme/x, visibility: private}\n  - {type: model, id: nope, visibility: hidden}\n",
	// laid out for chunks
	"memberships:\n  - {org: a, user: u}\n  - {org: a, user: v, role: boss}\n  - org: a\n    user: w\n    resource_groups:\n      vision: read\nsessions:\n- {org: a, user: u, authenticated_at: 2026-06-01T10:00:00Z}\n- {org: a, user: v}\nmemberships:\n  - {org: b, user: x}\n  - {org: b, user: y}\n",
	"members:\n  - a\n  - b\n  - c\nmemberships:\n  - {org: a, user: u}\n  - {org: a, user: v}\n  - {org: a, user: w}\n",
	"memberships:\n  - {org: a, user: \"x\n  - y\"}\n  - {org: a, user: v}\n  - {org: a, user: w}\n",
	"memberships:\n  - {org: a, user: 'x\n  - y'}\n  - {org: a, user: v}\n",
	"memberships:\n  - {org: a,\n  - user: u}\n  - {org: b, user: v}\n",
	"memberships:\n  - [org, a,\n  - user]\n  - {org: b, user: v}\n",
	"memberships:   # the members\n\n  # first\n  - {org: a, user: u}\n\n  - {org: a, user: v}\n# end\n  - {org: a, user: w}\n",
	"memberships:\r\n  - {org: a, user: u}\r\n  - {org: a, user: v, role: boss}\r\n  - {org: a, user: w}\r\n",
	"memberships:\r  - {org: a, user: u}\r  - {org: a, user: v}\r",
	"memberships:\n- {org: a, user: u}\n- {org: a, user: v}\n- {org: a, user: w, role: boss}\n",
	"memberships:\n  -\n  - {org: a, user: u}\n  - ~\n  - {org: a, user: v, role: boss}\n  - {org: a, user: w}\n",
	"memberships:\n  - {org: a, user: u}\n  - {org: a, user: !!str 5}\n  - {org: a, user: v, role: boss}\n",
	"memberships:\n  - {org: a, user: u}\n  - {org: a, user: v\n  - {org: a, user: w}\n",
	"memberships:\n  - {org: a, user: u}\n  - {org: a, user: v}\n  - |\n    text\n  - {org: a, user: w}\n",
	"memberships:\n  - org: a\n    user: u\n    resource_groups: {vision: read, vision: write}\n  - org: a\n    user: v\n    colour: red\n  - org: a\n    user: w\n",
	"sessions:\n  - {org: a, user: u, authenticated_at: \"2026-06-01T10:00:00Z\"}\n  - {org: a, user: v, authenticated_at: yesterday}\n  - {org: a, user: w, authenticated_at: {at: 1}}\nresources:\n  - {type: model, id: a/m, visibility: public}\n  - {type: model, id: a/n, visibility: private, <<: {x: 1}}\n",
	"memberships:\n  - {org: a, user: u}\n  - {org: a, user: v}\n---\nsessions: 5\n",
	"memberships:\n  - {org: a, user: u}\n  - {org: a, user: v}\n  - {org: a, user: w}\n... \n",
	"memberships:\n  - {org: a, user: u}\n  - {org: a, user: v}\nsessions: [5]\nresources:\n  x: 1\n",
	"memberships:\n  -  {org: a, user: u}\n  -\t{org: a, user: v}\n  - {org: a, user: w}\n",
	"memberships:\n  - {org: a, user: u}\n   - {org: a, user: v}\n  - {org: a, user: w}\n",
	"memberships:\n    - {org: a, user: u}\n  - {org: a, user: v}\n    - {org: a, user: w}\n",
	"memberships:\n  - {org: a, user: u}\n  - {org: a, user: v}\nmemberships:\n  - {org: a, user: w}\n  - {org: a, user: x}\n",
}

// TestReadersAgree: for every document, StreamBytes accepts what the first
// version of the package accepted, with the same records, and refuses the
// rest with "file:line: message" problems; and where the JSON reader reads
// a document to its end, the YAML reader gives the same records and the
// same problems.
func TestReadersAgree(t *testing.T) {
	docs := append(append([]string{}, jsonDocs...), yamlDocs...)
	for _, f := range []string{"testdata/state.yaml", "testdata/bad.yaml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	problem := regexp.MustCompile(`^s\.yaml:[0-9]+: \S`)
	for _, doc := range docs {
		name := doc
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(name, func(t *testing.T) {
			checkAgree(t, doc, problem)
		})
	}
}

func checkAgree(t *testing.T, doc string, problem *regexp.Regexp) {
	t.Helper()
	old, oldErr := legacyParse("s.yaml", []byte(doc))
	got := viaStream(doc)
	if (oldErr == nil) != got.ok() {
		t.Fatalf("first version: err %v; now: problems %q, err %v", oldErr, got.problems, got.err)
	}
	if oldErr == nil && !sameSnapshot(*old, got.snap) {
		t.Errorf("records differ:\nfirst version %+v\nnow           %+v", *old, got.snap)
	}
	for _, p := range got.problems {
		if !problem.MatchString(p) {
			t.Errorf("problem %q is not file:line: message", p)
		}
	}
	if n := len(got.snap.Memberships) + len(got.snap.Sessions) + len(got.snap.Resources); n != got.calls {
		t.Errorf("%d calls for %d records", got.calls, n)
	}
	tree := viaYAMLItems(doc, 1<<30)
	for _, items := range []int{1, 2} {
		c := viaYAMLItems(doc, items)
		// Records handed over before an error are void: only the error
		// counts then. (A chunk can need the whole-document decoder, which
		// hands nothing over when yaml/v3 reports a problem.)
		same := reflect.DeepEqual(c, tree) ||
			c.err != nil && tree.err != nil && c.err.Error() == tree.err.Error() ||
			c.problems != nil && reflect.DeepEqual(c.problems, tree.problems) && c.err == nil && tree.err == nil
		if !same {
			t.Errorf("chunks of %d: %+v\none tree: %+v", items, c, tree)
		}
	}
	for _, size := range []int{1, 5, 1 << 20} {
		j, gaveWay := viaJSON(doc, size)
		if gaveWay {
			continue
		}
		y := viaYAML(doc)
		truncated := len(j.problems) > 0 && strings.Contains(j.problems[len(j.problems)-1], "unexpected end of file")
		if truncated {
			if y.ok() {
				t.Errorf("JSON reader: truncated; YAML reader accepts")
			}
			continue
		}
		if !sameSnapshot(j.snap, y.snap) || !reflect.DeepEqual(j.problems, y.problems) || (j.err == nil) != (y.err == nil) {
			t.Errorf("buffer %d: the readers differ:\nJSON %+v %q %v\nYAML %+v %q %v", size, j.snap, j.problems, j.err, y.snap, y.problems, y.err)
		}
		if !sameSnapshot(j.snap, got.snap) {
			t.Errorf("buffer %d: JSON reader alone %+v, StreamBytes %+v", size, j.snap, got.snap)
		}
	}
}

func FuzzReadersAgree(f *testing.F) {
	for _, d := range jsonDocs {
		f.Add(d)
	}
	for _, d := range yamlDocs {
		f.Add(d)
	}
	problem := regexp.MustCompile(`^s\.yaml:[0-9]+: \S`)
	f.Fuzz(func(t *testing.T, doc string) {
		checkAgree(t, doc, problem)
	})
}

// TestJSONProblems: the JSON reader's problems name the line and the field.
func TestJSONProblems(t *testing.T) {
	doc := "{\"memberships\": [\n" +
		"  {\"org\": \"acme\", \"user\": \"u-alice\", \"role\": \"write\"},\n" + // 2
		"  {\"org\": \"acme\", \"user\": \"u-bob\", \"role\": \"owner\"},\n" + // 3
		"  {\"org\": \"acme\",\n    \"user\": \"u/slash\"},\n" + // 4-5
		"  {\"org\": \"acme\", \"user\": \"u-carol\", \"colour\": \"red\"},\n" + // 6
		"  {\"org\": \"acme\", \"user\": \"u-dan\", \"org\": \"globex\"},\n" + // 7
		"  {\"org\": \"acme\", \"user\": \"u-eve\", \"resource_groups\": {\"vision\": \"boss\"}}\n" + // 8
		"],\n\"sessions\": [\n" +
		"  {\"org\": \"acme\", \"user\": \"u-alice\", \"authenticated_at\": \"yesterday\"},\n" + // 11
		"  {\"org\": \"acme\", \"user\": \"u-bob\"},\n" + // 12
		"  {\"org\": \"acme\", \"user\": \"u-carol\", \"authenticated_at\": [1]}\n" + // 13
		"],\n\"resources\": [\n" +
		"  {\"type\": \"notebook\", \"id\": \"acme/x\", \"visibility\": \"private\"},\n" + // 16
		"  {\"type\": \"model\", \"id\": \"nope\", \"visibility\": \"hidden\"}\n" + // 17
		"],\n\"colour\": 1}\n" // 18
	got := viaStream(doc)
	want := []string{
		`s.yaml:3: memberships[1].role: unknown role "owner"`,
		`s.yaml:5: memberships[2].user: user id "u/slash" contains '/' or a control character`,
		`s.yaml:6: unknown key "colour" in memberships[3]`,
		`s.yaml:7: memberships[4]: mapping key "org" already defined at line 7`,
		`s.yaml:8: memberships[5].resource_groups: unknown role "boss"`,
		`s.yaml:11: sessions[0].authenticated_at: parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006"`,
		`s.yaml:12: sessions[1].authenticated_at: required (RFC 3339 time)`,
		`s.yaml:13: sessions[2].authenticated_at: cannot unmarshal !!seq into time.Time`,
		`s.yaml:16: resources[0].type: unknown type "notebook" (want model, dataset or space)`,
		`s.yaml:17: resources[1].id: id "nope" is not <namespace>/<name>`,
		`s.yaml:17: resources[1].visibility: visibility "hidden" (want public or private)`,
		`s.yaml:19: unknown key "colour"`,
	}
	if !reflect.DeepEqual(got.problems, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got.problems, "\n"), strings.Join(want, "\n"))
	}
	if got.calls != 1 {
		t.Errorf("%d records handed over; want 1, the one before the first problem", got.calls)
	}
	if y := viaYAML(doc); !reflect.DeepEqual(y.problems, want) {
		t.Errorf("YAML reader's problems:\n%s", strings.Join(y.problems, "\n"))
	}
}

// TestJSONRefuses: table of bad JSON snapshots and the problem each gives.
func TestJSONRefuses(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"unknown section", `{"members": []}`, `s.yaml:1: unknown key "members"`},
		{"duplicate section", "{\"sessions\": [],\n\"sessions\": []}", `s.yaml:2: mapping key "sessions" already defined at line 1`},
		{"section not a list", `{"resources": {"type": "model"}}`, `s.yaml:1: resources: cannot unmarshal !!map into []store.Resource`},
		{"record not a mapping", `{"sessions": ["acme"]}`, "s.yaml:1: sessions[0]: cannot unmarshal !!str `acme` into store.Session"},
		{"string given a list", `{"memberships": [{"org": "a", "user": ["u"]}]}`, `s.yaml:1: memberships[0].user: cannot unmarshal !!seq into string`},
		{"groups given a string", `{"memberships": [{"org": "a", "user": "u", "resource_groups": "vision"}]}`, "s.yaml:1: memberships[0].resource_groups: cannot unmarshal !!str `vision` into map[string]string"},
		{"duplicate group", `{"memberships": [{"org": "a", "user": "u", "resource_groups": {"v": "read", "v": "admin"}}]}`, `s.yaml:1: memberships[0].resource_groups: mapping key "v" already defined at line 1`},
		{"empty group", `{"memberships": [{"org": "a", "user": "u", "resource_groups": {"": "read"}}]}`, `s.yaml:1: memberships[0].resource_groups: empty group name`},
		{"unknown invite role", `{"memberships": [{"org": "a", "user": "u", "invite_role": "boss"}]}`, `s.yaml:1: memberships[0].invite_role: unknown role "boss"`},
		{"missing org", `{"memberships": [{"user": "u"}]}`, `s.yaml:1: memberships[0].org: required`},
		{"null record dropped", "{\"memberships\": [null,\n{\"org\": \"a\", \"role\": \"boss\"}]}", `s.yaml:2: memberships[1].role: unknown role "boss"`},
		{"date without time", `{"sessions": [{"org": "a", "user": "u", "authenticated_at": "2026-06-01"}]}`, `s.yaml:1: sessions[0].authenticated_at: parsing time "2026-06-01"`},
		{"time given a number", `{"sessions": [{"org": "a", "user": "u", "authenticated_at": 1700000000}]}`, `s.yaml:1: sessions[0].authenticated_at: parsing time "1700000000"`},
		{"bad expiry", `{"sessions": [{"org": "a", "user": "u", "authenticated_at": "2026-06-01T10:00:00Z", "expires_at": "later"}]}`, `s.yaml:1: sessions[0].expires_at: parsing time "later"`},
		{"year out of range", `{"sessions": [{"org": "a", "user": "u", "authenticated_at": "2201-01-01T00:00:00Z"}]}`, `s.yaml:1: sessions[0].authenticated_at: year 2201 is out of range`},
		{"control character in user", `{"sessions": [{"org": "a", "user": "u\n", "authenticated_at": "2026-06-01T10:00:00Z"}]}`, `s.yaml:1: sessions[0].user: user id "u\n" contains '/' or a control character`},
		{"truncated", "{\"memberships\": [\n{\"org\": \"a\", \"user\": \"u\"},\n{\"org\": \"a\", \"us", `s.yaml:3: unexpected end of file: the JSON object is not complete`},
		{"truncated after the last record", "{\"memberships\": [\n{\"org\": \"a\", \"user\": \"u\"}\n", `s.yaml:3: unexpected end of file`},
		{"not JSON, not YAML", `{"memberships": [}`, `s.yaml: yaml: did not find expected node content`},
		{"trailing comma, unknown role", `{"memberships": [{"org": "a", "user": "u", "role": "boss"},]}`, `s.yaml:1: memberships[0].role: unknown role "boss"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := StreamBytes("s.yaml", []byte(tc.doc), func(*Record) error { return nil })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestGiveWayHandsEachRecordOnce: a JSON document that turns out to need
// the YAML reader after some records were handed over does not hand them
// over twice.
func TestGiveWayHandsEachRecordOnce(t *testing.T) {
	doc := "{\"memberships\": [\n{\"org\": \"a\", \"user\": \"u\"},\n{\"org\": \"a\", \"user\": \"v\"},\n],\n\"sessions\": [{\"org\": \"a\", \"user\": \"u\", \"authenticated_at\": \"2026-06-01T10:00:00Z\"}]}"
	if _, gaveWay := viaJSON(doc, 1<<20); !gaveWay {
		t.Fatal("the JSON reader took a trailing comma")
	}
	var seen []string
	err := StreamBytes("s.yaml", []byte(doc), func(r *Record) error {
		seen = append(seen, fmt.Sprintf("%s[%d]", r.Kind.Section(), r.Index))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"memberships[0]", "memberships[1]", "sessions[0]"}; !reflect.DeepEqual(seen, want) {
		t.Errorf("handed over %v, want %v", seen, want)
	}
}

// TestGiveWayToWholeYAML: the same when the YAML reader decodes the
// document whole (it has an anchor) and drops a null item.
func TestGiveWayToWholeYAML(t *testing.T) {
	doc := `{"memberships": [{"org": "a", "user": "u"}, null, {"org": "a", "user": "v"}, &x {"org": "a", "user": "w", "role": "boss"}, *x]}`
	var seen []string
	err := StreamBytes("s.yaml", []byte(doc), func(r *Record) error {
		seen = append(seen, fmt.Sprintf("%s[%d] %s", r.Kind.Section(), r.Index, r.Membership.User))
		return nil
	})
	if want := []string{"memberships[0] u", "memberships[2] v"}; !reflect.DeepEqual(seen, want) {
		t.Errorf("handed over %v, want %v", seen, want)
	}
	want := `s.yaml:1: memberships[3].role: unknown role "boss"` + "\n" + `s.yaml:1: memberships[4].role: unknown role "boss"`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

// TestStreamStopsOnCallbackError: fn's error ends Stream at once and is
// returned as it is.
func TestStreamStopsOnCallbackError(t *testing.T) {
	boom := errors.New("boom")
	for _, doc := range []string{
		`{"memberships": [{"org": "a", "user": "u"}, {"org": "a", "user": "v"}, {"org": "a", "user": "w"}]}`,
		"memberships:\n  - {org: a, user: u}\n  - {org: a, user: v}\n  - {org: a, user: w}\n",
		"memberships:\n  - &x {org: a, user: u}\n  - {org: a, user: v}\n  - *x\n",
	} {
		calls := 0
		err := StreamBytes("s.yaml", []byte(doc), func(r *Record) error {
			calls++
			if r.Index == 1 {
				return boom
			}
			return nil
		})
		if err != boom || calls != 2 {
			t.Errorf("%q: err = %v after %d calls, want boom after 2", doc, err, calls)
		}
	}
}

func TestStreamWithoutCallbackChecks(t *testing.T) {
	if err := Stream("testdata/state.yaml", nil); err != nil {
		t.Fatal(err)
	}
	var p *Problems
	if err := Stream("testdata/bad.yaml", nil); !errors.As(err, &p) || len(p.List) != 6 {
		t.Errorf("err = %v, want 6 problems", err)
	}
	if err := Stream("testdata/missing.yaml", nil); err == nil || !strings.Contains(err.Error(), "reading state") {
		t.Errorf("missing file: err = %v", err)
	}
}

func TestRecordProblem(t *testing.T) {
	for _, doc := range []string{
		"{\"memberships\": [\n{\"org\": \"a\",\n \"user\": \"u\"}]}",
		"memberships:\n- org: a\n  user: u\n",
	} {
		var got []string
		if err := StreamBytes("s.json", []byte(doc), func(r *Record) error {
			got = append(got, r.Problem("org", `org "a" has no org file`), r.Problem("user", "y"), r.Problem("role", "z"))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		want := []string{`s.json:2: memberships[0].org: org "a" has no org file`, `s.json:3: memberships[0].user: y`, `s.json:2: memberships[0].role: z`}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q: got %q, want %q", doc, got, want)
		}
	}
}

// failingWriter fails its nth write.
type failingWriter struct {
	*memory.Store
	n, writes int
}

func (w *failingWriter) PutMembership(ctx context.Context, m store.Membership) error {
	if w.writes++; w.writes == w.n {
		return errors.New("disk full")
	}
	return w.Store.PutMembership(ctx, m)
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.yaml")
	doc := `{"memberships": [{"org": "acme", "user": "u-alice", "role": "write"}, {"org": "acme", "user": "u-bob"}],
"sessions": [{"org": "acme", "user": "u-alice", "authenticated_at": "2026-06-01T10:00:00Z"}],
"resources": [{"type": "model", "id": "acme/m", "visibility": "public"}]}`
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	m := memory.New().WithClock(func() time.Time { return time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC) })
	n, err := Load(context.Background(), path, m)
	if err != nil {
		t.Fatal(err)
	}
	if n != (Counts{2, 1, 1}) {
		t.Errorf("counts %+v", n)
	}
	if ms, err := m.Membership(context.Background(), "acme", "u-alice"); err != nil || ms.Role != "write" {
		t.Errorf("membership %+v, %v", ms, err)
	}
	if s, err := m.Session(context.Background(), "ACME", "u-alice"); err != nil || !s.ExpiresAt.IsZero() {
		t.Errorf("session %+v, %v", s, err)
	}

	_, err = Load(context.Background(), path, &failingWriter{Store: memory.New(), n: 2})
	if err == nil || !strings.Contains(err.Error(), path+": memberships[1]: disk full") {
		t.Errorf("failing store: err = %v", err)
	}

	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(`{"memberships": [{"org": "acme", "user": "u-alice"}, {"org": "acme", "user": "u-bob", "role": "boss"}, {"org": "acme", "user": "u-carol"}]}`), 0o644)
	m = memory.New()
	n, err = Load(context.Background(), bad, m)
	var p *Problems
	if !errors.As(err, &p) || len(p.List) != 1 || n.Memberships != 1 {
		t.Errorf("bad snapshot: %+v, %v", n, err)
	}
	if _, err := m.Membership(context.Background(), "acme", "u-carol"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a record after the first problem was written: %v", err)
	}
}

func TestRecordSetSessionExpiry(t *testing.T) {
	at := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	r := Record{Kind: KindSession, Session: store.Session{AuthenticatedAt: at}}
	r.SetSessionExpiry()
	if !r.Session.ExpiresAt.Equal(at.Add(store.MaxSessionTimeout)) {
		t.Errorf("expires_at = %v", r.Session.ExpiresAt)
	}
}

// TestSharedStrings: org names and roles read from a JSON snapshot are one
// string per value, however many records repeat them.
func TestSharedStrings(t *testing.T) {
	s, err := Parse("s.yaml", []byte(`{"memberships": [{"org": "acme", "user": "u", "role": "read"}, {"org": "acme", "user": "v", "role": "read"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	a, b := s.Memberships[0], s.Memberships[1]
	if strings.Clone(a.Org) != b.Org || unsafeData(a.Org) != unsafeData(b.Org) || unsafeData(a.Role) != unsafeData(b.Role) {
		t.Errorf("org and role strings are not shared")
	}
}

func unsafeData(s string) *byte { return unsafe.StringData(s) }

// sameSnapshot is reflect.DeepEqual with empty and nil sections equal.
func sameSnapshot(a, b Snapshot) bool {
	for _, s := range []*Snapshot{&a, &b} {
		if len(s.Memberships) == 0 {
			s.Memberships = nil
		}
		if len(s.Sessions) == 0 {
			s.Sessions = nil
		}
		if len(s.Resources) == 0 {
			s.Resources = nil
		}
	}
	return reflect.DeepEqual(a, b)
}

// TestPlanChunks: where a YAML document is cut, and which documents are
// not cut at all.
func TestPlanChunks(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		starts    []int // lines the chunks start at
	}{
		{"block sequences", "# state\nmemberships:\n  - {org: a, user: u}\n  - org: a\n    user: v\n  - {org: a, user: w}\nsessions:\n- {org: a}\n- {org: b}\n", []int{1, 4, 6, 9}},
		{"comments and blank lines", "memberships:  # all\n\n  # one\n  - {org: a, user: u}\n\n  - {org: a, user: v}\n", []int{1, 6}},
		{"deeper lines are not items", "memberships:\n  - org: a\n    resource_groups:\n      - x\n      - y\n  - {org: b}\n", []int{1, 6}},
		{"CRLF", "memberships:\r\n  - {org: a}\r\n  - {org: b}\r\n", []int{1, 3}},
		{"key with a value", "memberships: [\n  - {org: a}\n  - {org: b}]\n", []int{1}},
		{"anchors", "memberships:\n  - &a {org: a}\n  - *a\n", nil},
		{"document marker", "memberships:\n  - {org: a}\n  - {org: b}\n---\n", nil},
		{"lone CR", "memberships:\r  - {org: a}\r  - {org: b}\r", nil},
		{"top-level sequence", "- {org: a}\n- {org: b}\n", nil},
		{"flow at the top", "{memberships: [\n{org: a},\n{org: b}]}\n", []int{1}},
		{"first line under the key not an item", "memberships:\n  org: a\n  - {org: b}\n  - {org: c}\n", []int{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var starts []int
			for _, c := range planChunks([]byte(tc.doc), 1) {
				starts = append(starts, c.line)
			}
			if !reflect.DeepEqual(starts, tc.starts) {
				t.Errorf("chunks start at lines %v, want %v", starts, tc.starts)
			}
		})
	}
	b, err := os.ReadFile("../../examples/quickstart/state.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(planChunks(b, 1)); n < 3 {
		t.Errorf("the quickstart state is cut in %d chunks", n)
	}
	checkAgree(t, string(b), regexp.MustCompile(`^s\.yaml:[0-9]+: \S`))
}

// TestLoadKeepsNothing: once Load returns, the live heap is the store's:
// a store loaded from a JSON snapshot holds no more than the same records
// written with Put.
func TestLoadKeepsNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two stores of 60,000 records")
	}
	const n = 20000
	var b strings.Builder
	b.WriteString(`{"memberships": [`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "\n"+`{"org": "org-%03d", "user": "u%07d", "role": "read"}`, i%100, i)
	}
	b.WriteString("],\n\"sessions\": [")
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "\n"+`{"org": "org-%03d", "user": "u%07d", "authenticated_at": "2026-06-01T10:00:00Z", "email": "u%07d@example.com"}`, i%100, i, i)
	}
	b.WriteString("],\n\"resources\": [")
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "\n"+`{"type": "model", "id": "org-%03d/m%07d", "visibility": "public", "created_by": "u%07d"}`, i%100, i, i)
	}
	b.WriteString("]}\n")
	path := filepath.Join(t.TempDir(), "state.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	b = strings.Builder{}
	live := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}

	before := live()
	loaded := memory.New()
	if _, err := Load(context.Background(), path, loaded); err != nil {
		t.Fatal(err)
	}
	withLoad := live() - before

	before = live()
	put := memory.New()
	at := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	ctx := context.Background()
	for i := 0; i < n; i++ {
		org, user := fmt.Sprintf("org-%03d", i%100), fmt.Sprintf("u%07d", i)
		put.PutMembership(ctx, store.Membership{Org: org, User: user, Role: "read"})
		put.PutSession(ctx, store.Session{Org: fmt.Sprintf("org-%03d", i%100), User: fmt.Sprintf("u%07d", i), AuthenticatedAt: at, Email: user + "@example.com"})
		put.PutResource(ctx, store.Resource{Type: "model", ID: fmt.Sprintf("org-%03d/m%07d", i%100, i), Visibility: "public", CreatedBy: fmt.Sprintf("u%07d", i)})
	}
	withPut := live() - before
	runtime.KeepAlive(loaded)
	runtime.KeepAlive(put)
	t.Logf("live heap: loaded %d kB, put %d kB", withLoad>>10, withPut>>10)
	if withLoad > withPut+withPut/20+1<<20 {
		t.Errorf("a loaded store takes %d kB of heap, the same records put %d kB", withLoad>>10, withPut>>10)
	}
}
