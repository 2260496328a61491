package geofence_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/internal/fleettest"
	"github.com/tmsfleet/tms/internal/metricstest"
	"github.com/tmsfleet/tms/internal/testenv"
	pipeline "github.com/tmsfleet/tms/pipeline/geofence"
)

func config() geofence.Config { return geofence.Config{ReorderWindow: geofence.DefaultReorderWindow} }

// run starts a processor; stop cancels it and waits.
func run(t *testing.T, kc *kafka.Config, snapshotEvery int, reg prometheus.Registerer) (stop func()) {
	t.Helper()
	return runWith(t, kc, pipeline.Config{SnapshotEvery: snapshotEvery, Registerer: reg})
}

// runWith starts a processor with cfg's snapshot, batch and commit
// settings and registerer; stop cancels it and waits.
func runWith(t *testing.T, kc *kafka.Config, cfg pipeline.Config) (stop func()) {
	t.Helper()
	// Client metrics on, as in the service, in a registry of the
	// instance's own (as the service has one instance per process): this
	// catches two clients registering the same metrics.
	own := *kc
	own.Registerer = prometheus.NewRegistry()
	cfg.Kafka, cfg.Geofence = &own, config()
	cfg.NewIndex = func() (geofence.Index, error) { return geofence.NewBruteForce(), nil }
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = 50
	}
	p, err := pipeline.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return testenv.Go(t, "processor", p.Run)
}

func TestProcessorMatchesTheTrackerExactlyOnce(t *testing.T) {
	t.Parallel()
	kc := testenv.FromEnv(os.LookupEnv).Kafka(t)
	w := fleettest.New(t, 6, 120)
	want := w.Expected(t, config())
	if fleettest.Count(want) < 50 {
		t.Fatalf("the world makes only %d events", fleettest.Count(want))
	}
	fleettest.Produce(t, kc, w.StationRecords(t, kc))
	fleettest.Produce(t, kc, fleettest.PositionRecords(t, kc, w.Fixes))
	run(t, kc, 1000, nil)
	fleettest.Compare(t, fleettest.ReadGeofence(t, kc, fleettest.Count(want), 90*time.Second), want)
}

