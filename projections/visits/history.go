package visits

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tmsfleet/tms/adapters/postgres"
)

// Boundaries returns the times at which vehicle entered or left a
// station within [from, to), in time order, at most limit of them: what
// a simplified track keeps a fix of whatever its tolerance.
func (s *Store) Boundaries(ctx context.Context, vehicle string, from, to time.Time, limit int) ([]time.Time, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT t FROM (
			(SELECT entered_at AS t FROM visits WHERE vehicle = $1 AND entered_at >= $2 AND entered_at < $3
			 ORDER BY entered_at LIMIT $4)
			UNION ALL
			(SELECT exited_at FROM visits WHERE vehicle = $1 AND exited_at >= $2 AND exited_at < $3
			 ORDER BY exited_at LIMIT $4)
		) b ORDER BY t LIMIT $4`, vehicle, from, to, limit)
	if err != nil {
		return nil, fmt.Errorf("station entries and exits of %s: %w", vehicle, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		return nil, fmt.Errorf("station entries and exits of %s: %w", vehicle, err)
	}
	return out, nil
}

// ExportQuery selects visits for an export: one vehicle's (Vehicle set)
// or the whole fleet's, that overlap [From, To).
type ExportQuery struct {
	Vehicle  string
	From, To time.Time
}

// StationShape is where an exported visit took place: its station's
// geometry (GeoJSON, WGS84) and radius for a circle; Geometry is nil for
// a station the read model never saw defined.
type StationShape struct {
	Geometry json.RawMessage
	RadiusM  *float64
}

// Export counts the visits q selects and, when they are at most max,
// calls fn with each of them and its station's shape, in entry order
// (ties by visit id): first those in progress when the range begins, then
// those that begin in it, as they are read. Both happen in one read-only
// snapshot. When q selects more than max visits, Export streams none and
// returns a count above max. fn's error stops the stream and is returned
// as it is.
func (s *Store) Export(ctx context.Context, q ExportQuery, max int64, fn func(v *Visit, at *StationShape) error) (int64, error) {
	filter, args := "", []any{q.From, q.To}
	if q.Vehicle != "" {
		filter, args = " AND vehicle = $3", append(args, q.Vehicle)
	}
	// The visits in progress at From, then those entered in [From, To):
	// each part an ordered range scan of its own index. (entered_at < $2
	// holds whenever entered_at < $1 does; it gives $2 its type.)
	parts := []string{
		`entered_at < $1 AND entered_at < $2 AND exited_at >= $1` + filter,
		`entered_at < $1 AND entered_at < $2 AND exited_at IS NULL` + filter,
		`entered_at >= $1 AND entered_at < $2` + filter,
	}
	var n int64
	err := postgres.InSnapshot(ctx, s.pool, func(tx pgx.Tx) error {
		for _, p := range parts {
			c, err := postgres.CountUpTo(ctx, tx, "visits", p, args, max+1-n)
			if err != nil {
				return err
			}
			if n += c; n > max {
				return nil
			}
		}
		// The in-progress parts are small (visits open across From); they
		// are merged in entry order, then the range is streamed from its
		// index. Each row looks its station up by its key, which keeps
		// the index's order.
		const shape = `, (SELECT st.geometry FROM stations st WHERE st.id = visits.station_id),
			(SELECT st.radius_m FROM stations st WHERE st.id = visits.station_id)`
		queries := []string{
			`(SELECT ` + visitColumns + shape + ` FROM visits WHERE ` + parts[0] + `) UNION ALL (SELECT ` +
				visitColumns + shape + ` FROM visits WHERE ` + parts[1] + `) ORDER BY 6, 1`,
			`SELECT ` + visitColumns + shape + ` FROM visits WHERE ` + parts[2] + ` ORDER BY entered_at, visit_id`,
		}
		for _, sql := range queries {
			rows, err := tx.Query(ctx, sql, args...)
			if err != nil {
				return err
			}
			var v Visit
			var shape StationShape
			_, err = pgx.ForEachRow(rows, []any{&v.VisitID, &v.Vehicle, &v.StationID, &v.StationType, &v.StationVersion,
				&v.EnteredAt, &v.ExitedAt, &v.DwellS, &v.EntryFlags, &v.ExitFlags, &v.InitialCause, &v.GapS, &v.ExitGapS,
				&shape.Geometry, &shape.RadiusM}, func() error { return fn(&v, &shape) })
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("export visits: %w", err)
	}
	return n, nil
}
