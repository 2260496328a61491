package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/projections/projector"
	"github.com/tmsfleet/tms/projections/trips"
)

// BenchmarkTripsProjector measures the trips projection applying a
// positions topic that is already full (the fixes BenchmarkProjector
// applies: 10,000 simulated vehicles x 100 fixes, 10 s apart), with
// `tms serve`'s MaxBatch of 50,000 and one member (benchTripMembers): its
// state read and written per vehicle per batch, every fix kept for late
// ones, snapshots every 15 minutes of fix time, the segment in progress
// written per batch. Timed from its start until the offsets it commits
// reach the end of the topic.
func BenchmarkTripsProjector(b *testing.B) {
	kc := svc.Kafka(b)
	kc.Logger = quiet
	topic := kc.Topic(event.TopicPositions)
	start := time.Now()
	fill(b, kc, topic)
	end := endOffset(b, kc, topic)
	setup := fmt.Sprintf("%d position events (%d simulated vehicles x %d fixes %s apart) filled into a fresh topic "+
		"with 3 partitions in %s before the timer starts; projector with trips.NewProjection (default settings) in the "+
		"benchmark process, fresh database per run; Kafka and Postgres co-located",
		end, projectorVehicles, projectorRounds, projectorInterval, time.Since(start).Round(time.Millisecond))
	for _, members := range benchTripMembers {
		b.Run(fmt.Sprintf("MaxBatch=50000,members=%d", members), func(b *testing.B) {
			reportCores(b, fmt.Sprintf("MaxBatch 50,000, %d member(s) in the group; %s", members, setup))
			b.StopTimer()
			var elapsed time.Duration
			for range b.N {
				elapsed += runTrips(b, kc, topic, end, members)
			}
			b.ReportMetric(float64(b.N)*float64(end)/elapsed.Seconds(), "positions/s")
		})
	}
}

// runTrips projects the topic into trips in a fresh database and returns
// the time until the committed offsets reached end.
func runTrips(b *testing.B, kc *kafka.Config, topic string, end int64, members int) time.Duration {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dbURL := svc.Postgres(b)
	pool, err := postgres.Open(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	reg := prometheus.NewRegistry()
	p, err := projector.New(projector.Config[trips.Fix]{
		Spec: trips.Spec, Kafka: kc, Pool: pool, Projection: trips.NewProjection(trips.DefaultSettings(), reg, quiet),
		MaxBatch: 50_000, Members: members, Registerer: reg, Logger: quiet,
	})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	cpu := startCPU()
	b.StartTimer()
	began := time.Now()
	go func() { done <- p.Run(ctx) }()
	deadline := began.Add(projectorTimeout)
	for {
		n := applied(b, pool, trips.ProjectionName, topic)
		if n >= end {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("after %s the trips projector had committed %d of %d records", projectorTimeout, n, end)
		}
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(began)
	b.StopTimer()
	shares, wall := cpu.stop()
	cancel()
	if err := <-done; err != nil {
		b.Fatalf("projector: %v", err)
	}
	var vs, tr, st int64
	if err := pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM trip_vehicles),
		(SELECT count(*) FROM trips), (SELECT count(*) FROM stops)`).Scan(&vs, &tr, &st); err != nil {
		b.Fatal(err)
	}
	if vs != projectorVehicles || tr == 0 || st == 0 {
		b.Errorf("%d vehicles, %d trips, %d stops; want %d vehicles, some trips and stops", vs, tr, st, projectorVehicles)
	}
	batches, records, inTx := batchStats(b, reg)
	b.Logf("%s: %d records committed in %s (%.0f positions/s); %d trips and %d stops; %d transactions of %.0f records "+
		"on average, %.1f s inside them", b.Name(), end, elapsed.Round(time.Millisecond), float64(end)/elapsed.Seconds(),
		tr, st, batches, records/float64(batches), inTx)
	b.Logf("CPU per record: Go process %.1f µs, Postgres %.1f µs",
		share(shares, groups[0])/records*1e6, share(shares, "postgres")/records*1e6)
	logCPU(b, shares, wall)
	return elapsed
}

var benchTripMembers = []int{1}
