package geofence

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	fixes           prometheus.Counter
	transitions     *prometheus.CounterVec
	transactions    *prometheus.CounterVec
	snapshots       prometheus.Counter
	restores        prometheus.Counter
	restoreSeconds  prometheus.Histogram
	replayedRecords prometheus.Counter
	deadLetters     prometheus.Counter
	stations        prometheus.Gauge
	stationsSkipped prometheus.Counter
	forgotten       prometheus.Counter
	vehicles        prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		fixes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tms_geofence_fixes_total", Help: "Fixes the geofence has taken in.",
		}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tms_geofence_transitions_total", Help: "Entries and exits produced (each transaction's, committed or not).",
		}, []string{"kind"}),
		transactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tms_geofence_transactions_total", Help: "Transactions ended, by result (committed, aborted).",
		}, []string{"result"}),
		snapshots: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tms_geofence_snapshots_total", Help: "Partition state snapshots written.",
		}),
		restores: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tms_geofence_restores_total", Help: "Partitions whose vehicle state was restored on takeover.",
		}),
		restoreSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tms_geofence_restore_seconds", Help: "Time to restore one partition's state.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}),
		replayedRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tms_geofence_replayed_records_total", Help: "Position records replayed to rebuild state after a snapshot.",
		}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tms_geofence_dead_letters_total", Help: "Position records the geofence could not read, sent to tms.deadletter.",
		}),
		stations: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tms_geofence_stations", Help: "Stations in the catalogue now.",
		}),
		stationsSkipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tms_geofence_station_events_skipped_total", Help: "Station events the geofence could not read or index.",
		}),
		forgotten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tms_geofence_vehicles_forgotten_total",
			Help: "Vehicles forgotten to keep a partition within its share of TMS_GEOFENCE_MAX_VEHICLES.",
		}),
		vehicles: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tms_geofence_vehicles", Help: "Vehicles whose state the geofence holds in memory now.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.fixes, m.transitions, m.transactions, m.snapshots, m.restores, m.restoreSeconds,
			m.replayedRecords, m.deadLetters, m.stations, m.stationsSkipped, m.forgotten, m.vehicles)
	}
	return m
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
