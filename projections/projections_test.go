package projections_test

import (
	"os"
	"slices"
	"testing"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/projections"
)

// TestRegistrationsAreCompleteAndDisjoint checks every registered read
// model: a valid spec, a name (consumer group) of its own, topics tms
// creates, and tables no other read model claims.
func TestRegistrationsAreCompleteAndDisjoint(t *testing.T) {
	t.Parallel()
	var known []string
	for _, s := range kafka.Topics() {
		known = append(known, s.Name)
	}
	names, tables := map[string]bool{}, map[string]string{}
	for _, r := range projections.All() {
		if err := r.Validate(); err != nil {
			t.Error(err)
		}
		if names[r.Name] {
			t.Errorf("two read models are named %s: they would share a consumer group and offsets", r.Name)
		}
		names[r.Name] = true
		for _, topic := range r.Topics {
			if !slices.Contains(known, topic) {
				t.Errorf("%s reads %s, which tms does not create (kafka.Topics)", r.Name, topic)
			}
		}
		for _, table := range r.Tables {
			if other, ok := tables[table]; ok {
				t.Errorf("%s and %s both claim table %s", other, r.Name, table)
			}
			tables[table] = r.Name
		}
	}
}

// notReadModels are the tables the migrations create that no projection
// writes, and why `tms replay read-models` keeps them.
var notReadModels = map[string]string{
	"schema_migrations": "the migrations' own record",
	"projector_offsets": "every projector's offsets; a rebuild deletes only the rebuilt projections' rows",
	"replay_runs":       "results of `tms replay geofence`: derived history, not a function of the topics alone",
	"replay_visits":     "results of `tms replay geofence`, as replay_runs",
	"history_retention": "how far retention has dropped history: a rebuild must not bring it back",
	"backfill_progress": "how far `tms backfill g7` got: its bookkeeping, not a function of the topics",
}

// TestEveryTableIsARegisteredReadModel checks the migrated schema against
// the registrations: a table a projection writes but its Spec does not
// list would survive `tms replay read-models` and be projected into twice.
func TestEveryTableIsARegisteredReadModel(t *testing.T) {
	t.Parallel()
	pool, err := postgres.Open(t.Context(), testenv.FromEnv(os.LookupEnv).Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// A partition (of positions: one a month) is its table's.
	rows, err := pool.Query(t.Context(), `SELECT tablename FROM pg_tables t
		JOIN pg_class c ON c.relname = t.tablename AND c.relnamespace = t.schemaname::regnamespace
		WHERE t.schemaname = current_schema() AND NOT c.relispartition`)
	if err != nil {
		t.Fatal(err)
	}
	var inSchema []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		inSchema = append(inSchema, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	registered := map[string]bool{}
	for _, r := range projections.All() {
		for _, table := range r.Tables {
			registered[table] = true
			if !slices.Contains(inSchema, table) {
				t.Errorf("%s lists table %s, which the migrations do not create", r.Name, table)
			}
		}
	}
	for _, table := range inSchema {
		if _, kept := notReadModels[table]; !kept && !registered[table] {
			t.Errorf("table %s is neither a registered read model's (projections.All) nor listed in notReadModels", table)
		}
	}
	for table := range notReadModels {
		if !slices.Contains(inSchema, table) {
			t.Errorf("notReadModels lists %s, which the migrations do not create", table)
		}
	}
}
