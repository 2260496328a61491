package timeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tmsfleet/tms/projections/jobs"
	"github.com/tmsfleet/tms/projections/vehicles"
	"github.com/tmsfleet/tms/projections/visits"
)

// Store is the Source of the read models in Postgres: the queries of the
// vehicles, visits and jobs stores.
type Store struct {
	vehicles *vehicles.Store
	visits   *visits.Store
	jobs     *jobs.Store
}

// NewStore reads through pool.
func NewStore(pool *pgxpool.Pool) *Store {
	return &Store{vehicles: vehicles.NewStore(pool), visits: visits.NewStore(pool), jobs: jobs.NewStore(pool)}
}

// Track implements Source.
func (s *Store) Track(ctx context.Context, q vehicles.TrackQuery) ([]vehicles.Fix, error) {
	return s.vehicles.Track(ctx, q)
}

// Around implements Source.
func (s *Store) Around(ctx context.Context, plate string, from, to time.Time) (before, after *vehicles.Fix, err error) {
	return s.vehicles.Around(ctx, plate, from, to)
}

// Entries implements Source.
func (s *Store) Entries(ctx context.Context, q visits.TimelineQuery) ([]visits.Visit, error) {
	return s.visits.Entries(ctx, q)
}

// Exits implements Source.
func (s *Store) Exits(ctx context.Context, q visits.TimelineQuery) ([]visits.Visit, error) {
	return s.visits.Exits(ctx, q)
}

// JobEvents implements Source.
func (s *Store) JobEvents(ctx context.Context, q jobs.TimelineQuery) ([]jobs.TimelineEvent, error) {
	return s.jobs.Timeline(ctx, q)
}

// Errors of a window lookup (JobWindows, and the trips' when they come).
var (
	// ErrNotFound: no trip or job has the id.
	ErrNotFound = errors.New("not found")
	// ErrNotStarted: the job has not started, so it has no history yet.
	ErrNotStarted = errors.New("has not started")
)

// JobWindows finds a job's replay window in the jobs read model: its
// vehicle, from its start to its end (see jobs.Job.Window), the end
// included.
type JobWindows struct {
	Jobs *jobs.Store
	// Now is the end of a job still under way; default time.Now.
	Now func() time.Time
}

// Window returns the timeline query of job id, or an error wrapping
// ErrNotFound or ErrNotStarted.
func (w JobWindows) Window(ctx context.Context, id string) (Query, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		return Query{}, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	j, err := w.Jobs.Get(ctx, u.String())
	if errors.Is(err, jobs.ErrNotFound) {
		return Query{}, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Query{}, err
	}
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	from, to, ok := j.Window(now())
	if !ok {
		return Query{}, fmt.Errorf("job %s: %w", id, ErrNotStarted)
	}
	// The window includes its end; a query's range does not.
	return Query{Vehicle: j.Vehicle, From: from, To: to.Add(time.Microsecond)}, nil
}
