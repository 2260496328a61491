package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
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
// its return. Rates: events of the topic rebuilt per second (every read
// model chosen built from them), and records projected per second (an
// event counts once per read model that reads it).
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
	waitApplied(b, pool, models, topic, end)
	setup := fmt.Sprintf("%d position events (%d simulated vehicles x %d fixes, encoded as ingest encodes them) filled "+
		"into a fresh topic with 3 partitions in %s, projected into the live tables by the live projectors of every read "+
		"model (still running); rebuild.Run, 3 members per read model, in the benchmark process; Kafka and Postgres co-located",
		end, projectorVehicles, projectorRounds, filled.Round(time.Millisecond))
	// Every read model; then the two that read tms.positions alone, since
	// their costs differ by a factor of a few.
	for _, sel := range [][]string{nil, {"vehicles"}, {"trips"}} {
		name := "all"
		if sel != nil {
			name = strings.Join(sel, "+")
		}
		b.Run(name, func(b *testing.B) {
			chosen, err := projections.Select(sel...)
			if err != nil {
				b.Fatal(err)
			}
			// Each read model reading tms.positions projects every record
			// of it once.
			var want int64
			for _, r := range chosen {
				if slices.Contains(r.Topics, event.TopicPositions) {
					want += end
				}
			}
			reportCores(b, fmt.Sprintf("%s; rebuilt: %s (%d read models)", setup, name, len(chosen)))
			var elapsed time.Duration
			var records int64
			for range b.N {
				cpu := startCPU()
				t0 := time.Now()
				res, err := rebuild.Run(ctx, rebuild.Config{
					ReadModels: chosen, Kafka: kc, Pool: pool, DatabaseURL: dbURL, Members: 3,
					Registerer: prometheus.NewRegistry(), Logger: quiet,
				})
				if err != nil {
					b.Fatal(err)
				}
				took := time.Since(t0)
				shares, wall := cpu.stop()
				elapsed += took
				records += res.Records
				if res.Records != want {
					b.Errorf("projected %d records, want %d", res.Records, want)
				}
				b.Logf("rebuilt %s from %d events of the topic in %s (%.0f events/s; %d records projected, %.0f/s); "+
					"CPU per projected record: Go process %.1f µs, Postgres %.1f µs", name, end, took.Round(time.Millisecond),
					float64(end)/took.Seconds(), res.Records, float64(res.Records)/took.Seconds(),
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
			b.ReportMetric(float64(b.N)*float64(end)/elapsed.Seconds(), "events/s")
			b.ReportMetric(float64(records)/elapsed.Seconds(), "records/s")
		})
	}
}

// waitApplied waits until every live projector of a read model that
// reads topic has committed end records of it.
func waitApplied(b *testing.B, pool *pgxpool.Pool, models []projector.Registration, topic string, end int64) {
	b.Helper()
	var names []string
	for _, r := range models {
		if slices.Contains(r.Topics, topic) {
			names = append(names, r.Name)
		}
	}
	deadline := time.Now().Add(projectorTimeout)
	for _, name := range names {
		for n := applied(b, pool, name, topic); n < end; n = applied(b, pool, name, topic) {
			if time.Now().After(deadline) {
				b.Fatalf("the live projector %s applied %d of %d records of %s within %s", name, n, end, topic, projectorTimeout)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
