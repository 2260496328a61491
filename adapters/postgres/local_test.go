package postgres

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestHostileLocalPostgresNeedsAPassword starts the cluster `make run`
// uses and tries it as another user of the machine would: without the
// password, over TCP and over the socket. Before, initdb -A trust let
// every local user in as the superuser. A cluster initialised that way by
// an older tms must be moved to passwords at its next start.
func TestHostileLocalPostgresNeedsAPassword(t *testing.T) {
	t.Parallel()
	// The postgres user (under root) must be able to reach the directory,
	// which t.TempDir does not allow.
	base, err := os.MkdirTemp("", "tms-local-postgres-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o711); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cfg := LocalConfig{Dir: filepath.Join(base, "postgres"), Port: freePort(t)}
	l, err := StartLocal(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Stop(context.Background()) })

	mustConnect(ctx, t, l.URL())
	refused(ctx, t, fmt.Sprintf("postgres://tms@127.0.0.1:%d/tms?sslmode=disable", cfg.Port))
	refused(ctx, t, fmt.Sprintf("postgres://tms:wrong@127.0.0.1:%d/tms?sslmode=disable", cfg.Port))
	refused(ctx, t, fmt.Sprintf("host=%s port=%d user=tms dbname=tms", cfg.Dir, cfg.Port)) // the socket
	private(t, cfg.Dir, 0o700)
	private(t, filepath.Join(cfg.Dir, "pgdata"), 0o700)
	private(t, filepath.Join(cfg.Dir, "password"), 0o600)

	// An older tms's cluster: trusting everyone, no password file.
	conn := mustConnect(ctx, t, l.URL())
	if _, err := conn.Exec(ctx, "ALTER ROLE tms PASSWORD NULL"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	hba := filepath.Join(cfg.Dir, "pgdata", "pg_hba.conf")
	if err := os.WriteFile(hba, []byte("local all all trust\nhost all all 127.0.0.1/32 trust\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(cfg.Dir, "password")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(cfg.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := l.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	l, err = StartLocal(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	mustConnect(ctx, t, l.URL())
	refused(ctx, t, fmt.Sprintf("postgres://tms@127.0.0.1:%d/tms?sslmode=disable", cfg.Port))
	refused(ctx, t, fmt.Sprintf("host=%s port=%d user=tms dbname=tms", cfg.Dir, cfg.Port))
	private(t, cfg.Dir, 0o700)
}

func mustConnect(ctx context.Context, t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect with the password: %v", err)
	}
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func refused(ctx context.Context, t *testing.T, url string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err == nil {
		conn.Close(ctx)
		t.Errorf("%s: connected without the password", Redact(url))
	}
}

func private(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != want {
		t.Errorf("%s has mode %v, want %v", path, fi.Mode().Perm(), want)
	}
}

// freePort returns a loopback port free now.
func freePort(t *testing.T) int {
	t.Helper()
	p, err := strconv.Atoi(closedPort(t))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
