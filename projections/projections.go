package projections

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tmsfleet/tms/projections/g7events"
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
// be valid. The project role runs each one's projector; `tms rebuild`
// builds each one afresh from its topics beside the live one, and switches
// over (projections/rebuild).
func Configured(s Settings) []projector.Registration {
	return []projector.Registration{
		projector.Register(vehicles.Spec, vehicles.NewProjection),
		projector.Register(stations.Spec, stations.NewProjection),
		projector.Register(visits.Spec, visits.NewProjection),
		projector.Register(jobs.Spec, jobs.NewProjection),
		projector.Register(trips.Spec, func(reg prometheus.Registerer, log *slog.Logger) *trips.Projection {
			return trips.NewProjection(s.Trips, reg, log)
		}),
		projector.Register(g7events.Spec, g7events.NewProjection),
	}
}

// Select returns the registered read models named by names, with the
// default settings (Settings.Select).
func Select(names ...string) ([]projector.Registration, error) {
	return DefaultSettings().Select(names...)
}

// Select returns the registered read models named by names (a read
// model's ShortName, such as vehicles, or its full Name), made with s, in
// All's order; every one of them when names is empty. An unknown name is
// an error that lists the known ones.
func (s Settings) Select(names ...string) ([]projector.Registration, error) {
	all := Configured(s)
	if len(names) == 0 {
		return all, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []projector.Registration
	var known []string
	for _, r := range all {
		known = append(known, r.ShortName())
		if want[r.ShortName()] || want[r.Name] {
			out = append(out, r)
			delete(want, r.ShortName())
			delete(want, r.Name)
		}
	}
	if len(want) > 0 {
		unknown := slices.Sorted(maps.Keys(want))
		return nil, fmt.Errorf("no read model %s (the read models: %s)", strings.Join(unknown, ", "), strings.Join(known, ", "))
	}
	return out, nil
}
