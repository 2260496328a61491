package projections

import (
	"github.com/tmsfleet/tms/projections/projector"
	"github.com/tmsfleet/tms/projections/stations"
	"github.com/tmsfleet/tms/projections/vehicles"
	"github.com/tmsfleet/tms/projections/visits"
)

// All returns every read model tms builds, each registered with its Spec
// (name, topics, tables) and constructor. The project role runs each one's
// projector; `tms replay read-models` empties each one's tables and
// offsets and projects its topics again.
func All() []projector.Registration {
	return []projector.Registration{
		projector.Register(vehicles.Spec, vehicles.NewProjection),
		projector.Register(stations.Spec, stations.NewProjection),
		projector.Register(visits.Spec, visits.NewProjection),
	}
}
