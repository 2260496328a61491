package vehicles

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// PositionsTable is the positions history: partitioned by UTC month of
// fix time (migrations/0006), each month a partition named
// positions_pYYYYMM.
const PositionsTable = "positions"

// Querier is what the partition functions need: a pool, a connection or a
// transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// MonthStart is the start of the UTC month of t: the lower bound of the
// partition that holds a fix taken at t.
func MonthStart(t time.Time) time.Time {
	u := t.UTC()
	return time.Date(u.Year(), u.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// EnsurePartitions makes sure table (the positions table or a table of
// the same shape, such as a rebuild's) has a partition for the month of
// each of times, and returns how many it created. In a transaction, the
// partitions it creates are the transaction's until it commits.
// Whoever writes positions other than through the projector (a test, a
// bulk load) calls it first: a fix whose month has no partition cannot be
// stored.
func EnsurePartitions(ctx context.Context, q Querier, table string, times ...time.Time) (int, error) {
	if len(times) == 0 {
		return 0, nil
	}
	var created int
	if err := q.QueryRow(ctx, `SELECT ensure_month_partitions($1::regclass, $2::timestamptz[])`,
		pgx.Identifier{table}.Sanitize(), times).Scan(&created); err != nil {
		return 0, fmt.Errorf("partitions of %s: %w", table, err)
	}
	return created, nil
}

// Partition is one month of a partitioned table.
type Partition struct {
	Name string
	// From and To bound the fix times it holds: [From, To).
	From, To time.Time
	// Rows is Postgres's estimate (pg_class.reltuples); -1 before the
	// partition was first analysed.
	Rows int64
	// DetachPending is set for a partition whose DETACH ... CONCURRENTLY
	// was interrupted: it must be finalised.
	DetachPending bool
}

// Partitions lists table's partitions in time order. The bounds are read
// from the catalogue's own expression, so they are right whatever the
// partitions are named.
func Partitions(ctx context.Context, q Querier, table string) ([]Partition, error) {
	rows, err := q.Query(ctx, `
		SELECT c.relname::text, b[1]::timestamptz, b[2]::timestamptz, c.reltuples::bigint, i.inhdetachpending
		FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid,
		LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)') AS b
		WHERE i.inhparent = $1::regclass
		ORDER BY 2`, pgx.Identifier{table}.Sanitize())
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", table, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Partition, error) {
		var p Partition
		err := r.Scan(&p.Name, &p.From, &p.To, &p.Rows, &p.DetachPending)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", table, err)
	}
	return out, nil
}

// HistoryFrom returns when table's history starts: nothing before it is
// left, retention (Maintenance) having dropped it. ok is false while
// retention has dropped nothing.
func HistoryFrom(ctx context.Context, q Querier, table string) (from time.Time, ok bool, err error) {
	err = q.QueryRow(ctx, `SELECT kept_from FROM history_retention WHERE table_name = $1`, table).Scan(&from)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return time.Time{}, false, nil
	case err != nil:
		return time.Time{}, false, fmt.Errorf("retention of %s: %w", table, err)
	}
	return from, true, nil
}

// monthSet remembers the months known to have a partition, so that the
// projector asks the database only about months it has not written yet.
// It is shared by the projector's members.
type monthSet struct {
	mu     sync.Mutex
	months map[time.Time]struct{}
}

// missing returns a time in each month of fixes not known to have a
// partition, in order of first appearance.
func (s *monthSet) missing(times func(yield func(time.Time) bool)) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []time.Time
	seen := map[time.Time]bool{}
	for t := range times {
		m := MonthStart(t)
		if _, ok := s.months[m]; ok || seen[m] {
			continue
		}
		seen[m] = true
		out = append(out, m)
	}
	return out
}

func (s *monthSet) add(months []time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.months == nil {
		s.months = map[time.Time]struct{}{}
	}
	for _, m := range months {
		s.months[m] = struct{}{}
	}
}

// forget empties the set: after a failed transaction, a partition it
// created may not exist, and one may have been dropped meanwhile.
func (s *monthSet) forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.months = nil
}
