package httpapi

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tmsfleet/tms/domain/trip"
	"github.com/tmsfleet/tms/projections/trips"
)

// The seeded trips of 沪A12345 (whose fixes are a minute apart from
// base): a stop to minute 1, a trip from 1 to 4, a stop to 6, and a trip
// from 6 still under way at 9.
const (
	tripsPath = "/api/v1/vehicles/%E6%B2%AAA12345/trips"
	stopsPath = "/api/v1/vehicles/%E6%B2%AAA12345/stops"
)

func seedTrips(t *testing.T, pool *pgxpool.Pool) (first, second string) {
	t.Helper()
	at := func(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }
	seg := func(kind trip.Kind, from, to int, open bool) string {
		id := trips.SegmentID(kind, "沪A12345", at(from))
		var err error
		if kind == trip.KindTrip {
			_, err = pool.Exec(t.Context(), `INSERT INTO trips (id, vehicle, start_time, start_lat, start_lng, end_time, end_lat,
				end_lng, open, distance_m, max_speed_kmh, moving_s, idle_s, fixes, fixes_used, fixes_dropped, distance_dropped_m,
				flags, revision) VALUES ($1, '沪A12345', $2, 31.201, 121.402, $3, 31.204, 121.408, $4, 1500, 62.5, 150, 30, 3, 3, 0, 0, '{}', 2)`,
				id, at(from), at(to), open)
		} else {
			_, err = pool.Exec(t.Context(), `INSERT INTO stops (id, vehicle, start_time, end_time, lat, lng, open, fixes, flags, revision)
				VALUES ($1, '沪A12345', $2, $3, 31.2, 121.4, $4, 2, '{partial}', 1)`, id, at(from), at(to), open)
		}
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	seg(trip.KindStop, 0, 1, false)
	first = seg(trip.KindTrip, 1, 4, false)
	seg(trip.KindStop, 4, 6, false)
	second = seg(trip.KindTrip, 6, 9, true)
	return first, second
}

func TestTripsOfAVehicle(t *testing.T) {
	t.Parallel()
	pool := newDB(t, fleet())
	first, second := seedTrips(t, pool)
	a := newDBAPI(t, pool)

	got := decode[tripListJSON](t, a.get(t, tripsPath), "application/json")
	if len(got.Trips) != 2 || got.Trips[0].ID != first || got.Trips[1].ID != second || got.NextCursor != nil || got.Vehicle != "沪A12345" {
		t.Fatalf("trips %+v", got)
	}
	tr := got.Trips[0]
	if !tr.Start.Time.Equal(base.Add(time.Minute)) || !tr.End.Time.Equal(base.Add(4*time.Minute)) || tr.DurationS != 180 ||
		tr.DistanceM != 1500 || tr.AvgSpeedKmh != 36 || tr.MaxSpeedKmh != 62.5 || tr.Revision != 2 || tr.Open ||
		tr.JobID != nil || tr.Start.Station != nil || tr.Flags == nil || tr.Noise.FixesUsed != 3 {
		t.Errorf("the first trip %+v", tr)
	}
	if !got.Trips[1].Open {
		t.Errorf("the second trip is under way: %+v", got.Trips[1])
	}

	// A page at a time.
	p1 := decode[tripListJSON](t, a.get(t, tripsPath+"?limit=1"), "application/json")
	if len(p1.Trips) != 1 || p1.NextCursor == nil {
		t.Fatalf("page 1 %+v", p1)
	}
	p2 := decode[tripListJSON](t, a.get(t, tripsPath+"?limit=1&cursor="+url.QueryEscape(*p1.NextCursor)), "application/json")
	if len(p2.Trips) != 1 || p2.Trips[0].ID != second || p2.NextCursor != nil {
		t.Errorf("page 2 %+v", p2)
	}
	// A window: the trip in progress at its start counts.
	w := decode[tripListJSON](t, a.get(t, tripsPath+"?"+url.Values{
		"from": {rfc(base.Add(2 * time.Minute))}, "to": {rfc(base.Add(5 * time.Minute))}}.Encode()), "application/json")
	if len(w.Trips) != 1 || w.Trips[0].ID != first {
		t.Errorf("minutes 2 to 5: %+v", w.Trips)
	}

	// A known vehicle without trips, and an unknown one.
	if none := decode[tripListJSON](t, a.get(t, "/api/v1/vehicles/%E4%BA%ACB00001/trips"), "application/json"); none.Trips == nil || len(none.Trips) != 0 {
		t.Errorf("a vehicle without trips: %+v", none)
	}
	wantProblem(t, a.get(t, "/api/v1/vehicles/ZZ999/trips"), "/api/v1/vehicles/ZZ999/trips", http.StatusNotFound)
	bad := tripsPath + "?from=2025-03-10T09:00:00Z&to=2025-03-10T08:00:00Z&limit=1001&cursor=yesterday"
	wantProblem(t, a.get(t, bad), tripsPath, http.StatusBadRequest, "from", "limit", "cursor")

	// The stops.
	stops := decode[stopListJSON](t, a.get(t, stopsPath), "application/json")
	var starts []time.Time
	for _, s := range stops.Stops {
		starts = append(starts, s.StartTime)
	}
	if m := minutes(starts); !slices.Equal(m, []int{0, 4}) || stops.Stops[1].DurationS != 120 || stops.Stops[0].Flags[0] != "partial" {
		t.Errorf("stops at minutes %v: %+v", m, stops.Stops)
	}
	wantProblem(t, a.get(t, "/api/v1/vehicles/ZZ999/stops"), "/api/v1/vehicles/ZZ999/stops", http.StatusNotFound)
}

func TestATripAndItsTrack(t *testing.T) {
	t.Parallel()
	pool := newDB(t, fleet())
	first, _ := seedTrips(t, pool)
	a := newDBAPI(t, pool)

	tr := decode[tripJSON](t, a.get(t, "/api/v1/trips/"+first), "application/json")
	if tr.ID != first || tr.Vehicle != "沪A12345" {
		t.Errorf("trip %+v", tr)
	}
	unknown := "/api/v1/trips/" + uuid.NewString()
	if p := wantProblem(t, a.get(t, unknown), unknown, http.StatusNotFound); p.Title != "Trip not found" {
		t.Errorf("problem %+v", p)
	}
	wantProblem(t, a.get(t, "/api/v1/trips/yesterday"), "/api/v1/trips/yesterday", http.StatusBadRequest, "id")

	// The track holds the fixes from the start to the end, both included.
	path := "/api/v1/trips/" + first + "/track"
	got := decode[tripTrackJSON](t, a.get(t, path), "application/json")
	if m := minutes(fixTimes(got.Points)); !slices.Equal(m, []int{1, 2, 3, 4}) || got.TripID != first || got.NextCursor != nil ||
		!got.To.Equal(base.Add(4*time.Minute)) {
		t.Errorf("the trip's track: minutes %v, %+v", m, got)
	}
	p1 := decode[tripTrackJSON](t, a.get(t, path+"?limit=3"), "application/json")
	p2 := decode[tripTrackJSON](t, a.get(t, path+"?limit=3&cursor="+url.QueryEscape(*p1.NextCursor)), "application/json")
	if m := minutes(fixTimes(append(p1.Points, p2.Points...))); !slices.Equal(m, []int{1, 2, 3, 4}) || p2.NextCursor != nil {
		t.Errorf("paged: minutes %v", m)
	}
	geo := decode[featureCollection](t, a.get(t, path+"?format=geojson"), "application/geo+json")
	if len(geo.Features) != 1 || geo.Features[0].Geometry.Type != "LineString" || len(geo.Features[0].Properties.FixTimes) != 4 {
		t.Errorf("geojson %+v", geo)
	}
	// Simplified: its ends kept, and what it stands for said.
	sim := decode[tripTrackJSON](t, a.get(t, path+"?max_points=3"), "application/json")
	if m := minutes(fixTimes(sim.Points)); len(m) < 2 || len(m) > 3 || m[0] != 1 || m[len(m)-1] != 4 || sim.Simplification == nil ||
		sim.Simplification.Fixes != 4 || sim.Simplification.MaxPoints != 3 {
		t.Errorf("simplified to 3 points: minutes %v, %+v", m, sim.Simplification)
	}
	wantProblem(t, a.get(t, path+"?max_points=3&limit=2"), path, http.StatusBadRequest, "max_points")
	unknownTrack := "/api/v1/trips/" + uuid.NewString() + "/track"
	wantProblem(t, a.get(t, unknownTrack), unknownTrack, http.StatusNotFound)
}

func TestTripsOfTheFleet(t *testing.T) {
	t.Parallel()
	pool := newDB(t, fleet())
	at := func(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }
	seed := func(plate string, from, to int) string {
		id := trips.SegmentID(trip.KindTrip, plate, at(from))
		if _, err := pool.Exec(t.Context(), `INSERT INTO trips (id, vehicle, start_time, start_lat, start_lng, end_time, end_lat,
			end_lng, open, distance_m, max_speed_kmh, moving_s, idle_s, fixes, fixes_used, fixes_dropped, distance_dropped_m,
			flags, revision) VALUES ($1, $2, $3, 31.2, 121.4, $4, 31.3, 121.5, false, 1000, 50, 60, 0, 2, 2, 0, 0, '{}', 1)`,
			id, plate, at(from), at(to)); err != nil {
			t.Fatal(err)
		}
		return id
	}
	for _, plate := range []string{"沪A12345", "京B00001"} {
		if _, err := pool.Exec(t.Context(), `INSERT INTO trip_vehicles (vehicle, state, newest, snapshots)
			VALUES ($1, '\x00', $2, '{}')`, plate, at(100)); err != nil {
			t.Fatal(err)
		}
	}
	seed("沪A12345", 0, 5)                // ended before the window
	inProgress := seed("京B00001", 5, 20) // under way when it began
	a1 := seed("沪A12345", 10, 15)
	b1 := seed("京B00001", 25, 40)
	a2 := seed("沪A12345", 30, 31)
	seed("沪A12345", 60, 70) // after it
	a := newDBAPI(t, pool)
	window := url.Values{"from": {rfc(at(10))}, "to": {rfc(at(60))}}

	ids := func(l fleetTripListJSON) []string {
		var out []string
		for _, tr := range l.Trips {
			out = append(out, tr.ID)
		}
		return out
	}
	all := decode[fleetTripListJSON](t, a.get(t, "/api/v1/trips?"+window.Encode()), "application/json")
	if want := []string{inProgress, a1, b1, a2}; !slices.Equal(ids(all), want) || all.NextCursor != nil {
		t.Fatalf("the fleet's trips of minutes 10 to 60: %v, want %v", ids(all), want)
	}
	// A page at a time, in the same order.
	var paged []string
	q := url.Values{"from": window["from"], "to": window["to"], "limit": {"3"}}
	for range 3 {
		p := decode[fleetTripListJSON](t, a.get(t, "/api/v1/trips?"+q.Encode()), "application/json")
		paged = append(paged, ids(p)...)
		if p.NextCursor == nil {
			break
		}
		q.Set("cursor", *p.NextCursor)
	}
	if !slices.Equal(paged, ids(all)) {
		t.Errorf("paged: %v, want %v", paged, ids(all))
	}
	// One vehicle's.
	q = url.Values{"from": window["from"], "to": window["to"], "plate": {"京B00001"}}
	if got := ids(decode[fleetTripListJSON](t, a.get(t, "/api/v1/trips?"+q.Encode()), "application/json")); !slices.Equal(got, []string{inProgress, b1}) {
		t.Errorf("京B00001's: %v", got)
	}
	wantProblem(t, a.get(t, "/api/v1/trips?from=2025-03-10T09:00:00Z&to=2025-03-10T08:00:00Z&cursor=x&limit=0"),
		"/api/v1/trips", http.StatusBadRequest, "from", "cursor", "limit")
}
