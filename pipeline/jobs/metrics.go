package jobs

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/pipeline/txloop"
)

type metrics struct {
	*txloop.Metrics // transactions, snapshots and restores
	inputs          *prometheus.CounterVec
	events          prometheus.Counter
	late            prometheus.Counter
	forgotten       prometheus.Counter
	deadLetters     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		Metrics: txloop.NewMetrics(reg, "tms_jobs", "Input"),
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
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tms_jobs_dead_letters_total", Help: "Input records the job processor could not read, sent to tms.deadletter.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.inputs, m.events, m.late, m.forgotten, m.deadLetters)
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
