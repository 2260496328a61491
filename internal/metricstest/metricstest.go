// Package metricstest reads metrics in tests. Components take a
// prometheus.Registerer, and their tests check what they counted through
// a registry of the test's own: Sum is the one way to read it back, so
// that each test need not walk the gathered families again.
package metricstest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Sum returns the value of the counters or gauges named name in g (a
// histogram's sample count), summed over the series that carry every
// label of labels, given as name, value pairs: Sum(t, reg,
// "tms_geofence_transactions_total", "result", "aborted"). A name g does
// not hold sums to 0.
func Sum(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	if len(labels)%2 != 0 {
		t.Fatalf("metricstest: labels %q are not name, value pairs", labels)
	}
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if carries(m, labels) {
				sum += value(m)
			}
		}
	}
	return sum
}

func carries(m *dto.Metric, labels []string) bool {
	for i := 0; i < len(labels); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}
