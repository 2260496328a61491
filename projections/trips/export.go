package trips

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ExportQuery selects trips for an export: one vehicle's (Vehicle set) or
// the whole fleet's, started in [From, To). Started in, not overlapping:
// consecutive ranges export each trip once, as they do jobs and visits.
type ExportQuery struct {
	Vehicle  string
	From, To time.Time
}

// Export counts the trips q selects and, when they are at most max, calls
// fn with each of them in start order (ties by id), with its stations and
// job, as they are read; fn must not keep the trip. Both happen in one
// read-only snapshot. When q selects more than max trips, Export streams
// none and returns a count above max. fn's error stops the stream and is
// returned as it is.
func (s *Store) Export(ctx context.Context, q ExportQuery, max int64, fn func(t *Trip) error) (int64, error) {
	where, args := `start_time >= $1 AND start_time < $2`, []any{q.From, q.To}
	if q.Vehicle != "" {
		where, args = where+` AND vehicle = $3`, append(args, q.Vehicle)
	}
	var n int64
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM (SELECT 1 FROM trips WHERE %s LIMIT $%d) s`,
			where, len(args)+1), append(args, max+1)...).Scan(&n); err != nil {
			return err
		}
		if n > max {
			return nil
		}
		rows, err := tx.Query(ctx, tripSelect+` FROM (SELECT * FROM trips WHERE `+where+`) t `+tripJoins()+
			` ORDER BY t.start_time, t.id`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			t, err := scanTrip(rows)
			if err != nil {
				return err
			}
			if err := fn(&t); err != nil {
				return err
			}
		}
		return rows.Err()
	})
	if err != nil {
		return n, fmt.Errorf("export trips: %w", err)
	}
	return n, nil
}
