package trips_test

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/projections/trips"
	"github.com/tmsfleet/tms/simulator"
)

// simulate drives a fleet of the simulator (deterministic for its seed)
// for dur, a fix every every, recording its legs: the fixes, in the
// order they would reach tms.positions, and the legs as planned.
func simulate(t *testing.T, seed uint64, vehicles int, start time.Time, dur, every time.Duration) ([]position.Position, []simulator.Leg) {
	t.Helper()
	fleet, err := simulator.NewFleet(seed, vehicles, simulator.Shanghai())
	if err != nil {
		t.Fatal(err)
	}
	var out []position.Position
	add := func(fixes []simulator.Fix) {
		for _, f := range fixes {
			out = append(out, position.Position{Plate: f.Plate, FixTime: f.Time, ReceivedAt: f.Time.Add(time.Second),
				Lat: f.Lat, Lng: f.Lng, SpeedKmh: f.SpeedKmh})
		}
	}
	add(fleet.Step(start))
	fleet.RecordLegs()
	for at := start.Add(every); at.Before(start.Add(dur)); at = at.Add(every) {
		add(fleet.Step(at))
	}
	return out, fleet.Legs()
}

// pathLength is the length of a leg's path on the sphere.
func pathLength(l simulator.Leg) float64 {
	d := 0.0
	for i := 1; i < len(l.Path); i++ {
		d += geo.Haversine(geo.Point{Lat: l.Path[i-1][0], Lng: l.Path[i-1][1]}, geo.Point{Lat: l.Path[i][0], Lng: l.Path[i][1]})
	}
	return d
}

// TestTheSimulatorsRoutesMakeTheirTrips: twelve vehicles of the simulator
// drive for ten hours between the sites of Shanghai, a fix every 10 s.
// Each leg the simulator planned and drove (from its own journal, not
// from tms) is one trip, starting at the last fix before the departure
// and ending at the first fix at the arrival, its distance within 1 % of
// the leg's length (the straight lines between fixes cut the route's
// bends by a few metres); there is no other trip, and the stops lie
// between them. The simulator's shortest dwell is 3 minutes (oil stations), so the
// parking time is 2 minutes here: a fix every 10 s shows at least 2 min
// 40 s of it.
func TestTheSimulatorsRoutesMakeTheirTrips(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const every = 10 * time.Second
	start, dur := t0, 10*time.Hour
	fixes, legs := simulate(t, 42, 12, start, dur, every)
	h.produce(t, fixes...)
	s := trips.DefaultSettings()
	s.Rules.Parking = 2 * time.Minute
	h.project(t, s, 2000)

	end := start.Add(dur - every)
	byPlate := map[string][]simulator.Leg{}
	for _, l := range legs {
		byPlate[l.Plate] = append(byPlate[l.Plate], l)
	}
	matched, worst := 0, 0.0
	plates := map[string]bool{}
	for _, f := range fixes {
		plates[f.Plate] = true
	}
	for plate := range plates {
		segs := h.segments(t, plate)
		var tripsOf []segment
		for _, sg := range segs {
			if sg.kind == "trip" && !sg.open && len(sg.flags) == 0 {
				tripsOf = append(tripsOf, sg)
			}
		}
		// Every complete leg is a trip, whose stop after it has begun.
		used := map[string]bool{}
		for _, l := range byPlate[plate] {
			if l.Arrived.IsZero() || l.Arrived.After(end.Add(-s.Rules.Parking-2*every)) {
				continue // still driving, or its stop not yet long enough
			}
			if l.Departed.Before(start.Add(s.Rules.Parking)) {
				continue // its vehicle stood too briefly before it to show a stop: its first trip, partial
			}
			var hit *segment
			for i := range tripsOf {
				tr := &tripsOf[i]
				if !tr.start.Before(l.Departed.Add(-every)) && !tr.start.After(l.Departed.Add(2*time.Second)) &&
					!tr.end.Before(l.Arrived.Add(-3*time.Second)) && !tr.end.After(l.Arrived.Add(every+time.Second)) {
					hit = tr
				}
			}
			if hit == nil {
				t.Errorf("%s: the leg %s -> %s, %s to %s, is no trip:\n%s", plate, l.From, l.To,
					l.Departed.Format("15:04:05.0"), l.Arrived.Format("15:04:05.0"), describe(segs))
				continue
			}
			used[hit.id] = true
			matched++
			length := pathLength(l)
			off := math.Abs(hit.distance-length) / length
			worst = math.Max(worst, off)
			if off > 0.01 {
				t.Errorf("%s: the leg %s -> %s is %.0f m, its trip %.0f m: more than 1 %% off", plate, l.From, l.To, length, hit.distance)
			}
		}
		// No trip that is no leg: every trip after the vehicle's first stop
		// is one (those before it, flagged partial, began before the fixes).
		for _, tr := range tripsOf {
			if !used[tr.id] && tr.end.Before(end.Add(-s.Rules.Parking-2*every)) {
				t.Errorf("%s: trip %s is no leg of the simulator", plate, tr)
			}
		}
		// Stops lie between trips: each starts where a trip ends.
		for i := 1; i < len(segs); i++ {
			if !segs[i].start.Equal(segs[i-1].end) && !slices.Contains(segs[i].flags, "partial") {
				t.Errorf("%s: %s does not start where %s ends", plate, segs[i], segs[i-1])
			}
		}
	}
	if matched < 40 {
		t.Errorf("only %d legs to compare", matched)
	}
	t.Logf("%d legs, each a trip; the largest distance error %.3f %%", matched, 100*worst)
}
