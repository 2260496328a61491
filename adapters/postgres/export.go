package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// InSnapshot runs fn in one read-only REPEATABLE READ transaction: what
// an export counts first and what it then streams are the same rows, even
// while the projectors write.
func InSnapshot(ctx context.Context, pool *pgxpool.Pool, fn func(tx pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// CountUpTo counts the rows of table that where (with args) selects, up
// to limit: an export's size is checked without counting a whole large
// range.
func CountUpTo(ctx context.Context, tx pgx.Tx, table, where string, args []any, limit int64) (int64, error) {
	var n int64
	err := tx.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM (SELECT 1 FROM %s WHERE %s LIMIT $%d) s`,
		table, where, len(args)+1), append(args, limit)...).Scan(&n)
	return n, err
}

// Export counts the rows of table that where (with args) selects and,
// when they are at most max, runs query (with the same args) and calls fn
// with each row scan reads, as they come; both in one snapshot. When
// there are more than max rows it streams none and returns a count above
// max. fn must not keep the row; its error stops the stream and is
// returned as it is.
func Export[T any](ctx context.Context, pool *pgxpool.Pool, table, where, query string, args []any, max int64,
	scan func(pgx.CollectableRow) (T, error), fn func(*T) error) (int64, error) {
	var n int64
	err := InSnapshot(ctx, pool, func(tx pgx.Tx) error {
		var err error
		if n, err = CountUpTo(ctx, tx, table, where, args, max+1); err != nil || n > max {
			return err
		}
		rows, err := tx.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			v, err := scan(rows)
			if err != nil {
				return err
			}
			if err := fn(&v); err != nil {
				return err
			}
		}
		return rows.Err()
	})
	return n, err
}
