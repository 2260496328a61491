package projector

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Skips accounts for the records a projection cannot read: each is
// logged with where it is and counted by reason, and the projection goes
// on without it (the record stays in its topic for whoever fixes it).
type Skips struct {
	log     *slog.Logger
	skipped *prometheus.CounterVec
}

// NewSkips returns the skip accounting of projection name; reg (optional)
// receives tms_projector_records_skipped_total, log (optional, slog's by
// default) the warnings.
func NewSkips(name string, reg prometheus.Registerer, log *slog.Logger) *Skips {
	if log == nil {
		log = slog.Default()
	}
	s := &Skips{
		log: log.With("projection", name),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "tms_projector_records_skipped_total",
			Help:        "Records a projection could not read and skipped, by reason.",
			ConstLabels: prometheus.Labels{"projection": name},
		}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(s.skipped)
	}
	return s
}

// Skip records that r is skipped for reason (a short code, the metric's
// label) because of err.
func (s *Skips) Skip(r *kgo.Record, reason string, err error) {
	s.skipped.WithLabelValues(reason).Inc()
	s.log.Warn("skipping a record the projection cannot read",
		"topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "reason", reason, "err", err)
}
