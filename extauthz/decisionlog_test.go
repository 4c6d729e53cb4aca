package extauthz

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// Every Check writes one decision record: through Options.Decisions when
// set, else as a "decision" record of Options.Logger, at info, or error
// for a 503 (with the error behind it).
func TestDecisionLog(t *testing.T) {
	f := newFixture(t, "")
	alice := "hub_session=" + f.keys.Token("u-alice", time.Hour)
	mallory := "hub_session=" + f.keys.Token("u-mallory", time.Hour)
	tests := []struct {
		name   string
		lookup Lookup
		path   string
		h      map[string]string
		want   DecisionRecord
		level  slog.Level
	}{
		{"allow", f.store, "/acme/secret-model/blob/main/README.md", map[string]string{"cookie": alice},
			DecisionRecord{Status: 200, Reason: "sso_session_valid", Path: "/acme/secret-model/blob/main/README.md", Org: "acme", User: "u-alice"}, slog.LevelInfo},
		{"redirect", f.store, "/acme/secret-model", map[string]string{"cookie": mallory, "accept": browserAccept},
			DecisionRecord{Status: 302, Reason: "sso_session_missing", Path: "/acme/secret-model", Org: "acme", User: "u-mallory"}, slog.LevelInfo},
		{"bad path", f.store, "/acme/../../etc/passwd", nil,
			DecisionRecord{Status: 400, Reason: errBadRequest, Path: "/acme/../../etc/passwd"}, slog.LevelInfo},
		{"store down", failingStore{}, "/acme/secret-model", map[string]string{"cookie": alice},
			DecisionRecord{Status: 503, Reason: errUnavailable, Path: "/acme/secret-model", Org: "acme", User: "u-alice"}, slog.LevelError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Through a slog.Logger (eval, check and tests use this one).
			var out bytes.Buffer
			a, err := New(context.Background(), f.cfg, tc.lookup, Options{Logger: slog.New(slog.NewJSONHandler(&out, nil))})
			must(t, err)
			req := request("GET", tc.path, tc.h)
			resp, _ := a.Check(context.Background(), req)
			if got := inspect(t, resp).status; got != tc.want.Status {
				t.Fatalf("status %d, want %d", got, tc.want.Status)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != 1 {
				t.Fatalf("%d log lines, want one decision record:\n%s", len(lines), out.String())
			}
			var m map[string]any
			must(t, json.Unmarshal([]byte(lines[0]), &m))
			wantLevel := map[slog.Level]string{slog.LevelInfo: "INFO", slog.LevelError: "ERROR"}[tc.level]
			for k, v := range map[string]any{
				"msg": "decision", "level": wantLevel, "request_id": "test-1", "allow": tc.want.Status == 200,
				"status": float64(tc.want.Status), "reason": tc.want.Reason, "path": tc.want.Path, "org": tc.want.Org, "user": tc.want.User,
			} {
				if m[k] != v {
					t.Errorf("%s = %v, want %v (record %s)", k, m[k], v, lines[0])
				}
			}
			if took, ok := m["took"].(float64); !ok || took <= 0 {
				t.Errorf("took = %v, want a positive duration in nanoseconds", m["took"])
			}
			if _, hasErr := m["error"]; hasErr != (tc.want.Status == 503 || tc.want.Status == 400) {
				t.Errorf("error = %v in a %d record", m["error"], tc.want.Status)
			}

			// Through Options.Decisions, which then replaces the logger.
			out.Reset()
			rec := &recordingLog{}
			a, err = New(context.Background(), f.cfg, tc.lookup, Options{Logger: slog.New(slog.NewJSONHandler(&out, nil)), Decisions: rec})
			must(t, err)
			a.Check(context.Background(), req)
			if len(rec.records) != 1 || out.Len() != 0 {
				t.Fatalf("%d records to Decisions and %q to Logger, want one record to Decisions", len(rec.records), out.String())
			}
			got := rec.records[0]
			if got.level != tc.level || got.r.Took <= 0 || (got.r.Err != nil) != (tc.want.Status >= 400) || got.r.RequestID != "test-1" {
				t.Errorf("record %+v at %v", got.r, got.level)
			}
			got.r.Took, got.r.Err, got.r.RequestID = 0, nil, ""
			if got.r != tc.want {
				t.Errorf("record %+v, want %+v", got.r, tc.want)
			}
		})
	}
}

// recordingLog is a DecisionLog that keeps records at info and above.
type recordingLog struct {
	mu      sync.Mutex
	records []struct {
		level slog.Level
		r     DecisionRecord
	}
}

func (l *recordingLog) Enabled(_ context.Context, level slog.Level) bool {
	return level >= slog.LevelInfo
}

func (l *recordingLog) LogDecision(_ context.Context, level slog.Level, r DecisionRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, struct {
		level slog.Level
		r     DecisionRecord
	}{level, r})
}

// A request refused for its path is logged without its query: a query
// may carry secrets (access_token=...), and no other record has one.
func TestDecisionLogDropsQueryOfBadPath(t *testing.T) {
	f := newFixture(t, "")
	var out bytes.Buffer
	a, err := New(context.Background(), f.cfg, f.store, Options{Logger: slog.New(slog.NewJSONHandler(&out, nil))})
	must(t, err)
	for _, p := range []string{"/acme/x%zz?access_token=SECRET123", "/acme/../../x#SECRET123", "/acme/x%zz#a?SECRET123"} {
		out.Reset()
		resp, _ := a.Check(context.Background(), request("GET", p, nil))
		if got := inspect(t, resp).status; got != 400 {
			t.Fatalf("%s: status %d, want 400", p, got)
		}
		if strings.Contains(out.String(), "SECRET123") || !strings.Contains(out.String(), `"status":400`) {
			t.Errorf("%s: record %s", p, out.String())
		}
	}
}
