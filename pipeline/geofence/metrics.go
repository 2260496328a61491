package geofence

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tmsfleet/tms/pipeline/txloop"
)

type metrics struct {
	*txloop.Metrics // transactions, snapshots and restores
	fixes           prometheus.Counter
	transitions     *prometheus.CounterVec
	deadLetters     prometheus.Counter
	stations        prometheus.Gauge
	stationsSkipped prometheus.Counter
	forgotten       prometheus.Counter
	vehicles        prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		Metrics: txloop.NewMetrics(reg, "tms_geofence", "Position"),
		fixes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tms_geofence_fixes_total", Help: "Fixes the geofence has taken in.",
		}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tms_geofence_transitions_total", Help: "Entries and exits produced (each transaction's, committed or not).",
		}, []string{"kind"}),
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
		reg.MustRegister(m.fixes, m.transitions, m.deadLetters, m.stations, m.stationsSkipped, m.forgotten, m.vehicles)
	}
	return m
}
