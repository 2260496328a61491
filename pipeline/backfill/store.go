package backfill

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Progress is how far a backfill of one plate over one range got.
type Progress struct {
	Source   string
	Plate    string
	From, To time.Time
	// Until: every fix of the range before it is in Kafka.
	Until time.Time
	// Counts so far (Summary says what each is).
	Fetched, Rejected, Known, Added, Pages, Requests int64
	StartedAt                                        time.Time
	// CompletedAt is set once the whole range is in Kafka.
	CompletedAt *time.Time
}

// Store keeps the progress of backfills (table backfill_progress) and
// answers which fixes tms already has (the positions read model).
type Store struct {
	pool *pgxpool.Pool
}

// NewStore reads and writes through pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Load returns the progress of source's backfill of plate over [from,
// to); ok is false when there is none.
func (s *Store) Load(ctx context.Context, source, plate string, from, to time.Time) (p Progress, ok bool, err error) {
	p = Progress{Source: source, Plate: plate, From: from, To: to}
	err = s.pool.QueryRow(ctx, `
		SELECT done_until, fetched, rejected, known, added, pages, requests, started_at, completed_at
		FROM backfill_progress WHERE source = $1 AND plate = $2 AND range_from = $3 AND range_to = $4`,
		source, plate, from, to).Scan(&p.Until, &p.Fetched, &p.Rejected, &p.Known, &p.Added, &p.Pages, &p.Requests,
		&p.StartedAt, &p.CompletedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, false, nil
	}
	if err != nil {
		return p, false, fmt.Errorf("read the backfill progress of %s: %w", plate, err)
	}
	return p, true, nil
}

// Save records p, replacing what was recorded of its plate and range.
func (s *Store) Save(ctx context.Context, p Progress, now time.Time) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO backfill_progress (source, plate, range_from, range_to, done_until, fetched, rejected, known, added,
			pages, requests, started_at, updated_at, completed_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
		ON CONFLICT (source, plate, range_from, range_to) DO UPDATE SET
			done_until = excluded.done_until, fetched = excluded.fetched, rejected = excluded.rejected,
			known = excluded.known, added = excluded.added, pages = excluded.pages, requests = excluded.requests,
			updated_at = excluded.updated_at, completed_at = excluded.completed_at`,
		p.Source, p.Plate, p.From, p.To, p.Until, p.Fetched, p.Rejected, p.Known, p.Added, p.Pages, p.Requests,
		p.StartedAt, now, p.CompletedAt)
	if err != nil {
		return fmt.Errorf("record the backfill progress of %s: %w", p.Plate, err)
	}
	return nil
}

// Known returns which of plate's fix times in [from, through] the
// positions read model holds, as Unix microseconds (its precision).
func (s *Store) Known(ctx context.Context, plate string, from, through time.Time) (map[int64]bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT fix_time FROM positions WHERE plate = $1 AND fix_time >= $2 AND fix_time <= $3`,
		plate, from, through)
	if err != nil {
		return nil, fmt.Errorf("read the fixes tms has of %s: %w", plate, err)
	}
	known := map[int64]bool{}
	var t time.Time
	_, err = pgx.ForEachRow(rows, []any{&t}, func() error {
		known[t.UnixMicro()] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the fixes tms has of %s: %w", plate, err)
	}
	return known, nil
}

// Plates returns every plate the vehicles read model knows, in order.
func (s *Store) Plates(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT plate FROM vehicles ORDER BY plate`)
	if err != nil {
		return nil, fmt.Errorf("list the vehicles tms knows: %w", err)
	}
	plates, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list the vehicles tms knows: %w", err)
	}
	return plates, nil
}
