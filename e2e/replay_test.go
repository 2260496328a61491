package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/internal/fleettest"
	"github.com/tmsfleet/tms/internal/tmsproc"
)

// replayedVisit is a visit as GET /api/v1/replays/{id}/visits shows it,
// and as the test derives it on its own.
type replayedVisit struct {
	VisitID      string     `json:"visit_id"`
	Vehicle      string     `json:"vehicle"`
	EnteredAt    time.Time  `json:"entered_at"`
	ExitedAt     *time.Time `json:"exited_at"`
	Open         bool       `json:"open"`
	EntryFlags   []string   `json:"entry_flags"`
	ExitFlags    []string   `json:"exit_flags"`
	InitialCause *string    `json:"initial_cause"`
}

func (v replayedVisit) String() string {
	exited, cause := "open", ""
	if v.ExitedAt != nil {
		exited = v.ExitedAt.UTC().Format(time.RFC3339Nano)
	}
	if v.InitialCause != nil {
		cause = *v.InitialCause
	}
	return fmt.Sprintf("%.8s %s %s-%s open=%v entry%v exit%v %s", v.VisitID, v.Vehicle,
		v.EnteredAt.UTC().Format(time.RFC3339Nano), exited, v.Open, v.EntryFlags, v.ExitFlags, cause)
}

// replayRun is a run as GET /api/v1/replays/{id} shows it.
type replayRun struct {
	Kind           string `json:"kind"`
	Note           string `json:"note"`
	ID             string `json:"id"`
	StationID      string `json:"station_id"`
	StationVersion int64  `json:"station_version"`
	Status         string `json:"status"`
	FixesRead      int64  `json:"fixes_read"`
	Visits         int64  `json:"visits"`
}

// expectedReplay is what a replay of station over [from, to) must find
// in w: a fresh tracker, with only the station as it stands at the end of
// w's changes, valid for all time, fed the fixes taken in the range in
// their order, then flushed. It returns the visits in the API's order
// (entry time, then visit id) and how many fixes were in the range.
func expectedReplay(t *testing.T, w fleettest.World, stationID string, from, to time.Time) ([]replayedVisit, int64) {
	t.Helper()
	var st *geofence.Station
	for _, c := range w.Changes {
		switch {
		case c.Station != nil && c.Station.ID() == stationID:
			s := c.Station.Geofence(c.Version)
			st = &s
		case c.Deleted == stationID:
			st = nil
		}
	}
	if st == nil {
		t.Fatalf("the world has no station %s", stationID)
	}
	catalog := geofence.NewCatalog(geofence.NewBruteForce())
	if err := catalog.Upsert(*st, time.Time{}); err != nil {
		t.Fatal(err)
	}
	tracker, err := geofence.NewTracker(geofence.Config{ReorderWindow: geofence.DefaultReorderWindow}, catalog)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*replayedVisit{}
	apply := func(ts []geofence.Transition) {
		for _, tr := range ts {
			v := byID[tr.VisitID]
			if v == nil {
				v = &replayedVisit{VisitID: tr.VisitID, Vehicle: tr.Vehicle, Open: true, EntryFlags: []string{}, ExitFlags: []string{}}
				byID[tr.VisitID] = v
			}
			flags := slices.Clone(tr.Flags)
			if flags == nil {
				flags = []string{}
			}
			if tr.Kind == geofence.Entered {
				v.EnteredAt, v.EntryFlags = tr.At, flags
				if tr.InitialCause != "" {
					cause := tr.InitialCause
					v.InitialCause = &cause
				}
				continue
			}
			at := tr.At
			v.ExitedAt, v.ExitFlags, v.Open = &at, flags, false
		}
	}
	vehicles := map[string]*geofence.Vehicle{}
	var fixes int64
	for _, p := range w.Fixes {
		if p.FixTime.Before(from) || !p.FixTime.Before(to) {
			continue
		}
		fixes++
		v := vehicles[p.Plate]
		if v == nil {
			v = geofence.NewVehicle(geofence.VehicleState{Plate: p.Plate})
			vehicles[p.Plate] = v
		}
		apply(tracker.Observe(v, geofence.Fix{Time: p.FixTime, Point: geo.Point{Lat: p.Lat, Lng: p.Lng}}, nil))
	}
	for _, v := range vehicles {
		apply(tracker.Flush(v, nil))
	}
	out := make([]replayedVisit, 0, len(byID))
	for _, v := range byID {
		out = append(out, *v)
	}
	slices.SortFunc(out, func(a, b replayedVisit) int {
		if c := a.EnteredAt.Compare(b.EnteredAt); c != 0 {
			return c
		}
		return strings.Compare(a.VisitID, b.VisitID)
	})
	return out, fixes
}

