package trip_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/track"
	"github.com/tmsfleet/tms/domain/trip"
)

var t0 = time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)

// offset moves p by north and east metres.
func offset(p geo.Point, north, east float64) geo.Point {
	return geo.Point{
		Lat: p.Lat + north/geo.MetresPerDegreeLat,
		Lng: p.Lng + east/(geo.MetresPerDegreeLat*math.Cos(p.Lat*math.Pi/180)),
	}
}

// day is a vehicle's day written fix by fix: where it is, when, and a fix
// every `every`.
type day struct {
	at    time.Time
	p     geo.Point
	every time.Duration
	rng   *rand.Rand
	fixes []trip.Fix
}

func newDay(every time.Duration) *day {
	return &day{at: t0, p: geo.Point{Lat: 31.2, Lng: 121.4}, every: every, rng: rand.New(rand.NewPCG(7, 9))}
}

func (d *day) fix(p geo.Point, kmh float64) {
	d.fixes = append(d.fixes, track.Fix{Time: d.at, Point: p, SpeedKmh: kmh})
}

// park stands for dur, each fix drifting a normal driftM metres.
func (d *day) park(dur time.Duration, driftM float64) {
	for end := d.at.Add(dur); d.at.Before(end); d.at = d.at.Add(d.every) {
		d.fix(offset(d.p, d.rng.NormFloat64()*driftM, d.rng.NormFloat64()*driftM), 0)
	}
}

// drive goes north and east metres in a straight line at kmh, a fix
// every d.every, the last one at the destination, standing; it returns
// the distance.
func (d *day) drive(north, east, kmh float64) float64 {
	to := offset(d.p, north, east)
	length := geo.Haversine(d.p, to)
	dur := time.Duration(length / (kmh / 3.6) * float64(time.Second))
	// It sets off at its last fix.
	from, start := d.p, d.at.Add(-d.every)
	for e := d.every; e < dur; e += d.every {
		f := float64(e) / float64(dur)
		d.at = start.Add(e)
		d.fix(geo.Point{Lat: from.Lat + f*(to.Lat-from.Lat), Lng: from.Lng + f*(to.Lng-from.Lng)}, kmh)
	}
	d.at = start.Add(dur).Truncate(time.Second)
	if !d.at.After(d.fixes[len(d.fixes)-1].Time) {
		d.at = d.fixes[len(d.fixes)-1].Time.Add(time.Second)
	}
	d.p = to
	d.fix(to, 0)
	d.at = d.at.Add(d.every)
	return length
}

// silence reports nothing for dur.
func (d *day) silence(dur time.Duration) { d.at = d.at.Add(dur) }

// run feeds fixes to a new vehicle and returns every segment: those it
// closed, then the open one.
func run(t *testing.T, r trip.Rules, fixes []trip.Fix) []trip.Segment {
	t.Helper()
	var v trip.Vehicle
	var out []trip.Segment
	for _, f := range fixes {
		segs, err := v.Add(r, f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, segs...)
	}
	if open, ok := v.Open(); ok {
		out = append(out, open)
	}
	return out
}

