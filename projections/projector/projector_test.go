package projector

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
	p, err := New(Config[position.Position]{Kafka: &kafka.Config{}, Pool: pool, Projection: vehicles.NewProjection(nil, nil)})
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
		rs := records(t, step.from, step.to)
		b := batch[position.Position]{records: rs, items: make([]position.Position, len(rs)), kept: make([]bool, len(rs))}
		for i, r := range rs {
			b.items[i], b.kept[i] = p.cfg.Projection.Decode(r)
		}
		got, err := p.apply(t.Context(), b)
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
