package trips_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/domain/trip"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/projections/projector"
	"github.com/tmsfleet/tms/projections/trips"
)

// expected runs fixes (one vehicle's, in fix-time order) through
// domain/trip, as the projection should have.
func expected(t *testing.T, r trip.Rules, fixes []position.Position) []segment {
	t.Helper()
	var v trip.Vehicle
	var segs []trip.Segment
	for _, f := range fixes {
		out, err := v.Add(r, trip.Fix{Time: f.FixTime, Point: geo.Point{Lat: f.Lat, Lng: f.Lng}, SpeedKmh: f.SpeedKmh})
		if err != nil {
			t.Fatal(err)
		}
		segs = append(segs, out...)
	}
	if open, ok := v.Open(); ok {
		segs = append(segs, open)
	}
	out := make([]segment, len(segs))
	for i, s := range segs {
		out[i] = segment{kind: string(s.Kind), id: trips.SegmentID(s.Kind, fixes[0].Plate, s.Start.Time),
			start: s.Start.Time.UTC(), end: s.End.Time.UTC(), open: s.Open, revision: 1, flags: s.Flags}
		if s.Kind == trip.KindTrip {
			out[i].distance = math.Round(s.Stats.DistanceM*10) / 10
		}
		if out[i].flags == nil {
			out[i].flags = []string{}
		}
	}
	return out
}

func interleave(days ...[]position.Position) []position.Position {
	all := slices.Concat(days...)
	slices.SortStableFunc(all, func(a, b position.Position) int { return a.FixTime.Compare(b.FixTime) })
	return all
}

// TestTripsAreMadeFromPositions: two vehicles' working days, interleaved
// as they would reach tms.positions, make the trips and stops domain/trip
// makes of each day, row for row.
func TestTripsAreMadeFromPositions(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a, b := working("沪A00001", 1), working("沪B00002", 2)
	h.produce(t, interleave(a, b)...)
	h.project(t, trips.DefaultSettings(), 100)
	for _, day := range [][]position.Position{a, b} {
		plate := day[0].Plate
		got, want := h.segments(t, plate), expected(t, trip.DefaultRules, day)
		if describe(got) != describe(want) || !slices.EqualFunc(got, want, func(x, y segment) bool { return x.id == y.id }) {
			t.Errorf("%s:\n%s\nwant\n%s", plate, describe(got), describe(want))
		}
		var kinds []string
		for _, s := range got {
			kinds = append(kinds, s.kind)
		}
		// The light is no stop; the lunch break is a stop across the silence.
		if k := slices.Compact(slices.Clone(kinds)); len(kinds) != 7 || len(k) != 7 {
			t.Errorf("%s: segments %v, want stop and trip in turn, three trips", plate, kinds)
		}
	}
}

// midTrip is the index of the fix in the middle of the second trip of a
// working day.
func midTrip(day []position.Position) int {
	start, end := t0.Add(55*time.Minute+50*time.Second), t0.Add(61*time.Minute+47*time.Second)
	mid := start.Add(end.Sub(start) / 2)
	return slices.IndexFunc(day, func(f position.Position) bool { return !f.FixTime.Before(mid) })
}

// rebuildDays is a history that exercises every path: three vehicles,
// fixes held back and delivered late (one of them beyond the horizon), a
// fix sent twice, and two late fixes far from a stop that turn it into
// stop, trip, stop.
func rebuildDays() (inOrder, late []position.Position) {
	a, b, c := working("沪A00001", 1), working("沪B00002", 2), working("沪C00003", 3)
	// b: a fix in the middle of its second trip, delivered an hour late.
	m := midTrip(b)
	late = append(late, b[m])
	b = slices.Delete(b, m, m+1)
	// c: two fixes 800 m off during its long stop, delivered late: they
	// make a trip there and back.
	for _, i := range []int{500, 501} {
		f := c[i]
		f.Lat += 800 / geo.MetresPerDegreeLat
		f.SpeedKmh = 40
		late = append(late, f)
	}
	c = slices.Delete(c, 500, 502)
	all := interleave(a, b, c)
	// A fix sent twice.
	all = slices.Insert(all, 900, all[850])
	return all, late
}

// produceRebuildDays produces rebuildDays: the late fixes after the
// in-order ones have gone an hour past them, and one more 5 hours late.
func produceRebuildDays(t *testing.T, h *harness) {
	t.Helper()
	inOrder, late := rebuildDays()
	cut := slices.IndexFunc(inOrder, func(f position.Position) bool { return f.FixTime.After(late[len(late)-1].FixTime.Add(time.Hour)) })
	h.produce(t, inOrder[:cut]...)
	h.produce(t, late...)
	beyond := inOrder[10] // hours older than the newest fix by now
	beyond.FixTime = beyond.FixTime.Add(time.Second)
	h.produce(t, beyond)
	h.produce(t, inOrder[cut:]...)
}

