package trips_test

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/domain/trip"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/projections/trips"
)

func at(hhmm string) time.Time {
	t, err := time.Parse("15:04", hhmm)
	if err != nil {
		panic(err)
	}
	return t0.Truncate(24 * time.Hour).Add(time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute)
}

const plate = "沪S00001"

// seedStore writes a vehicle's trips and stops as the projection would
// have, with the visits and jobs they join:
//
//	stop  07:00-08:00 at A          visits: A (loading) 07:50-08:05,
//	trip  08:00-08:30 A -> B                H (hazard)  07:55-08:10,
//	stop  08:30-09:00 at B                  B (unloading) 08:25-09:03,
//	trip  09:00-09:40 B -> C                C (parking) 09:35-
//	stop  09:40-10:00 at C          jobs:   J1 07:30-08:40 (completed),
//	trip  10:00-10:20, under way            J2 09:10-09:30 (cancelled)
func seedStore(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := postgres.Open(t.Context(), testenv.FromEnv(os.LookupEnv).Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(t.Context(), sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	for _, s := range [][3]string{{"A", "Quarry", "loading"}, {"B", "Works", "unloading"}, {"C", "Yard", "parking"}, {"H", "Plant", "hazard"}} {
		exec(`INSERT INTO stations (id, name, type, coord_system, geometry, radius_m, detection, version, updated_at)
			VALUES ($1, $2, $3, 'wgs84', '{"type":"Point","coordinates":[121.4,31.2]}', 300, '{}', 1, now())`, s[0], s[1], s[2])
	}
	visit := func(station, typ, from, to string) {
		var exited any
		if to != "" {
			exited = at(to)
		}
		var dwell any
		if to != "" {
			dwell = at(to).Sub(at(from)).Seconds()
		}
		exec(`INSERT INTO visits (visit_id, vehicle, station_id, station_type, station_version, entered_at, exited_at, dwell_s)
			VALUES ($1, $2, $3, $4, 1, $5, $6, $7)`, uuid.NewString(), plate, station, typ, at(from), exited, dwell)
	}
	visit("A", "loading", "07:50", "08:05")
	visit("H", "hazard", "07:55", "08:10")
	visit("B", "unloading", "08:25", "09:03")
	visit("C", "parking", "09:35", "")
	job := func(id, from, to, end string) {
		exec(`INSERT INTO jobs (id, vehicle, status, cargo, stops, created_at, started_at, `+end+`, updated_at)
			VALUES ($1, $2, $3, '{}', '[]', $4, $4, $5, $5)`, id, plate, map[string]string{"completed_at": "completed", "cancelled_at": "cancelled"}[end], at(from), at(to))
	}
	job(j1, "07:30", "08:40", "completed_at")
	job(j2, "09:10", "09:30", "cancelled_at")
	seg := func(kind trip.Kind, from, to string, open bool) {
		start := at(from)
		id := trips.SegmentID(kind, plate, start)
		if kind == trip.KindTrip {
			exec(`INSERT INTO trips (id, vehicle, start_time, start_lat, start_lng, end_time, end_lat, end_lng, open, distance_m,
				max_speed_kmh, moving_s, idle_s, fixes, fixes_used, fixes_dropped, distance_dropped_m, flags, revision)
				VALUES ($1, $2, $3, 31.2, 121.4, $4, 31.3, 121.5, $5, 10000, 70, 1500, 300, 180, 170, 10, 12.5, '{}', 1)`,
				id, plate, start, at(to), open)
			return
		}
		exec(`INSERT INTO stops (id, vehicle, start_time, end_time, lat, lng, open, fixes, flags, revision)
			VALUES ($1, $2, $3, $4, 31.2, 121.4, $5, 100, '{}', 1)`, id, plate, start, at(to), open)
	}
	seg(trip.KindStop, "07:00", "08:00", false)
	seg(trip.KindTrip, "08:00", "08:30", false)
	seg(trip.KindStop, "08:30", "09:00", false)
	seg(trip.KindTrip, "09:00", "09:40", false)
	seg(trip.KindStop, "09:40", "10:00", false)
	seg(trip.KindTrip, "10:00", "10:20", true)
	return pool
}

const (
	j1 = "6f1c2d3e-0000-4000-8000-000000000001"
	j2 = "6f1c2d3e-0000-4000-8000-000000000002"
)

// tripLine writes a trip as "08:00-08:30 A->B job=J1".
func tripLine(tr trips.Trip) string {
	name := func(s *trips.Station) string {
		if s == nil {
			return "-"
		}
		return s.ID
	}
	job := map[string]string{j1: "J1", j2: "J2", "": "-"}[tr.JobID]
	return fmt.Sprintf("%s-%s %s->%s job=%s", tr.Start.Time.UTC().Format("15:04"), tr.End.Time.UTC().Format("15:04"),
		name(tr.Start.Station), name(tr.End.Station), job)
}

// TestTripsJoinTheirStationsAndJobs: each end of a trip is at the
// station whose visit was in progress then (hazard zones aside), and the
// trip belongs to the job whose window holds its middle; the lists hold
// what overlaps their window, page by page.
func TestTripsJoinTheirStationsAndJobs(t *testing.T) {
	t.Parallel()
	store := trips.NewStore(seedStore(t))
	all, err := store.Trips(t.Context(), trips.Query{Vehicle: plate, From: at("00:00"), To: at("23:00"), Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tr := range all {
		got = append(got, tripLine(tr))
	}
	want := []string{"08:00-08:30 A->B job=J1", "09:00-09:40 B->C job=J2", "10:00-10:20 C->- job=-"}
	if !slices.Equal(got, want) {
		t.Errorf("trips:\n%v\nwant\n%v", got, want)
	}
	if a := all[0]; a.Start.Station.Name != "Quarry" || a.Start.Station.Type != "loading" || a.DistanceM != 10000 ||
		a.FixesDropped != 10 || a.Open || !all[2].Open || a.Revision != 1 {
		t.Errorf("the first trip %+v", a)
	}

	one, err := store.Trip(t.Context(), all[1].ID)
	if err != nil || tripLine(one) != want[1] {
		t.Errorf("trip by id: %s, %v", tripLine(one), err)
	}
	if _, err := store.Trip(t.Context(), uuid.NewString()); !errors.Is(err, trips.ErrNotFound) {
		t.Errorf("an unknown trip: %v", err)
	}

	windows := []struct {
		from, to string
		want     []string
	}{
		{"08:10", "09:50", want[:2]}, // the one in progress at the start counts
		{"08:31", "08:59", nil},      // between trips
		{"08:30", "09:00", want[:1]}, // a trip ending at the window's start counts, one starting at its end does not
		{"10:10", "10:11", want[2:]}, // under way
	}
	for _, w := range windows {
		for _, limit := range []int{1, 10} {
			q := trips.Query{Vehicle: plate, From: at(w.from), To: at(w.to), Limit: limit}
			var paged []string
			for range 10 {
				page, err := store.Trips(t.Context(), q)
				if err != nil {
					t.Fatal(err)
				}
				for _, tr := range page {
					paged = append(paged, tripLine(tr))
				}
				if len(page) < limit {
					break
				}
				last := page[len(page)-1].Start.Time
				q.After = &last
			}
			if !slices.Equal(paged, w.want) {
				t.Errorf("%s to %s, %d a page: %v, want %v", w.from, w.to, limit, paged, w.want)
			}
		}
	}
	if other, err := store.Trips(t.Context(), trips.Query{Vehicle: "沪X99999", From: at("00:00"), To: at("23:00"), Limit: 10}); err != nil || len(other) != 0 {
		t.Errorf("another vehicle: %v %v", other, err)
	}
}

func TestStopsJoinTheirStations(t *testing.T) {
	t.Parallel()
	store := trips.NewStore(seedStore(t))
	stops, err := store.Stops(t.Context(), trips.Query{Vehicle: plate, From: at("07:30"), To: at("23:00"), Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range stops {
		st, job := "-", "-"
		if s.Station != nil {
			st = s.Station.ID
		}
		if s.JobID == j1 {
			job = "J1"
		}
		got = append(got, fmt.Sprintf("%s-%s %s job=%s", s.Start.UTC().Format("15:04"), s.End.UTC().Format("15:04"), st, job))
	}
	// 07:00 at no station yet (A was entered at 07:50); 08:30 at B, J1
	// ended 08:40, before the stop's middle.
	want := []string{"07:00-08:00 - job=J1", "08:30-09:00 B job=-", "09:40-10:00 C job=-"}
	if !slices.Equal(got, want) {
		t.Errorf("stops %v, want %v", got, want)
	}
}
