package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/pgx/v5" // the pgx5:// driver
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tmsfleet/tms/migrations"
)

// Open connects a pool to databaseURL and checks that the server answers.
// The pool has 16 connections unless the URL's pool_max_conns says
// otherwise.
func Open(ctx context.Context, databaseURL string) (*pgxpool.Pool, error) {
	return OpenPool(ctx, databaseURL, PoolConfig{})
}

// PoolConfig sizes and names a pool.
type PoolConfig struct {
	// MaxConns bounds the pool's connections; it wins over the URL's
	// pool_max_conns. 0: the URL's, else 16.
	MaxConns int32
	// Name is the connections' application_name, which tells the pools
	// apart in pg_stat_activity. Empty: the URL's, else pgx's default.
	Name string
}

// OpenPool is Open with cfg. A process opens one pool per purpose (the
// API, the projectors), so that one purpose running out of connections
// never holds up another.
func OpenPool(ctx context.Context, databaseURL string, pc PoolConfig) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse DATABASE_URL: %w", err)
	}
	switch {
	case pc.MaxConns > 0:
		cfg.MaxConns = pc.MaxConns
	case !strings.Contains(databaseURL, "pool_max_conns"):
		// pgx's default of 4 connections would make a process's
		// projector members queue for each other.
		cfg.MaxConns = 16
	}
	if pc.Name != "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = pc.Name
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect to %s: %w", Redact(databaseURL), err)
	}
	return pool, nil
}

// Migrate brings the schema at databaseURL up to the newest migration.
// It is safe to run concurrently from several instances: golang-migrate
// takes an advisory lock.
func Migrate(databaseURL string) error {
	m, err := newMigrate(databaseURL)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

// MigrateDown drops every read-model table (they are rebuilt from Kafka).
func MigrateDown(databaseURL string) error {
	m, err := newMigrate(databaseURL)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Down(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("postgres: migrate down: %w", err)
	}
	return nil
}

func newMigrate(databaseURL string) (*migrate.Migrate, error) {
	src, err := iofs.New(migrations.FS, ".")
	if err != nil {
		return nil, fmt.Errorf("postgres: migrations: %w", err)
	}
	u, err := url.Parse(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse DATABASE_URL: %w", err)
	}
	// golang-migrate picks its driver by scheme.
	u.Scheme = "pgx5"
	m, err := migrate.NewWithSourceInstance("iofs", src, u.String())
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	return m, nil
}

// Redact removes the password from a connection URL before it is logged.
func Redact(databaseURL string) string {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
