package stations_test

import (
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/station"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/projections/projector"
	"github.com/tmsfleet/tms/projections/stations"
)

var t0 = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

type harness struct {
	kc   *kafka.Config
	pool *pgxpool.Pool
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	svc := testenv.FromEnv(os.LookupEnv)
	kc := svc.Kafka(t)
	pool, err := postgres.Open(t.Context(), svc.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return &harness{kc: kc, pool: pool}
}

// produce writes raw values to tms.stations under key, in order, and
// returns how many.
func (h *harness) produce(t *testing.T, records ...*kgo.Record) int {
	t.Helper()
	cl, err := h.kc.NewClient("test-producer")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, r := range records {
		r.Topic = h.kc.Topic(event.TopicStations)
	}
	if err := cl.ProduceSync(t.Context(), records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return len(records)
}

func record(t *testing.T, e event.Envelope) *kgo.Record {
	t.Helper()
	v, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Key: []byte(e.Subject), Value: v}
}

func upsert(t *testing.T, body string, version int64, at time.Time) *kgo.Record {
	t.Helper()
	s, err := station.Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.Upserted("/test", version, at)
	if err != nil {
		t.Fatal(err)
	}
	return record(t, e)
}

func deletion(t *testing.T, id string, version int64, at time.Time) *kgo.Record {
	t.Helper()
	e, err := station.DeletedEvent("/test", id, version, at)
	if err != nil {
		t.Fatal(err)
	}
	return record(t, e)
}

// start runs the projector until stop is called or the test ends.
func (h *harness) start(t *testing.T) (stop func()) {
	t.Helper()
	p, err := projector.New(projector.Config[station.Change]{
		Spec: stations.Spec, Kafka: h.kc, Pool: h.pool, Projection: stations.NewProjection(nil, nil), RetryBackoff: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return testenv.Go(t, "projector", p.Run)
}

// waitApplied waits until the projector has committed n records.
func (h *harness) waitApplied(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var got int64
		if err := h.pool.QueryRow(t.Context(), `
			SELECT coalesce(sum(next_offset), 0) FROM projector_offsets WHERE projector = $1 AND topic = $2`,
			stations.ProjectionName, h.kc.Topic(event.TopicStations)).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got >= int64(n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("projector committed %d of %d records", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const (
	circle  = `{"id": "S1", "name": "Gate", "type": "loading", "geometry": {"type": "Point", "coordinates": [121.4737, 31.2304]}, "radius_m": 300}`
	moved   = `{"id": "S1", "name": "Gate (moved)", "type": "loading", "geometry": {"type": "Point", "coordinates": [121.48, 31.23]}, "radius_m": 200, "detection": {"exit_margin_m": 10}}`
	polygon = `{"id": "P1", "name": "Yard", "type": "parking", "coord_system": "gcj02",
		"geometry": {"type": "Polygon", "coordinates": [[[121.5, 31.2], [121.51, 31.2], [121.51, 31.21], [121.5, 31.2]]]}}`
)

func TestTheCatalogueFollowsVersions(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n := h.produce(t,
		upsert(t, circle, 1, t0),
		upsert(t, polygon, 1, t0),
		upsert(t, moved, 2, t0.Add(time.Hour)),
		upsert(t, circle, 1, t0), // an older version again: changes nothing
		deletion(t, "P1", 2, t0.Add(2*time.Hour)),
		deletion(t, "GONE", 7, t0.Add(3*time.Hour)), // its upserts compacted away
	)
	h.start(t)
	h.waitApplied(t, n)

	store := stations.NewStore(h.pool)
	s1, err := store.Get(t.Context(), "S1")
	if err != nil {
		t.Fatal(err)
	}
	if s1.Version != 2 || s1.Name != "Gate (moved)" || *s1.RadiusM != 200 || !s1.UpdatedAt.Equal(t0.Add(time.Hour)) ||
		s1.Detection.ExitMarginM == nil || *s1.Detection.ExitMarginM != 10 || s1.OriginalGeometry != nil {
		t.Errorf("S1 = %+v", s1)
	}
	var g map[string]any
	if err := json.Unmarshal(s1.Geometry, &g); err != nil || g["type"] != "Point" {
		t.Errorf("S1 geometry %s: %v", s1.Geometry, err)
	}
	if _, err := store.Get(t.Context(), "P1"); !errors.Is(err, stations.ErrNotFound) {
		t.Errorf("deleted P1: %v", err)
	}
	for id, want := range map[string]station.Current{
		"S1":    {Version: 2},
		"P1":    {Version: 2, Deleted: true},
		"GONE":  {Version: 7, Deleted: true},
		"NEVER": {},
	} {
		if got, err := store.Current(t.Context(), id); err != nil || got != want {
			t.Errorf("Current(%s) = %+v, %v; want %+v", id, got, err, want)
		}
	}
	list, err := store.List(t.Context(), stations.ListQuery{})
	if err != nil || len(list) != 1 || list[0].ID != "S1" {
		t.Errorf("List = %+v, %v: want S1 alone", list, err)
	}

	// P1 created again continues its versions, keeps its GCJ-02 original.
	n += h.produce(t, upsert(t, polygon, 3, t0.Add(4*time.Hour)))
	h.waitApplied(t, n)
	p1, err := store.Get(t.Context(), "P1")
	if err != nil || p1.Version != 3 || p1.CoordSystem != station.GCJ02 || p1.OriginalGeometry == nil || p1.RadiusM != nil {
		t.Errorf("P1 again = %+v, %v", p1, err)
	}
	list, _ = store.List(t.Context(), stations.ListQuery{Types: []string{"parking"}})
	if len(list) != 1 || list[0].ID != "P1" {
		t.Errorf("List(parking) = %+v", list)
	}
	list, _ = store.List(t.Context(), stations.ListQuery{After: "P1", Limit: 1})
	if len(list) != 1 || list[0].ID != "S1" {
		t.Errorf("List(after P1) = %+v", list)
	}
}

// TestReplayEndsInTheSameRows reads the topic again from the start over
// the rows it made (as `tms replay` would after losing the offsets), and
// expects nothing to change.
func TestReplayEndsInTheSameRows(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n := h.produce(t,
		upsert(t, circle, 1, t0), upsert(t, moved, 2, t0.Add(time.Hour)),
		upsert(t, polygon, 1, t0), deletion(t, "P1", 2, t0.Add(time.Hour)),
	)
	stop := h.start(t)
	h.waitApplied(t, n)
	stop()
	before := h.snapshot(t)
	if _, err := h.pool.Exec(t.Context(), `DELETE FROM projector_offsets`); err != nil {
		t.Fatal(err)
	}
	h.start(t)
	h.waitApplied(t, n)
	if after := h.snapshot(t); after != before {
		t.Errorf("replay changed the rows:\n%s\n%s", before, after)
	}
}

func (h *harness) snapshot(t *testing.T) string {
	t.Helper()
	var s string
	if err := h.pool.QueryRow(t.Context(), `SELECT coalesce(json_agg(s ORDER BY id)::text, '') FROM stations s`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestUnreadableRecordsAreSkipped(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	other, _ := event.New(event.TypePositionReported, "/x", "沪A1", t0, map[string]any{"vehicle": "沪A1"}, "x")
	bad := upsert(t, circle, 1, t0)
	bad.Value = []byte(`{"specversion": "1.0", "id": "x", "source": "/x", "type": "tms.station.upserted.v1", "data": {"id": "S9"}}`)
	n := h.produce(t,
		&kgo.Record{Key: []byte("S1"), Value: []byte("not json")},
		&kgo.Record{Key: []byte("S1")}, // a tombstone
		record(t, other),
		bad,
		upsert(t, circle, 1, t0),
	)
	h.start(t)
	h.waitApplied(t, n)
	if s, err := stations.NewStore(h.pool).Get(t.Context(), "S1"); err != nil || s.Version != 1 {
		t.Errorf("S1 = %+v, %v", s, err)
	}
	if _, err := stations.NewStore(h.pool).Get(t.Context(), "S9"); !errors.Is(err, stations.ErrNotFound) {
		t.Errorf("S9 from an invalid event: %v", err)
	}
}
