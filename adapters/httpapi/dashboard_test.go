package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/tmsfleet/tms/adapters/dashboard"
)

// TestDashboardFiles checks how the engine hands the dashboard its paths:
// GET and HEAD of what it serves, without a token; everything else,
// and anything under /api/, keeps the API's answers.
func TestDashboardFiles(t *testing.T) {
	t.Parallel()
	dash, err := dashboard.New(dashboard.Config{Files: fstest.MapFS{
		"index.html":       {Data: []byte("<!doctype html><title>tms</title>")},
		"assets/app-1.js":  {Data: []byte("1")},
		"api/v1/sneaky.js": {Data: []byte("never served")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	a := newAPI(t, noStore(), func(c *Config) { c.Dashboard = dash })

	for _, p := range []string{"/", "/assets/app-1.js"} {
		w := a.do(t, http.MethodGet, p, "")
		if w.Code != http.StatusOK || w.Header().Get("Content-Security-Policy") == "" || w.Header().Get("ETag") == "" {
			t.Errorf("GET %s without a token: %d, CSP %q, ETag %q", p, w.Code,
				w.Header().Get("Content-Security-Policy"), w.Header().Get("ETag"))
		}
	}
	if w := a.do(t, http.MethodHead, "/", ""); w.Code != http.StatusOK || w.Body.Len() != 0 {
		t.Errorf("HEAD /: %d, %d bytes", w.Code, w.Body.Len())
	}
	etag := a.do(t, http.MethodGet, "/", "").Header().Get("ETag")
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/", nil)
	req.Header.Set("If-None-Match", etag)
	w := httptest.NewRecorder()
	a.handler.ServeHTTP(w, req)
	if w.Code != http.StatusNotModified {
		t.Errorf("GET / with If-None-Match: %d, want 304", w.Code)
	}

	for _, p := range []string{"/assets/missing.js", "/api/v1/sneaky.js", "/api/v1/", "/nowhere"} {
		wantProblem(t, a.do(t, http.MethodGet, p, ""), p, http.StatusNotFound)
	}
	wantProblem(t, a.do(t, http.MethodPost, "/", ""), "/", http.StatusNotFound)
	wantProblem(t, a.do(t, http.MethodGet, "/api/v1/vehicles", ""), "/api/v1/vehicles", http.StatusUnauthorized)

	metrics := a.do(t, http.MethodGet, "/metrics", "").Body.String()
	for _, want := range []string{
		`tms_http_requests_total{code="200",method="GET",route="dashboard"}`,
		`tms_http_requests_total{code="304",method="GET",route="dashboard"} 1`,
		`tms_http_requests_total{code="404",method="GET",route="unmatched"} 4`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestNoDashboard: without one, / is a 404 as any unknown path.
func TestNoDashboard(t *testing.T) {
	t.Parallel()
	a := newAPI(t, noStore())
	wantProblem(t, a.do(t, http.MethodGet, "/", ""), "/", http.StatusNotFound)
}
