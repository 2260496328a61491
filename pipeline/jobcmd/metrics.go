package jobcmd

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tmsfleet/tms/domain/job"
)

type metrics struct {
	commands *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tms_job_commands_total",
			Help: "Job commands by kind (create, cancel) and outcome (applied: shown by the read model; accepted: appended but not yet shown; " +
				"repeated: a create repeating a job that exists, nothing appended; invalid; rejected: not found, finished or a conflicting external reference; " +
				"unavailable; failed).",
		}, []string{"command", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tms_job_command_duration_seconds",
			Help:    "From receiving a job command to answering it, by kind.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
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
	var invalid *job.ValidationError
	switch {
	case errors.As(err, &invalid):
		outcome = "invalid"
	case errors.Is(err, job.ErrNotFound), errors.Is(err, job.ErrFinished), errors.Is(err, job.ErrConflict):
		outcome = "rejected"
	case errors.Is(err, ErrUnavailable):
		outcome = "unavailable"
	case err != nil:
		outcome = "failed"
	case res.Accepted:
		outcome = "accepted"
	case kind == "create" && !res.Created:
		outcome = "repeated"
	}
	m.commands.WithLabelValues(kind, outcome).Inc()
	m.duration.WithLabelValues(kind).Observe(d.Seconds())
}
