package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tmsfleet/tms/domain/job"
)

// ErrNotFound is returned for a job the read model does not hold. It is
// the domain's, so one mapping serves both.
var ErrNotFound = job.ErrNotFound

// Job is a job as stored.
type Job struct {
	ID          string
	Vehicle     string
	ExternalRef string
	Status      string
	Cargo       job.Cargo
	Stops       []job.StopProgress
	CreatedAt   time.Time
	StartedAt   *time.Time
	CompletedAt *time.Time
	CancelledAt *time.Time
	// CancelReason is the reason of a cancelled job; "" otherwise.
	CancelReason string
	// Revision is the completion's revision: 0 before the first.
	Revision int
	// Completion is the completion of that revision; nil before the
	// first.
	Completion *job.Completion
	// UpdatedAt is the time of the last event that changed the job.
	UpdatedAt time.Time
}

// Finished reports whether nothing more can happen to the job's progress:
// it is completed or cancelled, or every stop has departed (its completion
// is settling, and stands).
func (j *Job) Finished() bool {
	if j.Status == job.StatusCompleted || j.Status == job.StatusCancelled {
		return true
	}
	for _, s := range j.Stops {
		if s.Status != job.StopDeparted {
			return false
		}
	}
	return len(j.Stops) > 0
}

// Cursor is a position in the newest-first order of jobs: the last job of
// the previous page.
type Cursor struct {
	CreatedAt time.Time
	ID        string
}

// Query selects jobs, newest creation first (ties by id, descending).
// Every filter that is set must hold.
type Query struct {
	// Vehicle keeps one vehicle's jobs.
	Vehicle string
	// Statuses keeps jobs in any of these statuses.
	Statuses []string
	// StationID keeps jobs with a stop at this station.
	StationID string
	// CreatedFrom and CreatedTo bound the creation time: [from, to).
	CreatedFrom, CreatedTo *time.Time
	// CompletedFrom and CompletedTo bound the completion time, [from,
	// to); either keeps completed jobs only.
	CompletedFrom, CompletedTo *time.Time
	// After is the keyset cursor: only jobs after it in the order.
	After *Cursor
	// Limit caps the result (required).
	Limit int
}

// Store reads the jobs read model.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore reads through pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

const jobColumns = `id::text, vehicle, coalesce(external_ref, ''), status, cargo, stops, created_at, started_at,
	completed_at, cancelled_at, coalesce(cancel_reason, ''), revision, completion, updated_at`

func scanJob(r pgx.CollectableRow) (Job, error) {
	var j Job
	var cargo, stops, completion []byte
	err := r.Scan(&j.ID, &j.Vehicle, &j.ExternalRef, &j.Status, &cargo, &stops, &j.CreatedAt, &j.StartedAt,
		&j.CompletedAt, &j.CancelledAt, &j.CancelReason, &j.Revision, &completion, &j.UpdatedAt)
	if err != nil {
		return j, err
	}
	if err := json.Unmarshal(cargo, &j.Cargo); err != nil {
		return j, fmt.Errorf("job %s: cargo: %w", j.ID, err)
	}
	if err := json.Unmarshal(stops, &j.Stops); err != nil {
		return j, fmt.Errorf("job %s: stops: %w", j.ID, err)
	}
	if completion != nil {
		j.Completion = &job.Completion{}
		if err := json.Unmarshal(completion, j.Completion); err != nil {
			return j, fmt.Errorf("job %s: completion: %w", j.ID, err)
		}
	}
	return j, nil
}

// Querier is what the reads need: a pool, a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Get returns job id (a UUID in its canonical form), or an error wrapping
// ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Job, error) { return Get(ctx, s.pool, id) }

// Get returns job id as q sees the rows (see Store.Get).
func Get(ctx context.Context, q Querier, id string) (Job, error) {
	rows, err := q.Query(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1`, id)
	if err != nil {
		return Job{}, fmt.Errorf("get job %s: %w", id, err)
	}
	j, err := pgx.CollectExactlyOneRow(rows, scanJob)
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return Job{}, fmt.Errorf("get job %s: %w", id, err)
	}
	return j, nil
}

// Request returns the create command appended for job id, as q sees the
// rows, or an error wrapping ErrNotFound when none was.
func Request(ctx context.Context, q Querier, id string) (job.Create, error) {
	rows, err := q.Query(ctx, `SELECT request FROM job_requests WHERE job_id = $1`, id)
	if err != nil {
		return job.Create{}, fmt.Errorf("request of job %s: %w", id, err)
	}
	raw, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[[]byte])
	if errors.Is(err, pgx.ErrNoRows) {
		return job.Create{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return job.Create{}, fmt.Errorf("request of job %s: %w", id, err)
	}
	var c job.Create
	if err := json.Unmarshal(raw, &c); err != nil {
		return job.Create{}, fmt.Errorf("request of job %s: %w", id, err)
	}
	return c, nil
}

// List returns the jobs q selects.
//
// Each filter narrows a range scan of its own index (see the migration);
// the station filter is a semi-join on job_stops, which holds each job's
// stations with its creation time.
func (s *Store) List(ctx context.Context, q Query) ([]Job, error) {
	if q.Limit < 1 {
		return nil, errors.New("list jobs: a limit is required")
	}
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	var where []string
	if q.Vehicle != "" {
		where = append(where, "vehicle = "+arg(q.Vehicle))
	}
	if len(q.Statuses) > 0 {
		where = append(where, "status = ANY("+arg(q.Statuses)+"::text[])")
	}
	if q.CreatedFrom != nil {
		where = append(where, "created_at >= "+arg(*q.CreatedFrom))
	}
	if q.CreatedTo != nil {
		where = append(where, "created_at < "+arg(*q.CreatedTo))
	}
	if q.CompletedFrom != nil {
		where = append(where, "completed_at >= "+arg(*q.CompletedFrom))
	}
	if q.CompletedTo != nil {
		where = append(where, "completed_at < "+arg(*q.CompletedTo))
	}
	if q.After != nil {
		where = append(where, fmt.Sprintf("(created_at, id) < (%s, %s::uuid)", arg(q.After.CreatedAt), arg(q.After.ID)))
	}
	if q.StationID != "" {
		// The same bounds on job_stops' copy of the creation time keep the
		// semi-join to the station's jobs near the page.
		inner := []string{"station_id = " + arg(q.StationID)}
		if q.CreatedFrom != nil {
			inner = append(inner, "created_at >= "+arg(*q.CreatedFrom))
		}
		if q.CreatedTo != nil {
			inner = append(inner, "created_at < "+arg(*q.CreatedTo))
		}
		if q.After != nil {
			inner = append(inner, fmt.Sprintf("(created_at, job_id) < (%s, %s::uuid)", arg(q.After.CreatedAt), arg(q.After.ID)))
		}
		where = append(where, "id IN (SELECT job_id FROM job_stops WHERE "+strings.Join(inner, " AND ")+")")
	}
	sql := `SELECT ` + jobColumns + ` FROM jobs`
	if len(where) > 0 {
		sql += ` WHERE ` + strings.Join(where, " AND ")
	}
	sql += ` ORDER BY created_at DESC, id DESC LIMIT ` + arg(q.Limit)
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanJob)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return out, nil
}
