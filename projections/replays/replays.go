package replays

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tmsfleet/tms/domain/geofence"
)

// Run statuses.
const (
	StatusRunning = "running"
	StatusDone    = "done"
	StatusFailed  = "failed"
)

// Run is one replay.
type Run struct {
	ID             string
	StationID      string
	StationVersion int64
	From, To       time.Time
	StartedAt      time.Time
	FinishedAt     *time.Time
	Status         string
	Detail         string
	FixesRead      int64
	Visits         int64
}

// Visit is a visit a replay found.
type Visit struct {
	VisitID      string
	Vehicle      string
	EnteredAt    time.Time
	ExitedAt     *time.Time
	DwellS       *float64
	EntryFlags   []string
	ExitFlags    []string
	InitialCause string
}

// ErrNotFound is returned for a run that does not exist.
var ErrNotFound = errors.New("replay run not found")

// Collector turns a replay's transitions into visits.
type Collector struct {
	order  []string
	visits map[string]*Visit
}

// NewCollector returns an empty collector.
func NewCollector() *Collector { return &Collector{visits: map[string]*Visit{}} }

// Add takes one transition.
func (c *Collector) Add(t geofence.Transition) error {
	v, ok := c.visits[t.VisitID]
	if !ok {
		v = &Visit{VisitID: t.VisitID, Vehicle: t.Vehicle, EnteredAt: t.At, EntryFlags: []string{}, ExitFlags: []string{}}
		c.visits[t.VisitID] = v
		c.order = append(c.order, t.VisitID)
	}
	if t.Kind == geofence.Entered {
		v.EnteredAt, v.InitialCause = t.At, t.InitialCause
		v.EntryFlags = append(v.EntryFlags, t.Flags...)
		return nil
	}
	at, dwell := t.At, t.Dwell.Seconds()
	v.ExitedAt, v.DwellS, v.EnteredAt = &at, &dwell, t.EnteredAt
	v.ExitFlags = append(v.ExitFlags, t.Flags...)
	return nil
}

// Visits returns the visits in the order they began to be seen.
func (c *Collector) Visits() []Visit {
	out := make([]Visit, 0, len(c.order))
	for _, id := range c.order {
		out = append(out, *c.visits[id])
	}
	return out
}

// Store reads and writes replay results.
type Store struct{ pool *pgxpool.Pool }

// NewStore works through pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Start records a run as running.
func (s *Store) Start(ctx context.Context, r Run) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO replay_runs (id, station_id, station_version, from_time, to_time, started_at, status)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		r.ID, r.StationID, r.StationVersion, r.From, r.To, r.StartedAt, StatusRunning)
	if err != nil {
		return fmt.Errorf("start replay run: %w", err)
	}
	return nil
}

// Finish stores a run's visits and marks it done, in one transaction.
func (s *Store) Finish(ctx context.Context, id string, fixes int64, visits []Visit, at time.Time) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"replay_visits"},
			[]string{"run_id", "visit_id", "vehicle", "entered_at", "exited_at", "dwell_s", "entry_flags", "exit_flags", "initial_cause"},
			pgx.CopyFromSlice(len(visits), func(i int) ([]any, error) {
				v := visits[i]
				var cause *string
				if v.InitialCause != "" {
					cause = &v.InitialCause
				}
				return []any{id, v.VisitID, v.Vehicle, v.EnteredAt, v.ExitedAt, v.DwellS, v.EntryFlags, v.ExitFlags, cause}, nil
			}))
		if err != nil {
			return fmt.Errorf("store replay visits: %w", err)
		}
		_, err = tx.Exec(ctx, `
			UPDATE replay_runs SET status = $2, finished_at = $3, fixes_read = $4, visits = $5 WHERE id = $1`,
			id, StatusDone, at, fixes, len(visits))
		return err
	})
}

// Fail marks a run failed with the reason.
func (s *Store) Fail(ctx context.Context, id string, reason error, at time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE replay_runs SET status = $2, detail = $3, finished_at = $4 WHERE id = $1`,
		id, StatusFailed, reason.Error(), at)
	return err
}

const runColumns = `id::text, station_id, station_version, from_time, to_time, started_at, finished_at, status,
	coalesce(detail, ''), fixes_read, visits`

func scanRun(r pgx.CollectableRow) (Run, error) {
	var x Run
	err := r.Scan(&x.ID, &x.StationID, &x.StationVersion, &x.From, &x.To, &x.StartedAt, &x.FinishedAt, &x.Status,
		&x.Detail, &x.FixesRead, &x.Visits)
	return x, err
}

// List returns the newest runs, of one station when stationID is set.
func (s *Store) List(ctx context.Context, stationID string, limit int) ([]Run, error) {
	// Columns are qualified in ORDER BY: a bare id would name the id::text
	// output column, not the uuid.
	rows, err := s.pool.Query(ctx, `SELECT `+runColumns+` FROM replay_runs r
		WHERE $1 = '' OR r.station_id = $1 ORDER BY r.started_at DESC, r.id LIMIT $2`, stationID, limit)
	if err != nil {
		return nil, fmt.Errorf("list replay runs: %w", err)
	}
	return pgx.CollectRows(rows, scanRun)
}

// Get returns one run, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Run, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+runColumns+` FROM replay_runs WHERE id = $1`, id)
	if err != nil {
		return Run{}, fmt.Errorf("get replay run: %w", err)
	}
	r, err := pgx.CollectExactlyOneRow(rows, scanRun)
	if errors.Is(err, pgx.ErrNoRows) {
		return Run{}, ErrNotFound
	}
	return r, err
}

// Visits returns a run's visits in entry order, after the (entered_at,
// visit_id) cursor when one is given.
func (s *Store) Visits(ctx context.Context, id string, afterTime *time.Time, afterID string, limit int) ([]Visit, error) {
	// The order is the uuid's, as the cursor's comparison is: a bare
	// visit_id in ORDER BY would name the visit_id::text output column,
	// whose order follows the database's collation.
	rows, err := s.pool.Query(ctx, `
		SELECT v.visit_id::text, v.vehicle, v.entered_at, v.exited_at, v.dwell_s, v.entry_flags, v.exit_flags,
		       coalesce(v.initial_cause, '')
		FROM replay_visits v
		WHERE v.run_id = $1 AND ($2::timestamptz IS NULL OR (v.entered_at, v.visit_id) > ($2, $3::uuid))
		ORDER BY v.entered_at, v.visit_id LIMIT $4`, id, afterTime, nullUUID(afterID), limit)
	if err != nil {
		return nil, fmt.Errorf("replay visits: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Visit, error) {
		var v Visit
		err := r.Scan(&v.VisitID, &v.Vehicle, &v.EnteredAt, &v.ExitedAt, &v.DwellS, &v.EntryFlags, &v.ExitFlags, &v.InitialCause)
		return v, err
	})
}

func nullUUID(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
