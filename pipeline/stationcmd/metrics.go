package stationcmd

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tmsfleet/tms/domain/station"
	"github.com/tmsfleet/tms/pipeline/commandlog"
)

func newMetrics(reg prometheus.Registerer) (*commandlog.Metrics, error) {
	return commandlog.NewMetrics(reg, "station",
		"Station commands by kind (create, put, delete) and outcome (applied, accepted: appended but not yet shown by the read model, rejected, invalid: too many positions or a shape the geofence cannot index, unavailable, failed).",
		prometheus.ExponentialBuckets(0.001, 2, 14))
}

// observe counts a command of kind that answered res and err after d.
func (c *Commands) observe(kind string, res Result, err error, d time.Duration) {
	outcome := "applied"
	var invalid *station.ValidationError
	switch {
	case errors.As(err, &invalid):
		outcome = "invalid"
	case errors.Is(err, station.ErrExists), errors.Is(err, station.ErrNotFound), errors.Is(err, station.ErrPreconditionFailed):
		outcome = "rejected"
	case errors.Is(err, ErrUnavailable):
		outcome = "unavailable"
	case err != nil:
		outcome = "failed"
	case res.Accepted:
		outcome = "accepted"
	}
	c.metrics.Observe(kind, outcome, d)
}
