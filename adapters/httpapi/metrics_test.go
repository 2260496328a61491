package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetrics(t *testing.T) {
	t.Parallel()
	a := newDBAPI(t, newDB(t, fleet()))
	a.get(t, "/api/v1/vehicles/%E6%B2%AAA12345")
	a.get(t, "/api/v1/vehicles/%E6%B2%AAZ99999")
	a.do(t, http.MethodGet, "/api/v1/vehicles", "")
	a.get(t, "/no/such/path")
	a.do(t, "BREW", "/healthz", "")

	w := a.do(t, http.MethodGet, "/metrics", "")
	if w.Code != http.StatusOK {
		t.Fatalf("metrics: %d %s", w.Code, w.Body)
	}
	body := w.Body.String()
	for _, want := range []string{
		// The route template, not the plate: bounded cardinality.
		`tms_http_requests_total{code="200",method="GET",route="/api/v1/vehicles/:plate"} 1`,
		`tms_http_requests_total{code="404",method="GET",route="/api/v1/vehicles/:plate"} 1`,
		`tms_http_requests_total{code="401",method="GET",route="/api/v1/vehicles"} 1`,
		`tms_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`tms_http_requests_total{code="405",method="other",route="unmatched"} 1`,
		`tms_http_request_duration_seconds_count{method="GET",route="/api/v1/vehicles/:plate"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, "Z99999") || strings.Contains(body, "%E6") {
		t.Error("/metrics carries a raw path")
	}
}

func TestMetricsSharedRegistry(t *testing.T) {
	t.Parallel()
	// Two APIs on one registry (as in tests, or two listeners) share the
	// collectors instead of failing to register them twice.
	reg := prometheus.NewRegistry()
	share := func(c *Config) { c.Registerer = reg }
	first, second := newAPI(t, noStore(), share), newAPI(t, noStore(), share)
	first.do(t, http.MethodGet, "/healthz", "")
	second.do(t, http.MethodGet, "/healthz", "")
	w := first.do(t, http.MethodGet, "/metrics", "")
	if want := `tms_http_requests_total{code="200",method="GET",route="/healthz"} 2`; !strings.Contains(w.Body.String(), want) {
		t.Errorf("/metrics lacks %s:\n%s", want, w.Body)
	}
}
