package timeline_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/domain/job"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/pipeline/ingest"
	"github.com/tmsfleet/tms/projections/jobs"
	"github.com/tmsfleet/tms/projections/timeline"
	"github.com/tmsfleet/tms/projections/vehicles"
	"github.com/tmsfleet/tms/projections/visits"
)

var t0 = time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func ptr[T any](v T) *T { return &v }

// fakeSource is the read models as tables in memory, queried as the
// stores query them (filters, order, cursor, limit). It counts the pages
// each stream was asked for.
type fakeSource struct {
	fixes   []vehicles.Fix
	visits  []visits.Visit
	jobEvs  []jobs.TimelineEvent
	pages   map[string]int
	failing error
}

func (f *fakeSource) page(name string) error {
	if f.pages == nil {
		f.pages = map[string]int{}
	}
	f.pages[name]++
	return f.failing
}

func (f *fakeSource) Track(_ context.Context, q vehicles.TrackQuery) ([]vehicles.Fix, error) {
	if err := f.page("fixes"); err != nil {
		return nil, err
	}
	var out []vehicles.Fix
	for _, x := range f.fixes {
		if x.FixTime.Before(q.From) || !x.FixTime.Before(q.To) || (q.After != nil && !x.FixTime.After(*q.After)) {
			continue
		}
		if len(out) == q.Limit {
			break
		}
		out = append(out, x)
	}
	return out, nil
}

func (f *fakeSource) Around(_ context.Context, _ string, from, to time.Time) (before, after *vehicles.Fix, err error) {
	for i := range f.fixes {
		if f.fixes[i].FixTime.Before(from) {
			before = &f.fixes[i]
		}
		if f.fixes[i].FixTime.After(to) && after == nil {
			after = &f.fixes[i]
		}
	}
	return before, after, nil
}

func (f *fakeSource) visitsBy(name string, q visits.TimelineQuery, when func(*visits.Visit) *time.Time) ([]visits.Visit, error) {
	if err := f.page(name); err != nil {
		return nil, err
	}
	var all []visits.Visit
	for _, v := range f.visits {
		t := when(&v)
		if t == nil || t.Before(q.From) || !t.Before(q.To) {
			continue
		}
		if q.After != nil && (t.Before(q.After.At) || (t.Equal(q.After.At) && v.VisitID <= q.After.VisitID)) {
			continue
		}
		all = append(all, v)
	}
	slices.SortFunc(all, func(a, b visits.Visit) int {
		return cmp.Or(when(&a).Compare(*when(&b)), strings.Compare(a.VisitID, b.VisitID))
	})
	return all[:min(len(all), q.Limit)], nil
}

func (f *fakeSource) Entries(_ context.Context, q visits.TimelineQuery) ([]visits.Visit, error) {
	return f.visitsBy("entries", q, func(v *visits.Visit) *time.Time { return &v.EnteredAt })
}

func (f *fakeSource) Exits(_ context.Context, q visits.TimelineQuery) ([]visits.Visit, error) {
	return f.visitsBy("exits", q, func(v *visits.Visit) *time.Time { return v.ExitedAt })
}

func (f *fakeSource) JobEvents(_ context.Context, q jobs.TimelineQuery) ([]jobs.TimelineEvent, error) {
	if err := f.page("jobs"); err != nil {
		return nil, err
	}
	key := func(e jobs.TimelineEvent) jobs.TimelineCursor {
		return jobs.TimelineCursor{At: e.At, Kind: e.Kind, JobID: e.JobID, Stop: e.Stop}
	}
	less := func(a, b jobs.TimelineCursor) int {
		return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.Kind, b.Kind), strings.Compare(a.JobID, b.JobID), cmp.Compare(a.Stop, b.Stop))
	}
	var all []jobs.TimelineEvent
	for _, e := range f.jobEvs {
		if e.At.Before(q.From) || !e.At.Before(q.To) || (q.After != nil && less(key(e), *q.After) <= 0) {
			continue
		}
		all = append(all, e)
	}
	slices.SortFunc(all, func(a, b jobs.TimelineEvent) int { return less(key(a), key(b)) })
	return all[:min(len(all), q.Limit)], nil
}

// drain reads r to its end.
func drain(t *testing.T, r *timeline.Reader) []timeline.Item {
	t.Helper()
	var out []timeline.Item
	for {
		it, err := r.Next(t.Context())
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, it)
	}
}

// describe names an item by its type and offset from t0.
func describe(it timeline.Item) string {
	name := strings.TrimSuffix(strings.TrimPrefix(it.Event.Type, "tms."), ".v1")
	return fmt.Sprintf("%s@%v", name, it.Time().Sub(t0))
}

const plate = "沪A12345"

// fixesEvery is a straight drive east along latitude 31.2, a fix every
// step seconds over [0, n*step).
func fixesEvery(n, step int) []vehicles.Fix {
	out := make([]vehicles.Fix, n)
	for i := range out {
		s := i * step
		out[i] = vehicles.Fix{FixTime: at(s), ReceivedAt: at(s + 1), Lat: 31.2, Lng: 121.0 + float64(s)*0.0001,
			SpeedKmh: 36, CourseDeg: ptr(90.0), Flags: []string{}}
	}
	return out
}

