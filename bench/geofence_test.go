package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/h3"
	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/domain/station"
	"github.com/tmsfleet/tms/internal/geoworkload"
	pipeline "github.com/tmsfleet/tms/pipeline/geofence"
	"github.com/tmsfleet/tms/pipeline/ingest"
)

// geofenceStations is the size of the geofence benchmarks' catalogue.
const geofenceStations = 10_000

// geofenceWarmUps is how many untimed passes warm the broker up: on a
// broker just started, the Kafka JVM's CPU per fix was 4.3-5.8 µs in a
// first pass, 2.4-3.7 µs in a second and 0.8-3.0 µs after that.
const geofenceWarmUps = 2

// BenchmarkGeofenceKafka measures the geofence role through Kafka:
// positions topic in, tms.geofence out, Kafka transactions on, as `tms
// serve` runs it (H3 index, default batch and snapshot settings). The
// topics are filled before the timer starts; the timer runs from the
// moment the processor has loaded its catalogue until the consumer
// group's committed offsets reach the end of the positions topic.
//
// A broker just started spends several times the CPU per record until
// its JVM has compiled the paths a workload takes (see the ingest
// benchmark), and this benchmark may be the first to use transactions on
// it: untimed passes over topics of their own warm it first, so that the
// figure is a broker's in service.
func BenchmarkGeofenceKafka(b *testing.B) {
	b.StopTimer()
	for i := range geofenceWarmUps {
		warm, warmEnd, _ := fillGeofence(b)
		runGeofence(b, warm, warmEnd, i+1)
	}
	b.ResetTimer()
	b.StopTimer()
	kc, end, setup := fillGeofence(b)
	reportCores(b, setup)
	var elapsed time.Duration
	for range b.N {
		elapsed += runGeofence(b, kc, end, 0)
	}
	b.ReportMetric(float64(b.N)*float64(end)/elapsed.Seconds(), "fixes/s")
}

// fillGeofence makes topics of their own and fills them with the
// stations and the fixes; it returns their config, the end of the
// positions and the setup as the benchmark reports it.
func fillGeofence(b *testing.B) (*kafka.Config, int64, string) {
	kc := svc.Kafka(b)
	kc.Logger = quiet
	start := time.Now()
	n := fillStations(b, kc)
	_, fixes := geofenceWorkload()
	produceFixes(b, kc, time.Now().Add(-24*time.Hour).Truncate(time.Second), fixes)
	end := endOffset(b, kc, kc.Topic(event.TopicPositions))
	return kc, end, fmt.Sprintf("%d stations and %d position events (%d vehicles, one fix a second) filled in %s before the timer; "+
		"pipeline/geofence in the benchmark process with the H3 index; Kafka co-located, 3 partitions, warmed up by %d untimed passes",
		n, end, geofenceVehicles, time.Since(start).Round(time.Millisecond), geofenceWarmUps)
}

