package ingest

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	messages       prometheus.Counter
	received       prometheus.Counter
	accepted       prometheus.Counter
	rejected       *prometheus.CounterVec
	inflight       prometheus.Gauge
	produceLatency prometheus.Histogram
	refused        *prometheus.CounterVec
	produceErrors  *prometheus.CounterVec
	held           prometheus.Counter
	eventsAccepted *prometheus.CounterVec
	eventsRejected *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		messages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tms_ingest_messages_total", Help: "MQTT messages received.",
		}),
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tms_ingest_positions_received_total", Help: "Position items received, good or bad.",
		}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tms_ingest_positions_accepted_total", Help: "Position items accepted and produced to tms.positions.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tms_ingest_positions_rejected_total", Help: "Items or whole messages rejected to tms.deadletter, by reason.",
		}, []string{"reason"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tms_ingest_messages_unacked", Help: "MQTT messages waiting for Kafka's acknowledgement.",
		}),
		produceLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tms_ingest_produce_latency_seconds",
			Help:    "From receiving an MQTT message to Kafka acknowledging all its records.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tms_ingest_records_refused_total",
			Help: "Records Kafka refused for themselves (too large, invalid), each replaced by a record_refused dead letter, by Kafka's error name.",
		}, []string{"error"}),
		produceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tms_ingest_produce_errors_total",
			Help: "Records Kafka did not store for another reason (authorisation, unknown topic...), whose messages stay unacknowledged, by error name.",
		}, []string{"error"}),
		held: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tms_ingest_messages_held_total",
			Help: "MQTT messages left unacknowledged because a record of theirs was not stored; the broker sends them again on the next connection.",
		}),
		eventsAccepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tms_ingest_g7_events_accepted_total", Help: "G7 event reports (stop, idle, EMS) accepted and produced to tms.g7events, by kind.",
		}, []string{"kind"}),
		eventsRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tms_ingest_g7_events_rejected_total", Help: "G7 event messages rejected to tms.deadletter, by kind and reason.",
		}, []string{"kind", "reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.messages, m.received, m.accepted, m.rejected, m.inflight, m.produceLatency,
			m.refused, m.produceErrors, m.held, m.eventsAccepted, m.eventsRejected)
	}
	return m
}
