package config

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Fixtures mark the problems they must produce with trailing comments:
//
//	key: value   # want: "text" "other text"
//	# want-file: "text"
//
// Each quoted text expects one problem on that line (want-file: at line 0)
// of that file whose message contains the text; '*' in a text matches any
// run of characters. Every problem must be expected, and every want met.

var (
	wantComment = regexp.MustCompile(`#\s*want(-file)?:\s*((?:"(?:[^"\\]|\\.)*"\s*)+)$`)
	wantQuoted  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
)

type want struct {
	file string
	line int
	text string
	met  bool
}

// wantsIn returns the want markers of the given files, naming each file as given.
func wantsIn(t *testing.T, files ...string) []*want {
	t.Helper()
	var ws []*want
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for n := 1; sc.Scan(); n++ {
			m := wantComment.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			line := n
			if m[1] != "" {
				line = 0
			}
			for _, q := range wantQuoted.FindAllString(m[2], -1) {
				s, err := strconv.Unquote(q)
				if err != nil {
					t.Fatalf("%s:%d: bad want %s: %v", f, n, q, err)
				}
				ws = append(ws, &want{file: f, line: line, text: s})
			}
		}
		fh.Close()
	}
	return ws
}

// yamlFilesUnder lists the .yaml/.yml files below dir.
func yamlFilesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// matches reports whether msg contains text, where '*' in text matches any run.
func matches(msg, text string) bool {
	for _, part := range strings.Split(text, "*") {
		i := strings.Index(msg, part)
		if i < 0 {
			return false
		}
		msg = msg[i+len(part):]
	}
	return true
}

// checkProblems asserts that err is an Errors value whose problems are exactly the wants.
func checkProblems(t *testing.T, err error, wants []*want) {
	t.Helper()
	if len(wants) == 0 {
		t.Fatal("fixture has no want markers")
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error = %v (%T), want config.Errors", err, err)
	}
	for _, p := range errs {
		found := false
		for _, w := range wants {
			if !w.met && w.file == p.File && w.line == p.Line && matches(p.Msg, w.text) {
				w.met, found = true, true
				break
			}
		}
		if !found {
			t.Errorf("unexpected problem %s", p)
		}
	}
	for _, w := range wants {
		if !w.met {
			t.Errorf("missing problem %s:%d: %q", w.file, w.line, w.text)
		}
	}
	if t.Failed() {
		t.Logf("all problems:\n%v", err)
	}
}

// TestOrgFileProblems loads each org file in testdata/orgfiles with LoadOrg
// and checks it reports exactly the problems its markers expect.
func TestOrgFileProblems(t *testing.T) {
	files := yamlFilesUnder(t, filepath.Join("testdata", "orgfiles"))
	if len(files) < 20 {
		t.Fatalf("only %d fixtures found", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			org, err := LoadOrg(f, "https://hub.example.test")
			if org != nil {
				t.Errorf("LoadOrg returned an org along with problems")
			}
			checkProblems(t, err, wantsIn(t, f))
		})
	}
}

// TestGatewayProblems loads each testdata/gateways/<case>/ssogate.yaml and
// checks that every problem of the gateway file and its org files is
// reported, at once, and nothing else.
func TestGatewayProblems(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "gateways", "*", "ssogate.yaml"))
	if err != nil || len(dirs) < 8 {
		t.Fatalf("fixtures: %v %v", dirs, err)
	}
	for _, gw := range dirs {
		dir := filepath.Dir(gw)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			c, err := Load(gw)
			if c != nil {
				t.Errorf("Load returned a config along with problems")
			}
			checkProblems(t, err, wantsIn(t, yamlFilesUnder(t, dir)...))
		})
	}
}

// TestProblemOrder checks that problems come gateway file first, then org
// files in name order, each file by line.
func TestProblemOrder(t *testing.T) {
	_, err := Load(filepath.Join("testdata", "gateways", "multi", "ssogate.yaml"))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("err = %v", err)
	}
	var files []string
	for i, p := range errs {
		if i > 0 && p.File == errs[i-1].File && p.Line < errs[i-1].Line {
			t.Errorf("problem %d (%s) comes after a later line", i, p)
		}
		if len(files) == 0 || files[len(files)-1] != filepath.Base(p.File) {
			files = append(files, filepath.Base(p.File))
		}
	}
	want := "ssogate.yaml acme.yaml broken.yaml dup.yaml wrong-name.yaml"
	if got := strings.Join(files, " "); got != want {
		t.Errorf("files in order %q, want %q", got, want)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		in   error
		want string
	}{
		{Problem{File: "a.yaml", Line: 3, Msg: "unknown key \"x\""}, `a.yaml:3: unknown key "x"`},
		{Problem{File: "a.yaml", Msg: "name is required"}, `a.yaml: name is required`},
		{Errors{{File: "g.yaml", Line: 1, Msg: "one"}, {File: "o/a.yaml", Msg: "two"}}, "g.yaml:1: one\no/a.yaml: two"},
	}
	for _, tt := range tests {
		if got := tt.in.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	if got := (Problem{File: "f", Line: 2, Msg: "m"}).String(); got != "f:2: m" {
		t.Errorf("String() = %q", got)
	}
}

// TestSyntaxErrorLine checks the line of a YAML syntax error precisely.
func TestSyntaxErrorLine(t *testing.T) {
	_, err := LoadOrg(filepath.Join("testdata", "orgfiles", "syntax.yaml"), "")
	if got, want := err.Error(), "testdata/orgfiles/syntax.yaml:4: invalid YAML: mapping values are not allowed in this context"; got != filepath.FromSlash(want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestMissingFile(t *testing.T) {
	for name, load := range map[string]func(string) error{
		"Load":    func(p string) error { _, err := Load(p); return err },
		"LoadOrg": func(p string) error { _, err := LoadOrg(p, ""); return err },
	} {
		p := filepath.Join(t.TempDir(), "nope.yaml")
		err := load(p)
		var errs Errors
		if !errors.As(err, &errs) || len(errs) != 1 || errs[0].File != p || errs[0].Line != 0 ||
			!strings.Contains(errs[0].Msg, "cannot read file") {
			t.Errorf("%s(missing) = %v", name, err)
		}
	}
}
