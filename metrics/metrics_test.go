package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestDecisionsAreExposed(t *testing.T) {
	d, h := New()
	d.ObserveDecision(200, "sso_session_valid", 100*time.Microsecond)
	d.ObserveDecision(200, "sso_session_valid", 100*time.Microsecond)
	d.ObserveDecision(302, "sso_session_expired", time.Millisecond)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`ssogate_decisions_total{reason="sso_session_valid",status="200"} 2`,
		`ssogate_decisions_total{reason="sso_session_expired",status="302"} 1`,
		`ssogate_check_duration_seconds_count 3`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
