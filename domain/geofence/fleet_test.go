package geofence

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tmsfleet/tms/domain/geo"
)

// fleetWorld feeds fixes of many vehicles through a Fleet, numbering them
// as a partition's offsets would.
type fleetWorld struct {
	t       *testing.T
	tracker *Tracker
	fleet   *Fleet
	seq     int64
	out     []Transition
}

func newFleetWorld(t *testing.T, cfg Config, capacity int, stations ...Station) *fleetWorld {
	t.Helper()
	w := newWorld(t, cfg, stations...)
	return &fleetWorld{t: t, tracker: w.tracker, fleet: NewFleet(capacity)}
}

func (w *fleetWorld) at(plate string, s float64, p geo.Point) *fleetWorld {
	w.seq++
	w.out, _ = w.fleet.Observe(w.tracker, plate, Fix{Time: t0.Add(time.Duration(s * float64(time.Second))), Point: p}, w.seq, w.out)
	if w.fleet.Len() > w.fleet.Capacity() {
		w.t.Fatalf("the fleet holds %d vehicles, more than its %d", w.fleet.Len(), w.fleet.Capacity())
	}
	return w
}

// expect checks the transitions so far as "plate kind station @seconds flags".
func (w *fleetWorld) expect(want ...string) {
	w.t.Helper()
	var got []string
	for _, tr := range w.out {
		s := tr.Vehicle + " " + tr.Kind.String() + " " + tr.StationID + " @" + tr.At.Sub(t0).String()
		if len(tr.Flags) > 0 {
			s += " " + strings.Join(tr.Flags, ",")
		}
		got = append(got, s)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		w.t.Errorf("transitions:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func (w *fleetWorld) holds(plates ...string) {
	w.t.Helper()
	var got []string
	w.fleet.Each(func(v *Vehicle) { got = append(got, v.State.Plate) })
	slices.Sort(got)
	slices.Sort(plates)
	if !slices.Equal(got, plates) {
		w.t.Errorf("the fleet holds %v, want %v", got, plates)
	}
}

func TestFleetForgetsTheLeastRecentVehiclesWithoutAnOpenVisitFirst(t *testing.T) {
	t.Parallel()
	w := newFleetWorld(t, instant, 3, circle("S1", TypeLoading, 1, 100))
	// A enters S1 and stays; B and C stay outside.
	w.at("A", 0, north(50)).at("B", 1, north(500)).at("C", 2, north(500)).at("A", 3, north(50))
	// Full: B, the least recent, makes room for D.
	w.at("D", 4, north(500))
	w.holds("A", "C", "D")
	// C next, although A reported before D and E: A is inside.
	w.at("E", 5, north(500))
	w.holds("A", "D", "E")
	// F and G enter S1 and push out D and E: only open visits are left.
	w.at("F", 6, north(50)).at("G", 7, north(50))
	w.holds("A", "F", "G")
	// Now A, the least recent, goes: its visit ends at its last fix.
	w.at("H", 8, north(500))
	w.holds("F", "G", "H")
	w.expect("A entered S1 @0s initial", "F entered S1 @6s initial", "G entered S1 @7s initial",
		"A exited S1 @3s forgotten")
	if ex := w.out[3]; ex.Dwell != 3*time.Second || ex.VisitID != w.out[0].VisitID {
		t.Errorf("forgotten exit %+v", ex)
	}
	// A reports again, inside: a vehicle seen for the first time.
	w.at("A", 9, north(50))
	w.expect("A entered S1 @0s initial", "F entered S1 @6s initial", "G entered S1 @7s initial",
		"A exited S1 @3s forgotten", "A entered S1 @9s initial")
}

func TestForgettingDecidesTheFixesInTheReorderWindowFirst(t *testing.T) {
	t.Parallel()
	w := newFleetWorld(t, Config{ReorderWindow: 10 * time.Second}, 1, circle("S1", TypeLoading, 1, 100))
	// A's fixes wait for the window; the second one is inside.
	w.at("A", 0, north(500)).at("A", 1, north(50))
	w.expect()
	w.at("B", 2, north(500))
	// Forgetting A decided both: it entered at 1 s, and left, forgotten,
	// at its last fix.
	w.expect("A entered S1 @1s", "A exited S1 @1s forgotten")
}

func TestForgottenExitOfAVehicleLeavingIsDatedWhereItWasFirstSeenOutside(t *testing.T) {
	t.Parallel()
	three := 3
	st := circle("S1", TypeLoading, 1, 100)
	st.Detection = DetectionOverrides{ExitConfirmFixes: &three}
	w := newFleetWorld(t, instant, 1, st)
	// A enters, then is outside for two fixes of the three that confirm.
	w.at("A", 0, north(500)).at("A", 1, north(50)).at("A", 2, north(500)).at("A", 3, north(500))
	w.at("B", 4, north(500))
	w.expect("A entered S1 @1s", "A exited S1 @2s forgotten")
}

// TestFleetRestoredFromItsStatesDecidesAsTheFirstRun is what a takeover
// relies on: vehicles restored from their states (as a snapshot carries
// them) forget and decide exactly as the fleet that kept running.
func TestFleetRestoredFromItsStatesDecidesAsTheFirstRun(t *testing.T) {
	t.Parallel()
	fixes := func(w *fleetWorld, from, to int) {
		for i := from; i < to; i++ {
			plate := fmt.Sprintf("V%03d", (i*7919)%97)
			d := 500.0
			if i%3 == 0 {
				d = 50
			}
			w.at(plate, float64(i), north(d))
		}
	}
	whole := newFleetWorld(t, Config{ReorderWindow: 2 * time.Second}, 20, circle("S1", TypeLoading, 1, 100))
	fixes(whole, 0, 3000)

	first := newFleetWorld(t, Config{ReorderWindow: 2 * time.Second}, 20, circle("S1", TypeLoading, 1, 100))
	fixes(first, 0, 1234)
	var states []VehicleState
	first.fleet.Each(func(v *Vehicle) {
		raw, err := json.Marshal(v.State)
		if err != nil {
			t.Fatal(err)
		}
		var s VehicleState
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatal(err)
		}
		states = append(states, s)
	})
	second := newFleetWorld(t, Config{ReorderWindow: 2 * time.Second}, 20, circle("S1", TypeLoading, 1, 100))
	for _, s := range states {
		second.fleet.Restore(s)
	}
	second.seq, second.out = first.seq, first.out
	fixes(second, 1234, 3000)

	if len(whole.out) < 100 {
		t.Fatalf("only %d transitions: the test decides too little", len(whole.out))
	}
	forgotten := 0
	for i, tr := range whole.out {
		if tr.HasFlag(FlagForgotten) {
			forgotten++
		}
		if i >= len(second.out) || second.out[i].String() != tr.String() {
			t.Fatalf("transition %d: the restored fleet decided %v, the first run %v", i, second.out[i:min(i+1, len(second.out))], tr)
		}
	}
	if len(second.out) != len(whole.out) || forgotten == 0 {
		t.Errorf("%d transitions restored against %d; %d forgotten", len(second.out), len(whole.out), forgotten)
	}
}
