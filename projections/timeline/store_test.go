package timeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/job"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/projections/jobs"
	"github.com/tmsfleet/tms/projections/timeline"
	"github.com/tmsfleet/tms/projections/vehicles"
)

// TestStoreTimelineFromPostgres reads a vehicle's timeline from the real
// read models, a page of two rows at a time, so that every keyset query
// is continued from its cursor, through ties of equal times.
func TestStoreTimelineFromPostgres(t *testing.T) {
	t.Parallel()
	pool := openPool(t)
	ctx := t.Context()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	// positions is partitioned by month: a bulk writer makes the months first.
	if _, err := vehicles.EnsurePartitions(ctx, pool, vehicles.PositionsTable, at(0), at(120)); err != nil {
		t.Fatal(err)
	}
	for s := 0; s <= 120; s += 10 {
		exec(`INSERT INTO positions (plate, fix_time, received_at, lat, lng, speed_kmh, course_deg, flags)
			VALUES ($1, $2, $3, 31.2, $4, 36, 90, '{}')`, plate, at(s), at(s+1), 121.0+float64(s)*0.0001)
	}
	// Another vehicle's rows, which must not appear.
	exec(`INSERT INTO positions (plate, fix_time, received_at, lat, lng, speed_kmh, flags)
		VALUES ('沪B00001', $1, $1, 1, 1, 0, '{}')`, at(15))
	visit := func(id, vehicle, station string, entered int, exited *int) {
		t.Helper()
		var exitedAt *time.Time
		var dwell *float64
		if exited != nil {
			exitedAt, dwell = ptr(at(*exited)), ptr(float64(*exited-entered))
		}
		exec(`INSERT INTO visits (visit_id, vehicle, station_id, station_type, station_version, entered_at, exited_at, dwell_s)
			VALUES ($1, $2, $3, 'loading', 1, $4, $5, $6)`, id, vehicle, station, at(entered), exitedAt, dwell)
	}
	visit("00000000-0000-0000-0000-00000000000a", plate, "S1", 15, ptr(40))
	visit("00000000-0000-0000-0000-00000000000c", plate, "S3", 40, ptr(70))
	visit("00000000-0000-0000-0000-00000000000b", plate, "S2", 40, nil)
	visit("00000000-0000-0000-0000-00000000000d", "沪B00001", "S1", 20, ptr(30))

	stop := func(i int, station string, arrived, departed *int) job.StopProgress {
		s := job.StopProgress{Index: i, PlannedStop: job.PlannedStop{StationID: station, Kind: job.KindLoading, StationName: station,
			Point: job.Point{Lat: 31.2, Lng: 121}}, Status: job.StopPending, Flags: []string{}}
		if arrived != nil {
			s.Status, s.ArrivedAt = job.StopArrived, ptr(at(*arrived))
		}
		if departed != nil {
			s.Status, s.DepartedAt, s.DwellS = job.StopDeparted, ptr(at(*departed)), ptr(float64(*departed-*arrived))
		}
		return s
	}
	insertJob := func(id string, created int, started, completed, cancelled *int, stops []job.StopProgress, completion *job.Completion) {
		t.Helper()
		stopsJSON, _ := json.Marshal(stops)
		var comp any
		rev := 0
		if completion != nil {
			b, _ := json.Marshal(completion)
			comp, rev = string(b), completion.Revision
		}
		tp := func(s *int) *time.Time {
			if s == nil {
				return nil
			}
			return ptr(at(*s))
		}
		status := "active"
		switch {
		case completed != nil:
			status = "completed"
		case cancelled != nil:
			status = "cancelled"
		case started == nil:
			status = "queued"
		}
		exec(`INSERT INTO jobs (id, vehicle, status, cargo, stops, created_at, started_at, completed_at, cancelled_at,
				cancel_reason, revision, completion, updated_at)
			VALUES ($1, $2, $3, '{"weight_kg": 1000}', $4, $5, $6, $7, $8, CASE WHEN $8::timestamptz IS NULL THEN NULL ELSE 'ops' END,
				$9, $10, $5)`,
			id, plate, status, string(stopsJSON), at(created), tp(started), tp(completed), tp(cancelled), rev, comp)
	}
	const j1, j2, j3 = "00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002", "00000000-0000-0000-0000-000000000003"
	j1Stops := []job.StopProgress{stop(0, "S1", ptr(15), ptr(40)), stop(1, "S3", ptr(40), ptr(70))}
	insertJob(j1, -100, ptr(5), ptr(70), nil, j1Stops,
		&job.Completion{JobID: j1, Vehicle: plate, Revision: 2, StartedAt: at(5), CompletedAt: at(70), Stops: j1Stops,
			AmendedBecause: job.AmendedLateFixes})
	insertJob(j2, 50, nil, nil, ptr(60), []job.StopProgress{stop(0, "S9", nil, nil)}, nil)
	insertJob(j3, -1000, ptr(-900), ptr(-500), nil, []job.StopProgress{stop(0, "S1", ptr(-800), ptr(-500))}, nil)

	r := timeline.NewReader(timeline.NewStore(pool), timeline.Query{Vehicle: plate, From: at(0), To: at(100)}, 2)
	items := drain(t, r)
	var got []string
	for _, it := range items {
		got = append(got, describe(it))
	}
	want := []string{
		"position.reported@0s", "job.started@5s", "position.reported@10s",
		"vehicle.entered_station@15s", "job.stop_arrived@15s",
		"position.reported@20s", "position.reported@30s",
		"position.reported@40s", "vehicle.exited_station@40s",
		"vehicle.entered_station@40s", "vehicle.entered_station@40s", // S2 (…0b), then S3 (…0c)
		"job.stop_departed@40s", "job.stop_arrived@40s",
		"position.reported@50s", "job.created@50s",
		"position.reported@1m0s", "job.cancelled@1m0s",
		"position.reported@1m10s", "vehicle.exited_station@1m10s", "job.stop_departed@1m10s", "job.amended@1m10s",
		"position.reported@1m20s", "position.reported@1m30s",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("timeline\n%q\nwant\n%q", got, want)
	}
	var entered []string
	for _, it := range items {
		if it.Event.Type == event.TypeEnteredStation {
			var d struct {
				StationID string `json:"station_id"`
			}
			_ = json.Unmarshal(it.Event.Data, &d)
			entered = append(entered, d.StationID)
		}
	}
	if !slices.Equal(entered, []string{"S1", "S2", "S3"}) {
		t.Errorf("entries of %q, want S1, S2, S3 (ties by visit id)", entered)
	}
	amended := items[20].Event
	var c job.Completion
	if err := json.Unmarshal(amended.Data, &c); err != nil {
		t.Fatal(err)
	}
	if c.Revision != 2 || amended.ID != event.ID(event.TypeJobAmended, j1, "2") || c.AmendedBecause != job.AmendedLateFixes {
		t.Errorf("completion %+v (%s), want revision 2 amended", c, amended.ID)
	}
	var cancelled job.Cancelled
	if err := json.Unmarshal(items[16].Event.Data, &cancelled); err != nil {
		t.Fatal(err)
	}
	if cancelled.WasStatus != job.StatusQueued || cancelled.Reason != "ops" || len(cancelled.Stops) != 1 {
		t.Errorf("cancellation %+v", cancelled)
	}

	t.Run("job windows", func(t *testing.T) {
		w := timeline.JobWindows{Jobs: jobs.NewStore(pool), Now: func() time.Time { return at(3600) }}
		q, err := w.Window(t.Context(), j1)
		if err != nil || q.Vehicle != plate || !q.From.Equal(at(5)) || !q.To.Equal(at(70).Add(time.Microsecond)) {
			t.Errorf("window of j1: %+v, %v", q, err)
		}
		if _, err := w.Window(t.Context(), j2); !errors.Is(err, timeline.ErrNotStarted) {
			t.Errorf("window of a job never started: %v", err)
		}
		for _, id := range []string{"00000000-0000-0000-0000-0000000000ff", "not-a-uuid"} {
			if _, err := w.Window(t.Context(), id); !errors.Is(err, timeline.ErrNotFound) {
				t.Errorf("window of %s: %v", id, err)
			}
		}
	})
}

func openPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := postgres.Open(context.Background(), testenv.FromEnv(os.LookupEnv).Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}
