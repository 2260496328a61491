package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HealthConfig configures the endpoints of a process that runs no API
// (TMS_ROLES without api: an ingest, geofence or projector instance):
// /healthz, /readyz and /metrics, so that an orchestrator can probe it
// and Prometheus scrape it like any other instance.
type HealthConfig struct {
	// Checks are /readyz's checks, as Config.Checks.
	Checks []Check
	// CheckTimeout and ReadinessInterval are as in Config.
	CheckTimeout, ReadinessInterval time.Duration
	// Registerer receives the HTTP metrics; Gatherer is what /metrics
	// serves. nil: a registry of their own.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// Logger; default slog's.
	Logger *slog.Logger
}

// NewHealth builds the handler of HealthConfig's endpoints; every other
// path is a 404 problem. They need no token, as on the API's listener.
func NewHealth(hc HealthConfig) (http.Handler, error) {
	cfg := Config{
		Checks: hc.Checks, CheckTimeout: hc.CheckTimeout, ReadinessInterval: hc.ReadinessInterval,
		Registerer: hc.Registerer, Gatherer: hc.Gatherer, Logger: hc.Logger,
	}
	cfg.setDefaults()
	var errs []error
	for i, ch := range cfg.Checks {
		if ch.Name == "" || ch.Check == nil {
			errs = append(errs, fmt.Errorf("readiness check %d has no name or no function", i))
		}
	}
	if cfg.CheckTimeout < 0 || cfg.ReadinessInterval < 0 {
		errs = append(errs, errors.New("timeouts and intervals must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger.With("component", "httpapi")
	s := &server{cfg: cfg, metrics: m, log: log, ready: newReadiness(cfg.Checks, cfg.CheckTimeout, cfg.ReadinessInterval, m, log)}
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.Use(s.instrument, s.renderErrors, s.recover)
	e.NoRoute(func(c *gin.Context) { fail(c, errNoRoute) })
	e.NoMethod(func(c *gin.Context) { fail(c, errNoMethod) })
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", gin.WrapH(promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError),
	})))
	return e, nil
}
