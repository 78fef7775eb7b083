package web

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestAdminPage: /admin/ and its routes get the operator dashboard's own
// page (its own bundle), everything else the app's.
func TestAdminPage(t *testing.T) {
	h := Handler()
	for target, want := range map[string]string{
		"/admin/": "Operator dashboard", "/admin": "Operator dashboard", "/admin/tasks": "Operator dashboard",
		"/": "Start a task", "/administer": "Start a task",
	} {
		res := get(t, h, http.MethodGet, target, nil)
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d, want the page with %q", target, res.StatusCode, want)
		}
		if res.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: no Content-Security-Policy", target)
		}
	}
}
