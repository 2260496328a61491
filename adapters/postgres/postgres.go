package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

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
		return nil, errorf("parse DATABASE_URL", err, databaseURL)
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
		return nil, errorf("open a pool", err, databaseURL)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, errorf("connect to "+Redact(databaseURL), err, databaseURL)
	}
	return pool, nil
}

// Migrate brings the schema at databaseURL up to the newest migration.
// It is safe to run concurrently from several instances: golang-migrate
// takes an advisory lock.
func Migrate(databaseURL string) error {
	return withMigrate(databaseURL, migrations.FS, "", "migrate", (*migrate.Migrate).Up)
}

// MigrateDown drops every read-model table (they are rebuilt from Kafka).
func MigrateDown(databaseURL string) error {
	return withMigrate(databaseURL, migrations.FS, "", "migrate down", (*migrate.Migrate).Down)
}

// MigrateSchema applies the migrations in src (files named as in
// package migrations) to schema, which must exist, as Migrate applies
// tms's to the default one: every statement runs with search_path set to
// schema alone, and the schema keeps its own schema_migrations. A rebuild
// makes its fresh tables so, with the very DDL of the live ones
// (partitioning, indexes, storage parameters and all).
func MigrateSchema(databaseURL string, src fs.FS, schema string) error {
	return withMigrate(databaseURL, src, schema, "migrate schema "+schema, (*migrate.Migrate).Up)
}

// withMigrate runs step of golang-migrate on databaseURL. The connection
// is pgx's, made from the parsed config, so that every connection string
// pgx accepts (URL or key=value) migrates too, and no library gets the
// string itself to quote in an error.
func withMigrate(databaseURL string, files fs.FS, schema, what string, step func(*migrate.Migrate) error) error {
	src, err := iofs.New(files, ".")
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return errorf("parse DATABASE_URL", err, databaseURL)
	}
	if schema != "" {
		cfg.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	driver, err := migratepgx.WithInstance(db, &migratepgx.Config{})
	if err != nil {
		return errorf(what, err, databaseURL)
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", driver)
	if err != nil {
		return errorf(what, err, databaseURL)
	}
	defer m.Close()
	if err := step(m); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return errorf(what, err, databaseURL)
	}
	return nil
}
