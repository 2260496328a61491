package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestStartingAnswersHealthAndNamesWhatItWaitsFor: while a process sets
// itself up, /healthz says alive, /readyz 503 names the failing checks
// (not their errors), and every other path is 503 with Retry-After.
func TestStartingAnswersHealthAndNamesWhatItWaitsFor(t *testing.T) {
	t.Parallel()
	h := Starting([]Check{
		{Name: "kafka", Check: func(context.Context) error { return errors.New("SASL refused as tms: Sekr3t-detail") }},
		{Name: "other", Check: func(context.Context) error { return nil }},
	}, slog.New(slog.DiscardHandler))
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec
	}
	if rec := get("/healthz"); rec.Code != http.StatusOK {
		t.Errorf("/healthz = %d, want 200", rec.Code)
	}
	rec := get("/readyz")
	var p struct {
		Detail string                 `json:"detail"`
		Checks map[string]checkResult `json:"checks"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("/readyz: %v: %s", err, rec.Body)
	}
	if rec.Code != http.StatusServiceUnavailable || p.Checks["kafka"].Status != "failed" || p.Checks["other"].Status != "ok" {
		t.Errorf("/readyz = %d %s", rec.Code, rec.Body)
	}
	if strings.Contains(rec.Body.String(), "Sekr3t") {
		t.Errorf("/readyz shows a check's error: %s", rec.Body)
	}
	rec = get("/api/v1/vehicles")
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" ||
		rec.Header().Get("Content-Type") != contentProblem {
		t.Errorf("/api/v1/vehicles while starting = %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
}
