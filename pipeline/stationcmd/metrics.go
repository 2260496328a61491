package stationcmd

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tmsfleet/tms/domain/station"
)

type metrics struct {
	commands *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tms_station_commands_total",
			Help: "Station commands by kind (create, put, delete) and outcome (applied, accepted: appended but not yet shown by the read model, rejected, invalid: too many positions or a shape the geofence cannot index, unavailable, failed).",
		}, []string{"command", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tms_station_command_duration_seconds",
			Help:    "From receiving a station command to answering it, by kind.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"command"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.commands, m.duration} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) observe(kind string, res Result, err error, d time.Duration) {
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
	m.commands.WithLabelValues(kind, outcome).Inc()
	m.duration.WithLabelValues(kind).Observe(d.Seconds())
}