// runGeofence runs the processor over the filled topics until it has
// committed them all. A warm-up pass (warmUp > 0) logs one line: the
// output of a benchmark is cut after a few lines, and the measured pass's
// must all show.
func runGeofence(b *testing.B, kc *kafka.Config, end int64, warmUp int) time.Duration {
	p, err := pipeline.New(pipeline.Config{
		Kafka: kc, Geofence: geofence.Config{ReorderWindow: geofence.DefaultReorderWindow},
		NewIndex: func() (geofence.Index, error) { return h3.New(h3.Config{}) },
		Logger:   quiet,
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	loadStart := time.Now()
	select {
	case <-p.Ready():
	case err := <-done:
		b.Fatalf("geofence: %v", err)
	}
	loaded := time.Since(loadStart).Round(time.Millisecond)
	adm, err := kc.NewAdmin("bench-admin")
	if err != nil {
		b.Fatal(err)
	}
	defer adm.Close()
	cpu := startCPU()
	stopProfile := func() {}
	if warmUp == 0 {
		stopProfile = profileCPU(b, "geofence-kafka")
	}
	b.StartTimer()
	t0 := time.Now()
	deadline := t0.Add(5 * time.Minute)
	for committed(b, adm, kc) < end {
		if time.Now().After(deadline) {
			b.Fatalf("after 5 minutes the geofence had committed %d of %d records", committed(b, adm, kc), end)
		}
		time.Sleep(50 * time.Millisecond)
	}
	elapsed := time.Since(t0)
	b.StopTimer()
	stopProfile()
	shares, wall := cpu.stop()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if warmUp > 0 {
		b.Logf("warm-up pass %d, not timed: %.0f fixes/s, Kafka JVM %.1f s of CPU", warmUp,
			float64(end)/elapsed.Seconds(), share(shares, "kafka (JVM)"))
		return elapsed
	}
	events := endOffset(b, kc, kc.Topic(event.TopicGeofence))
	b.Logf("station catalogue loaded and indexed in %s; %d fixes decided and committed in %s (%.0f fixes/s); "+
		"%d records on tms.geofence (events and transaction markers); heap in use %.0f MB",
		loaded, end, elapsed.Round(time.Millisecond), float64(end)/elapsed.Seconds(), events, float64(ms.HeapInuse)/(1<<20))
	logCPU(b, shares, wall)
	return elapsed
}

// committed sums the geofence group's committed offsets on positions;
// 0 while the group coordinator is not there yet.
func committed(b *testing.B, adm *kadm.Client, kc *kafka.Config) int64 {
	offsets, err := adm.FetchOffsets(context.Background(), kc.Group(pipeline.Group))
	if err != nil {
		if errors.Is(err, kerr.CoordinatorNotAvailable) || errors.Is(err, kerr.CoordinatorLoadInProgress) {
			return 0
		}
		b.Fatal(err)
	}
	var n int64
	offsets.Each(func(o kadm.OffsetResponse) {
		if o.Topic == kc.Topic(event.TopicPositions) {
			n += o.At
		}
	})
	return n
}

// geofenceWorkload is the shared geofence workload (internal/geoworkload,
// as the H3 index's benchmarks use it): 10,000 stations in the cities of
// the Yangtze delta, many overlapping in industrial parks, and 10,000
// vehicles reporting once a second for 100 s, 30% of them parked.
var geofenceWorkload = sync.OnceValues(func() (*geoworkload.World, []geoworkload.Fix) {
	rng := rand.New(rand.NewPCG(2024, 7))
	w := geoworkload.NewDeltaWorld(rng, geofenceStations)
	return w, geoworkload.Fixes(rng, w, geofenceVehicles, geofenceSteps)
})

const (
	geofenceVehicles = 10_000
	geofenceSteps    = 100 // 1,000,000 fixes
)

// stationDef is the definition of shape s as station id, the JSON the
// API takes.
func stationDef(id string, s geofence.Shape) string {
	if s.Circle != nil {
		return fmt.Sprintf(`{"id":%q,"name":"bench","type":"loading","geometry":{"type":"Point","coordinates":[%v,%v]},"radius_m":%v}`,
			id, s.Circle.Center.Lng, s.Circle.Center.Lat, s.Circle.RadiusM)
	}
	var rings []string
	for _, ring := range s.Polygons[0] {
		var pts []string
		for _, p := range ring {
			pts = append(pts, fmt.Sprintf("[%v,%v]", p.Lng, p.Lat))
		}
		rings = append(rings, "["+strings.Join(pts, ",")+"]")
	}
	return fmt.Sprintf(`{"id":%q,"name":"bench","type":"loading","geometry":{"type":"Polygon","coordinates":[%s]}}`,
		id, strings.Join(rings, ","))
}

// benchStations parses the workload's stations as the API would; a shape
// the API would refuse (a generated polygon that crosses itself) is left
// out, as no operator could define it.
func benchStations(b *testing.B) []*station.Station {
	w, _ := geofenceWorkload()
	var out []*station.Station
	for i, shape := range w.Stations {
		s, err := station.Parse([]byte(stationDef(fmt.Sprintf("B%05d", i), shape)))
		if err != nil {
			continue
		}
		out = append(out, s)
	}
	if len(out) < geofenceStations*9/10 {
		b.Fatalf("only %d of %d stations are valid definitions", len(out), geofenceStations)
	}
	return out
}

// fixTime is when step's fixes were taken.
func fixTime(t0 time.Time, step int) time.Time { return t0.Add(time.Duration(step) * time.Second) }

// produceFixes produces fixes (geofenceVehicles of them a second from
// t0) to the positions topic as ingest would, and returns the bytes of
// their keys and values, before compression.
func produceFixes(b *testing.B, kc *kafka.Config, t0 time.Time, fixes []geoworkload.Fix) int64 {
	cl, err := kc.NewClient("bench-fill", kgo.ProducerLinger(20*time.Millisecond), kgo.MaxBufferedRecords(50_000))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	var failed atomic.Int64
	var size int64
	topic := kc.Topic(event.TopicPositions)
	for i, f := range fixes {
		at := fixTime(t0, i/geofenceVehicles)
		p := position.Position{Plate: vehiclePlate(f.Vehicle), FixTime: at, ReceivedAt: at.Add(time.Second), Lat: f.P.Lat, Lng: f.P.Lng, SpeedKmh: 30}
		e, err := p.Event(ingest.Source)
		if err != nil {
			b.Fatal(err)
		}
		v, _ := json.Marshal(e)
		size += int64(len(p.Plate) + len(v))
		cl.Produce(context.Background(), &kgo.Record{Topic: topic, Key: []byte(p.Plate), Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
			}
		})
	}
	if err := cl.Flush(context.Background()); err != nil || failed.Load() > 0 {
		b.Fatalf("producing the fixes: %v (%d failed)", err, failed.Load())
	}
	return size
}

func vehiclePlate(v int32) string { return fmt.Sprintf("沪V%05d", v) }

// fillStations produces the benchmark's stations to tms.stations.
func fillStations(b *testing.B, kc *kafka.Config) int {
	cl, err := kc.NewClient("bench-stations", kgo.ProducerLinger(20*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	var failed atomic.Int64
	at := time.Now().Add(-48 * time.Hour)
	stations := benchStations(b)
	for _, s := range stations {
		e, err := s.Upserted("/bench", 1, at)
		if err != nil {
			b.Fatal(err)
		}
		v, _ := json.Marshal(e)
		cl.Produce(context.Background(), &kgo.Record{Topic: kc.Topic(event.TopicStations), Key: []byte(s.ID()), Value: v},
			func(_ *kgo.Record, err error) {
				if err != nil {
					failed.Add(1)
				}
			})
	}
	if err := cl.Flush(context.Background()); err != nil || failed.Load() > 0 {
		b.Fatalf("producing the stations: %v (%d failed)", err, failed.Load())
	}
	return len(stations)
}

// BenchmarkGeofenceTracker measures the geofence's decisions in process,
// on one goroutine: the workload of BenchmarkGeofenceKafka through the H3
// index and the tracker (reorder window, hysteresis, crossings), without
// Kafka. One op is the whole workload, 1,000,000 fixes.
func BenchmarkGeofenceTracker(b *testing.B) {
	catalog := geofence.NewCatalog(mustH3(b))
	for _, s := range benchStations(b) {
		if err := catalog.Upsert(s.Geofence(1), time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
	tracker, err := geofence.NewTracker(geofence.Config{ReorderWindow: geofence.DefaultReorderWindow}, catalog)
	if err != nil {
		b.Fatal(err)
	}
	_, fixes := geofenceWorkload()
	t0 := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	newFleet := func() []*geofence.Vehicle {
		vs := make([]*geofence.Vehicle, geofenceVehicles)
		for i := range vs {
			vs[i] = geofence.NewVehicle(geofence.VehicleState{Plate: vehiclePlate(int32(i))})
		}
		return vs
	}
	var out []geofence.Transition
	transitions := 0
	var cpu time.Duration
	b.ResetTimer()
	for range b.N { // one op: the whole workload, with fresh vehicles
		b.StopTimer()
		vehicles := newFleet()
		cpu0 := processCPU()
		b.StartTimer()
		for j, f := range fixes {
			out = tracker.Observe(vehicles[f.Vehicle], geofence.Fix{Time: fixTime(t0, j/geofenceVehicles), Point: f.P}, out[:0])
			transitions += len(out)
		}
		b.StopTimer()
		cpu += processCPU() - cpu0
	}
	reportCores(b, fmt.Sprintf("%d stations, %d vehicles, one fix a second each, one goroutine", catalog.Stations(), geofenceVehicles))
	b.ReportMetric(float64(b.N*len(fixes))/b.Elapsed().Seconds(), "fixes/s")
	b.ReportMetric(float64(b.N*len(fixes))/cpu.Seconds(), "fixes/cpu-s")
	b.ReportMetric(float64(transitions)/float64(b.N*len(fixes)), "transitions/fix")
}

func mustH3(b *testing.B) geofence.Index {
	idx, err := h3.New(h3.Config{})
	if err != nil {
		b.Fatal(err)
	}
	return idx
}
