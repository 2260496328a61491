package vehicles

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotFound is returned for a vehicle tms has never received a fix from.
var ErrNotFound = errors.New("vehicle not found")

// Vehicle is a vehicle's latest fix (by fix time) and its totals.
type Vehicle struct {
	Plate          string
	FixTime        time.Time
	ReceivedAt     time.Time
	Lat, Lng       float64
	SpeedKmh       float64
	CourseDeg      *float64
	Flags          []string
	FirstSeen      time.Time
	LastSeen       time.Time
	PositionsCount int64
}

// Fix is one stored position of a track.
type Fix struct {
	FixTime    time.Time
	ReceivedAt time.Time
	Lat, Lng   float64
	SpeedKmh   float64
	CourseDeg  *float64
	Flags      []string
}

// BBox is a longitude/latitude rectangle. MinLng > MaxLng means it crosses
// the antimeridian.
type BBox struct {
	MinLng, MinLat, MaxLng, MaxLat float64
}

// Contains reports whether (lat, lng) lies in the box, edges included.
func (b BBox) Contains(lat, lng float64) bool {
	if lat < b.MinLat || lat > b.MaxLat {
		return false
	}
	if b.MinLng <= b.MaxLng {
		return lng >= b.MinLng && lng <= b.MaxLng
	}
	return lng >= b.MinLng || lng <= b.MaxLng
}

// ListQuery selects vehicles, ordered by plate.
type ListQuery struct {
	// After is the keyset cursor: only plates after it are returned.
	After string
	// Limit caps the result; 0 means no cap.
	Limit int
	// Plates, when not empty, keeps only these vehicles.
	Plates []string
	// BBox, when set, keeps only vehicles whose latest fix is inside it.
	BBox *BBox
	// Search, when not empty, keeps only vehicles whose plate contains it,
	// matched literally and case-sensitively (LIKE's %, _ and \ in it are
	// escaped): callers normalise it as plates are.
	Search string
}

// TrackQuery selects one vehicle's fixes in [From, To), in fix-time order.
type TrackQuery struct {
	Plate    string
	From, To time.Time
	// After is the keyset cursor: only fixes after this fix time.
	After *time.Time
	// Limit caps the result (required).
	Limit int
}

// Store reads the vehicles read model.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore reads through pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

const vehicleColumns = `plate, fix_time, received_at, lat, lng, speed_kmh, course_deg, flags,
	first_seen, last_seen, positions_count`

// List returns the vehicles q selects.
func (s *Store) List(ctx context.Context, q ListQuery) ([]Vehicle, error) {
	plates := q.Plates
	if plates == nil {
		plates = []string{}
	}
	args := []any{q.After, plates}
	sql := `SELECT ` + vehicleColumns + ` FROM vehicles
		WHERE plate > $1 AND (cardinality($2::text[]) = 0 OR plate = ANY($2))`
	if q.Search != "" {
		// A substring is found by scanning the vehicles table (one row a
		// vehicle); the plate order of the scan lets a page stop early.
		args = append(args, "%"+escapeLike(q.Search)+"%")
		sql += fmt.Sprintf(` AND plate LIKE $%d ESCAPE '\'`, len(args))
	}
	if q.BBox != nil {
		b, n := q.BBox, len(args)
		args = append(args, b.MinLat, b.MaxLat, b.MinLng, b.MaxLng)
		sql += fmt.Sprintf(` AND lat BETWEEN $%[1]d AND $%[2]d
			AND CASE WHEN $%[3]d::float8 <= $%[4]d::float8 THEN lng BETWEEN $%[3]d AND $%[4]d ELSE lng >= $%[3]d OR lng <= $%[4]d END`,
			n+1, n+2, n+3, n+4)
	}
	sql += ` ORDER BY plate`
	if q.Limit > 0 {
		args = append(args, q.Limit)
		sql += fmt.Sprintf(` LIMIT $%d`, len(args))
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("list vehicles: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanVehicle)
	if err != nil {
		return nil, fmt.Errorf("list vehicles: %w", err)
	}
	return out, nil
}

// likeEscaper escapes LIKE's wildcards and its escape character.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// escapeLike makes s match itself only in a LIKE pattern with ESCAPE '\'.
func escapeLike(s string) string { return likeEscaper.Replace(s) }

// Get returns one vehicle, or ErrNotFound.
func (s *Store) Get(ctx context.Context, plate string) (Vehicle, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+vehicleColumns+` FROM vehicles WHERE plate = $1`, plate)
	if err != nil {
		return Vehicle{}, fmt.Errorf("get vehicle: %w", err)
	}
	v, err := pgx.CollectExactlyOneRow(rows, scanVehicle)
	if errors.Is(err, pgx.ErrNoRows) {
		return Vehicle{}, ErrNotFound
	}
	if err != nil {
		return Vehicle{}, fmt.Errorf("get vehicle: %w", err)
	}
	return v, nil
}

// Track returns the fixes q selects.
func (s *Store) Track(ctx context.Context, q TrackQuery) ([]Fix, error) {
	from := q.From
	if q.After != nil && q.After.After(from) {
		from = q.After.Add(time.Microsecond) // fix times are stored to the microsecond
	}
	rows, err := s.pool.Query(ctx, `
		SELECT fix_time, received_at, lat, lng, speed_kmh, course_deg, flags
		FROM positions
		WHERE plate = $1 AND fix_time >= $2 AND fix_time < $3
		ORDER BY fix_time
		LIMIT $4`, q.Plate, from, q.To, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("track of %s: %w", q.Plate, err)
	}
	out, err := collectFixes(rows)
	if err != nil {
		return nil, fmt.Errorf("track of %s: %w", q.Plate, err)
	}
	return out, nil
}

func scanFix(r pgx.CollectableRow) (Fix, error) {
	var f Fix
	err := r.Scan(&f.FixTime, &f.ReceivedAt, &f.Lat, &f.Lng, &f.SpeedKmh, &f.CourseDeg, &f.Flags)
	return f, err
}

func scanVehicle(r pgx.CollectableRow) (Vehicle, error) {
	var v Vehicle
	err := r.Scan(&v.Plate, &v.FixTime, &v.ReceivedAt, &v.Lat, &v.Lng, &v.SpeedKmh, &v.CourseDeg, &v.Flags,
		&v.FirstSeen, &v.LastSeen, &v.PositionsCount)
	return v, err
}
