package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// Offsets reads and writes a projector's Kafka positions in
// projector_offsets, inside the caller's transaction.
type Offsets struct {
	// Projector names the projector; it is the offsets' key, like a
	// consumer group name.
	Projector string
	// Schema, when set, is the schema whose projector_offsets table holds
	// them: a rebuild keeps its offsets beside the tables it builds, in a
	// schema of their own. Empty: the connection's search_path (the live
	// read models').
	Schema string
}

// table is the offsets table, quoted.
func (o Offsets) table() string {
	if o.Schema == "" {
		return "projector_offsets"
	}
	return pgx.Identifier{o.Schema, "projector_offsets"}.Sanitize()
}

// Lock takes a transaction-scoped lock on each of partitions of topic for
// this projector and returns the next offset to read in each, or -1 where
// the projector has none yet. The lock makes a concurrent writer of the
// same partitions (an instance that has not yet noticed a rebalance) wait
// until this transaction ends, and then see the offsets it committed; the
// caller skips records below them, so no record is applied twice.
func (o Offsets) Lock(ctx context.Context, tx pgx.Tx, topic string, partitions []int32) (map[int32]int64, error) {
	sorted := slices.Clone(partitions)
	slices.Sort(sorted) // one lock order for everybody: no deadlocks
	if _, err := tx.Exec(ctx, `
		SELECT pg_advisory_xact_lock(hashtext($1 || '/' || $2), p)
		FROM unnest($3::int[]) WITH ORDINALITY AS t(p, i) ORDER BY i`,
		o.Projector, topic, sorted); err != nil {
		return nil, fmt.Errorf("lock offsets of %s: %w", o.Projector, err)
	}
	return o.Read(ctx, tx, topic, sorted)
}

// Querier is what Read needs: a pool, a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Read returns the next offset to read for each of partitions of topic,
// or -1 where the projector has none yet, without locking.
func (o Offsets) Read(ctx context.Context, q Querier, topic string, partitions []int32) (map[int32]int64, error) {
	rows, err := q.Query(ctx, `
		SELECT partition, next_offset FROM `+o.table()+`
		WHERE projector = $1 AND topic = $2 AND partition = ANY($3)`, o.Projector, topic, partitions)
	if err != nil {
		return nil, fmt.Errorf("load offsets of %s: %w", o.Projector, err)
	}
	next := make(map[int32]int64, len(partitions))
	for _, p := range partitions {
		next[p] = -1
	}
	var p int32
	var off int64
	_, err = pgx.ForEachRow(rows, []any{&p, &off}, func() error {
		next[p] = off
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load offsets of %s: %w", o.Projector, err)
	}
	return next, nil
}

// Store records next as the next offsets to read.
func (o Offsets) Store(ctx context.Context, tx pgx.Tx, topic string, next map[int32]int64) error {
	parts := make([]int32, 0, len(next))
	offs := make([]int64, 0, len(next))
	for p, off := range next {
		parts = append(parts, p)
		offs = append(offs, off)
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO `+o.table()+` (projector, topic, partition, next_offset)
		SELECT $1, $2, p, o FROM unnest($3::int[], $4::bigint[]) AS t(p, o)
		ON CONFLICT (projector, topic, partition)
		DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()`,
		o.Projector, topic, parts, offs)
	if err != nil {
		return fmt.Errorf("store offsets of %s: %w", o.Projector, err)
	}
	return nil
}