func TestReaderMergesOnOneTimeline(t *testing.T) {
	t.Parallel()
	src := &fakeSource{
		fixes: fixesEvery(7, 10), // 0s .. 60s
		visits: []visits.Visit{
			// Entered between fixes (15 s) and left at one (40 s).
			{VisitID: "00000000-0000-0000-0000-00000000000a", Vehicle: plate, StationID: "S1", StationType: "loading",
				StationVersion: 3, EnteredAt: at(15), ExitedAt: ptr(at(40)), DwellS: ptr(25.0),
				EntryFlags: []string{"interpolated"}, ExitFlags: []string{}},
			// A hazard zone entered at a fix, at the exit's time: exit, then entry, then its alert.
			{VisitID: "00000000-0000-0000-0000-00000000000b", Vehicle: plate, StationID: "H1", StationType: "hazard",
				StationVersion: 1, EnteredAt: at(40)},
		},
		jobEvs: []jobs.TimelineEvent{
			{At: at(40), Kind: jobs.EventStopDeparted, JobID: "j1", Stop: 0, Vehicle: plate, CreatedAt: at(-100),
				StartedAt: ptr(at(5)), Payload: json.RawMessage(`{"index":0,"station_id":"S1","kind":"loading",
				"station_name":"S1","point":{"lat":31.2,"lng":121.002},"status":"departed","arrived_at":"2025-03-01T08:00:15Z",
				"departed_at":"2025-03-01T08:00:40Z","dwell_s":25,"flags":[]}`)},
			{At: at(15), Kind: jobs.EventStopArrived, JobID: "j1", Stop: 0, Vehicle: plate, CreatedAt: at(-100),
				StartedAt: ptr(at(5)), Payload: json.RawMessage(`{"index":0,"station_id":"S1","kind":"loading",
				"station_name":"S1","point":{"lat":31.2,"lng":121.002},"status":"departed","arrived_at":"2025-03-01T08:00:15Z",
				"departed_at":"2025-03-01T08:00:40Z","dwell_s":25,"flags":[]}`)},
			{At: at(5), Kind: jobs.EventStarted, JobID: "j1", Stop: -1, Vehicle: plate, CreatedAt: at(-100), StartedAt: ptr(at(5))},
		},
	}
	// Pages of two rows: every stream is read over several pages.
	items := drain(t, timeline.NewReader(src, timeline.Query{Vehicle: plate, From: at(0), To: at(60)}, 2))
	var got []string
	for _, it := range items {
		got = append(got, describe(it))
	}
	want := []string{
		"position.reported@0s", "job.started@5s", "position.reported@10s",
		"vehicle.entered_station@15s", "job.stop_arrived@15s",
		"position.reported@20s", "position.reported@30s",
		"position.reported@40s", "vehicle.exited_station@40s", "vehicle.entered_station@40s", "alert.raised@40s",
		"job.stop_departed@40s",
		"position.reported@50s",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("timeline\n%q\nwant\n%q", got, want)
	}

	t.Run("positions are the events ingest made", func(t *testing.T) {
		f := src.fixes[1]
		p := position.Position{Plate: plate, FixTime: f.FixTime, ReceivedAt: f.ReceivedAt, Lat: f.Lat, Lng: f.Lng,
			SpeedKmh: f.SpeedKmh, Course: f.CourseDeg, Flags: f.Flags}
		want, err := p.Event(ingest.Source)
		if err != nil {
			t.Fatal(err)
		}
		gotJSON, _ := json.Marshal(items[2].Event)
		wantJSON, _ := json.Marshal(want)
		if string(gotJSON) != string(wantJSON) {
			t.Errorf("replayed %s\nwant     %s", gotJSON, wantJSON)
		}
	})

	t.Run("station events are placed between the fixes around them", func(t *testing.T) {
		var entry geofence.Visit
		if err := json.Unmarshal(items[3].Event.Data, &entry); err != nil {
			t.Fatal(err)
		}
		// Halfway from the fix at 10 s (121.001) to the one at 20 s (121.002).
		if entry.Lat != 31.2 || entry.Lng != 121.0015 || entry.StationID != "S1" || entry.StationVersion != 3 ||
			!entry.FixTime.Equal(at(15)) || !slices.Equal(entry.Flags, []string{"interpolated"}) {
			t.Errorf("entry %+v", entry)
		}
		if items[3].Event.ID != event.ID(event.TypeEnteredStation, entry.VisitID) || items[3].Event.Source != "/tms/geofence" {
			t.Errorf("entry envelope %+v is not the geofence's", items[3].Event)
		}
		var exit geofence.Visit
		if err := json.Unmarshal(items[8].Event.Data, &exit); err != nil {
			t.Fatal(err)
		}
		if exit.Lng != 121.004 || exit.EnteredAt == nil || !exit.EnteredAt.Equal(at(15)) || exit.DwellS == nil || *exit.DwellS != 25 {
			t.Errorf("exit %+v, want at the fix of 40 s with its entry and dwell", exit)
		}
		var alert geofence.Alert
		if err := json.Unmarshal(items[10].Event.Data, &alert); err != nil {
			t.Fatal(err)
		}
		if alert.Alert != geofence.AlertHazardEntered || alert.StationID != "H1" || alert.Lng != 121.004 ||
			items[10].Event.ID != event.ID(event.TypeAlertRaised, geofence.AlertHazardEntered, alert.VisitID) {
			t.Errorf("alert %+v", items[10].Event)
		}
	})

	t.Run("job events keep their ids and the stop as it stood", func(t *testing.T) {
		if items[1].Event.ID != event.ID(event.TypeJobStarted, "j1") {
			t.Errorf("started %+v", items[1].Event)
		}
		var arrived job.StopEvent
		if err := json.Unmarshal(items[4].Event.Data, &arrived); err != nil {
			t.Fatal(err)
		}
		if arrived.Status != job.StopArrived || arrived.DepartedAt != nil || arrived.DwellS != nil ||
			arrived.At.Lng != 121.0015 || items[4].Event.ID != event.ID(event.TypeJobStopArrived, "j1", "0") {
			t.Errorf("arrival %+v", arrived)
		}
		var departed job.StopEvent
		if err := json.Unmarshal(items[11].Event.Data, &departed); err != nil {
			t.Fatal(err)
		}
		if departed.Status != job.StopDeparted || departed.DepartedAt == nil || departed.At.Lng != 121.004 {
			t.Errorf("departure %+v", departed)
		}
	})
}

