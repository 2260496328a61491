package vehicles

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Around returns the vehicle's last fix before from and its first fix
// after to, each nil when there is none, in one round trip: what a
// distance measured over [from, to] is interpolated at its ends with, as
// a job's completion is (domain/job).
func (s *Store) Around(ctx context.Context, plate string, from, to time.Time) (before, after *Fix, err error) {
	rows, err := s.pool.Query(ctx, `
		(SELECT fix_time, received_at, lat, lng, speed_kmh, course_deg, flags FROM positions
		 WHERE plate = $1 AND fix_time < $2 ORDER BY fix_time DESC LIMIT 1)
		UNION ALL
		(SELECT fix_time, received_at, lat, lng, speed_kmh, course_deg, flags FROM positions
		 WHERE plate = $1 AND fix_time > $3 ORDER BY fix_time LIMIT 1)`, plate, from, to)
	if err != nil {
		return nil, nil, fmt.Errorf("fixes around %s's window: %w", plate, err)
	}
	fixes, err := pgx.CollectRows(rows, scanFix)
	if err != nil {
		return nil, nil, fmt.Errorf("fixes around %s's window: %w", plate, err)
	}
	for i := range fixes {
		if fixes[i].FixTime.Before(from) {
			before = &fixes[i]
		} else {
			after = &fixes[i]
		}
	}
	return before, after, nil
}
