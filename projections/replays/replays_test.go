package replays_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/projections/replays"
)

// TestCollector turns a replay's transitions into visits: an entry and
// its exit make one visit, an entry without an exit an open one, and the
// visits come in the order they began to be seen.
func TestCollector(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	ptr := func(f float64) *float64 { return &f }
	tp := func(t time.Time) *time.Time { return &t }
	transitions := []geofence.Transition{
		{Kind: geofence.Entered, Vehicle: "A", VisitID: "v1", At: at(0), Flags: []string{geofence.FlagInitial},
			InitialCause: geofence.CauseFirstSeen},
		{Kind: geofence.Entered, Vehicle: "B", VisitID: "v2", At: at(10)},
		{Kind: geofence.Exited, Vehicle: "A", VisitID: "v1", At: at(60), EnteredAt: at(0), Dwell: time.Minute,
			Flags: []string{geofence.FlagGap}},
		// A crossing between two fixes: entry and exit at once.
		{Kind: geofence.Entered, Vehicle: "C", VisitID: "v3", At: at(70), Flags: []string{geofence.FlagInterpolated}},
		{Kind: geofence.Exited, Vehicle: "C", VisitID: "v3", At: at(72), EnteredAt: at(70), Dwell: 2 * time.Second,
			Flags: []string{geofence.FlagInterpolated}},
	}
	c := replays.NewCollector()
	for _, tr := range transitions {
		if err := c.Add(tr); err != nil {
			t.Fatal(err)
		}
	}
	want := []replays.Visit{
		{VisitID: "v1", Vehicle: "A", EnteredAt: at(0), ExitedAt: tp(at(60)), DwellS: ptr(60),
			EntryFlags: []string{geofence.FlagInitial}, ExitFlags: []string{geofence.FlagGap}, InitialCause: geofence.CauseFirstSeen},
		{VisitID: "v2", Vehicle: "B", EnteredAt: at(10), EntryFlags: []string{}, ExitFlags: []string{}},
		{VisitID: "v3", Vehicle: "C", EnteredAt: at(70), ExitedAt: tp(at(72)), DwellS: ptr(2),
			EntryFlags: []string{geofence.FlagInterpolated}, ExitFlags: []string{geofence.FlagInterpolated}},
	}
	if got := c.Visits(); !reflect.DeepEqual(got, want) {
		t.Errorf("visits\n  %+v\nwant\n  %+v", got, want)
	}
}
