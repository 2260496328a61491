package geofence

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/h3"
	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/internal/geoworkload"
	"github.com/tmsfleet/tms/internal/testenv"
)

// The restore benchmark's fleet: issue 12's dense workload (10,000
// clustered circles around Shanghai, one fix every 10 s), 100,000
// vehicles, restoreRounds fixes each before the snapshot (enough to fill
// their duplicate memory and give them a few minutes of visits).
const (
	restoreVehicles = 100_000
	restoreStations = 10_000
	restoreRounds   = 18
)

// BenchmarkRestore measures a takeover of every partition: a new
// processor's restore of the state of 100,000 vehicles, as processPartition
// runs it for each partition side by side (mark the state partition, read
// the latest snapshot and decode it, replay the positions from the
// snapshot's offset to the committed offset), until every partition is
// ready to process. The snapshot is taken as the processor takes it
// (snapshotRecords, in a transaction); the replay sub-benchmarks differ
// in how many fixes arrived after it: one round of the fleet (100,000,
// the average case at the default SnapshotEvery with 3 partitions) and
// SnapshotEvery per partition (300,000, the most a takeover replays with
// the defaults); older=3 has three older snapshots before the latest in
// each partition, as a partition holds them until its segment rolls and
// is compacted. It needs Kafka (services.sh); the restored state is
// checked against the state the in-process tracker arrived at.
func BenchmarkRestore(b *testing.B) {
	rng := rand.New(rand.NewPCG(12, 2026))
	world := geoworkload.NewDenseWorld(rng, restoreStations)
	idx, err := h3.New(h3.Config{})
	if err != nil {
		b.Fatal(err)
	}
	catalog := geofence.NewCatalog(idx)
	for i, shape := range world.Stations {
		if err := catalog.Upsert(geofence.Station{ID: fmt.Sprintf("D%05d", i), Type: "loading", Version: 1, Shape: shape}, time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
	cfg := geofence.Config{ReorderWindow: geofence.DefaultReorderWindow}
	for _, c := range []struct {
		name   string
		rounds int // after the snapshot
		older  int // snapshots before it, not compacted yet
	}{{"replay=100k", 1, 0}, {"replay=300k", 3, 0}, {"replay=100k,older=3", 1, 3}} {
		b.Run(c.name, func(b *testing.B) {
			kc := testenv.FromEnv(os.LookupEnv).Kafka(b)
			kc.Logger = slog.New(slog.DiscardHandler)
			benchmarkRestore(b, kc, catalog, cfg, world, c.rounds, c.older)
		})
	}
}

func benchmarkRestore(b *testing.B, kc *kafka.Config, catalog *geofence.Catalog, cfg geofence.Config,
	world *geoworkload.DenseWorld, after, older int) {
	ctx := context.Background()
	const partitions = 3
	rng := rand.New(rand.NewPCG(7, 12))
	fixes := geoworkload.DenseFixes(rng, world, restoreVehicles, restoreRounds+after)
	split := restoreRounds * restoreVehicles
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	at := func(i int) time.Time { return t0.Add(time.Duration(i/restoreVehicles) * geoworkload.DenseInterval) }
	plate := func(v int32) string { return fmt.Sprintf("沪D%06d", v) }

	// The state before the snapshot, decided in process: vehicle v is in
	// partition v%3; offsets before the snapshot are negative (the
	// snapshot's positions are not in the topic, only those after it).
	capacity := fleetCapacity(DefaultMaxVehicles, partitions)
	var err error
	fleets := make([]*geofence.Fleet, partitions)
	trackers := make([]*geofence.Tracker, partitions)
	for p := range fleets {
		fleets[p] = geofence.NewFleet(capacity)
		if trackers[p], err = geofence.NewTracker(cfg, catalog); err != nil {
			b.Fatal(err)
		}
	}
	setup := time.Now()
	var out []geofence.Transition
	for i, f := range fixes[:split] {
		p := f.Vehicle % partitions
		out, _ = fleets[p].Observe(trackers[p], plate(f.Vehicle), geofence.Fix{Time: at(i), Point: f.P}, int64(i-split), out[:0])
	}
	// The snapshot, as the processor takes it, in a transaction, after
	// older ones the log still holds (compaction has not reached them:
	// the partition's active segment is never compacted).
	stateTopic := kc.Topic(event.TopicGeofenceState)
	for range older {
		for p := range int32(partitions) {
			records, err := snapshotRecords(stateTopic, p, &partitionState{fleet: fleets[p], next: 0}, SnapshotBinary)
			if err != nil {
				b.Fatal(err)
			}
			produceTransaction(b, kc, records)
		}
	}
	var snapshot []*kgo.Record
	snapshotBytes := 0
	for p := range int32(partitions) {
		records, err := snapshotRecords(stateTopic, p, &partitionState{fleet: fleets[p], next: 0}, SnapshotBinary)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range records {
			snapshotBytes += len(r.Value)
		}
		snapshot = append(snapshot, records...)
	}
	produceTransaction(b, kc, snapshot)
	// The fixes after it, to the positions topic, and their decisions in
	// process: what the restore must arrive at.
	var positions []*kgo.Record
	ends := make([]int64, partitions)
	for i, f := range fixes[split:] {
		i += split
		p := f.Vehicle % partitions
		pos := position.Position{Plate: plate(f.Vehicle), FixTime: at(i), ReceivedAt: at(i).Add(time.Second), Lat: f.P.Lat, Lng: f.P.Lng, SpeedKmh: 30}
		e, err := pos.Event("/tms/ingest/g7")
		if err != nil {
			b.Fatal(err)
		}
		v, _ := json.Marshal(e)
		positions = append(positions, &kgo.Record{Topic: kc.Topic(event.TopicPositions), Partition: p, Key: []byte(pos.Plate), Value: v})
		out, _ = fleets[p].Observe(trackers[p], pos.Plate, geofence.Fix{Time: pos.FixTime, Point: geoPoint(pos)}, ends[p], out[:0])
		ends[p]++
	}
	produceTransaction(b, kc, positions)
	b.Logf("setup %s: %d vehicles, snapshot of %d records, %.1f MB, after %d older ones; %d fixes after it",
		time.Since(setup).Round(time.Millisecond), restoreVehicles, len(snapshot), float64(snapshotBytes)/1e6, older, len(positions))

	marker, err := kc.NewClient("geofence-aux", kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		b.Fatal(err)
	}
	defer marker.Close()
	var cpu time.Duration
	b.ResetTimer()
	for i := range b.N {
		r := &restorer{kafka: kc, marker: marker, fleetCapacity: capacity}
		restored := make([]*partitionState, partitions)
		errs := make([]error, partitions)
		stopProfile := profile(b, fmt.Sprintf("restore-%s-%d", b.Name(), i))
		before := cpuTime()
		start := time.Now()
		var wg sync.WaitGroup
		for p := range int32(partitions) {
			wg.Go(func() {
				tracker, err := geofence.NewTracker(cfg, catalog)
				if err != nil {
					errs[p] = err
					return
				}
				restored[p], _, errs[p] = r.restore(ctx, tracker, p, ends[p])
			})
		}
		wg.Wait()
		took := time.Since(start)
		cpu += cpuTime() - before
		stopProfile()
		for p, err := range errs {
			if err != nil {
				b.Fatalf("partition %d: %v", p, err)
			}
		}
		if i == 0 {
			b.StopTimer()
			b.Logf("restored in %s", took.Round(time.Millisecond))
			for p := range partitions {
				if !sameStates(fleets[p], restored[p].fleet) {
					b.Fatalf("partition %d: the restored state differs from the tracker's", p)
				}
			}
			b.StartTimer()
		}
	}
	b.StopTimer()
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/restore")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/restore")
}

// sameStates reports whether two fleets hold the same vehicles in the
// same states, as their snapshots encode them.
func sameStates(a, b *geofence.Fleet) bool {
	encode := func(fl *geofence.Fleet) []byte {
		var states []geofence.VehicleState
		fl.Each(func(v *geofence.Vehicle) { states = append(states, v.State) })
		slices.SortFunc(states, func(x, y geofence.VehicleState) int { return cmpString(x.Plate, y.Plate) })
		out, _ := json.Marshal(states)
		return out
	}
	return a.Len() == b.Len() && bytes.Equal(encode(a), encode(b))
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// produceTransaction produces records in one committed transaction.
func produceTransaction(b testing.TB, kc *kafka.Config, records []*kgo.Record) {
	cl, err := kc.NewTransientClient("bench-fill", kgo.TransactionalID(testenv.Name("bench-fill")),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if err := cl.BeginTransaction(); err != nil {
		b.Fatal(err)
	}
	for _, r := range records {
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		b.Fatal(err)
	}
}

// profile writes a CPU profile of what runs until the returned function
// is called, when TMS_BENCH_PROFILE_DIR names a directory for it: a
// profile of the timed interval only, without the setup.
func profile(b *testing.B, name string) (stop func()) {
	dir := os.Getenv("TMS_BENCH_PROFILE_DIR")
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, strings.NewReplacer("/", "_", "=", "_").Replace(name)+".pprof"))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