func TestReaderReadsOnlyWhatItNeeds(t *testing.T) {
	t.Parallel()
	src := &fakeSource{fixes: fixesEvery(100, 10)}
	r := timeline.NewReader(src, timeline.Query{Vehicle: plate, From: at(0), To: at(1000)}, 10)
	for i := range 25 {
		it, err := r.Next(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if !it.Time().Equal(at(10 * i)) {
			t.Fatalf("item %d at %s", i, it.Time())
		}
	}
	// 25 fixes read: the third page of ten is open, no more.
	if src.pages["fixes"] != 3 {
		t.Errorf("%d pages of fixes read for 25 fixes of pages of 10", src.pages["fixes"])
	}
	if n := len(drain(t, r)); n != 75 {
		t.Errorf("%d more items, want 75", n)
	}
}

func TestReaderWindowEdges(t *testing.T) {
	t.Parallel()
	src := &fakeSource{
		fixes: fixesEvery(10, 10), // 0 .. 90 s
		visits: []visits.Visit{{VisitID: "00000000-0000-0000-0000-00000000000c", Vehicle: plate, StationID: "S1",
			StationType: "loading", EnteredAt: at(32)}},
	}
	// [31 s, 35 s) holds no fix: the entry is placed between the fixes
	// of 30 s and 40 s, from outside the window.
	items := drain(t, timeline.NewReader(src, timeline.Query{Vehicle: plate, From: at(31), To: at(35)}, 5))
	if len(items) != 1 || items[0].Event.Type != event.TypeEnteredStation {
		t.Fatalf("items %v", items)
	}
	var v geofence.Visit
	if err := json.Unmarshal(items[0].Event.Data, &v); err != nil {
		t.Fatal(err)
	}
	if v.Lng != 121.0032 {
		t.Errorf("entry at lng %v, want 121.0032, between the fixes around the window", v.Lng)
	}

	t.Run("a fix at the window's end is outside it", func(t *testing.T) {
		items := drain(t, timeline.NewReader(src, timeline.Query{Vehicle: plate, From: at(10), To: at(30)}, 5))
		var got []string
		for _, it := range items {
			got = append(got, describe(it))
		}
		if want := []string{"position.reported@10s", "position.reported@20s"}; !slices.Equal(got, want) {
			t.Errorf("timeline %q, want %q", got, want)
		}
	})

	t.Run("without any fix the place is left out", func(t *testing.T) {
		src := &fakeSource{visits: src.visits}
		items := drain(t, timeline.NewReader(src, timeline.Query{Vehicle: plate, From: at(0), To: at(60)}, 5))
		var data map[string]any
		if len(items) != 1 || json.Unmarshal(items[0].Event.Data, &data) != nil {
			t.Fatalf("items %v", items)
		}
		if _, ok := data["lat"]; ok {
			t.Errorf("entry %s has a place without a fix", items[0].Event.Data)
		}
	})

	t.Run("an error leaves the reader where it was", func(t *testing.T) {
		src := &fakeSource{fixes: fixesEvery(10, 10), failing: errors.New("database down")}
		r := timeline.NewReader(src, timeline.Query{Vehicle: plate, From: at(0), To: at(100)}, 4)
		if _, err := r.Next(t.Context()); err == nil {
			t.Fatal("no error from a failing source")
		}
		src.failing = nil
		if items := drain(t, r); len(items) != 10 || !items[0].Time().Equal(at(0)) {
			t.Errorf("after the error, %d items from %v", len(items), items)
		}
	})
}
