// Package postgres connects tms to Postgres, where its read models live:
// connection pools, schema migrations (golang-migrate, from the SQL in
// migrations/), the offset table that lets projectors commit their Kafka
// position with their rows, and a local cluster started from the
// machine's PostgreSQL binaries for `make run`.
package postgres
