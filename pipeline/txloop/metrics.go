package txloop

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts a processor's transactions, and the snapshots and
// restores of its state: <prefix>_transactions_total{result},
// <prefix>_snapshots_total, <prefix>_restores_total,
// <prefix>_restore_seconds and <prefix>_replayed_records_total.
type Metrics struct {
	transactions    *prometheus.CounterVec
	snapshots       prometheus.Counter
	restores        prometheus.Counter
	restoreSeconds  prometheus.Histogram
	replayedRecords prometheus.Counter
}

// NewMetrics makes the metrics of a processor, their names prefixed with
// prefix ("tms_jobs"), and registers them with reg (nil: none). records
// says, for the help, what a restore replays ("Input").
func NewMetrics(reg prometheus.Registerer, prefix, records string) *Metrics {
	m := &Metrics{
		transactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: prefix + "_transactions_total", Help: "Transactions ended, by result (committed, aborted).",
		}, []string{"result"}),
		snapshots: prometheus.NewCounter(prometheus.CounterOpts{
			Name: prefix + "_snapshots_total", Help: "Partition state snapshots written.",
		}),
		restores: prometheus.NewCounter(prometheus.CounterOpts{
			Name: prefix + "_restores_total", Help: "Partitions whose state was restored on takeover.",
		}),
		restoreSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: prefix + "_restore_seconds", Help: "Time to restore one partition's state.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}),
		replayedRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: prefix + "_replayed_records_total", Help: records + " records replayed to rebuild state after a snapshot.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.transactions, m.snapshots, m.restores, m.restoreSeconds, m.replayedRecords)
	}
	return m
}

func (m *Metrics) transaction(committed bool) {
	if committed {
		m.transactions.WithLabelValues("committed").Inc()
	} else {
		m.transactions.WithLabelValues("aborted").Inc()
	}
}

// Snapshotted counts a snapshot of a partition's state written.
func (m *Metrics) Snapshotted() { m.snapshots.Inc() }

// Restored counts a partition restored in took, replaying replayed
// records.
func (m *Metrics) Restored(took time.Duration, replayed int) {
	m.restores.Inc()
	m.restoreSeconds.Observe(took.Seconds())
	m.replayedRecords.Add(float64(replayed))
}
