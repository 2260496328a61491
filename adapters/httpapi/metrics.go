package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the HTTP server's.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// readinessRuns counts runs of the readiness checks: however often
	// /readyz is asked, at most one per ReadinessInterval.
	readinessRuns prometheus.Counter
}

// newMetrics registers the HTTP metrics with reg. When reg already has
// them (a second API on the same registry, as tests build), the
// registered collectors are shared rather than failing.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tms_http_requests_total",
			Help: "HTTP requests answered, by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tms_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route template and method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
		readinessRuns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tms_http_readiness_runs_total",
			Help: "Runs of the readiness checks behind GET /readyz (at most one per TMS_HTTP_READYZ_INTERVAL, whatever the request rate).",
		}),
	}
	if err := register(reg, &m.readinessRuns); err != nil {
		return nil, err
	}
	if err := register(reg, &m.requests); err != nil {
		return nil, err
	}
	if err := register(reg, &m.duration); err != nil {
		return nil, err
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c *C) error {
	err := reg.Register(*c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			*c = existing
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("httpapi: register metrics: %w", err)
	}
	return nil
}

// routeLabelKey is where a handler outside gin's routes names its route
// for the metrics (the dashboard's files are all "dashboard").
const routeLabelKey = "httpapi.route"

// instrument counts and times every request, including 404s and those
// refused by auth. Labels are bounded: route is gin's template
// (/api/v1/vehicles/:plate, never the plate itself), "dashboard" for the
// dashboard's files, "unmatched" for unknown paths, and methods outside
// the standard set are "other".
func (s *server) instrument(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if label := c.GetString(routeLabelKey); label != "" {
		route = label
	}
	if route == "" {
		route = "unmatched"
	}
	method := methodLabel(c.Request.Method)
	s.metrics.requests.WithLabelValues(route, method, strconv.Itoa(c.Writer.Status())).Inc()
	// A WebSocket request lasts as long as its session: as a latency it
	// would swamp the histogram.
	if route != wsPath {
		s.metrics.duration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
	}
}

func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}
