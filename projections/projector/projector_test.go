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

// TestResetEmptiesOnlyWhatTheSpecsName rebuilds one read model's state:
// its tables and its offsets go, another projection's offsets and tables
// stay.
func TestResetEmptiesOnlyWhatTheSpecsName(t *testing.T) {
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
	if _, err := p.ApplyRecords(t.Context(), records(t, 0, 10)); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(t.Context(), `
		INSERT INTO projector_offsets (projector, topic, partition, next_offset) VALUES ('tms.projector.other', 'tms.jobs', 0, 7);
		INSERT INTO stations (id, version, updated_at, deleted_at) VALUES ('S1', 1, now(), now())`); err != nil {
		t.Fatal(err)
	}
	count := func(sql string) int64 {
		t.Helper()
		var n int64
		if err := pool.QueryRow(t.Context(), sql).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if count(`SELECT count(*) FROM positions`) != 10 || count(`SELECT count(*) FROM projector_offsets`) != 2 {
		t.Fatal("the premise does not hold: positions and both projectors' offsets should be stored")
	}

	if err := projector.Reset(t.Context(), pool, projector.Spec{Name: "broken", Topics: []string{"tms.jobs"}}); err == nil {
		t.Error("Reset accepted a spec without tables")
	}
	if err := projector.Reset(t.Context(), pool, vehicles.Spec); err != nil {
		t.Fatal(err)
	}
	for sql, want := range map[string]int64{
		`SELECT count(*) FROM positions`: 0,
		`SELECT count(*) FROM vehicles`:  0,
		`SELECT count(*) FROM projector_offsets WHERE projector = 'tms.projector.vehicles'`: 0,
		`SELECT count(*) FROM projector_offsets WHERE projector = 'tms.projector.other'`:    1,
		`SELECT count(*) FROM stations`: 1,
	} {
		if got := count(sql); got != want {
			t.Errorf("%s: %d, want %d", sql, got, want)
		}
	}
}
