package trips

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tmsfleet/tms/adapters/postgres"
)

// ErrNotFound is returned for a trip id the read model does not hold.
var ErrNotFound = errors.New("trip not found")

// Station is a station at a trip's end or a stop: the one whose visit was
// in progress then.
type Station struct {
	ID   string
	Name string
	Type string
}

// End is one end of a trip.
type End struct {
	Time     time.Time
	Lat, Lng float64
	// Station is nil when the vehicle was in no station (hazard zones
	// aside), and at the end of a trip still under way.
	Station *Station
}

// Trip is a trip as the read model holds it, with its stations and job.
type Trip struct {
	ID, Vehicle      string
	Start, End       End
	Open             bool
	DistanceM        float64
	MaxSpeedKmh      float64
	MovingS, IdleS   float64
	Fixes            int
	FixesUsed        int
	FixesDropped     int
	DistanceDroppedM float64
	Flags            []string
	Revision         int
	// JobID is the job whose window held the trip's middle; "" for none.
	JobID string
}

// Stop is a stop between two trips.
type Stop struct {
	ID, Vehicle string
	Start, End  time.Time
	Lat, Lng    float64
	Open        bool
	Fixes       int
	Flags       []string
	Revision    int
	Station     *Station
	JobID       string
}

// Query selects one vehicle's trips (or stops) that overlap [From, To):
// started before To and ended at or after From (a segment in progress
// counts as ending at its last fix). They come in start order.
type Query struct {
	Vehicle  string
	From, To time.Time
	// After is the keyset cursor: only segments that started after it.
	After *time.Time
	// Limit caps the result (required).
	Limit int
}

// Store reads the trips read model.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore reads through pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// stationAt finds, for a vehicle and a moment, the station whose visit was
// in progress then: among the vehicle's last visits entered by then (a
// few, by the index on (vehicle, entered_at)), the latest still open at
// it. Hazard zones are places to avoid, not where a trip begins or ends.
func stationAt(alias, vehicle, at string) string {
	return `LEFT JOIN LATERAL (
		SELECT v.station_id, coalesce(st.name, '') AS name, v.station_type
		FROM (SELECT station_id, station_type, entered_at, exited_at FROM visits
		      WHERE vehicle = ` + vehicle + ` AND entered_at <= ` + at + ` AND station_type <> 'hazard'
		      ORDER BY entered_at DESC LIMIT 4) v
		LEFT JOIN stations st ON st.id = v.station_id
		WHERE v.exited_at IS NULL OR v.exited_at >= ` + at + `
		ORDER BY v.entered_at DESC, v.station_id LIMIT 1) ` + alias + ` ON true`
}

// jobAt finds the vehicle's job whose window (its start to its
// completion, or cancellation, or on while it runs) holds a moment: the
// job that started last by then, if it had not ended before it (a
// vehicle's jobs run one after another).
func jobAt(alias, vehicle, at string) string {
	return `LEFT JOIN LATERAL (
		SELECT j.id::text AS id FROM (SELECT id, coalesce(completed_at, cancelled_at) AS ended_at FROM jobs
		      WHERE vehicle = ` + vehicle + ` AND started_at IS NOT NULL AND started_at <= ` + at + `
		      ORDER BY started_at DESC LIMIT 1) j
		WHERE j.ended_at IS NULL OR j.ended_at >= ` + at + `) ` + alias + ` ON true`
}

const tripSelect = `SELECT t.id::text, t.vehicle, t.start_time, t.start_lat, t.start_lng, t.end_time, t.end_lat, t.end_lng,
	t.open, t.distance_m, t.max_speed_kmh, t.moving_s, t.idle_s, t.fixes, t.fixes_used, t.fixes_dropped,
	t.distance_dropped_m, t.flags, t.revision,
	ss.station_id, ss.name, ss.station_type, es.station_id, es.name, es.station_type, jb.id`

