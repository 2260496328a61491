package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/tmsfleet/tms/adapters/postgres"
)

// ExportQuery selects jobs for an export: one vehicle's (Vehicle set) or
// the whole fleet's, created in [From, To).
type ExportQuery struct {
	Vehicle  string
	From, To time.Time
}

// Export counts the jobs q selects and, when they are at most max, calls
// fn with each of them in creation order (ties by id), as they are read;
// fn must not keep the job. Both happen in one read-only snapshot. When q
// selects more than max jobs, Export streams none and returns a count
// above max. fn's error stops the stream and is returned as it is.
func (s *Store) Export(ctx context.Context, q ExportQuery, max int64, fn func(j *Job) error) (int64, error) {
	where, args := `created_at >= $1 AND created_at < $2`, []any{q.From, q.To}
	if q.Vehicle != "" {
		where, args = where+` AND vehicle = $3`, append(args, q.Vehicle)
	}
	n, err := postgres.Export(ctx, s.pool, "jobs", where, `SELECT `+jobColumns+` FROM jobs WHERE `+where+` ORDER BY created_at, id`,
		args, max, scanJob, fn)
	if err != nil {
		return n, fmt.Errorf("export jobs: %w", err)
	}
	return n, nil
}
