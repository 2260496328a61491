package projector

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

type metrics struct {
	applied  prometheus.Counter
	failures prometheus.Counter
	size     prometheus.Histogram
	duration prometheus.Histogram
	lag      *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer, projection string) *metrics {
	labels := prometheus.Labels{"projection": projection}
	m := &metrics{
		applied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tms_projector_records_applied_total", Help: "Records applied to the read model.", ConstLabels: labels,
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tms_projector_batch_failures_total", Help: "Batch transactions that failed and were retried.", ConstLabels: labels,
		}),
		size: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tms_projector_batch_records", Help: "Records applied per transaction.", ConstLabels: labels,
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tms_projector_batch_duration_seconds", Help: "Time to apply and commit one batch.", ConstLabels: labels,
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tms_projector_lag_records", Help: "Records in the partition not yet applied, as of the last poll.", ConstLabels: labels,
		}, []string{"topic", "partition"}),
	}
	if reg != nil {
		reg.MustRegister(m.applied, m.failures, m.size, m.duration, m.lag)
	}
	return m
}

func (m *metrics) batch(applied int, took time.Duration) {
	m.applied.Add(float64(applied))
	m.size.Observe(float64(applied))
	m.duration.Observe(took.Seconds())
}

func (m *metrics) observeLag(fetches kgo.Fetches) {
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		next := p.Records[len(p.Records)-1].Offset + 1
		m.lag.WithLabelValues(p.Topic, strconv.Itoa(int(p.Partition))).Set(float64(p.HighWatermark - next))
	})
}