func tripJoins() string {
	return stationAt("ss", "t.vehicle", "t.start_time") + `
	` + stationAt("es", "t.vehicle", "CASE WHEN t.open THEN NULL ELSE t.end_time END") + `
	` + jobAt("jb", "t.vehicle", "t.start_time + (t.end_time - t.start_time) / 2")
}

func scanTrip(r pgx.CollectableRow) (Trip, error) {
	var t Trip
	var ss, es stationColumns
	var job *string
	err := r.Scan(&t.ID, &t.Vehicle, &t.Start.Time, &t.Start.Lat, &t.Start.Lng, &t.End.Time, &t.End.Lat, &t.End.Lng,
		&t.Open, &t.DistanceM, &t.MaxSpeedKmh, &t.MovingS, &t.IdleS, &t.Fixes, &t.FixesUsed, &t.FixesDropped,
		&t.DistanceDroppedM, &t.Flags, &t.Revision,
		&ss.id, &ss.name, &ss.typ, &es.id, &es.name, &es.typ, &job)
	t.Start.Station, t.End.Station = ss.station(), es.station()
	if job != nil {
		t.JobID = *job
	}
	return t, err
}

type stationColumns struct{ id, name, typ *string }

func (c stationColumns) station() *Station {
	if c.id == nil {
		return nil
	}
	s := &Station{ID: *c.id}
	if c.name != nil {
		s.Name = *c.name
	}
	if c.typ != nil {
		s.Type = *c.typ
	}
	return s
}

// window is the part of a list query that picks a page of a vehicle's
// segments of table overlapping [From, To) in start order, after the
// cursor: those that started in the window, and the one in progress when
// the window began (a vehicle's segments of one kind never overlap, so it
// is the last that started before it). Each part is a range scan of the
// (vehicle, start_time) index.
func window(table string, q Query) (string, []any) {
	after := time.Time{}
	if q.After != nil {
		after = *q.After
	}
	return `(SELECT * FROM (SELECT * FROM ` + table + ` WHERE vehicle = $1 AND start_time < $2
			ORDER BY start_time DESC LIMIT 1) p WHERE end_time >= $2 AND start_time > $5
		UNION ALL (SELECT * FROM ` + table + ` WHERE vehicle = $1 AND start_time >= $2 AND start_time < $3
			AND start_time > $5 ORDER BY start_time LIMIT $4))`, []any{q.Vehicle, q.From, q.To, q.Limit, after}
}

// Trips returns the trips q selects, in start order.
func (s *Store) Trips(ctx context.Context, q Query) ([]Trip, error) {
	if q.Limit < 1 {
		return nil, errors.New("list trips: a limit is required")
	}
	page, args := window("trips", q)
	out, err := collect(ctx, s, scanTrip, tripSelect+` FROM (SELECT * FROM `+page+` w ORDER BY start_time LIMIT $4) t
		`+tripJoins()+` ORDER BY t.start_time`, args...)
	if err != nil {
		return nil, fmt.Errorf("trips of %s: %w", q.Vehicle, err)
	}
	return out, nil
}

// Trip returns trip id (a UUID in its canonical form), or an error
// wrapping ErrNotFound.
func (s *Store) Trip(ctx context.Context, id string) (Trip, error) {
	list, err := collect(ctx, s, scanTrip, tripSelect+` FROM (SELECT * FROM trips WHERE id = $1) t `+tripJoins(), id)
	if err != nil {
		return Trip{}, fmt.Errorf("trip %s: %w", id, err)
	}
	if len(list) == 0 {
		return Trip{}, fmt.Errorf("trip %s: %w", id, ErrNotFound)
	}
	return list[0], nil
}

func scanStop(r pgx.CollectableRow) (Stop, error) {
	var st Stop
	var sc stationColumns
	var job *string
	err := r.Scan(&st.ID, &st.Vehicle, &st.Start, &st.End, &st.Lat, &st.Lng, &st.Open, &st.Fixes, &st.Flags,
		&st.Revision, &sc.id, &sc.name, &sc.typ, &job)
	st.Station = sc.station()
	if job != nil {
		st.JobID = *job
	}
	return st, err
}

