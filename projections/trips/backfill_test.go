package trips_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/projections/trips"
)

// produceFrom is produce with the events' source: position.BackfillSource
// for what `tms backfill g7` appends.
func (h *harness) produceFrom(t *testing.T, source string, fixes []position.Position) {
	t.Helper()
	cl, err := h.kc.NewClient("test-producer")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var records []*kgo.Record
	for _, f := range fixes {
		e, err := f.Event(source)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := json.Marshal(e)
		records = append(records, &kgo.Record{Topic: h.kc.Topic(event.TopicPositions), Key: []byte(f.Plate), Value: v})
	}
	if err := cl.ProduceSync(t.Context(), records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	h.n += len(records)
}

// gapDay is a day of plate in three parts: the morning and the
// afternoon the live feed brought, and between them what it missed (more
// than the trip gap of silence for the live state), which a backfill
// brings later, more than the late horizon after.
func gapDay(plate string) (morning, missed, afternoon []position.Position) {
	d := newDay(plate, 7, 10*time.Second)
	d.park(20*time.Minute, 5)
	d.drive(0, 6000, 50)
	d.park(30*time.Minute, 5)
	a := len(d.fixes)
	d.drive(3000, 1000, 60)
	d.park(25*time.Minute, 5)
	d.drive(-2000, 4000, 45)
	d.park(50*time.Minute, 5)
	b := len(d.fixes)
	d.drive(-1000, -11000, 70)
	d.park(3*time.Hour, 5)
	return d.fixes[:a], d.fixes[a:b], d.fixes[b:]
}

// TestBackfilledGapMakesItsTrips: the trips read model takes a
// backfilled gap, later than the late horizon, into the silence the live
// fixes left: the trips and stops wholly inside it are those the whole
// day in order makes (same ids, times, distances), nothing overlaps, a
// rebuild from the topic makes the same rows, and the same fixes arriving
// late from the live feed change nothing (the late-fix policy).
func TestBackfilledGapMakesItsTrips(t *testing.T) {
	t.Parallel()
	s := trips.DefaultSettings()
	const plate, control = "沪B00001", "沪B00002"

	// What the whole day in order makes.
	ref := newHarness(t)
	m, g, a := gapDay(plate)
	ref.produceFrom(t, "/test/ingest", append(append(append([]position.Position{}, m...), g...), a...))
	ref.project(t, s, 500)
	want := ref.segments(t, plate)

	h := newHarness(t)
	cm, cg, ca := gapDay(control)
	h.produceFrom(t, "/test/ingest", append(append([]position.Position{}, m...), a...))
	h.produceFrom(t, "/test/ingest", append(append([]position.Position{}, cm...), ca...))
	h.project(t, s, 500)
	before := h.segments(t, plate)
	h.produceFrom(t, position.BackfillSource, g)
	h.produceFrom(t, "/test/ingest", cg)
	h.project(t, s, 300)
	got := h.segments(t, plate)

	gapFrom, gapTo := g[0].FixTime, g[len(g)-1].FixTime
	inside := func(x segment) bool { return x.start.After(gapFrom) && x.end.Before(gapTo) }
	byID := map[string]segment{}
	for _, x := range got {
		byID[x.id] = x
	}
	matched := 0
	for _, w := range want {
		if !inside(w) {
			continue
		}
		matched++
		x, ok := byID[w.id]
		if !ok || x.String() != w.String() {
			t.Errorf("the gap's %s: got %v, want it as the day in order makes it", w, x)
		}
	}
	if matched < 2 {
		t.Fatalf("the day in order has %d segments inside the gap; the test needs a trip and a stop:\n%s", matched, describe(want))
	}
	if len(got) <= len(before) {
		t.Errorf("the backfill added no segment: before\n%safter\n%s", describe(before), describe(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i].start.Before(got[i-1].end) {
			t.Errorf("segments overlap: %s and %s", got[i-1], got[i])
		}
	}
	for _, x := range h.segments(t, control) {
		if x.start.After(cg[0].FixTime) && x.start.Before(cg[len(cg)-1].FixTime) {
			t.Errorf("late live fixes beyond the horizon made %s", x)
		}
	}

	t.Run("a rebuild makes the same rows", func(t *testing.T) {
		tables := h.tables(t)
		h.reset(t)
		h.project(t, s, 700)
		sameTables(t, "rebuilt", tables, h.tables(t))
	})
}