// TestATrickleOfPositionsCommitsEveryTransaction feeds the processor as
// a quiet fleet does, a few positions at a time, most deciding nothing: a
// transaction begun the moment the previous one ended used to race the
// broker finishing that one, fail its offset commit and abort, and every
// abort restores every partition from its snapshot.
func TestATrickleOfPositionsCommitsEveryTransaction(t *testing.T) {
	t.Parallel()
	kc := testenv.FromEnv(os.LookupEnv).Kafka(t)
	w := fleettest.New(t, 6, 120)
	want := w.Expected(t, config())
	fleettest.Produce(t, kc, w.StationRecords(t, kc))
	reg := prometheus.NewRegistry()
	runWith(t, kc, pipeline.Config{Registerer: reg, MaxBatch: 10_000})
	producer, err := kc.NewClient("trickle")
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	positions := fleettest.PositionRecords(t, kc, w.Fixes)
	// A steady pace, as a fleet reports: a ticker paces the feed, it does
	// not wait for anything.
	pace := time.NewTicker(5 * time.Millisecond)
	defer pace.Stop()
	for ; len(positions) > 0; <-pace.C {
		n := min(4, len(positions))
		if err := producer.ProduceSync(context.Background(), positions[:n]...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		positions = positions[n:]
	}
	fleettest.Compare(t, fleettest.ReadGeofence(t, kc, fleettest.Count(want), 90*time.Second), want)
	if aborted := metricstest.Sum(t, reg, "tms_geofence_transactions_total", "result", "aborted"); aborted > 0 {
		t.Errorf("%v of %v transactions aborted", aborted, metricstest.Sum(t, reg, "tms_geofence_transactions_total"))
	}
}

// TestTakeoversGiveTheSameEvents stops the processor several times
// mid-stream, each new one taking over from the snapshots and replaying
// the positions after them, with a second instance sharing the
// partitions for a while. The first and last processors never snapshot
// (so their successors replay everything since the last one), the middle
// ones snapshot often.
func TestTakeoversGiveTheSameEvents(t *testing.T) {
	t.Parallel()
	kc := testenv.FromEnv(os.LookupEnv).Kafka(t)
	w := fleettest.New(t, 6, 120)
	want := w.Expected(t, config())
	fleettest.Produce(t, kc, w.StationRecords(t, kc))
	positions := fleettest.PositionRecords(t, kc, w.Fixes)
	quarter := len(positions) / 4
	reg := prometheus.NewRegistry()
	instance := func(n string) prometheus.Registerer {
		return prometheus.WrapRegistererWith(prometheus.Labels{"instance": n}, reg)
	}
	never := 1 << 30

	stop := run(t, kc, never, instance("1"))
	fleettest.Produce(t, kc, positions[:quarter])
	fleettest.ReadGeofence(t, kc, 1, 60*time.Second) // some progress
	stop()
	a := run(t, kc, 37, instance("2"))
	b := run(t, kc, 37, instance("3")) // a second instance: the partitions are shared
	fleettest.Produce(t, kc, positions[quarter:2*quarter])
	a()
	fleettest.Produce(t, kc, positions[2*quarter:3*quarter])
	b()
	run(t, kc, never, instance("4"))
	fleettest.Produce(t, kc, positions[3*quarter:])
	fleettest.Compare(t, fleettest.ReadGeofence(t, kc, fleettest.Count(want), 90*time.Second), want)
	if replayed := metricstest.Sum(t, reg, "tms_geofence_replayed_records_total"); replayed == 0 {
		t.Error("no takeover replayed any position: the test did not exercise the replay")
	}
}

// TestStationChangesApplyFromTheirTimeInEveryInstance creates, changes
// and deletes a station while vehicles drive, with two instances sharing
// the vehicles: each change applies to the fixes taken from its time on,
// whichever instance decides them and whenever it learns of the change.
func TestStationChangesApplyFromTheirTimeInEveryInstance(t *testing.T) {
	t.Parallel()
	kc := testenv.FromEnv(os.LookupEnv).Kafka(t)
	w := fleettest.New(t, 8, 120)
	depot := `{"id":"DEPOT","name":"Depot","type":"unloading","geometry":{"type":"Point","coordinates":[121.000,31.005]},"radius_m":%d}`
	w.Upsert(t, fmt.Sprintf(depot, 300), 1, fleettest.T0.Add(2*time.Minute))
	w.Upsert(t, fmt.Sprintf(depot, 900), 2, fleettest.T0.Add(6*time.Minute))
	w.Delete("DEPOT", 3, fleettest.T0.Add(11*time.Minute))
	want := w.Expected(t, config())
	positions := fleettest.PositionRecords(t, kc, w.Fixes)
	stations := w.StationRecords(t, kc)
	run(t, kc, 1000, nil)
	run(t, kc, 1000, nil)
	// The base stations first, then each change of the depot at its time,
	// as an operator makes it while vehicles report: after the fixes taken
	// before it, before those taken at or after it. The processors decide
	// fixes while the changes arrive, from a topic of their own.
	fleettest.Produce(t, kc, stations[:3])
	sent := 0
	for i, change := range stations[3:] {
		at := w.Changes[3+i].At
		before := len(w.Fixes)
		if n := slices.IndexFunc(w.Fixes[sent:], func(p position.Position) bool { return !p.FixTime.Before(at) }); n >= 0 {
			before = sent + n
		}
		fleettest.Produce(t, kc, positions[sent:before])
		fleettest.Produce(t, kc, []*kgo.Record{change})
		sent = before
	}
	fleettest.Produce(t, kc, positions[sent:])
	got := fleettest.ReadGeofence(t, kc, fleettest.Count(want), 90*time.Second)
	fleettest.Compare(t, got, want)
	// The world must show each change at work: visits to the depot, some
	// ended by its change, and some by its deletion.
	var visits, changed, deleted int
	for _, events := range want {
		for _, e := range events {
			if strings.Contains(e, " DEPOT ") {
				visits++
				changed += strings.Count(e, geofence.FlagStationChanged)
				deleted += strings.Count(e, geofence.FlagStationDeleted)
			}
		}
	}
	if visits == 0 || changed == 0 || deleted == 0 {
		t.Errorf("depot events %d, of which changed %d, deleted %d: the world does not exercise the changes", visits, changed, deleted)
	}
}

// TestHostileInventedPlatesAreForgottenAlikeAcrossTakeovers floods a
// small fleet with invented plates, all inside the loading station, in a
// processor allowed 3 vehicles a partition: real vehicles
// are forgotten too, their visits ended by exits flagged forgotten. The
// processors stop and take over from snapshots mid-stream, and the events
// must be exactly those of an uninterrupted run: forgetting is decided by
// the partition's offsets, never by when a processor happened to run.
func TestHostileInventedPlatesAreForgottenAlikeAcrossTakeovers(t *testing.T) {
	t.Parallel()
	kc := testenv.FromEnv(os.LookupEnv).Kafka(t)
	w := fleettest.New(t, 6, 120)
	var fixes []position.Position
	for i, p := range w.Fixes {
		fixes = append(fixes, p)
		if i%2 == 0 {
			fixes = append(fixes, position.Position{Plate: fmt.Sprintf("FLOOD%05d", i), FixTime: p.FixTime,
				ReceivedAt: p.ReceivedAt, Lat: 31.010, Lng: 121.000}) // in LOAD
		}
	}
	w.Fixes = fixes
	fleettest.Produce(t, kc, w.StationRecords(t, kc))
	positions := fleettest.PositionRecords(t, kc, w.Fixes)
	half := len(positions) / 2
	reg := prometheus.NewRegistry()
	instance := func(n string) prometheus.Registerer {
		return prometheus.WrapRegistererWith(prometheus.Labels{"instance": n}, reg)
	}
	maxVehicles := int(kc.Partitions) * 3

	a := runWith(t, kc, pipeline.Config{SnapshotEvery: 53, MaxVehicles: maxVehicles, Registerer: instance("1")})
	fleettest.Produce(t, kc, positions[:half])
	fleettest.ReadGeofence(t, kc, 1, 60*time.Second) // some progress
	a()
	runWith(t, kc, pipeline.Config{SnapshotEvery: 53, MaxVehicles: maxVehicles, Registerer: instance("2")})
	runWith(t, kc, pipeline.Config{SnapshotEvery: 1 << 30, MaxVehicles: maxVehicles, Registerer: instance("3")})
	fleettest.Produce(t, kc, positions[half:])

	want := w.ExpectedInFleets(t, config(), 3, positions)
	fleettest.Compare(t, fleettest.ReadGeofence(t, kc, fleettest.Count(want), 90*time.Second), want)
	forgottenExits := 0
	for plate, events := range want {
		for _, e := range events {
			if strings.Contains(e, geofence.FlagForgotten) && !strings.HasPrefix(plate, "FLOOD") {
				forgottenExits++
			}
		}
	}
	if forgottenExits == 0 {
		t.Error("no real vehicle's visit was ended by forgetting: the test does not exercise it")
	}
	if n := metricstest.Sum(t, reg, "tms_geofence_vehicles_forgotten_total"); n == 0 {
		t.Error("tms_geofence_vehicles_forgotten_total stayed 0")
	}
}