// runReplay runs `tms replay geofence` in d and returns the run id it
// prints, failing the test if it fails.
func runReplay(t *testing.T, d *tmsproc.Deployment, station string, from, to time.Time) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := d.Command(ctx, "replay", "geofence", "--station", station,
		"--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339))
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tms replay geofence --station %s: %v\nstdout: %s\nstderr: %s", station, err, out, &stderr)
	}
	m := regexp.MustCompile(`(?m)^replay ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}): station ` +
		regexp.QuoteMeta(station) + ` `).FindSubmatch(out)
	if m == nil {
		t.Fatalf("the output names no run id:\n%s", out)
	}
	id := string(m[1])
	if !bytes.Contains(out, []byte("GET /api/v1/replays/"+id)) {
		t.Errorf("the output does not say where the results are:\n%s", out)
	}
	t.Logf("%s", bytes.TrimSpace(out))
	return id
}

// replayVisits pages through a run's visits, limit at a time.
func replayVisits(t *testing.T, d *tmsproc.Deployment, id string, limit int) []replayedVisit {
	t.Helper()
	var out []replayedVisit
	q := url.Values{"limit": {fmt.Sprint(limit)}}
	for pages := 0; ; pages++ {
		var page struct {
			Kind       string          `json:"kind"`
			ReplayID   string          `json:"replay_id"`
			Visits     []replayedVisit `json:"visits"`
			NextCursor *string         `json:"next_cursor"`
		}
		path := "/api/v1/replays/" + id + "/visits?" + q.Encode()
		if status := d.Get(path, &page); status != http.StatusOK {
			t.Fatalf("GET %s: %d", path, status)
		}
		if page.Kind != "replay" || page.ReplayID != id {
			t.Fatalf("GET %s: a page of kind %q, replay %q", path, page.Kind, page.ReplayID)
		}
		out = append(out, page.Visits...)
		if page.NextCursor == nil {
			return out
		}
		if pages > 10000 {
			t.Fatal("the pages do not end")
		}
		q.Set("cursor", *page.NextCursor)
	}
}

func sameVisit(a, b replayedVisit) bool {
	return a.String() == b.String() && a.VisitID == b.VisitID && a.EnteredAt.Equal(b.EnteredAt) &&
		((a.ExitedAt == nil) == (b.ExitedAt == nil)) && (a.ExitedAt == nil || a.ExitedAt.Equal(*b.ExitedAt))
}

