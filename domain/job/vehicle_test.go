package job

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/track"
)

var t0 = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

func sec(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

// Stations on a line east of (31, 121): L (loading) at 0 km, U1 at 10 km,
// U2 at 20 km.
var stations = map[string]Station{
	"L":  {ID: "L", Name: "Quarry", Type: "loading", Point: Point{Lat: 31, Lng: 121}},
	"U1": {ID: "U1", Name: "Site 1", Type: "unloading", Point: pointOf(east(10000))},
	"U2": {ID: "U2", Name: "Site 2", Type: "unloading", Point: pointOf(east(20000))},
	"X":  {ID: "X", Name: "Elsewhere", Type: "parking", Point: pointOf(east(5000))},
}

func east(m float64) geo.Point {
	return geo.Point{Lat: 31, Lng: 121 + m/(geo.MetresPerDegreeLat*math.Cos(31*math.Pi/180))}
}

// world feeds one vehicle's inputs to the rules and keeps what comes out,
// with a watermark that follows the fixes, as the processor's does.
type world struct {
	t       *testing.T
	rules   Rules
	v       *Vehicle
	wm      time.Time
	seq     int64
	out     []event.Envelope
	entries map[string]int
}

func newWorld(t *testing.T) *world {
	return &world{t: t, rules: DefaultRules, v: &Vehicle{Plate: "沪A00001"}, entries: map[string]int{}}
}

// until moves the watermark to s seconds, as fixes of other vehicles
// would.
func (w *world) until(s float64) *world {
	if a := sec(s); a.After(w.wm) {
		w.wm = a
	}
	w.out = append(w.out, w.rules.Advance(w.v, w.wm)...)
	return w
}

func (w *world) create(at float64, ref string, stops ...string) *world {
	w.t.Helper()
	req := CreateRequest{Vehicle: w.v.Plate, ExternalRef: ref, Cargo: Cargo{WeightKg: 20000}, NewVehicle: true}
	for _, s := range stops {
		id, kind, _ := strings.Cut(s, ":")
		req.Stops = append(req.Stops, StopRequest{StationID: id, Kind: kind})
	}
	c, err := NewCreate(req, Facts{Stations: stations}, sec(at), "job-"+ref)
	if err != nil {
		w.t.Fatal(err)
	}
	w.rules.Create(w.v, c)
	w.out = append(w.out, w.rules.Advance(w.v, w.wm)...)
	return w
}

func (w *world) cancel(at float64, ref string) *world {
	c, err := NewCancel(IDFor(ref), w.v.Plate, "customer called", sec(at))
	if err != nil {
		w.t.Fatal(err)
	}
	w.rules.Cancel(w.v, c)
	w.out = append(w.out, w.rules.Advance(w.v, w.wm)...)
	return w
}

// visit feeds an entry or exit; an exit is of the station's last entry.
func (w *world) visit(exit bool, station string, at float64, flags ...string) *world {
	if !exit {
		w.entries[station]++
	}
	vis := Visit{Exit: exit, StationID: station, VisitID: fmt.Sprintf("visit-%s-%d", station, w.entries[station]),
		At: sec(at), Point: stations[station].Point, Flags: flags}
	w.rules.Visit(w.v, vis)
	w.out = append(w.out, w.rules.Advance(w.v, w.wm)...)
	return w
}

func (w *world) enter(station string, at float64, flags ...string) *world {
	return w.visit(false, station, at, flags...)
}

func (w *world) exit(station string, at float64, flags ...string) *world {
	return w.visit(true, station, at, flags...)
}

// drive reports a fix every second from a to b seconds, moving from x0 to
// x1 metres east, arriving as it is taken.
func (w *world) drive(a, b, x0, x1 float64) *world {
	for s := a; s <= b; s++ {
		x := x0 + (x1-x0)*(s-a)/math.Max(b-a, 1)
		w.fix(s, x, s)
	}
	return w
}

// fix reports one fix taken at s, x metres east, arriving at watermark
// arrived.
func (w *world) fix(s, x, arrived float64) *world {
	w.seq++
	if a := sec(arrived); a.After(w.wm) {
		w.wm = a
	}
	speed := 72.0
	w.out = append(w.out, w.rules.Fix(w.v, track.Fix{Time: sec(s), Point: east(x), SpeedKmh: speed}, w.wm, w.seq)...)
	w.out = append(w.out, w.rules.Advance(w.v, w.wm)...)
	return w
}

// expect checks the events so far as "type-suffix [detail]".
func (w *world) expect(want ...string) {
	w.t.Helper()
	var got []string
	for _, e := range w.out {
		got = append(got, describe(w.t, e))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		w.t.Errorf("events:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func describe(t *testing.T, e event.Envelope) string {
	t.Helper()
	name := strings.TrimSuffix(strings.TrimPrefix(e.Type, "tms.job."), ".v1")
	at := e.Time.Sub(t0).Seconds()
	switch e.Type {
	case event.TypeJobStopArrived, event.TypeJobStopDeparted:
		var s StopEvent
		if err := json.Unmarshal(e.Data, &s); err != nil {
			t.Fatal(err)
		}
		d := fmt.Sprintf("%s %d %s @%g", name, s.Index, s.StationID, at)
		if len(s.Flags) > 0 {
			d += " " + strings.Join(s.Flags, ",")
		}
		return d
	case event.TypeJobCompleted, event.TypeJobAmended:
		var c Completion
		if err := json.Unmarshal(e.Data, &c); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%s r%d @%g", name, c.Revision, at)
	case event.TypeJobCreated:
		var c Created
		if err := json.Unmarshal(e.Data, &c); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%s %s", name, c.Status)
	}
	return fmt.Sprintf("%s @%g", name, at)
}

func (w *world) completions() []Completion {
	var out []Completion
	for _, e := range w.out {
		if e.Type == event.TypeJobCompleted || e.Type == event.TypeJobAmended {
			var c Completion
			if err := json.Unmarshal(e.Data, &c); err != nil {
				w.t.Fatal(err)
			}
			out = append(out, c)
		}
	}
	return out
}

func TestAJobFromLoadingThroughAQualityCheckToTwoDrops(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.drive(0, 10, -200, -200) // parked 200 m west of the quarry
	w.create(10, "ORD-1", "L:loading", "L:quality", "U1:unloading", "U2:unloading")
	w.drive(11, 20, -200, 0).enter("L", 20)
	w.drive(21, 600, 0, 0).exit("L", 600) // loading and the check: one visit
	w.drive(601, 1100, 0, 10000).enter("U1", 1100)
	w.drive(1101, 1400, 10000, 10000).exit("U1", 1400)
	w.drive(1401, 1900, 10000, 20000).enter("U2", 1900)
	w.drive(1901, 2000, 20000, 20000).exit("U2", 2000)
	w.drive(2001, 2040, 20000, 20000) // settles 33 s after the last departure
	w.expect("created active", "started @10",
		"stop_arrived 0 L @20", "stop_arrived 1 L @20", "stop_departed 0 L @600", "stop_departed 1 L @600",
		"stop_arrived 2 U1 @1100", "stop_departed 2 U1 @1400", "stop_arrived 3 U2 @1900", "stop_departed 3 U2 @2000",
		"completed r1 @2000")
	c := w.completions()[0]
	if math.Abs(c.DistanceM.Empty-200) > 2 || math.Abs(c.DistanceM.Loaded-20000) > 200 || c.DistanceM.Total != round1(c.DistanceM.Empty+c.DistanceM.Loaded) {
		t.Errorf("distances %+v, want about 200 empty and 20,000 loaded", c.DistanceM)
	}
	if len(c.Legs) != 2 || math.Abs(c.Legs[0].StraightLineM-10000) > 1 || math.Abs(c.Legs[1].DrivenM-20000) > 200 {
		t.Errorf("legs %+v", c.Legs)
	}
	if c.DurationS != 1990 || *c.Stops[2].DwellS != 300 || c.Cargo.WeightKg != 20000 || c.ExternalRef != "ORD-1" {
		t.Errorf("completion %+v", c)
	}
	if w.v.HasJobs() != true || w.v.Jobs[0].Status != StatusCompleted {
		t.Error("a completed job is kept until its amend horizon")
	}
}

func TestDropsAreServedInTheOrderTheVehicleReachesThem(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.create(0, "ORD-2", "L:loading", "U1:unloading", "U2:unloading")
	// U2 before loading: not a drop. Then loading, U2, U1.
	w.enter("U2", 10).exit("U2", 20).enter("X", 30).exit("X", 40)
	w.enter("L", 50).exit("L", 60).enter("U2", 70).exit("U2", 80).enter("U1", 90).exit("U1", 100)
	w.drive(101, 150, 0, 0)
	w.expect("created active", "started @0", "stop_arrived 0 L @50", "stop_departed 0 L @60",
		"stop_arrived 2 U2 @70", "stop_departed 2 U2 @80", "stop_arrived 1 U1 @90", "stop_departed 1 U1 @100",
		"completed r1 @100")
}

func TestVisitsThatDoNotServeAStop(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.create(0, "ORD-3", "L:loading", "U1:unloading")
	w.enter("L", 10, "interpolated").exit("L", 11, "interpolated") // drove through
	w.enter("L", 20, "late").exit("L", 20, "late")                 // a correction
	w.enter("L", 30, "gap").exit("L", 40, "forgotten").until(50)
	w.expect("created active", "started @0", "stop_arrived 0 L @30 gap", "stop_departed 0 L @40 gap,forgotten")
}

// TestAVisitBeforeTheJobServesItFromTheStart: the vehicle waits at the
// quarry when its job is created; whether the entry is processed before
// or after the command, the job gets the same events.
func TestAVisitBeforeTheJobServesItFromTheStart(t *testing.T) {
	t.Parallel()
	for _, commandFirst := range []bool{true, false} {
		w := newWorld(t)
		if commandFirst {
			w.create(5, "ORD-4", "L:loading", "U1:unloading").enter("L", 0, "initial")
		} else {
			w.enter("L", 0, "initial").create(5, "ORD-4", "L:loading", "U1:unloading")
		}
		w.exit("L", 50).until(60)
		w.expect("created active", "started @5", "stop_arrived 0 L @5 initial,inside_at_start", "stop_departed 0 L @50 initial,inside_at_start")
	}
}

func TestASecondJobWaitsForTheFirstToSettle(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.create(0, "A", "L:loading", "U1:unloading").create(1, "B", "L:loading", "U2:unloading")
	w.enter("L", 10).exit("L", 20).enter("U1", 30).exit("U1", 40)
	// B's loading visit comes before A has settled: it is remembered.
	w.enter("L", 50).exit("L", 60)
	w.drive(61, 90, 0, 0)
	w.expect("created active", "started @0", "created queued",
		"stop_arrived 0 L @10", "stop_departed 0 L @20", "stop_arrived 1 U1 @30", "stop_departed 1 U1 @40",
		"completed r1 @40", "started @40", "stop_arrived 0 L @50", "stop_departed 0 L @60")
}

func TestCancellation(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.create(0, "A", "L:loading", "U1:unloading").create(1, "B", "L:loading", "U1:unloading")
	w.enter("L", 10).exit("L", 20).enter("U1", 30)
	// Dated before the arrival at U1, which then serves A no more (nor B,
	// which starts with a loading).
	w.cancel(25, "A").until(40)
	w.expect("created active", "started @0", "created queued",
		"stop_arrived 0 L @10", "stop_departed 0 L @20", "cancelled @25", "started @25")
	// Cancelled after its last departure, a job completes anyway.
	w.exit("U1", 40).enter("L", 50).exit("L", 60).enter("U1", 70).exit("U1", 80).cancel(81, "B")
	w.drive(82, 130, 0, 0)
	got := describe(t, w.out[len(w.out)-1])
	if got != "completed r1 @80" {
		t.Errorf("last event %s, want B completed", got)
	}
}

// TestLateFixesAmendASettledCompletion: fixes of the job's window that
// arrive after the completion settled, together, make one revision 2;
// the revisions are the same whether the last exit came before the late
// fixes or after.
func TestLateFixesAmendASettledCompletion(t *testing.T) {
	t.Parallel()
	run := func(exitLate bool) []Completion {
		w := newWorld(t)
		w.create(0, "ORD-5", "L:loading", "U1:unloading")
		w.enter("L", 0).exit("L", 10)
		for s := 11.0; s <= 500; s++ {
			if s >= 200 && s < 300 {
				continue // these come late
			}
			w.fix(s, (s-10)*20, s)
		}
		w.enter("U1", 500)
		if !exitLate {
			w.exit("U1", 510)
		}
		w.drive(511, 600, 9800, 9800)
		for s := 200.0; s < 300; s += 10 {
			w.fix(s, (s-10)*20+30, 600) // 30 m off the straight line
		}
		if exitLate {
			w.exit("U1", 510)
		}
		w.until(700) // the late fixes' decision delay has passed
		return w.completions()
	}
	onTime, late := run(false), run(true)
	if len(onTime) != 2 || onTime[0].Revision != 1 || onTime[1].Revision != 2 || onTime[1].AmendedBecause != AmendedLateFixes {
		t.Fatalf("revisions %v, want the completion and one amendment for the ten late fixes", onTime)
	}
	a, _ := json.Marshal(onTime)
	b, _ := json.Marshal(late)
	if string(a) != string(b) {
		t.Errorf("the revisions depend on when the exit came:\n%s\n%s", a, b)
	}
	if onTime[len(onTime)-1].Noise.FixesUsed <= onTime[0].Noise.FixesUsed {
		t.Error("the amendment does not count the late fixes")
	}
}
