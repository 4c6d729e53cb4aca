package idp

import (
	"net/http"
	"testing"
)

// TestHEADTouchesNothing: HEAD on the GET endpoints that change state is
// 405, and the login they would have started or taken is still there.
func TestHEADTouchesNothing(t *testing.T) {
	t.Parallel()
	head := func(h *harness, u string) *http.Response {
		req, err := http.NewRequest(http.MethodHead, u, nil)
		must(t, err)
		resp, err := h.client.Do(req)
		must(t, err)
		resp.Body.Close()
		return resp
	}
	t.Run("oidc", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, nil)
		if resp := head(h, h.hub.URL+loginPath); resp.StatusCode != http.StatusMethodNotAllowed || len(resp.Cookies()) != 0 {
			t.Errorf("HEAD login: %d, cookies %v; want 405 and none", resp.StatusCode, resp.Cookies())
		}
		u := h.toConsume()
		if resp := head(h, u.String()); resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("allow") != "GET" {
			t.Errorf("HEAD consume: %d allow %q, want 405 allow GET", resp.StatusCode, resp.Header.Get("allow"))
		}
		if resp := h.get(u.String()); resp.StatusCode != http.StatusFound || h.session("u-alice") == nil {
			t.Errorf("GET consume after HEAD: %d, want 302 and a session", resp.StatusCode)
		}
	})
	t.Run("saml", func(t *testing.T) {
		t.Parallel()
		s := newSAMLHarness(t, nil)
		finish := s.acsToFinish(s.toACS(s.hub.URL + loginPath))
		if resp := head(s.harness, finish); resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("HEAD finish: %d, want 405", resp.StatusCode)
		}
		if resp := s.get(finish); resp.StatusCode != http.StatusFound || s.session("u-alice") == nil {
			t.Errorf("GET finish after HEAD: %d, want 302 and a session", resp.StatusCode)
		}
		if resp := head(s.harness, s.hub.URL+"/organizations/acme/saml/metadata"); resp.StatusCode != http.StatusOK {
			t.Errorf("HEAD metadata: %d, want 200", resp.StatusCode)
		}
	})
}
