package stations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tmsfleet/tms/domain/station"
)

// ErrNotFound is returned for a station that does not exist: never
// created, or deleted. It is the domain's, so one mapping serves both.
var ErrNotFound = station.ErrNotFound

// Station is a live station as stored: its definition at Version, since
// UpdatedAt.
type Station struct {
	ID          string
	Name        string
	Type        string
	CoordSystem string
	// Geometry is GeoJSON in WGS84.
	Geometry json.RawMessage
	// OriginalGeometry is the GeoJSON as given, for GCJ-02 stations; nil
	// otherwise.
	OriginalGeometry json.RawMessage
	// RadiusM is a circle's radius; nil for polygons.
	RadiusM   *float64
	Detection station.Detection
	Version   int64
	// UpdatedAt is the time of the event that made this version: from
	// when it applies.
	UpdatedAt time.Time
}

// ListQuery selects live stations, ordered by id.
type ListQuery struct {
	// After is the keyset cursor: only ids after it.
	After string
	// Limit caps the result; 0 means no cap.
	Limit int
	// Types, when not empty, keeps only stations of these types.
	Types []string
}

// Store reads the stations read model.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore reads through pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

const stationColumns = `id, name, type, coord_system, geometry, original_geometry, radius_m, detection, version, updated_at`

func scanStation(r pgx.CollectableRow) (Station, error) {
	var s Station
	err := r.Scan(&s.ID, &s.Name, &s.Type, &s.CoordSystem, &s.Geometry, &s.OriginalGeometry, &s.RadiusM,
		&s.Detection, &s.Version, &s.UpdatedAt)
	return s, err
}

// List returns the live stations q selects.
func (s *Store) List(ctx context.Context, q ListQuery) ([]Station, error) {
	types := q.Types
	if types == nil {
		types = []string{}
	}
	args := []any{q.After, types}
	sql := `SELECT ` + stationColumns + ` FROM stations
		WHERE deleted_at IS NULL AND id > $1 AND (cardinality($2::text[]) = 0 OR type = ANY($2))
		ORDER BY id`
	if q.Limit > 0 {
		args = append(args, q.Limit)
		sql += ` LIMIT $3`
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("list stations: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanStation)
	if err != nil {
		return nil, fmt.Errorf("list stations: %w", err)
	}
	return out, nil
}

// Get returns a live station, or an error wrapping ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Station, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+stationColumns+` FROM stations WHERE id = $1 AND deleted_at IS NULL`, id)
	if err != nil {
		return Station{}, fmt.Errorf("get station %s: %w", id, err)
	}
	st, err := pgx.CollectExactlyOneRow(rows, scanStation)
	if errors.Is(err, pgx.ErrNoRows) {
		return Station{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return Station{}, fmt.Errorf("get station %s: %w", id, err)
	}
	return st, nil
}

// Querier is what Current needs: a pool, a connection or a transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Current returns station id's standing as of the rows q sees: the
// version of its last event and whether that deleted it; the zero Current
// for a station never seen.
func Current(ctx context.Context, q Querier, id string) (station.Current, error) {
	var c station.Current
	err := q.QueryRow(ctx, `SELECT version, deleted_at IS NOT NULL FROM stations WHERE id = $1`, id).
		Scan(&c.Version, &c.Deleted)
	if errors.Is(err, pgx.ErrNoRows) {
		return station.Current{}, nil
	}
	if err != nil {
		return station.Current{}, fmt.Errorf("station %s: %w", id, err)
	}
	return c, nil
}

// Current returns station id's standing (see the function Current).
func (s *Store) Current(ctx context.Context, id string) (station.Current, error) {
	return Current(ctx, s.pool, id)
}
