package projections

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/tmsfleet/tms/projections/jobs"
	"github.com/tmsfleet/tms/projections/projector"
	"github.com/tmsfleet/tms/projections/stations"
	"github.com/tmsfleet/tms/projections/vehicles"
	"github.com/tmsfleet/tms/projections/visits"
)

// All returns every read model tms builds, each registered with its Spec
// (name, topics, tables) and constructor. The project role runs each one's
// projector; `tms rebuild` builds each one afresh from its topics beside
// the live one, and switches over (projections/rebuild).
func All() []projector.Registration {
	return []projector.Registration{
		projector.Register(vehicles.Spec, vehicles.NewProjection),
		projector.Register(stations.Spec, stations.NewProjection),
		projector.Register(visits.Spec, visits.NewProjection),
		projector.Register(jobs.Spec, jobs.NewProjection),
	}
}

// Select returns the registered read models named by names (a read
// model's ShortName, such as vehicles, or its full Name), in All's order;
// every one of them when names is empty. An unknown name is an error that
// lists the known ones.
func Select(names ...string) ([]projector.Registration, error) {
	all := All()
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
