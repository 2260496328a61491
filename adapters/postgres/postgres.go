package postgres

import (
	"context"
	"errors"
	"fmt"
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
func Open(ctx context.Context, databaseURL string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, errorf("parse DATABASE_URL", err, databaseURL)
	}
	// One process runs several projectors, the API and the station
	// commands on this pool: pgx's default of 4 connections would make
	// them queue for each other. pool_max_conns in the URL still wins.
	if !strings.Contains(databaseURL, "pool_max_conns") {
		cfg.MaxConns = 16
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
	return withMigrate(databaseURL, "migrate", (*migrate.Migrate).Up)
}

// MigrateDown drops every read-model table (they are rebuilt from Kafka).
func MigrateDown(databaseURL string) error {
	return withMigrate(databaseURL, "migrate down", (*migrate.Migrate).Down)
}

// withMigrate runs step of golang-migrate on databaseURL. The connection
// is pgx's, made from the parsed config, so that every connection string
// pgx accepts (URL or key=value) migrates too, and no library gets the
// string itself to quote in an error.
func withMigrate(databaseURL, what string, step func(*migrate.Migrate) error) error {
	src, err := iofs.New(migrations.FS, ".")
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return errorf("parse DATABASE_URL", err, databaseURL)
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
