package metricstest_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tmsfleet/tms/internal/metricstest"
)

func TestSum(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c_total", Help: "c"}, []string{"a", "b"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "g", Help: "g"})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h_seconds", Help: "h"})
	reg.MustRegister(c, g, h)
	c.WithLabelValues("x", "1").Add(1)
	c.WithLabelValues("x", "2").Add(2)
	c.WithLabelValues("y", "1").Add(4)
	g.Set(7)
	h.Observe(1)
	h.Observe(2)
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"c_total", nil, 7},
		{"c_total", []string{"a", "x"}, 3},
		{"c_total", []string{"a", "x", "b", "2"}, 2},
		{"c_total", []string{"a", "z"}, 0},
		{"g", nil, 7},
		{"h_seconds", nil, 2},
		{"absent_total", nil, 0},
	} {
		if got := metricstest.Sum(t, reg, tc.name, tc.labels...); got != tc.want {
			t.Errorf("Sum(%s, %v) = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
}
