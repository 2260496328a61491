package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/golang-migrate/migrate/v4/database"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/internal/tmsproc"
)

// TestRetryReadGoesThroughADeadlock: a read that takes its locks in the
// opposite order to another transaction's (as an API query and a rebuild's
// switch may) is ended by Postgres to break the deadlock, and goes
// through on its next try.
func TestRetryReadGoesThroughADeadlock(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool, err := postgres.Open(ctx, testenv.FromEnv(os.LookupEnv).Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `CREATE TABLE first_model (v int); CREATE TABLE second_model (v int)`); err != nil {
		t.Fatal(err)
	}
	// The switch: holds the first table, then wants the second.
	sw, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Rollback(context.Background())
	if _, err := sw.Exec(ctx, `LOCK TABLE first_model IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	var swPID int32
	if err := sw.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&swPID); err != nil {
		t.Fatal(err)
	}
	holding := make(chan struct{})
	switched := make(chan error, 1)
	var attempts atomic.Int32
	read := func() error {
		attempts.Add(1)
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT count(*) FROM second_model`); err != nil {
				return err
			}
			if attempts.Load() == 1 {
				close(holding)
			}
			_, err := tx.Exec(ctx, `SELECT count(*) FROM first_model`) // waits for the switch
			return err
		})
	}
	go func() {
		<-holding
		// Once the read, holding the second table, waits for the first,
		// the switch asking for the second closes the cycle; the read,
		// waiting first, is the one Postgres ends.
		tmsproc.Eventually(t, 10*time.Second, "the read waiting for the switch", func() bool {
			var waiting bool
			err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid)))`,
				swPID).Scan(&waiting)
			return err == nil && waiting
		})
		_, err := sw.Exec(ctx, `LOCK TABLE second_model IN ACCESS EXCLUSIVE MODE`)
		if err == nil {
			err = sw.Commit(ctx)
		}
		switched <- err
	}()
	if err := postgres.RetryRead(ctx, read); err != nil {
		t.Fatalf("the read failed: %v", err)
	}
	if err := <-switched; err != nil {
		t.Fatalf("the switch failed: %v", err)
	}
	if n := attempts.Load(); n != 2 {
		t.Errorf("%d attempts, want 2: one ended by the deadlock, one through", n)
	}
}

func TestTransient(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{"starting up", &pgconn.PgError{Code: "57P03"}, true},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"lost in a migration", database.Error{OrigErr: io.ErrUnexpectedEOF, Err: "try lock failed"}, true},
		{"wrong password", &pgconn.PgError{Code: "28P01"}, false},
		{"no such database", &pgconn.PgError{Code: "3D000"}, false},
		{"syntax error in a migration", database.Error{OrigErr: &pgconn.PgError{Code: "42601"}}, false},
		{"stopped", context.Canceled, false},
		{"nil", nil, false},
	} {
		if got := postgres.Transient(fmt.Errorf("wrapped: %w", c.err)); got != c.want && c.err != nil {
			t.Errorf("%s: Transient = %v, want %v", c.name, got, c.want)
		}
	}
	if postgres.Transient(nil) {
		t.Error("Transient(nil) = true")
	}
}

func TestWaitForStopsOnPermanent(t *testing.T) {
	t.Parallel()
	calls := 0
	err := postgres.WaitFor(t.Context(), postgres.Backoff{First: time.Millisecond, Max: 2 * time.Millisecond}, slog.Default(), "test",
		func(context.Context) error {
			calls++
			if calls < 3 {
				return &pgconn.PgError{Code: "57P03"}
			}
			return &pgconn.PgError{Code: "28P01"}
		})
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28P01" || calls != 3 {
		t.Errorf("WaitFor: %v after %d calls; want the authentication error after 3", err, calls)
	}
}
