//go:build unix

package snapshot

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestStreamFromPipe: a snapshot in a pipe (serve --state <(...)) is read
// once, whatever the reader.
func TestStreamFromPipe(t *testing.T) {
	for _, doc := range []string{
		"memberships:\n  - {org: a, user: u}\n  - {org: a, user: v}\n",
		`{"memberships": [{"org": "a", "user": "u"}, {"org": "a", "user": "v"},]}`,
		`{"memberships": [{"org": "a", "user": "u"}, {"org": "a", "user": "v"}]}`,
	} {
		path := filepath.Join(t.TempDir(), "state.fifo")
		if err := syscall.Mkfifo(path, 0o600); err != nil {
			t.Skip("mkfifo:", err)
		}
		go func() {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				return
			}
			f.WriteString(doc)
			f.Close()
		}()
		s, err := Read(path)
		if err != nil || len(s.Memberships) != 2 {
			t.Errorf("%q: %+v, %v", doc, s, err)
		}
	}
}
