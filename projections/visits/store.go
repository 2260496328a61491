package visits

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Visit is one visit of a vehicle to a station. ExitedAt and DwellS are
// nil while it is open.
type Visit struct {
	VisitID        string
	Vehicle        string
	StationID      string
	StationType    string
	StationVersion int64
	EnteredAt      time.Time
	ExitedAt       *time.Time
	DwellS         *float64
	EntryFlags     []string
	ExitFlags      []string
	// InitialCause says why an entry flagged initial is one; "" otherwise.
	InitialCause string
	// GapS and ExitGapS are the silences before the entry and the exit,
	// when there were any.
	GapS, ExitGapS *float64
}

// Open reports whether the vehicle is still inside.
func (v *Visit) Open() bool { return v.ExitedAt == nil }

// Cursor is a position in the newest-first order of visits: the last
// visit of the previous page.
type Cursor struct {
	EnteredAt time.Time
	VisitID   string
}

// Query selects visits that overlap [From, To): entered before To, and
// still open or exited at or after From. They come newest entry first
// (ties by visit id, descending).
type Query struct {
	// StationID and Vehicle, when set, keep only that station's or that
	// vehicle's visits.
	StationID string
	Vehicle   string
	From, To  time.Time
	// Open, when set, keeps only open (true) or closed (false) visits.
	Open *bool
	// After is the keyset cursor: only visits after it in the order.
	After *Cursor
	// Limit caps the result (required).
	Limit int
}

// Store reads the visits read model.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore reads through pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// visitFields are the stored columns; visitColumns read them the way
// scanVisit takes them.
const visitFields = `visit_id, vehicle, station_id, station_type, station_version, entered_at, exited_at,
	dwell_s, entry_flags, exit_flags, initial_cause, gap_s, exit_gap_s`

const visitColumns = `visit_id::text, vehicle, station_id, station_type, station_version, entered_at, exited_at,
	dwell_s, entry_flags, exit_flags, coalesce(initial_cause, ''), gap_s, exit_gap_s`

func scanVisit(r pgx.CollectableRow) (Visit, error) {
	var v Visit
	err := r.Scan(&v.VisitID, &v.Vehicle, &v.StationID, &v.StationType, &v.StationVersion, &v.EnteredAt, &v.ExitedAt,
		&v.DwellS, &v.EntryFlags, &v.ExitFlags, &v.InitialCause, &v.GapS, &v.ExitGapS)
	return v, err
}

// List returns the visits q selects.
//
// The visits overlapping a window are those that began in it and those
// in progress when it began. Each part is a range scan of its own index
// (see the migration), so a query costs what it finds near the window,
// not the length of the history before it.
func (s *Store) List(ctx context.Context, q Query) ([]Visit, error) {
	if q.Limit < 1 {
		return nil, fmt.Errorf("list visits: a limit is required")
	}
	args := []any{q.From, q.To, q.Limit}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	var filter strings.Builder
	if q.StationID != "" {
		filter.WriteString(" AND station_id = " + arg(q.StationID))
	}
	if q.Vehicle != "" {
		filter.WriteString(" AND vehicle = " + arg(q.Vehicle))
	}
	if q.After != nil {
		filter.WriteString(fmt.Sprintf(" AND (entered_at, visit_id) < (%s, %s::uuid)", arg(q.After.EnteredAt), arg(q.After.VisitID)))
	}
	part := func(window string) string {
		return `(SELECT ` + visitFields + ` FROM visits WHERE ` + window + filter.String() +
			` ORDER BY entered_at DESC, visit_id DESC LIMIT $3)`
	}
	var parts []string
	switch {
	case q.Open == nil:
		parts = []string{
			part(`entered_at >= $1 AND entered_at < $2`),
			part(`entered_at < $1 AND exited_at >= $1`),
			part(`entered_at < $1 AND exited_at IS NULL`),
		}
	case *q.Open:
		parts = []string{
			part(`entered_at >= $1 AND entered_at < $2 AND exited_at IS NULL`),
			part(`entered_at < $1 AND exited_at IS NULL`),
		}
	default:
		parts = []string{
			part(`entered_at >= $1 AND entered_at < $2 AND exited_at IS NOT NULL`),
			part(`entered_at < $1 AND exited_at >= $1`),
		}
	}
	sql := `SELECT ` + visitColumns + ` FROM (` + strings.Join(parts, " UNION ALL ") + `) v
		ORDER BY entered_at DESC, visit_id DESC LIMIT $3`
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("list visits: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanVisit)
	if err != nil {
		return nil, fmt.Errorf("list visits: %w", err)
	}
	return out, nil
}

// OpenByVehicles returns the open visits of the vehicles with plates
// (each vehicle's current stations), in one query, ordered by vehicle
// and then by entry.
func (s *Store) OpenByVehicles(ctx context.Context, plates []string) ([]Visit, error) {
	if len(plates) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+visitColumns+` FROM visits
		WHERE vehicle = ANY($1) AND exited_at IS NULL
		ORDER BY vehicle, entered_at, station_id`, plates)
	if err != nil {
		return nil, fmt.Errorf("open visits of %d vehicles: %w", len(plates), err)
	}
	out, err := pgx.CollectRows(rows, scanVisit)
	if err != nil {
		return nil, fmt.Errorf("open visits of %d vehicles: %w", len(plates), err)
	}
	return out, nil
}

// OpenAtStation returns up to limit open visits of the station (the
// vehicles inside it now), earliest entry first.
func (s *Store) OpenAtStation(ctx context.Context, stationID string, limit int) ([]Visit, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+visitColumns+` FROM visits
		WHERE station_id = $1 AND exited_at IS NULL
		ORDER BY entered_at, visit_id LIMIT $2`, stationID, limit)
	if err != nil {
		return nil, fmt.Errorf("vehicles inside %s: %w", stationID, err)
	}
	out, err := pgx.CollectRows(rows, scanVisit)
	if err != nil {
		return nil, fmt.Errorf("vehicles inside %s: %w", stationID, err)
	}
	return out, nil
}