// endOffsets sums the end offsets of d's topic.
func endOffsets(t *testing.T, d *tmsproc.Deployment, topic string) int64 {
	t.Helper()
	adm, err := d.Kafka.NewAdmin("e2e-admin")
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ends, err := adm.ListEndOffsets(t.Context(), d.Kafka.Topic(topic))
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// TestReplayGeofenceDerivesHistoryApart runs `tms replay geofence` on a
// world's positions in Kafka, and reads its result through the API: the
// visits a fresh tracker with only that station, as it stands now, finds
// in the range, each once, and nothing written to tms.geofence, whose
// events billing consumes.
func TestReplayGeofenceDerivesHistoryApart(t *testing.T) {
	t.Parallel()
	// No role touches the topics: whatever tms.geofence holds afterwards
	// would be the replay's doing.
	d := newDeployment(t, "TMS_ROLES=api")
	// Twenty vehicles: the fastest cross the station between two fixes.
	w := fleettest.New(t, 20, 150)
	fleettest.Produce(t, d.Kafka, w.StationRecords(t, d.Kafka))
	fleettest.Produce(t, d.Kafka, fleettest.PositionRecords(t, d.Kafka, w.Fixes))

	t0 := fleettest.T0
	// The whole of the world's driving (its last fixes, a day later, are
	// outside the range); then a window that begins and ends while
	// vehicles are inside, for initial entries and visits left open.
	ranges := []struct{ from, to time.Time }{
		{t0, t0.Add(2 * time.Hour)},
		{t0.Add(5 * time.Minute), t0.Add(9 * time.Minute)},
	}
	var ids []string
	for _, r := range ranges {
		ids = append(ids, runReplay(t, d, "LOAD", r.from, r.to))
	}

	d.Start()
	for i, r := range ranges {
		id := ids[i]
		want, fixes := expectedReplay(t, w, "LOAD", r.from, r.to)
		t.Logf("[%s, %s): %d fixes, %d visits", r.from.Format(time.RFC3339), r.to.Format(time.RFC3339), fixes, len(want))

		var run replayRun
		if status := d.Get("/api/v1/replays/"+id, &run); status != http.StatusOK {
			t.Fatalf("GET /api/v1/replays/%s: %d", id, status)
		}
		if run.Kind != "replay" || run.Note == "" || run.ID != id || run.StationID != "LOAD" || run.StationVersion != 1 ||
			run.Status != "done" || run.FixesRead != fixes || run.Visits != int64(len(want)) {
			t.Errorf("run %+v: want done, LOAD version 1, %d fixes read, %d visits", run, fixes, len(want))
		}

		got := replayVisits(t, d, id, 7)
		if len(got) != len(want) || !slices.EqualFunc(got, want, sameVisit) {
			t.Errorf("[%s, %s): the replay found\n  %s\nwant\n  %s", r.from.Format(time.RFC3339), r.to.Format(time.RFC3339),
				strings.Join(strs(got), "\n  "), strings.Join(strs(want), "\n  "))
		}
		// The test proves something only if the world has what it checks.
		has := func(what string, pred func(replayedVisit) bool) {
			if !slices.ContainsFunc(want, pred) {
				t.Errorf("range %d has no %s visit to compare", i, what)
			}
		}
		has("closed", func(v replayedVisit) bool { return len(v.EntryFlags) == 0 && !v.Open })
		if i == 0 {
			has("interpolated", func(v replayedVisit) bool { return slices.Contains(v.EntryFlags, geofence.FlagInterpolated) })
		} else {
			has("initial", func(v replayedVisit) bool { return slices.Contains(v.EntryFlags, geofence.FlagInitial) })
			has("open", func(v replayedVisit) bool { return v.Open })
		}
	}

	// Both runs, newest first, each marked as derived history.
	var list struct {
		Replays []replayRun `json:"replays"`
	}
	if status := d.Get("/api/v1/replays?station=LOAD", &list); status != http.StatusOK {
		t.Fatalf("GET /api/v1/replays: %d", status)
	}
	if len(list.Replays) != 2 || list.Replays[0].ID != ids[1] || list.Replays[1].ID != ids[0] ||
		list.Replays[0].Kind != "replay" || list.Replays[1].Kind != "replay" {
		t.Errorf("runs %+v, want %v newest first", list.Replays, ids)
	}

	// Never mixed into the live events: the replay wrote nothing to Kafka.
	for _, topic := range []string{event.TopicGeofence, event.TopicJobs, event.TopicDeadLetter} {
		if n := endOffsets(t, d, topic); n != 0 {
			t.Errorf("%s holds %d records after the replays; want none", topic, n)
		}
	}
	if n := d.Count(`SELECT count(*) FROM visits`); n != 0 {
		t.Errorf("the live visits hold %d rows; want none", n)
	}
}

func strs(vs []replayedVisit) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.String()
	}
	return out
}

// TestReplayGeofenceRefuses checks that `tms replay geofence` fails,
// naming what is wrong and recording no run, for a station that does not
// exist (or no longer does) and for a range that ends before it begins.
func TestReplayGeofenceRefuses(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, "TMS_ROLES=api")
	w := fleettest.New(t, 2, 10)
	w.Delete("HAZ", 2, fleettest.T0)
	fleettest.Produce(t, d.Kafka, w.StationRecords(t, d.Kafka))
	fleettest.Produce(t, d.Kafka, fleettest.PositionRecords(t, d.Kafka, w.Fixes))
	t0 := fleettest.T0.Format(time.RFC3339)
	t1 := fleettest.T0.Add(time.Hour).Format(time.RFC3339)

	for _, c := range []struct {
		name string
		args []string
		want []string // in the error message
	}{
		{"an unknown station", []string{"--station", "NOPE", "--from", t0, "--to", t1}, []string{"no such station", "NOPE"}},
		{"a deleted station", []string{"--station", "HAZ", "--from", t0, "--to", t1}, []string{"no such station", "HAZ"}},
		{"--from after --to", []string{"--station", "LOAD", "--from", t1, "--to", t0}, []string{"--from", "--to", t1, t0}},
		{"--from equal to --to", []string{"--station", "LOAD", "--from", t0, "--to", t0}, []string{"--from", "--to"}},
		{"no --from", []string{"--station", "LOAD"}, []string{"--from"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			var stdout, stderr bytes.Buffer
			cmd := d.Command(ctx, append([]string{"replay", "geofence"}, c.args...)...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Fatalf("exit %v, want a non-zero exit\nstdout: %s\nstderr: %s", err, &stdout, &stderr)
			}
			for _, s := range c.want {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("the error does not say %q: %s", s, &stderr)
				}
			}
		})
	}
	if n := d.Count(`SELECT count(*) FROM replay_runs`); n != 0 {
		t.Errorf("%d runs recorded; a refused replay records none", n)
	}
}
