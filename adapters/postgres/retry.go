package postgres

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/golang-migrate/migrate/v4/database"
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

// Transient reports whether err says that Postgres could not be reached or
// went away (no connection, the connection lost, the server starting up or
// shutting down, too many connections): a fault that waiting cures. Every
// other error (authentication refused, no such database, a bad connection
// string, an SQL error) is not, and retrying it would only hide it.
func Transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	// golang-migrate's errors keep the cause without unwrapping to it.
	var migrateErr database.Error
	if errors.As(err, &migrateErr) {
		return Transient(migrateErr.OrigErr)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			pgErr.Code == "57P01", // admin_shutdown
			pgErr.Code == "57P02", // crash_shutdown
			pgErr.Code == "57P03", // cannot_connect_now: starting up, recovering
			pgErr.Code == "53300": // too_many_connections
			return true
		}
		return false
	}
	var parse *pgconn.ParseConfigError
	if errors.As(err, &parse) {
		return false
	}
	var connect *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connect) || errors.As(err, &netErr) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, context.DeadlineExceeded)
}

// Backoff is how WaitFor spaces its attempts.
type Backoff struct {
	// First is the wait after the first failure, doubled after each
	// further one (jittered by up to a quarter) up to Max.
	First, Max time.Duration
}

// WaitFor runs attempt until it succeeds, fails with an error that is not
// Transient, or ctx ends. Between attempts it waits as b says. It logs one
// warning when the first attempt fails and one line when an attempt
// succeeds after that, never one per attempt.
func WaitFor(ctx context.Context, b Backoff, log *slog.Logger, what string, attempt func(context.Context) error) error {
	wait, since := b.First, time.Time{}
	for n := 1; ; n++ {
		err := attempt(ctx)
		if err == nil {
			if !since.IsZero() {
				log.Info("Postgres reached", "for", what, "after", time.Since(since).Round(time.Millisecond), "attempts", n)
			}
			return nil
		}
		if !Transient(err) || ctx.Err() != nil {
			return err
		}
		if since.IsZero() {
			since = time.Now()
			log.Warn("Postgres unreachable; waiting for it", "for", what, "err", err)
		}
		jittered := wait + time.Duration(rand.Int64N(int64(wait)/4+1))
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(jittered):
		}
		wait = min(2*wait, b.Max)
	}
}