// TestARebuildFromTheTopicMakesTheSameRows: the same records projected in
// batches of 7, of 1 and of 50,000 (a live projector and two rebuilds)
// make the same rows in every table of the read model, revisions and
// kept fixes included.
func TestARebuildFromTheTopicMakesTheSameRows(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	produceRebuildDays(t, h)
	h.project(t, trips.DefaultSettings(), 7)
	live := h.tables(t)
	// b's second trip is revised; c's two late fixes far from its stop
	// make a trip there and back, splitting the stop.
	b, c := h.segments(t, "沪B00002"), h.segments(t, "沪C00003")
	if len(b) != 7 || b[3].kind != "trip" || b[3].revision != 2 {
		t.Errorf("b's second trip should be revised by its late fix:\n%s", describe(b))
	}
	if len(c) != 9 || c[5].kind != "trip" || c[5].revision != 3 || c[4].revision != 3 || c[6].revision != 3 {
		t.Errorf("the two late fixes far from a stop should make a trip there and back, and revise the stop:\n%s", describe(c))
	}
	for _, batch := range []int{1, 50_000} {
		h.reset(t)
		h.project(t, trips.DefaultSettings(), batch)
		sameTables(t, fmt.Sprintf("rebuilt in batches of %d", batch), live, h.tables(t))
	}
}

// TestALateFixBumpsTheRevisionNotTheCount: a fix held back from the
// middle of a trip and delivered an hour later makes that trip's revision
// 2, and changes it to what it would have been had the fix come in order;
// no trip or stop is added or lost, no other changes. A fix later than
// the horizon changes nothing.
func TestALateFixBumpsTheRevisionNotTheCount(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	day := working("沪L00001", 5)
	want := expected(t, trip.DefaultRules, day)
	m := midTrip(day)
	held := day[m]
	cut := slices.IndexFunc(day, func(f position.Position) bool { return f.FixTime.After(held.FixTime.Add(time.Hour)) })
	h.produce(t, slices.Delete(slices.Clone(day[:cut]), m, m+1)...)
	h.project(t, trips.DefaultSettings(), 50)
	before := h.segments(t, held.Plate)

	h.produce(t, held)
	h.project(t, trips.DefaultSettings(), 50)
	after := h.segments(t, held.Plate)
	if len(after) != len(before) {
		t.Fatalf("before the late fix:\n%s\nafter:\n%s", describe(before), describe(after))
	}
	revised := 0
	for i, a := range after {
		b := before[i]
		if a.kind == "trip" && !held.FixTime.Before(a.start) && !held.FixTime.After(a.end) {
			revised++
			if a.revision != 2 || b.revision != 1 || a.id != b.id {
				t.Errorf("the trip the late fix falls in: revision %d, then %d, id %s then %s; want 1, then 2, the same id",
					b.revision, a.revision, b.id, a.id)
			}
			continue
		}
		if a.String() != b.String() || a.id != b.id {
			t.Errorf("segment %d changed: %s, was %s", i, a, b)
		}
	}
	if revised != 1 {
		t.Errorf("the late fix falls in %d trips, want 1:\n%s", revised, describe(after))
	}

	h.produce(t, day[cut:]...)
	h.project(t, trips.DefaultSettings(), 50)
	got := h.segments(t, held.Plate)
	for i := range want {
		if want[i].start.Equal(after[revisedAt(after, held)].start) && want[i].kind == "trip" {
			want[i].revision = 2
		}
	}
	if describe(got) != describe(want) {
		t.Errorf("the day, a fix of it late:\n%s\nwant (as in order, the trip revised):\n%s", describe(got), describe(want))
	}

	tables := h.tables(t)
	beyond := day[5]
	beyond.FixTime = beyond.FixTime.Add(time.Second)
	h.produce(t, beyond)
	h.project(t, trips.DefaultSettings(), 50)
	sameTables(t, "after a fix beyond the horizon", tables, h.tables(t))
}

// revisedAt is the index of the trip of segs that holds fix f.
func revisedAt(segs []segment, f position.Position) int {
	return slices.IndexFunc(segs, func(s segment) bool {
		return s.kind == "trip" && !f.FixTime.Before(s.start) && !f.FixTime.After(s.end)
	})
}

// TestARedeliveredRecordChangesNothing: records produced again (a
// publisher's retry: fixes already applied, the newest among them) change
// no row, and neither does a batch applied again after its transaction
// failed at its last step.
func TestARedeliveredRecordChangesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	inOrder, late := rebuildDays()
	all := slices.Concat(inOrder, late)
	h.produce(t, all...)
	h.project(t, trips.DefaultSettings(), 100)
	tables := h.tables(t)

	h.produce(t, all[100], all[2000], all[len(inOrder)-1], all[len(all)-1])
	h.produce(t, late...)
	h.project(t, trips.DefaultSettings(), 3)
	sameTables(t, "after records produced again", tables, h.tables(t))

	// Every batch of a fresh projection fails once at its last step and
	// is applied again: the rows are those of a run without failures.
	h.reset(t)
	var calls atomic.Int64
	p, err := projector.New(projector.Config[trips.Fix]{
		Spec: trips.Spec, Kafka: h.kc, Pool: h.pool, Projection: trips.NewProjection(trips.DefaultSettings(), nil, nil),
		MaxBatch: 500, RetryBackoff: time.Millisecond,
		AfterApply: func(context.Context) error {
			if calls.Add(1)%2 == 1 {
				return errors.New("injected failure before the commit")
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := testenv.Go(t, "projector", p.Run)
	h.wait(t)
	stop()
	if calls.Load() < 4 {
		t.Fatalf("only %d transactions: the failures were not exercised", calls.Load())
	}
	sameTables(t, "with every batch failed once and applied again", tables, h.tables(t))
}
