package stationcmd_test

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/domain/station"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/pipeline/stationcmd"
	"github.com/tmsfleet/tms/projections/projector"
	"github.com/tmsfleet/tms/projections/stations"
)

var t0 = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

// def is a station definition; without an id when id is "".
func def(t *testing.T, id, name string) *station.Station {
	t.Helper()
	idField := ""
	if id != "" {
		idField = fmt.Sprintf(`"id": %q, `, id)
	}
	s, err := station.Parse([]byte(fmt.Sprintf(`{%s"name": %q, "type": "oil",
		"geometry": {"type": "Point", "coordinates": [121, 31]}, "radius_m": 50}`, idField, name)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type env struct {
	kc   *kafka.Config
	pool *pgxpool.Pool
}

func newEnv(t *testing.T, withProjector bool) *env {
	t.Helper()
	svc := testenv.FromEnv(os.LookupEnv)
	e := &env{kc: svc.Kafka(t)}
	var err error
	if e.pool, err = postgres.Open(t.Context(), svc.Postgres(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.pool.Close)
	if withProjector {
		e.runProjector(t)
	}
	return e
}

func (e *env) runProjector(t *testing.T) {
	t.Helper()
	p, err := projector.New(projector.Config[station.Change]{
		Spec: stations.Spec, Kafka: e.kc, Pool: e.pool, Projection: stations.NewProjection(nil, nil), RetryBackoff: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Go(t, "projector", p.Run)
}

func (e *env) commands(t *testing.T, tweak ...func(*stationcmd.Config)) *stationcmd.Commands {
	t.Helper()
	cfg := stationcmd.Config{Kafka: e.kc, Pool: e.pool, Timeout: 10 * time.Second}
	for _, f := range tweak {
		f(&cfg)
	}
	c, err := stationcmd.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestConfig(t *testing.T) {
	t.Parallel()
	if _, err := stationcmd.New(stationcmd.Config{}); err == nil {
		t.Error("a config without Kafka and Pool was accepted")
	}
	if _, err := stationcmd.New(stationcmd.Config{Kafka: &kafka.Config{}, Pool: &pgxpool.Pool{}, Timeout: -1}); err == nil {
		t.Error("a negative timeout was accepted")
	}
}

// TestReadYourWrites: each answer shows the command's version as the read
// model stores it, dated by the command's clock; versions continue over
// a deletion.
func TestReadYourWrites(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	clock := t0
	c := e.commands(t, func(c *stationcmd.Config) {
		c.Now = func() time.Time { clock = clock.Add(time.Minute); return clock }
		c.NewID = func() string { return "made-1" }
	})
	ctx := t.Context()
	res, err := c.Create(ctx, def(t, "", "a"))
	if err != nil || res.Accepted || !res.Created || res.StationID != "made-1" || res.Station == nil ||
		res.Station.Version != 1 || !res.Station.UpdatedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("create: %+v, %v", res, err)
	}
	res, err = c.Put(ctx, def(t, "made-1", "b"), station.Condition{IfMatch: []int64{1}})
	if err != nil || res.Created || res.Station.Version != 2 || res.Station.Name != "b" {
		t.Fatalf("put: %+v, %v", res, err)
	}
	if _, err := c.Put(ctx, def(t, "made-1", "c"), station.Condition{IfMatch: []int64{1}}); !errors.Is(err, station.ErrPreconditionFailed) {
		t.Fatalf("stale put: %v", err)
	}
	if _, err := c.Create(ctx, def(t, "made-1", "d")); !errors.Is(err, station.ErrExists) {
		t.Fatalf("create of an existing one: %v", err)
	}
	if res, err = c.Delete(ctx, "made-1", station.Condition{}); err != nil || res.Version != 3 || res.Accepted || res.Station != nil {
		t.Fatalf("delete: %+v, %v", res, err)
	}
	if _, err := c.Delete(ctx, "made-1", station.Condition{}); !errors.Is(err, station.ErrNotFound) {
		t.Fatalf("delete again: %v", err)
	}
	if res, err = c.Create(ctx, def(t, "made-1", "e")); err != nil || !res.Created || res.Station.Version != 4 {
		t.Fatalf("create again: %+v, %v", res, err)
	}
}

// TestOneStationIsSerialisedAcrossInstances: several instances put one
// station at once, unconditionally; every put gets its own version, none
// is lost, and the read model ends at the last.
func TestOneStationIsSerialisedAcrossInstances(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	instances := []*stationcmd.Commands{e.commands(t), e.commands(t), e.commands(t)}
	const puts = 12
	versions := make([]int64, puts)
	var wg sync.WaitGroup
	for i := range puts {
		wg.Go(func() {
			res, err := instances[i%len(instances)].Put(t.Context(), def(t, "X", fmt.Sprint(i)), station.Condition{})
			if err != nil {
				t.Errorf("put %d: %v", i, err)
				return
			}
			versions[i] = res.Version
		})
	}
	wg.Wait()
	seen := map[int64]bool{}
	for _, v := range versions {
		if seen[v] || v < 1 || v > puts {
			t.Errorf("versions %v: each put must get its own, 1 to %d", versions, puts)
			break
		}
		seen[v] = true
	}
	if cur, err := stations.NewStore(e.pool).Current(t.Context(), "X"); err != nil || cur.Version != puts {
		t.Errorf("read model at %+v, %v; want version %d", cur, err, puts)
	}
}

// TestNothingIsDecidedOnAStaleReadModel: without a projector, the first
// command is appended and Accepted; the next fails with ErrUnavailable
// (its read model is behind), and appends nothing.
func TestNothingIsDecidedOnAStaleReadModel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	c := e.commands(t, func(c *stationcmd.Config) { c.Timeout = 2 * time.Second })
	res, err := c.Create(t.Context(), def(t, "A", "a"))
	if err != nil || !res.Accepted || res.Version != 1 || res.EventID == "" {
		t.Fatalf("first: %+v, %v", res, err)
	}
	if _, err := c.Put(t.Context(), def(t, "A", "b"), station.Condition{}); !errors.Is(err, stationcmd.ErrUnavailable) {
		t.Fatalf("second: %v, want ErrUnavailable", err)
	}
	e.runProjector(t)
	c2 := e.commands(t)
	res, err = c2.Put(t.Context(), def(t, "A", "b"), station.Condition{IfMatch: []int64{1}})
	if err != nil || res.Accepted || res.Version != 2 {
		t.Fatalf("once the projector runs: %+v, %v", res, err)
	}
}
