package projector_test

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/migrations"
	"github.com/tmsfleet/tms/projections/projector"
	"github.com/tmsfleet/tms/projections/vehicles"
)

// records makes position records of one vehicle at offsets [from, to) of
// partition 0.
func records(t *testing.T, from, to int64) []*kgo.Record {
	t.Helper()
	var out []*kgo.Record
	for off := from; off < to; off++ {
		at := time.Date(2026, 11, 27, 8, 0, int(off), 0, time.UTC)
		p := position.Position{Plate: "沪A00001", FixTime: at, ReceivedAt: at, Lat: 31, Lng: 121}
		e, err := p.Event("/test")
		if err != nil {
			t.Fatal(err)
		}
		v, _ := json.Marshal(e)
		out = append(out, &kgo.Record{Topic: event.TopicPositions, Partition: 0, Offset: off, Value: v})
	}
	return out
}

// TestRecordsBelowTheStoredOffsetsAreSkipped stands for an instance that
// lost its partitions in a rebalance without noticing and applies a batch
// another instance has already committed: nothing may be applied twice.
func TestRecordsBelowTheStoredOffsetsAreSkipped(t *testing.T) {
	t.Parallel()
	pool, err := postgres.Open(t.Context(), testenv.FromEnv(os.LookupEnv).Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	p, err := projector.New(projector.Config[position.Position]{Spec: vehicles.Spec, Kafka: &kafka.Config{}, Pool: pool,
		Projection: vehicles.NewProjection(nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		from, to int64
		want     int
	}{
		{0, 10, 10}, // first time: all applied
		{0, 10, 0},  // the same batch again: nothing
		{5, 15, 5},  // overlapping: only the new part
	} {
		got, err := p.ApplyRecords(t.Context(), records(t, step.from, step.to))
		if err != nil {
			t.Fatal(err)
		}
		if got != step.want {
			t.Errorf("batch [%d, %d): applied %d, want %d", step.from, step.to, got, step.want)
		}
	}
	var counted int64
	if err := pool.QueryRow(t.Context(), `SELECT positions_count FROM vehicles`).Scan(&counted); err != nil {
		t.Fatal(err)
	}
	if counted != 15 {
		t.Errorf("positions_count = %d, want 15", counted)
	}
}

// TestAProjectorWithASchemaWritesOnlyThere is what a rebuild relies on:
// a projector given a schema (tables made by the migrations there) writes
// that schema's tables and keeps its offsets in that schema, and the live
// tables and offsets, in the default schema, see nothing of it.
func TestAProjectorWithASchemaWritesOnlyThere(t *testing.T) {
	t.Parallel()
	url := testenv.FromEnv(os.LookupEnv).Postgres(t)
	pool, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(t.Context(), `CREATE SCHEMA shadow`); err != nil {
		t.Fatal(err)
	}
	if err := postgres.MigrateSchema(url, migrations.FS, "shadow"); err != nil {
		t.Fatal(err)
	}
	p, err := projector.New(projector.Config[position.Position]{Spec: vehicles.Spec, Kafka: &kafka.Config{}, Pool: pool,
		Schema: "shadow", Projection: vehicles.NewProjection(nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := p.ApplyRecords(t.Context(), records(t, 0, 10)); err != nil || n != 10 {
		t.Fatalf("applied %d, %v; want 10", n, err)
	}
	count := func(sql string) int64 {
		t.Helper()
		var n int64
		if err := pool.QueryRow(t.Context(), sql).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for sql, want := range map[string]int64{
		`SELECT count(*) FROM shadow.positions`: 10,
		`SELECT count(*) FROM shadow.vehicles`:  1,
		`SELECT max(next_offset) FROM shadow.projector_offsets WHERE projector = 'tms.projector.vehicles'`: 10,
		`SELECT count(*) FROM public.positions`:         0,
		`SELECT count(*) FROM public.vehicles`:          0,
		`SELECT count(*) FROM public.projector_offsets`: 0,
	} {
		if got := count(sql); got != want {
			t.Errorf("%s: %d, want %d", sql, got, want)
		}
	}
}
