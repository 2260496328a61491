package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

// errStarting answers every request but the health endpoints while the
// process sets itself up (Starting).
var errStarting = errors.New("the service is starting: it waits for its dependencies (see /readyz)")

// Starting returns what a process serves on its API's address while it
// cannot build the API yet: at start, tms waits for Kafka (which may not
// answer, or may refuse its credentials) before it sets its roles up, and
// an operator, a load balancer or a Kubernetes probe must be able to ask
// it meanwhile what it waits for. GET /healthz answers that the process is
// alive; GET /readyz runs checks (each naming a dependency waited for) and
// answers 503 naming the failed ones, as the API's own /readyz does, the
// causes going to log; every other request is answered 503 with
// Retry-After. It has no metrics: they start with the API.
func Starting(checks []Check, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "httpapi")
	// The metrics are the readiness's own, in a registry nobody serves:
	// the process's registry gets the API's when it starts.
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		panic(err) // a fresh registry takes every metric
	}
	s := &server{log: log, metrics: m, ready: newReadiness(checks, 2*time.Second, time.Second, m, log)}
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.Use(s.renderErrors, s.recover)
	e.NoRoute(func(c *gin.Context) { fail(c, errStarting) })
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	return e
}
