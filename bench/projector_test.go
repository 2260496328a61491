package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/pipeline/ingest"
	"github.com/tmsfleet/tms/projections/projector"
	"github.com/tmsfleet/tms/projections/vehicles"
	"github.com/tmsfleet/tms/simulator"
)

// The projector's input: projectorRounds fixes of each of
// projectorVehicles simulated vehicles, projectorInterval apart.
const (
	projectorVehicles = 10_000
	projectorRounds   = 100
	projectorRecords  = projectorVehicles * projectorRounds
	projectorInterval = 10 * time.Second
	// projectorTimeout bounds one run (it would take 200 s at 5,000/s).
	projectorTimeout = 4 * time.Minute
)

// projectorRuns are the settings compared: MaxBatch values with one
// member in the group, and what `tms serve` runs: MaxBatch 50,000 with
// three members (TMS_PROJECTOR_MEMBERS), each applying its partitions in
// transactions of its own, side by side.
var projectorRuns = []struct{ maxBatch, members int }{
	{10_000, 1}, {50_000, 1}, {50_000, 3},
}

// BenchmarkProjector measures the vehicles projection applying a topic
// that is already full: projector.New with vehicles.NewProjection, against
// a fresh database, timed from its start until the offsets it commits in
// projector_offsets reach the end of the topic.
func BenchmarkProjector(b *testing.B) {
	kc := svc.Kafka(b)
	kc.Logger = quiet
	topic := kc.Topic(event.TopicPositions)
	start := time.Now()
	fill(b, kc, topic)
	end := endOffset(b, kc, topic)
	if end != projectorRecords {
		b.Fatalf("the topic holds %d records, want %d", end, projectorRecords)
	}
	// A benchmark with sub-benchmarks prints no log of its own: each
	// sub-benchmark says what it ran on.
	setup := fmt.Sprintf("%d position events (%d simulated vehicles x %d fixes %s apart, encoded as ingest encodes them) "+
		"filled into a fresh topic with 3 partitions in %s before the timer starts; projector with vehicles.NewProjection "+
		"in the benchmark process, fresh database per run; Kafka and Postgres co-located",
		end, projectorVehicles, projectorRounds, projectorInterval, time.Since(start).Round(time.Millisecond))
	for _, run := range projectorRuns {
		name := fmt.Sprintf("MaxBatch=%d", run.maxBatch)
		if run.members > 1 {
			name += fmt.Sprintf(",members=%d", run.members)
		}
		b.Run(name, func(b *testing.B) {
			reportCores(b, fmt.Sprintf("MaxBatch %d, %d member(s) in the group; %s", run.maxBatch, run.members, setup))
			b.StopTimer()
			var elapsed time.Duration
			for range b.N {
				elapsed += runProjector(b, kc, topic, end, run.maxBatch, run.members)
			}
			b.ReportMetric(float64(b.N*projectorRecords)/elapsed.Seconds(), "positions/s")
		})
	}
}

// fill produces the benchmark's fixes to topic as ingest would: each a
// tms.position.reported.v1 event from ingest.Source, json.Marshal'ed,
// keyed by plate, stamped with its receive time.
func fill(b *testing.B, kc *kafka.Config, topic string) {
	b.Helper()
	fleet, err := simulator.NewFleet(1, projectorVehicles, simulator.Shanghai())
	if err != nil {
		b.Fatal(err)
	}
	cl, err := kc.NewClient("bench-fill", kgo.ProducerLinger(20*time.Millisecond), kgo.MaxBufferedRecords(50_000))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	var failed atomic.Int64
	var firstErr atomic.Value
	promise := func(_ *kgo.Record, err error) {
		if err != nil && failed.Add(1) == 1 {
			firstErr.Store(err)
		}
	}
	t0 := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	for round := range projectorRounds {
		for _, f := range fleet.Step(t0.Add(time.Duration(round) * projectorInterval)) {
			cl.Produce(ctx, positionRecord(b, topic, f), promise)
		}
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d records were not produced: %v", n, firstErr.Load())
	}
}

// positionRecord is the record ingest would make of fix f, received 1.5 s
// after it was taken.
func positionRecord(b *testing.B, topic string, f simulator.Fix) *kgo.Record {
	course := math.Round(f.Course) // G7 reports whole degrees
	p := position.Position{
		Plate: f.Plate, FixTime: f.Time, ReceivedAt: f.Time.Add(1500 * time.Millisecond),
		Lat: f.Lat, Lng: f.Lng, SpeedKmh: math.Round(f.SpeedKmh*10) / 10, Course: &course,
	}
	e, err := p.Event(ingest.Source)
	if err != nil {
		b.Fatal(err)
	}
	value, err := json.Marshal(e)
	if err != nil {
		b.Fatal(err)
	}
	return &kgo.Record{Topic: topic, Key: []byte(p.Plate), Value: value, Timestamp: p.ReceivedAt,
		Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte(event.StructuredContentType)}}}
}