// describe writes segments as "stop 06:00:00-06:10:00 [partial]" and
// "trip 06:10:00-06:16:00 5000m", one per line, for comparisons.
func describe(segs []trip.Segment) string {
	var b strings.Builder
	for _, s := range segs {
		fmt.Fprintf(&b, "%s %s-%s", s.Kind, s.Start.Time.Format("15:04:05"), s.End.Time.Format("15:04:05"))
		if s.Kind == trip.KindTrip {
			fmt.Fprintf(&b, " %.0fm", s.Stats.DistanceM)
		}
		if s.Open {
			b.WriteString(" open")
		}
		if len(s.Flags) > 0 {
			fmt.Fprintf(&b, " %v", s.Flags)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func kinds(segs []trip.Segment) string {
	var k []string
	for _, s := range segs {
		k = append(k, string(s.Kind))
	}
	return strings.Join(k, ",")
}

// TestARouteWithStopsGivesItsTrips: parked, 5 km east, a long stop with
// a short halt at a light before it, 3 km north, parked. Two trips, each
// from the last fix parked to the first fix standing at the next place,
// their distances within 1 %, with the stops between them.
func TestARouteWithStopsGivesItsTrips(t *testing.T) {
	t.Parallel()
	d := newDay(10 * time.Second)
	d.park(10*time.Minute, 4)
	dep1 := d.fixes[len(d.fixes)-1].Time
	l1 := d.drive(0, 3000, 50)
	d.park(40*time.Second, 2) // a red light: shorter than parking
	l1 += d.drive(0, 2000, 50)
	arr1 := d.fixes[len(d.fixes)-1].Time
	d.park(20*time.Minute, 4)
	dep2 := d.fixes[len(d.fixes)-1].Time
	l2 := d.drive(3000, 0, 60)
	arr2 := d.fixes[len(d.fixes)-1].Time
	d.park(30*time.Minute, 4)

	segs := run(t, trip.DefaultRules, d.fixes)
	if got := kinds(segs); got != "stop,trip,stop,trip,stop" {
		t.Fatalf("segments %s:\n%s", got, describe(segs))
	}
	for i, w := range []struct {
		start, end time.Time
		length     float64
	}{{dep1, arr1, l1}, {dep2, arr2, l2}} {
		tr := segs[1+2*i]
		if !tr.Start.Time.Equal(w.start) || !tr.End.Time.Equal(w.end) {
			t.Errorf("trip %d from %s to %s, want %s to %s", i+1, tr.Start.Time, tr.End.Time, w.start, w.end)
		}
		if math.Abs(tr.Stats.DistanceM-w.length) > w.length/100 {
			t.Errorf("trip %d: %.1f m, the route is %.1f m", i+1, tr.Stats.DistanceM, w.length)
		}
		if tr.Open || len(tr.Flags) != 0 {
			t.Errorf("trip %d: open %v, flags %v", i+1, tr.Open, tr.Flags)
		}
	}
	first := segs[1]
	if first.Stats.MaxSpeedKmh != 50 || math.Abs(first.Stats.IdleS-40) > 10 ||
		math.Abs(first.Stats.MovingS+first.Stats.IdleS-first.Duration().Seconds()) > 0.001 {
		t.Errorf("trip 1: max %.1f km/h, idle %.0f s (the light), moving %.0f s, duration %s",
			first.Stats.MaxSpeedKmh, first.Stats.IdleS, first.Stats.MovingS, first.Duration())
	}
	if avg := first.AvgSpeedKmh(); math.Abs(avg-50) > 2 {
		t.Errorf("trip 1 average %.1f km/h over its moving time, want about 50", avg)
	}
	stop := segs[2]
	if !stop.Start.Time.Equal(arr1) || !stop.End.Time.Equal(dep2) || stop.Open {
		t.Errorf("the stop between: %s to %s, want %s to %s", stop.Start.Time, stop.End.Time, arr1, dep2)
	}
	if s := segs[0]; !s.Start.Time.Equal(t0) || !slices.Equal(s.Flags, []string{trip.FlagPartial}) {
		t.Errorf("the first stop %s %v: it begins at the first fix, flagged partial", s.Start.Time, s.Flags)
	}
	if s := segs[4]; !s.Open || !s.Start.Time.Equal(arr2) || !s.End.Time.Equal(d.fixes[len(d.fixes)-1].Time) {
		t.Errorf("the last stop is open from the arrival to the last fix: %+v", s)
	}
	fixes := 0
	for _, s := range segs {
		fixes += s.Stats.Fixes
	}
	if fixes != len(d.fixes)-1 {
		t.Errorf("the segments hold %d fixes after their starts, want every fix but the first (%d)", fixes, len(d.fixes)-1)
	}
}

// TestGPSDriftWhileParkedMakesNoTrip: eight hours parked, the receiver
// wandering metres, now and then tens of metres with a speed, and a few
// times a fix thrown hundreds of metres off (too slow for the jump filter
// at a fix every 10 s): one stop, no trip.
func TestGPSDriftWhileParkedMakesNoTrip(t *testing.T) {
	t.Parallel()
	d := newDay(10 * time.Second)
	rng := rand.New(rand.NewPCG(3, 4))
	for range 8 * 360 {
		p, kmh := offset(d.p, rng.NormFloat64()*5, rng.NormFloat64()*5), 0.0
		switch r := rng.Float64(); {
		case r < 0.002:
			p, kmh = offset(d.p, 300+rng.Float64()*200, rng.NormFloat64()*100), 25 // multipath, one fix
		case r < 0.05:
			p, kmh = offset(d.p, rng.NormFloat64()*60, rng.NormFloat64()*60), 4+rng.Float64()*6
		}
		d.fix(p, kmh)
		d.at = d.at.Add(d.every)
	}
	segs := run(t, trip.DefaultRules, d.fixes)
	if kinds(segs) != "stop" || !segs[0].Open || !segs[0].Start.Time.Equal(t0) {
		t.Fatalf("parked with drift:\n%s", describe(segs))
	}
}

// TestAnHourOfSilenceEndsATrip: a trip whose receiver falls silent for
// more than an hour ends at its last fix before the silence; the vehicle
// starts afresh where it reappears. A parked vehicle that is silent as
// long and reappears where it stood has one stop across the silence.
func TestAnHourOfSilenceEndsATrip(t *testing.T) {
	t.Parallel()
	t.Run("driving", func(t *testing.T) {
		t.Parallel()
		d := newDay(10 * time.Second)
		d.park(10*time.Minute, 3)
		d.drive(0, 4000, 60)
		d.fixes = d.fixes[:len(d.fixes)-1] // silent before it arrives
		lastBefore := d.fixes[len(d.fixes)-1].Time
		d.silence(61 * time.Minute)
		d.p = offset(d.p, 5000, 0)
		after := d.at
		d.fix(d.p, 60)
		d.at = d.at.Add(d.every)
		d.drive(0, 3000, 60)
		d.park(10*time.Minute, 3)
		segs := run(t, trip.DefaultRules, d.fixes)
		if kinds(segs) != "stop,trip,trip,stop" {
			t.Fatalf("segments:\n%s", describe(segs))
		}
		if tr := segs[1]; !tr.End.Time.Equal(lastBefore) || !slices.Equal(tr.Flags, []string{trip.FlagGap}) {
			t.Errorf("the trip before the silence ends %s %v, want at its last fix %s, flagged gap", tr.End.Time, tr.Flags, lastBefore)
		}
		if tr := segs[2]; !tr.Start.Time.Equal(after) || !slices.Equal(tr.Flags, []string{trip.FlagPartial}) ||
			math.Abs(tr.Stats.DistanceM-3000) > 30 {
			t.Errorf("the trip after it %s %v %.0f m, want from the reappearance %s, partial, 3,000 m", tr.Start.Time, tr.Flags, tr.Stats.DistanceM, after)
		}
		if tr := segs[1]; tr.Stats.MovingS+tr.Stats.IdleS > tr.Duration().Seconds()+0.001 {
			t.Errorf("the silence is counted as moving or idle time: %+v", tr.Stats)
		}
	})
	t.Run("parked", func(t *testing.T) {
		t.Parallel()
		d := newDay(10 * time.Second)
		d.park(10*time.Minute, 3)
		d.drive(0, 4000, 60)
		d.park(5*time.Minute, 3)
		d.silence(3 * time.Hour)
		d.park(10*time.Minute, 3)
		d.drive(0, 2000, 60)
		d.park(10*time.Minute, 3)
		segs := run(t, trip.DefaultRules, d.fixes)
		if kinds(segs) != "stop,trip,stop,trip,stop" {
			t.Fatalf("segments:\n%s", describe(segs))
		}
		if s := segs[2]; !slices.Equal(s.Flags, []string{trip.FlagGap}) || s.Duration() < 3*time.Hour {
			t.Errorf("the stop across the silence: %s, flags %v", s.Duration(), s.Flags)
		}
	})
	t.Run("shorter silences are part of the trip", func(t *testing.T) {
		t.Parallel()
		d := newDay(10 * time.Second)
		d.park(10*time.Minute, 3)
		d.drive(0, 2000, 60)
		d.fixes = d.fixes[:len(d.fixes)-1]
		d.silence(20 * time.Minute) // a tunnel, or a dead zone
		d.p = offset(d.p, 0, 15000)
		d.drive(0, 2000, 60)
		d.park(10*time.Minute, 3)
		segs := run(t, trip.DefaultRules, d.fixes)
		if kinds(segs) != "stop,trip,stop" || math.Abs(segs[1].Stats.DistanceM-19000) > 190 {
			t.Fatalf("segments:\n%s", describe(segs))
		}
	})
}

// TestSparseFixesStillMakeTrips: a fix every five minutes.
func TestSparseFixesStillMakeTrips(t *testing.T) {
	t.Parallel()
	d := newDay(5 * time.Minute)
	d.park(30*time.Minute, 5)
	d.drive(0, 30000, 60)
	d.park(30*time.Minute, 5)
	segs := run(t, trip.DefaultRules, d.fixes)
	if kinds(segs) != "stop,trip,stop" || math.Abs(segs[1].Stats.DistanceM-30000) > 300 {
		t.Fatalf("segments:\n%s", describe(segs))
	}
}

// fullDay is a day with noise of every kind, for the tests that compare
// ways of feeding it.
func fullDay() []trip.Fix {
	d := newDay(5 * time.Second)
	d.park(15*time.Minute, 5)
	d.drive(0, 6000, 45)
	d.park(30*time.Second, 2)
	d.drive(2000, 2000, 70)
	d.park(25*time.Minute, 6)
	d.drive(-4000, 0, 50)
	d.park(2*time.Minute, 3) // a halt shorter than parking
	d.drive(0, -3000, 40)
	d.park(10*time.Minute, 6)
	d.silence(90 * time.Minute)
	d.park(5*time.Minute, 6)
	d.drive(1000, 1000, 30)
	d.park(5*time.Minute, 6)
	// A jump, and a fix sent twice.
	d.fixes[400].Point = offset(d.fixes[400].Point, 9000, 0)
	d.fixes = slices.Insert(d.fixes, 600, d.fixes[599])
	d.fixes[600].Time = d.fixes[600].Time.Add(time.Second)
	return d.fixes
}

// TestAStoredStateGoesOnAsTheOriginal: stored and restored after every
// fix (as the projection does between batches), a vehicle makes exactly
// the segments an uninterrupted one does.
func TestAStoredStateGoesOnAsTheOriginal(t *testing.T) {
	t.Parallel()
	fixes := fullDay()
	want := run(t, trip.DefaultRules, fixes)
	var got []trip.Segment
	var stored []byte
	for _, f := range fixes {
		var v trip.Vehicle
		if stored != nil {
			if err := v.UnmarshalBinary(stored); err != nil {
				t.Fatal(err)
			}
		}
		segs, err := v.Add(trip.DefaultRules, f)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, segs...)
		if stored, err = v.MarshalBinary(); err != nil {
			t.Fatal(err)
		}
	}
	var v trip.Vehicle
	if err := v.UnmarshalBinary(stored); err != nil {
		t.Fatal(err)
	}
	if open, ok := v.Open(); ok {
		got = append(got, open)
	}
	if a, b := mustJSON(t, want), mustJSON(t, got); a != b {
		t.Errorf("restored after every fix:\n%s\nuninterrupted:\n%s", describe(got), describe(want))
	}
	// The 30 s and 2 min halts are shorter than parking; the silence
	// falls in a stop.
	if kinds(want) != "stop,trip,stop,trip,stop,trip,stop" {
		t.Errorf("the day:\n%s", describe(want))
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestALateFixIsAppliedFromASnapshot: a fix held back and delivered
// after later ones is applied by going back to the state stored before
// its time (snapshots every 15 minutes of fix time, as the projection
// takes them) and reading the fixes from there again, the late one in its
// place. The segments from OpenSince on are made again, and with those
// before it they are exactly the segments of the fixes in order.
func TestALateFixIsAppliedFromASnapshot(t *testing.T) {
	t.Parallel()
	fixes := fullDay()
	want := run(t, trip.DefaultRules, fixes)
	for _, lateAt := range []int{0, 3, 250, 401, 599, 800, 1000, len(fixes) - 2} {
		t.Run(fmt.Sprint(lateAt), func(t *testing.T) {
			t.Parallel()
			late := fixes[lateAt]
			inOrder := slices.Delete(slices.Clone(fixes), lateAt, lateAt+1)
			type snapshot struct {
				at    time.Time
				state []byte
			}
			var snaps []snapshot
			var v trip.Vehicle
			var got []trip.Segment
			for _, f := range inOrder {
				if len(snaps) == 0 || f.Time.Sub(snaps[len(snaps)-1].at) >= 15*time.Minute {
					b, _ := v.MarshalBinary()
					snaps = append(snaps, snapshot{f.Time, b})
				}
				segs, err := v.Add(trip.DefaultRules, f)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, segs...)
			}
			if _, err := v.Add(trip.DefaultRules, late); !errors.Is(err, trip.ErrNotInOrder) {
				t.Fatalf("a late fix taken in order: %v", err)
			}
			// Back to the last snapshot before the late fix (the first, the
			// state before any fix, when there is none).
			i := len(snaps) - 1
			for i > 0 && !snaps[i].at.Before(late.Time) {
				i--
			}
			var again trip.Vehicle
			if err := again.UnmarshalBinary(snaps[i].state); err != nil {
				t.Fatal(err)
			}
			since := again.OpenSince()
			kept := slices.DeleteFunc(slices.Clone(got), func(s trip.Segment) bool { return !s.Start.Time.Before(since) })
			replay := slices.Concat([]trip.Fix{late}, inOrder)
			slices.SortFunc(replay, func(a, b trip.Fix) int { return a.Time.Compare(b.Time) })
			for _, f := range replay {
				if f.Time.Before(snaps[i].at) && f != late {
					continue
				}
				segs, err := again.Add(trip.DefaultRules, f)
				if err != nil {
					t.Fatal(err)
				}
				kept = append(kept, segs...)
			}
			if open, ok := again.Open(); ok {
				kept = append(kept, open)
			}
			if a, b := mustJSON(t, kept), mustJSON(t, want); a != b {
				t.Errorf("after the late fix:\n%s\nin order:\n%s", describe(kept), describe(want))
			}
		})
	}
}

func TestRulesAreValidated(t *testing.T) {
	t.Parallel()
	if err := trip.DefaultRules.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := trip.Rules{RadiusM: -1, Parking: 0, Gap: -time.Second, MoveFixes: 11}
	err := bad.Validate()
	for _, want := range []string{"radius", "parking", "gap", "move fixes", "noise filter"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: want it to name the %s", err, want)
		}
	}
}

// TestAStoredStateIsCheckedWhenRestored: bytes cut short, of another
// version or with bytes left over are refused, never misread.
func TestAStoredStateIsCheckedWhenRestored(t *testing.T) {
	t.Parallel()
	var v trip.Vehicle
	for _, f := range fullDay()[:700] {
		if _, err := v.Add(trip.DefaultRules, f); err != nil {
			t.Fatal(err)
		}
	}
	b, err := v.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string][]byte{
		"empty":           nil,
		"cut short":       b[:len(b)-3],
		"another version": append([]byte{99}, b[1:]...),
		"bytes left over": append(slices.Clone(b), 0),
	} {
		var w trip.Vehicle
		if err := w.UnmarshalBinary(bad); !errors.Is(err, trip.ErrBadState) {
			t.Errorf("%s: %v", name, err)
		}
	}
	var w trip.Vehicle
	if err := w.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if again, _ := w.MarshalBinary(); !slices.Equal(again, b) {
		t.Error("stored again, the state is not the same bytes")
	}
}
