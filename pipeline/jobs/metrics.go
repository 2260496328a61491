package jobs

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

type metrics struct {
	inputs          *prometheus.CounterVec
	events          prometheus.Counter
	late            prometheus.Counter
	forgotten       prometheus.Counter
	transactions    *prometheus.CounterVec
	snapshots       prometheus.Counter
	restores        prometheus.Counter
	restoreSeconds  prometheus.Histogram
	replayedRecords prometheus.Counter
	deadLetters     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		inputs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tms_jobs_inputs_total", Help: "Input records the job processor took, by input (jobs, geofence, positions).",
		}, []string{"input"}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tms_jobs_events_total", Help: "Job events produced (each transaction's, committed or not).",
		}),
		late: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tms_jobs_late_inputs_total", Help: "Commands and visits taken after their time was due: applied out of event-time order.",
		}),
		forgotten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tms_jobs_vehicles_forgotten_total", Help: "Vehicles without jobs forgotten to stay within TMS_JOBS_MAX_VEHICLES.",
		}),
		transactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tms_jobs_transactions_total", Help: "Transactions ended, by result (committed, aborted).",
		}, []string{"result"}),
		snapshots: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tms_jobs_snapshots_total", Help: "Partition state snapshots written.",
		}),
		restores: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tms_jobs_restores_total", Help: "Partitions whose state was restored on takeover.",
		}),
		restoreSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tms_jobs_restore_seconds", Help: "Time to restore one partition's state.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}),
		replayedRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tms_jobs_replayed_records_total", Help: "Input records replayed to rebuild state after a snapshot.",
		}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tms_jobs_dead_letters_total", Help: "Input records the job processor could not read, sent to tms.deadletter.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.inputs, m.events, m.late, m.forgotten, m.transactions, m.snapshots, m.restores,
			m.restoreSeconds, m.replayedRecords, m.deadLetters)
	}
	return m
}

var inputNames = [numInputs]string{"jobs", "geofence", "positions"}

func (m *metrics) took(recs [numInputs][]*kgo.Record, out outputs) {
	for i, rs := range recs {
		if len(rs) > 0 {
			m.inputs.WithLabelValues(inputNames[i]).Add(float64(len(rs)))
		}
	}
	m.events.Add(float64(len(out.events)))
	m.late.Add(float64(out.late))
	m.forgotten.Add(float64(out.forgotten))
}

func (m *metrics) transaction(committed bool) {
	if committed {
		m.transactions.WithLabelValues("committed").Inc()
	} else {
		m.transactions.WithLabelValues("aborted").Inc()
	}
}

func (m *metrics) restored(took time.Duration, replayed int) {
	m.restores.Inc()
	m.restoreSeconds.Observe(took.Seconds())
	m.replayedRecords.Add(float64(replayed))
}