// BenchmarkProjectorDecode measures, without services, the decoding the
// vehicles projection does for every record (position.DecodeEvent).
func BenchmarkProjectorDecode(b *testing.B) {
	fleet, err := simulator.NewFleet(1, projectorVehicles, simulator.Shanghai())
	if err != nil {
		b.Fatal(err)
	}
	var values [][]byte
	t0 := time.Now().Truncate(time.Second)
	for round := range 10 {
		for _, f := range fleet.Step(t0.Add(time.Duration(round) * projectorInterval)) {
			values = append(values, positionRecord(b, "bench", f).Value)
		}
	}
	for b.Loop() {
		for _, v := range values {
			if _, _, _, err := position.DecodeEvent(v); err != nil {
				b.Fatal(err)
			}
		}
	}
	// After the loop: b.Loop's start deletes reported metrics.
	reportCores(b, fmt.Sprintf("%d position records of %d simulated vehicles, decoded on one goroutine", len(values), projectorVehicles))
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(values)), "ns/record")
}

// runProjector projects the topic into a fresh database with a projector
// of maxBatch and members, and returns the time until the committed
// offsets reached end.
func runProjector(b *testing.B, kc *kafka.Config, topic string, end int64, maxBatch, members int) time.Duration {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dbURL := svc.Postgres(b)
	pool, err := postgres.Open(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	poll, err := postgres.Open(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer poll.Close()
	reg := prometheus.NewRegistry()
	p, err := projector.New(projector.Config[position.Position]{
		Spec: vehicles.Spec, Kafka: kc, Pool: pool, Projection: vehicles.NewProjection(reg, quiet),
		MaxBatch: maxBatch, Members: members, Registerer: reg, Logger: quiet,
	})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	cpu := startCPU()
	b.StartTimer()
	start := time.Now()
	go func() { done <- p.Run(ctx) }()
	var first time.Duration
	deadline := start.Add(projectorTimeout)
	for {
		n := applied(b, poll, vehicles.ProjectionName, topic)
		if n > 0 && first == 0 {
			first = time.Since(start)
		}
		if n >= end {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("after %s the projector had committed %d of %d records", projectorTimeout, n, end)
		}
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	shares, wall := cpu.stop()
	cancel()
	if err := <-done; err != nil {
		b.Fatalf("projector: %v", err)
	}

	var rows, vs int64
	if err := poll.QueryRow(context.Background(),
		`SELECT (SELECT count(*) FROM positions), (SELECT count(*) FROM vehicles)`).Scan(&rows, &vs); err != nil {
		b.Fatal(err)
	}
	if rows != end || vs != projectorVehicles {
		b.Errorf("positions %d, vehicles %d; want %d and %d", rows, vs, end, projectorVehicles)
	}
	batches, records, inTx := batchStats(b, reg)
	b.Logf("%s: %d records committed in %s (%.0f positions/s); first commit after %s; "+
		"%d transactions of %.0f records on average, %.1f s inside them (%.0f%% of the run x %d member(s))",
		b.Name(), end, elapsed.Round(time.Millisecond), float64(end)/elapsed.Seconds(), first.Round(time.Millisecond),
		batches, records/float64(batches), inTx, 100*inTx/elapsed.Seconds()/float64(members), members)
	b.Logf("CPU per record: Go process %.1f µs, Postgres %.1f µs",
		share(shares, groups[0])/records*1e6, share(shares, "postgres")/records*1e6)
	logCPU(b, shares, wall)
	return elapsed
}

// applied returns how many records of topic the projector has committed.
func applied(b *testing.B, pool *pgxpool.Pool, projector, topic string) int64 {
	var n int64
	err := pool.QueryRow(context.Background(), `
		SELECT coalesce(sum(next_offset), 0) FROM projector_offsets WHERE projector = $1 AND topic = $2`,
		projector, topic).Scan(&n)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// batchStats reads the projector's metrics: transactions, records applied
// and seconds spent applying and committing.
func batchStats(b *testing.B, reg *prometheus.Registry) (batches uint64, records, seconds float64) {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	hist := func(name string) *dto.Histogram {
		for _, mf := range mfs {
			if mf.GetName() == name && len(mf.GetMetric()) > 0 {
				return mf.GetMetric()[0].GetHistogram()
			}
		}
		b.Fatalf("metric %s not found", name)
		return nil
	}
	size := hist("tms_projector_batch_records")
	return size.GetSampleCount(), size.GetSampleSum(), hist("tms_projector_batch_duration_seconds").GetSampleSum()
}
