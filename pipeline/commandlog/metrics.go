package commandlog

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts a handler's commands by kind and outcome, and times
// them: tms_<subject>_commands_total{command, outcome} and
// tms_<subject>_command_duration_seconds{command}.
type Metrics struct {
	commands *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics makes the metrics of the commands of subject ("job") and
// registers them with reg (nil: none). help is the counter's help, which
// names the kinds and outcomes; buckets are the duration's, in seconds, up
// to the longest wait a command may have.
func NewMetrics(reg prometheus.Registerer, subject, help string, buckets []float64) (*Metrics, error) {
	m := &Metrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tms_" + subject + "_commands_total",
			Help: help,
		}, []string{"command", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tms_" + subject + "_command_duration_seconds",
			Help:    "From receiving a " + subject + " command to answering it, by kind.",
			Buckets: buckets,
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

// Observe counts one command of kind with its outcome, answered after d.
func (m *Metrics) Observe(kind, outcome string, d time.Duration) {
	m.commands.WithLabelValues(kind, outcome).Inc()
	m.duration.WithLabelValues(kind).Observe(d.Seconds())
}
