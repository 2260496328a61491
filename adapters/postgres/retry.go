package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// deadlockDetected is the SQLSTATE of a transaction Postgres ended to
// break a deadlock.
const deadlockDetected = "40P01"

// RetryRead runs read, a read-only query with nothing sent to the client
// yet, again when Postgres ended it to break a deadlock, up to three times
// in all. A read that joins the tables of several read models takes their
// locks one after another; a `tms rebuild` switch replacing several of
// them at once takes its locks in another order, and one of the two is
// ended. The switch is short, so the read goes through on its next try.
func RetryRead(ctx context.Context, read func() error) error {
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return errors.Join(err, ctx.Err())
			case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
			}
		}
		var pgErr *pgconn.PgError
		if err = read(); !errors.As(err, &pgErr) || pgErr.Code != deadlockDetected {
			return err
		}
	}
	return err
}
