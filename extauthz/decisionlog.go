package extauthz

import (
	"context"
	"log/slog"
	"time"
)

// DecisionRecord is one entry of the decision log: what a Check decided,
// for whom and why. It is logged at level info, or error for a 503.
type DecisionRecord struct {
	RequestID string        // attributes.request.http.id (Envoy's x-request-id); may be ""
	Status    int           // HTTP status of the response; 200 is an allow
	Reason    string        // stable reason code, e.g. sso_session_valid, unavailable
	Path      string        // the normalised path; when it could not be normalised, the raw path without query and fragment
	Org       string        // canonical org name; "" outside org namespaces
	User      string        // platform user id (sub); "" when anonymous or not identified
	Took      time.Duration // time spent in Check
	Err       error         // the error behind a 503, 400 or 401; nil otherwise
}

// Allow reports whether the record is an allow.
func (r DecisionRecord) Allow() bool { return r.Status == 200 }

// DecisionLog writes the decision log. Enabled reports whether a record at
// level would be written, so that Check builds none otherwise. Both are
// called on every Check and must be safe for concurrent use.
type DecisionLog interface {
	Enabled(ctx context.Context, level slog.Level) bool
	LogDecision(ctx context.Context, level slog.Level, r DecisionRecord)
}

// SlogDecisions writes decision records as "decision" records of a slog
// handler, with the attributes request_id, allow, status, reason, path,
// org, user, took (a duration) and, when set, error.
type SlogDecisions struct{ Handler slog.Handler }

// Enabled implements DecisionLog.
func (s SlogDecisions) Enabled(ctx context.Context, level slog.Level) bool {
	return s.Handler.Enabled(ctx, level)
}

// LogDecision implements DecisionLog. Errors of the handler are dropped, as
// slog.Logger drops them.
func (s SlogDecisions) LogDecision(ctx context.Context, level slog.Level, r DecisionRecord) {
	// The handler is called directly, not through slog.Logger, which would
	// look up the caller's program counter for every record (a tenth of a
	// record's cost); no handler of ours reports the source.
	rec := slog.NewRecord(time.Now(), level, "decision", 0)
	rec.AddAttrs(
		slog.String("request_id", r.RequestID),
		slog.Bool("allow", r.Allow()),
		slog.Int("status", r.Status),
		slog.String("reason", r.Reason),
		slog.String("path", r.Path),
		slog.String("org", r.Org),
		slog.String("user", r.User),
		slog.Duration("took", r.Took),
	)
	if r.Err != nil {
		rec.AddAttrs(slog.String("error", r.Err.Error()))
	}
	_ = s.Handler.Handle(ctx, rec)
}
