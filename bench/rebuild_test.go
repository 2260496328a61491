package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/projections"
	"github.com/tmsfleet/tms/projections/projector"
	"github.com/tmsfleet/tms/projections/rebuild"
)

// BenchmarkRebuild measures `tms rebuild` of every read model on a
// populated system: the topics hold projectorRecords position events
// (filled directly, as BenchmarkProjector fills them), the live projectors
// have built the live tables from them and keep running, and the timer
// runs over rebuild.Run as `tms rebuild` runs it (three members per read
// model): from its start, through the shadow schema's migrations, the
// projection of every record into the shadow tables and the switch, to
// its return. The rate is events rebuilt per second.
func BenchmarkRebuild(b *testing.B) {
	kc := svc.Kafka(b)
	kc.Logger = quiet
	topic := kc.Topic(event.TopicPositions)
	start := time.Now()
	fill(b, kc, topic)
	end := endOffset(b, kc, topic)
	filled := time.Since(start)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dbURL := svc.Postgres(b)
	models := projections.All()
	pool, err := postgres.OpenPool(ctx, dbURL, postgres.PoolConfig{MaxConns: rebuild.PoolSize(len(models), 3) + 8})
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	// The live projectors build the live tables, and go on running.
	for _, r := range models {
		run, err := r.NewProjector(projector.Deps{Kafka: kc, Pool: pool, Members: 3, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		go func() { _ = run(ctx) }()
	}
	waitApplied(b, pool, topic, end)
	reportCores(b, fmt.Sprintf("%d position events (%d simulated vehicles x %d fixes, encoded as ingest encodes them) filled "+
		"into a fresh topic with 3 partitions in %s, projected into the live tables by the live projectors (still running); "+
		"rebuild.Run of every read model (%d), 3 members each, in the benchmark process; Kafka and Postgres co-located",
		end, projectorVehicles, projectorRounds, filled.Round(time.Millisecond), len(models)))
	b.ResetTimer()
	var elapsed time.Duration
	var records int64
	for range b.N {
		cpu := startCPU()
		t0 := time.Now()
		res, err := rebuild.Run(ctx, rebuild.Config{
			ReadModels: models, Kafka: kc, Pool: pool, DatabaseURL: dbURL, Members: 3,
			Registerer: prometheus.NewRegistry(), Logger: quiet,
		})
		if err != nil {
			b.Fatal(err)
		}
		took := time.Since(t0)
		shares, wall := cpu.stop()
		elapsed += took
		records += res.Records
		if res.Records != end {
			b.Errorf("rebuilt from %d records, want %d", res.Records, end)
		}
		b.Logf("rebuilt %d events in %s (%.0f events/s); CPU per event: Go process %.1f µs, Postgres %.1f µs",
			res.Records, took.Round(time.Millisecond), float64(res.Records)/took.Seconds(),
			share(shares, groups[0])/float64(res.Records)*1e6, share(shares, "postgres")/float64(res.Records)*1e6)
		logCPU(b, shares, wall)
	}
	b.StopTimer()
	var rows int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM positions`).Scan(&rows); err != nil {
		b.Fatal(err)
	}
	if rows != end {
		b.Errorf("positions after the rebuild: %d, want %d", rows, end)
	}
	b.ReportMetric(float64(records)/elapsed.Seconds(), "events/s")
}

// waitApplied waits until the live projectors have committed end records
// of topic.
func waitApplied(b *testing.B, pool *pgxpool.Pool, topic string, end int64) {
	b.Helper()
	deadline := time.Now().Add(projectorTimeout)
	for applied(b, pool, topic) < end {
		if time.Now().After(deadline) {
			b.Fatalf("the live projectors did not apply %d records of %s within %s", end, topic, projectorTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
