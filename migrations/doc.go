// Package migrations holds the SQL that creates tms's Postgres read
// models, applied in order by `tms migrate` (golang-migrate). Every table
// here is a projection of the Kafka topics and can be dropped and rebuilt
// by `tms replay`; none holds data found nowhere else.
package migrations

import "embed"

// FS holds the migration files, named <version>_<name>.<up|down>.sql.
//
//go:embed *.sql
var FS embed.FS