// collect runs a query that joins the read models' tables (trips with
// visits, stations and jobs) and scans its rows, again if a rebuild's
// switch ended it to break a deadlock.
func collect[T any](ctx context.Context, s *Store, scan pgx.RowToFunc[T], sql string, args ...any) ([]T, error) {
	var out []T
	err := postgres.RetryRead(ctx, func() error {
		rows, err := s.pool.Query(ctx, sql, args...)
		if err == nil {
			out, err = pgx.CollectRows(rows, scan)
		}
		return err
	})
	return out, err
}

// Stops returns the stops q selects, in start order.
func (s *Store) Stops(ctx context.Context, q Query) ([]Stop, error) {
	if q.Limit < 1 {
		return nil, errors.New("list stops: a limit is required")
	}
	page, args := window("stops", q)
	out, err := collect(ctx, s, scanStop, `SELECT t.id::text, t.vehicle, t.start_time, t.end_time, t.lat, t.lng, t.open, t.fixes,
			t.flags, t.revision, ss.station_id, ss.name, ss.station_type, jb.id
		FROM (SELECT * FROM `+page+` w ORDER BY start_time LIMIT $4) t
		`+stationAt("ss", "t.vehicle", "t.start_time")+`
		`+jobAt("jb", "t.vehicle", "t.start_time + (t.end_time - t.start_time) / 2")+`
		ORDER BY t.start_time`, args...)
	if err != nil {
		return nil, fmt.Errorf("stops of %s: %w", q.Vehicle, err)
	}
	return out, nil
}

// FleetCursor is the keyset cursor of a fleet's trips: the start and id
// of the last trip of the page.
type FleetCursor struct {
	Start time.Time
	ID    string
}

// FleetQuery selects the trips of every vehicle (or of Plates) that
// overlap [From, To), in (start, id) order.
type FleetQuery struct {
	From, To time.Time
	// Plates, when not empty, keeps only these vehicles' trips.
	Plates []string
	// After is the keyset cursor: only trips after it in (start, id) order.
	After *FleetCursor
	// Limit caps the result (required).
	Limit int
}

// FleetTrips returns the trips q selects. Two index scans make the
// window: the trips that started in it (by the start_time index), and for
// each vehicle the one trip in progress when it began (a vehicle's trips
// never overlap, so it is its last that started before From: one probe
// of the (vehicle, start_time) index per vehicle the projection knows).
func (s *Store) FleetTrips(ctx context.Context, q FleetQuery) ([]Trip, error) {
	if q.Limit < 1 {
		return nil, errors.New("list the fleet's trips: a limit is required")
	}
	after := FleetCursor{Start: time.Unix(-62135596800, 0).UTC(), ID: "00000000-0000-0000-0000-000000000000"}
	if q.After != nil {
		after = *q.After
	}
	var plates []string
	if len(q.Plates) > 0 {
		plates = q.Plates
	}
	out, err := collect(ctx, s, scanTrip, tripSelect+` FROM (
		SELECT * FROM (
			(SELECT p.* FROM trip_vehicles v CROSS JOIN LATERAL (
				SELECT * FROM trips WHERE vehicle = v.vehicle AND start_time < $1 ORDER BY start_time DESC LIMIT 1) p
			 WHERE p.end_time >= $1 AND ($3::text[] IS NULL OR v.vehicle = ANY($3)))
			UNION ALL
			(SELECT * FROM trips WHERE start_time >= $1 AND start_time < $2 AND (start_time, id) > ($4, $5::uuid)
			   AND ($3::text[] IS NULL OR vehicle = ANY($3))
			 ORDER BY start_time, id LIMIT $6)) w
		WHERE (start_time, id) > ($4, $5::uuid)
		ORDER BY start_time, id LIMIT $6) t
		`+tripJoins()+` ORDER BY t.start_time, t.id`,
		q.From, q.To, plates, after.Start, after.ID, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("the fleet's trips: %w", err)
	}
	return out, nil
}
