package httpapi

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/internal/testenv"
)

func TestRoutingProblems(t *testing.T) {
	t.Parallel()
	a := newAPI(t, noStore())
	tests := []struct {
		name, method, path string
		want               int
		allow              string
	}{
		{"unknown API route", http.MethodGet, "/api/v1/nope", http.StatusNotFound, ""},
		{"unknown route", http.MethodGet, "/nope", http.StatusNotFound, ""},
		{"POST on the fleet's trips", http.MethodPost, "/api/v1/trips", http.StatusMethodNotAllowed, "GET"},
		{"PUT on a job", http.MethodPut, "/api/v1/jobs/3f0c9a52-6f1e-4c7a-9d43-1b2e5c8f7a10", http.StatusMethodNotAllowed, "GET"},
		{"GET on a cancellation", http.MethodGet, "/api/v1/jobs/3f0c9a52-6f1e-4c7a-9d43-1b2e5c8f7a10/cancel", http.StatusMethodNotAllowed, "POST"},
		{"PATCH on a station", http.MethodPatch, "/api/v1/stations/S1", http.StatusMethodNotAllowed, "GET, PUT, DELETE"},
		{"POST on a read", http.MethodPost, "/api/v1/vehicles", http.StatusMethodNotAllowed, "GET"},
		{"DELETE on a vehicle", http.MethodDelete, "/api/v1/vehicles/X1", http.StatusMethodNotAllowed, "GET"},
		{"PUT on health", http.MethodPut, "/healthz", http.StatusMethodNotAllowed, "GET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := a.do(t, tt.method, tt.path, viewerToken)
			wantProblem(t, w, tt.path, tt.want)
			if got := w.Header().Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
		})
	}

	t.Run("no WebSocket configured", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, a.get(t, wsPath), wsPath, http.StatusNotFound)
	})
}

// TestServerErrorsDoNotLeak checks that a failing store is a 500 whose
// detail says nothing of the cause, and that the cause is logged.
func TestServerErrorsDoNotLeak(t *testing.T) {
	t.Parallel()
	url := testenv.FromEnv(os.LookupEnv).Postgres(t)
	pool, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	pool.Close() // every query now fails with "closed pool"
	a := newDBAPI(t, pool)
	for _, path := range []string{"/api/v1/vehicles", "/api/v1/vehicles/X1", "/api/v1/vehicles/X1/track"} {
		w := a.get(t, path)
		p := wantProblem(t, w, path, http.StatusInternalServerError)
		if strings.Contains(p.Detail, "closed") || strings.Contains(p.Detail, "pool") || strings.Contains(p.Detail, "vehicle") {
			t.Errorf("%s: the answer leaks the cause: %s", path, w.Body)
		}
		if p.Type != problemBase+"internal" {
			t.Errorf("%s: type %s", path, p.Type)
		}
	}
	if logs := a.logs.String(); !strings.Contains(logs, "closed pool") || !strings.Contains(logs, "level=ERROR") {
		t.Errorf("the cause is not logged as an error:\n%s", logs)
	}
}

func TestPanicIsProblem(t *testing.T) {
	t.Parallel()
	a := newAPI(t, noStore())
	e := a.srv.engine()
	e.GET("/panics", func(*gin.Context) { panic("secret detail") })
	a.handler = e
	w := a.do(t, http.MethodGet, "/panics", "")
	wantProblem(t, w, "/panics", http.StatusInternalServerError)
	if strings.Contains(w.Body.String(), "secret") {
		t.Errorf("the answer leaks the panic: %s", w.Body)
	}
	if logs := a.logs.String(); !strings.Contains(logs, "secret detail") {
		t.Errorf("the panic is not logged:\n%s", logs)
	}
	w = a.do(t, http.MethodGet, "/metrics", "")
	if want := `tms_http_requests_total{code="500",method="GET",route="/panics"} 1`; !strings.Contains(w.Body.String(), want) {
		t.Errorf("/metrics lacks %s", want)
	}
}
