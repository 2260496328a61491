package projections

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tmsfleet/tms/projections/jobs"
	"github.com/tmsfleet/tms/projections/projector"
	"github.com/tmsfleet/tms/projections/stations"
	"github.com/tmsfleet/tms/projections/trips"
	"github.com/tmsfleet/tms/projections/vehicles"
	"github.com/tmsfleet/tms/projections/visits"
)

// Settings are the settings of the read models whose rows depend on more
// than their topics: the rules that cut trips. Changing them changes what
// a rebuild makes.
type Settings struct {
	Trips trips.Settings
}

// DefaultSettings are the read models' defaults.
func DefaultSettings() Settings { return Settings{Trips: trips.DefaultSettings()} }

// All returns every read model tms builds, with the default settings,
// each registered with its Spec (name, topics, tables) and constructor.
// What needs only the specs (names, topics, tables) takes them from here;
// what runs projectors takes them from Configured, with the settings it
// was given.
func All() []projector.Registration { return Configured(DefaultSettings()) }

// Configured returns every read model tms builds, made with s, which must
// be valid. The project role runs each one's projector; `tms replay
// read-models` empties each one's tables and offsets and projects its
// topics again.
func Configured(s Settings) []projector.Registration {
	return []projector.Registration{
		projector.Register(vehicles.Spec, vehicles.NewProjection),
		projector.Register(stations.Spec, stations.NewProjection),
		projector.Register(visits.Spec, visits.NewProjection),
		projector.Register(jobs.Spec, jobs.NewProjection),
		projector.Register(trips.Spec, func(reg prometheus.Registerer, log *slog.Logger) *trips.Projection {
			return trips.NewProjection(s.Trips, reg, log)
		}),
	}
}
