package rebuild

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// StateSchema holds what a rebuild keeps of itself: the rebuilds and
// their progress. It is not a read model (nothing in it comes from the
// topics), so it lives apart from them, beside the shadow schemas the
// rebuilds build in (ShadowPrefix + an id).
const StateSchema = "tms_rebuild"

// ShadowPrefix begins the name of every rebuild's shadow schema.
const ShadowPrefix = "tms_rebuild_"

// Rebuild states. A rebuild is unfinished until it is done or abandoned:
// `tms rebuild` with the same read models resumes it.
const (
	// StateBuilding: projecting the topics into the shadow tables.
	StateBuilding = "building"
	// StateSwitching: caught up, putting the shadow tables in the place
	// of the live ones.
	StateSwitching = "switching"
	// StateInterrupted: building or switching, but no process is at it
	// (stopped, or died); the next `tms rebuild` of the same read models
	// goes on from where it got to.
	StateInterrupted = "interrupted"
	// StateFailed: stopped on an error that retrying would not cure
	// (Detail says which); resumable once the cause is mended.
	StateFailed = "failed"
	// StateDone: switched over; the old tables are gone.
	StateDone = "done"
	// StateAbandoned: dropped unfinished by `tms rebuild --restart`.
	StateAbandoned = "abandoned"
)

// Read-model states within a rebuild.
const (
	// ModelBuilding: its shadow tables are behind the live projector's.
	ModelBuilding = "building"
	// ModelCaughtUp: its shadow tables have reached the topics' ends as
	// they were when the rebuild started, and the live projector.
	ModelCaughtUp = "caught_up"
	// ModelSwitched: its rebuilt tables are the live ones.
	ModelSwitched = "switched"
)

// stateDDL makes the state schema; it runs on every start of a rebuild,
// and every statement in it is idempotent. The schema is not in
// migrations/ on purpose: migrations make read models, which a rebuild
// makes copies of, and the rebuild's own bookkeeping is not one.
const stateDDL = `
CREATE SCHEMA IF NOT EXISTS tms_rebuild;
CREATE TABLE IF NOT EXISTS tms_rebuild.rebuilds (
    id             uuid PRIMARY KEY,
    shadow_schema  text        NOT NULL,
    -- The read models, by name (projections.Select), sorted.
    read_models    text[]      NOT NULL,
    state          text        NOT NULL,
    detail         text,
    started_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    switched_at    timestamptz,
    finished_at    timestamptz
);
CREATE INDEX IF NOT EXISTS rebuilds_started ON tms_rebuild.rebuilds (started_at);
CREATE TABLE IF NOT EXISTS tms_rebuild.rebuild_models (
    rebuild_id  uuid             NOT NULL REFERENCES tms_rebuild.rebuilds (id) ON DELETE CASCADE,
    read_model  text             NOT NULL,
    tables      text[]           NOT NULL,
    state       text             NOT NULL,
    -- Records of its topics projected, and there are (both from the
    -- topics' first retained offsets); the rate over the last seconds,
    -- per second, and the time left at that rate.
    done        bigint           NOT NULL DEFAULT 0,
    total       bigint           NOT NULL DEFAULT 0,
    rate        double precision NOT NULL DEFAULT 0,
    eta_s       double precision,
    updated_at  timestamptz      NOT NULL,
    PRIMARY KEY (rebuild_id, read_model)
);`

// EnsureState makes the state schema; Run calls it first. Concurrent
// callers are serialised: CREATE ... IF NOT EXISTS is not safe against a
// concurrent creation.
func EnsureState(ctx context.Context, pool *pgxpool.Pool) error {
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, lockClass, lockState); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, stateDDL)
		return err
	})
	if err != nil {
		return fmt.Errorf("rebuild: create schema %s: %w", StateSchema, err)
	}
	return nil
}

// The advisory locks of rebuilds (two-key form). lockRunning is held, for
// its session, by the one process rebuilding: a second one refuses to
// start, and a rebuild whose process is gone shows as interrupted.
const (
	lockClass   = 0x746d7372 // "tmsr"
	lockRunning = 1
	lockState   = 2
)

// Rebuild is one rebuild as Store reads it.
type Rebuild struct {
	ID           string
	ShadowSchema string
	State        string
	Detail       string
	StartedAt    time.Time
	UpdatedAt    time.Time
	SwitchedAt   *time.Time
	FinishedAt   *time.Time
	Models       []Model
}

// Model is one read model's progress in a rebuild.
type Model struct {
	Name   string
	Tables []string
	State  string
	// Done and Total are records of its topics: projected, and in the
	// topics (from their first retained offsets; Total grows while
	// events arrive).
	Done, Total int64
	// Rate is records per second over the last seconds.
	Rate float64
	// ETA is the time left at Rate; nil when nothing moves.
	ETA *time.Duration
	// UpdatedAt is when the figures were measured.
	UpdatedAt time.Time
}

// Store reads rebuilds for the API. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a store reading pool's database.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// List returns up to limit rebuilds, newest first, each with its read
// models in name order. A rebuild building or switching that no process
// holds is reported interrupted. A database where no rebuild ever ran
// (no state schema) has none.
func (s *Store) List(ctx context.Context, limit int) ([]Rebuild, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT r.id::text, r.shadow_schema,
		       CASE WHEN r.state IN ('building', 'switching') AND NOT EXISTS (
		                SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted
		                AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		                AND l.classid = $2::oid AND l.objid = $3::oid AND l.objsubid = 2)
		            THEN 'interrupted' ELSE r.state END,
		       coalesce(r.detail, ''), r.started_at, r.updated_at, r.switched_at, r.finished_at
		FROM tms_rebuild.rebuilds r ORDER BY r.started_at DESC, r.id LIMIT $1`, limit, lockClass, lockRunning)
	if err != nil {
		if missingState(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("list rebuilds: %w", err)
	}
	var out []Rebuild
	var r Rebuild
	if _, err := pgx.ForEachRow(rows, []any{&r.ID, &r.ShadowSchema, &r.State, &r.Detail, &r.StartedAt, &r.UpdatedAt,
		&r.SwitchedAt, &r.FinishedAt}, func() error {
		out = append(out, r)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list rebuilds: %w", err)
	}
	if len(out) == 0 {
		return out, nil
	}
	ids := make([]string, len(out))
	index := make(map[string]int, len(out))
	for i, r := range out {
		ids[i], index[r.ID] = r.ID, i
	}
	rows, err = s.pool.Query(ctx, `
		SELECT rebuild_id::text, read_model, tables, state, done, total, rate, eta_s, updated_at
		FROM tms_rebuild.rebuild_models WHERE rebuild_id = ANY($1::uuid[]) ORDER BY rebuild_id, read_model`, ids)
	if err != nil {
		return nil, fmt.Errorf("list rebuilds: %w", err)
	}
	var id string
	var m Model
	var eta *float64
	if _, err := pgx.ForEachRow(rows, []any{&id, &m.Name, &m.Tables, &m.State, &m.Done, &m.Total, &m.Rate, &eta, &m.UpdatedAt}, func() error {
		m.ETA = nil
		if eta != nil {
			d := time.Duration(*eta * float64(time.Second))
			m.ETA = &d
		}
		out[index[id]].Models = append(out[index[id]].Models, m)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list rebuilds: %w", err)
	}
	return out, nil
}

// missingState reports the error of a query on a state schema that was
// never made.
func missingState(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3F000") // undefined_table, invalid_schema_name
}
