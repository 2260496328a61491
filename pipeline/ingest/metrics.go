package ingest

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	messages       prometheus.Counter
	received       prometheus.Counter
	accepted       prometheus.Counter
	rejected       *prometheus.CounterVec
	inflight       prometheus.Gauge
	produceLatency prometheus.Histogram
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
	}
	if reg != nil {
		reg.MustRegister(m.messages, m.received, m.accepted, m.rejected, m.inflight, m.produceLatency)
	}
	return m
}
