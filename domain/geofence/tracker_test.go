package geofence

import (
	"strings"
	"testing"
	"time"

	"github.com/tmsfleet/tms/domain/geo"
)

var t0 = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

// A station S1 of 100 m around (31, 121); a fix at metres north of it.
var centre = geo.Point{Lat: 31, Lng: 121}

func north(m float64) geo.Point {
	return geo.Point{Lat: centre.Lat + m/geo.MetresPerDegreeLat, Lng: centre.Lng}
}

func circle(id, typ string, version int64, radius float64) Station {
	return Station{ID: id, Type: typ, Version: version, Shape: Shape{Circle: &geo.Circle{Center: centre, RadiusM: radius}}}
}

type world struct {
	t       *testing.T
	catalog *Catalog
	tracker *Tracker
	v       *Vehicle
	out     []Transition
}

func newWorld(t *testing.T, cfg Config, stations ...Station) *world {
	t.Helper()
	c := NewCatalog(NewBruteForce())
	for _, s := range stations {
		if err := c.Upsert(s, t0.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	tr, err := NewTracker(cfg, c)
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, catalog: c, tracker: tr, v: NewVehicle(VehicleState{Plate: "沪A00001"})}
}

// at feeds a fix s seconds after t0 at p.
func (w *world) at(s float64, p geo.Point) *world {
	w.out = w.tracker.Observe(w.v, Fix{Time: t0.Add(time.Duration(s * float64(time.Second))), Point: p}, w.out)
	return w
}

func (w *world) flush() *world {
	w.out = w.tracker.Flush(w.v, w.out)
	return w
}

// expect checks the transitions so far as "kind station @seconds flags".
func (w *world) expect(want ...string) {
	w.t.Helper()
	var got []string
	for _, tr := range w.out {
		s := tr.Kind.String() + " " + tr.StationID + " @" + trimSeconds(tr.At.Sub(t0))
		if len(tr.Flags) > 0 {
			s += " " + strings.Join(tr.Flags, ",")
		}
		got = append(got, s)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		w.t.Errorf("transitions:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func trimSeconds(d time.Duration) string { return d.String() }

// instant decides each fix as soon as it arrives.
var instant = Config{}

func TestEnterAndExitWithTheExitMargin(t *testing.T) {
	t.Parallel()
	w := newWorld(t, instant, circle("S1", TypeLoading, 1, 100))
	w.at(0, north(500)).at(1, north(90)).at(2, north(110)).at(3, north(125)).at(4, north(140)).at(5, north(500))
	// 110 and 125 m are outside the 100 m fence but within its 30 m
	// margin: still inside. 140 m is out.
	w.expect("entered S1 @1s", "exited S1 @4s")
	if ex := w.out[1]; ex.Dwell != 3*time.Second || ex.VisitID != w.out[0].VisitID || !ex.EnteredAt.Equal(t0.Add(time.Second)) {
		t.Errorf("exit %+v", ex)
	}
}

func TestAFlappingVehicleAtTheFenceMakesOneVisit(t *testing.T) {
	t.Parallel()
	w := newWorld(t, instant, circle("S1", TypeLoading, 1, 100))
	w.at(0, north(300))
	for i := 1; i <= 20; i++ {
		d := 95.0
		if i%2 == 0 {
			d = 115 // GPS noise across the fence
		}
		w.at(float64(i), north(d))
	}
	w.at(21, north(300))
	w.expect("entered S1 @1s", "exited S1 @21s")
}

func TestConfirmationByFixesAndSeconds(t *testing.T) {
	t.Parallel()
	three, ten := 3, 10*time.Second
	st := circle("S1", TypeUnloading, 1, 100)
	st.Detection = DetectionOverrides{EnterConfirmFixes: &three, ExitConfirm: &ten}
	w := newWorld(t, instant, st)
	w.at(0, north(500)).
		at(1, north(50)).at(2, north(50)). // two fixes inside, then out: no entry
		at(3, north(500)).
		at(4, north(50)).at(5, north(50)).at(6, north(50)).      // three: entry dated at the first
		at(7, north(500)).at(8, north(50)).                      // out briefly: 1 s < 10 s, no exit
		at(9, north(500)).at(15, north(500)).at(19, north(500)). // out 10 s: exit dated at 9
		at(20, north(500))
	w.expect("entered S1 @4s", "exited S1 @9s")
}

func TestOutOfOrderFixesWithinTheWindowAreReordered(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Config{ReorderWindow: 3 * time.Second}, circle("S1", TypeLoading, 1, 100))
	w.at(0, north(500)).at(2, north(50)).at(1, north(500)).at(3, north(50)).at(6, north(500)).at(7, north(500))
	// In fix-time order: out 0, out 1, in 2, in 3, out 6, out 7. Fix 6 is
	// decided once fix 9 arrives (window 3 s).
	w.expect("entered S1 @2s")
	w.at(9, north(500))
	w.expect("entered S1 @2s", "exited S1 @6s")
}

func TestDuplicatesChangeNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, instant, circle("S1", TypeLoading, 1, 100))
	w.at(0, north(500)).at(1, north(50)).at(1, north(50)).at(1, north(500)).at(2, north(50)).at(0, north(500))
	w.expect("entered S1 @1s")
	if w.v.State.Duplicates != 3 || w.v.State.Late != 0 {
		t.Errorf("duplicates %d, late %d", w.v.State.Duplicates, w.v.State.Late)
	}
}

func TestLateFixesCorrectWithoutChangingState(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Config{ReorderWindow: 2 * time.Second}, circle("S1", TypeLoading, 1, 100))
	w.at(10, north(500)).at(11, north(500)).at(12, north(500)).at(15, north(500)).at(20, north(500))
	// Fixes up to 15 are decided. A fix from 11.5 s inside the station
	// arrives late: the vehicle was, as decided, outside then.
	w.at(11.5, north(20))
	w.expect("entered S1 @11.5s late", "exited S1 @11.5s late")
	// A late fix outside changes nothing and says nothing.
	w.at(13, north(500))
	w.expect("entered S1 @11.5s late", "exited S1 @11.5s late")
	if w.v.State.Late != 2 || len(w.v.State.Members) != 0 {
		t.Errorf("late %d, members %+v", w.v.State.Late, w.v.State.Members)
	}
}

func TestALateFixWithinAKnownVisitSaysNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, instant, circle("S1", TypeLoading, 1, 100))
	w.at(0, north(500)).at(10, north(50)).at(20, north(50)).at(30, north(500)).at(40, north(500))
	w.at(15, north(60)) // late, but within the visit 10-30
	w.expect("entered S1 @10s", "exited S1 @30s")
	if w.v.State.Late != 1 {
		t.Errorf("late = %d", w.v.State.Late)
	}
}

func TestInitialWhenFirstSeenInside(t *testing.T) {
	t.Parallel()
	w := newWorld(t, instant, circle("S1", TypeParking, 1, 100))
	w.at(0, north(10)).at(1, north(10))
	w.expect("entered S1 @0s initial")
	if w.out[0].InitialCause != CauseFirstSeen {
		t.Errorf("cause %q", w.out[0].InitialCause)
	}
}

func TestAStationAddedAroundAParkedVehicleIsNoArrival(t *testing.T) {
	t.Parallel()
	w := newWorld(t, instant)
	w.at(0, north(10)).at(10, north(10))
	if err := w.catalog.Upsert(circle("S1", TypeParking, 1, 100), t0.Add(15*time.Second)); err != nil {
		t.Fatal(err)
	}
	w.at(20, north(10))
	w.expect("entered S1 @20s initial")
	if w.out[0].InitialCause != CauseStationAdded {
		t.Errorf("cause %q", w.out[0].InitialCause)
	}
}

func TestStationChangesApplyFromTheirTime(t *testing.T) {
	t.Parallel()
	w := newWorld(t, instant, circle("S1", TypeLoading, 1, 100))
	w.at(0, north(50)).at(10, north(50))
	// Shrunk to 10 m at 15 s: the vehicle, still at 50 m, is now outside
	// (by more than the 30 m margin).
	if err := w.catalog.Upsert(circle("S1", TypeLoading, 2, 10), t0.Add(15*time.Second)); err != nil {
		t.Fatal(err)
	}
	w.at(20, north(50))
	// Grown to 200 m at 25 s: the vehicle is inside again, by the fence's doing.
	if err := w.catalog.Upsert(circle("S1", TypeLoading, 3, 200), t0.Add(25*time.Second)); err != nil {
		t.Fatal(err)
	}
	w.at(30, north(50))
	w.catalog.Delete("S1", t0.Add(35*time.Second))
	w.at(40, north(50))
	w.expect("entered S1 @0s initial", "exited S1 @20s station_changed",
		"entered S1 @30s initial,station_changed", "exited S1 @40s station_deleted")
	// A fix from before the change, decided after it, is judged by the
	// station as it stood then: the replay gives the same answer.
	if v := w.catalog.At("S1", t0.Add(12*time.Second)); v == nil || v.Station.Version != 1 {
		t.Errorf("version at 12 s = %+v", v)
	}
}

func TestSparseFixesThroughAStationAreInterpolated(t *testing.T) {
	t.Parallel()
	w := newWorld(t, instant, circle("S1", TypeWaypoint, 1, 100))
	// 1 km south to 1 km north in 20 s: the fence is crossed at 900 and
	// 1,100 m, at 9 s and 11 s.
	w.at(0, north(-1000)).at(20, north(1000))
	w.expect("entered S1 @9s interpolated", "exited S1 @11s interpolated")
	if got := geo.Haversine(w.out[0].Point, centre); got < 99.9 || got > 100.1 {
		t.Errorf("entry point %.2f m from the centre", got)
	}
	if w.out[0].VisitID != w.out[1].VisitID || w.out[1].Dwell != 2*time.Second {
		t.Errorf("visit %+v", w.out)
	}
}

func TestNoCrossingIsInferredOverASilence(t *testing.T) {
	t.Parallel()
	w := newWorld(t, instant, circle("S1", TypeWaypoint, 1, 100))
	w.at(0, north(-1000)).at(3600, north(1000))
	w.expect()
}

func TestASilentVehicleClosesNoVisitAndTheExitCarriesTheGap(t *testing.T) {
	t.Parallel()
	w := newWorld(t, instant, circle("S1", TypeLoading, 1, 100))
	w.at(0, north(500)).at(10, north(50))
	w.at(3610, north(500)) // silent for an hour, back outside
	w.expect("entered S1 @10s", "exited S1 @1h0m10s gap")
	if w.out[1].Gap != time.Hour {
		t.Errorf("gap %v", w.out[1].Gap)
	}
}

func TestOverlappingStationsAreIndependent(t *testing.T) {
	t.Parallel()
	big := circle("S1", TypeLoading, 1, 300)
	small := circle("S2", TypeHazard, 1, 100)
	w := newWorld(t, instant, big, small)
	w.at(0, north(500)).at(1, north(200)).at(2, north(50)).at(3, north(50)).at(4, north(200)).at(5, north(500))
	w.expect("entered S1 @1s", "entered S2 @2s", "exited S2 @4s", "exited S1 @5s")
	events, err := w.out[1].Events("/test")
	if err != nil || len(events) != 2 || events[1].Type != "tms.alert.raised.v1" {
		t.Errorf("entering a hazard station gives %+v, %v", events, err)
	}
}
