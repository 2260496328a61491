package trips

import (
	"context"
	"fmt"
	"time"

	"github.com/tmsfleet/tms/adapters/postgres"
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
	n, err := postgres.Export(ctx, s.pool, "trips", where,
		tripSelect+` FROM (SELECT * FROM trips WHERE `+where+`) t `+tripJoins()+` ORDER BY t.start_time, t.id`,
		args, max, scanTrip, fn)
	if err != nil {
		return n, fmt.Errorf("export trips: %w", err)
	}
	return n, nil
}
