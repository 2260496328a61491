package jobcmd

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tmsfleet/tms/domain/job"
	"github.com/tmsfleet/tms/pipeline/commandlog"
)

func newMetrics(reg prometheus.Registerer) (*commandlog.Metrics, error) {
	return commandlog.NewMetrics(reg, "job",
		"Job commands by kind (create, cancel) and outcome (applied: shown by the read model; accepted: appended but not yet shown; "+
			"repeated: a create repeating a job that exists, nothing appended; invalid; rejected: not found, finished or a conflicting external reference; "+
			"unavailable; failed).",
		prometheus.ExponentialBuckets(0.001, 2, 16))
}

// observe counts a command of kind that answered res and err after d.
func (c *Commands) observe(kind string, res Result, err error, d time.Duration) {
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
	c.metrics.Observe(kind, outcome, d)
}
