package rebuild_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/internal/tmsproc"
	"github.com/tmsfleet/tms/migrations"
	"github.com/tmsfleet/tms/projections"
	"github.com/tmsfleet/tms/projections/projector"
	"github.com/tmsfleet/tms/projections/rebuild"
)

var svc = testenv.FromEnv(os.LookupEnv)

// t0 is when the tests' fixes begin.
var t0 = time.Date(2025, 12, 31, 20, 0, 0, 0, time.UTC)

// fixes are n fixes of vehicles vehicles, one every 10 s each, from
// round first on.
func fixes(t testing.TB, kc *kafka.Config, vehicles, first, rounds int) []*kgo.Record {
	t.Helper()
	var out []*kgo.Record
	for r := first; r < first+rounds; r++ {
		for v := range vehicles {
			at := t0.Add(time.Duration(r)*10*time.Second + time.Duration(v)*time.Millisecond)
			p := position.Position{Plate: fmt.Sprintf("沪R%05d", v), FixTime: at, ReceivedAt: at.Add(time.Second),
				Lat: 31 + float64(r)/1e4, Lng: 121 + float64(v)/1e3, SpeedKmh: float64(r % 90)}
			e, err := p.Event("/test")
			if err != nil {
				t.Fatal(err)
			}
			val, _ := json.Marshal(e)
			out = append(out, &kgo.Record{Topic: kc.Topic(event.TopicPositions), Key: []byte(p.Plate), Value: val})
		}
	}
	return out
}

func produce(t testing.TB, cl *kgo.Client, records []*kgo.Record) {
	t.Helper()
	if err := cl.ProduceSync(context.Background(), records...).FirstErr(); err != nil {
		t.Error(err)
	}
}

// project runs the registered projection's live projector on pool until
// it has committed everything its topics hold (read_committed) now.
func project(t *testing.T, kc *kafka.Config, pool *pgxpool.Pool, reg projector.Registration) (stop func()) {
	t.Helper()
	run, err := reg.NewProjector(projector.Deps{Kafka: kc, Pool: pool, Members: 2})
	if err != nil {
		t.Fatal(err)
	}
	return testenv.Go(t, "projector "+reg.Name, run)
}

// caughtUp waits until reg's live projector on pool has committed
// everything its topics hold now.
func caughtUp(t *testing.T, kc *kafka.Config, pool *pgxpool.Pool, reg projector.Registration) {
	t.Helper()
	adm, err := kc.NewAdmin("test-admin")
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	var topics []string
	for _, tp := range reg.Topics {
		topics = append(topics, kc.Topic(tp))
	}
	ends, err := adm.ListCommittedOffsets(t.Context(), topics...)
	if err != nil {
		t.Fatal(err)
	}
	var end int64
	ends.Each(func(o kadm.ListedOffset) { end += o.Offset })
	tmsproc.Eventually(t, 2*time.Minute, fmt.Sprintf("%s at the end of its topics (%d)", reg.Name, end), func() bool {
		var at int64
		if err := pool.QueryRow(t.Context(), `SELECT coalesce(sum(next_offset), 0) FROM projector_offsets WHERE projector = $1`,
			reg.Name).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at >= end
	})
}

// digest is a table's row count and a digest of its rows.
func digest(t *testing.T, pool *pgxpool.Pool, table string) string {
	t.Helper()
	var n int64
	var d string
	if err := pool.QueryRow(t.Context(), `SELECT count(*), coalesce(md5(string_agg(t::text, E'\n' ORDER BY t::text)), '')
		FROM `+pgx.Identifier{table}.Sanitize()+` t`).Scan(&n, &d); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d rows, digest %s", n, d)
}

func openPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := postgres.OpenPool(t.Context(), url, postgres.PoolConfig{MaxConns: 24})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// TestRebuildSwitchesOverToWhatAFreshProjectionMakes rebuilds the
// vehicles read model (positions and vehicles) while its live projector
// runs and positions keep arriving, from live tables that were damaged
// first: after the switch, and once the live projector has caught up with
// what arrived meanwhile, the tables equal row for row what a projection
// from scratch into another database makes of the same topic. The shadow
// schema is gone, the rebuild is recorded done, and a partitioned
// positions table comes through with its partitions in the live schema.
func TestRebuildSwitchesOverToWhatAFreshProjectionMakes(t *testing.T) {
	t.Parallel()
	// positions is partitioned by month (migrations/0006): the rebuild
	// builds the partitions in its schema and moves them into place.
	for _, tc := range []struct {
		name        string
		partitioned bool
	}{{"partitioned", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			kc := svc.Kafka(t)
			url := svc.Postgres(t)
			var ddl fs.FS = migrations.FS
			pool := openPool(t, url)
			models, err := projections.Select("vehicles")
			if err != nil {
				t.Fatal(err)
			}
			reg := models[0]
			cl, err := kc.NewClient("test-producer")
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			const vehicles = 50
			produce(t, cl, fixes(t, kc, vehicles, 0, 400))
			stopLive := project(t, kc, pool, reg)
			caughtUp(t, kc, pool, reg)
			// Damage the live tables: the rebuild must not carry it over.
			if _, err := pool.Exec(t.Context(), `DELETE FROM positions WHERE fix_time < $1`, t0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if _, err := pool.Exec(t.Context(), `UPDATE vehicles SET positions_count = 0`); err != nil {
				t.Fatal(err)
			}

			// Positions keep arriving (across both partitions) while it rebuilds.
			stopFeed := make(chan struct{})
			var fed sync.WaitGroup
			fed.Add(1)
			go func() {
				defer fed.Done()
				for round := 400; ; round += 5 {
					select {
					case <-stopFeed:
						return
					case <-time.After(20 * time.Millisecond):
					}
					produce(t, cl, fixes(t, kc, vehicles, round, 5))
				}
			}()
			var reports []rebuild.Progress
			res, err := rebuild.Run(t.Context(), rebuild.Config{
				ReadModels: models, Kafka: kc, Pool: pool, DatabaseURL: url, Migrations: ddl, Members: 2,
				ProgressInterval: 50 * time.Millisecond, Report: func(p rebuild.Progress) { reports = append(reports, p) },
			})
			close(stopFeed)
			fed.Wait()
			if err != nil {
				t.Fatal(err)
			}
			// A first run projects every record itself.
			if res.Records < vehicles*400 || res.Resumed || res.Projected != res.Records {
				t.Errorf("result %+v: want at least %d records, all projected by this run, not resumed", res, vehicles*400)
			}
			if last := reports[len(reports)-1]; last.State != rebuild.StateDone || last.Models[0].State != rebuild.ModelSwitched {
				t.Errorf("the last report is %+v, want done and switched", last)
			}
			caughtUp(t, kc, pool, reg)

			// The fresh projection joins the same consumer group: the live
			// projector leaves it first, so that it reads every partition.
			stopLive()
			fresh := openPool(t, svc.Postgres(t))
			project(t, kc, fresh, reg)
			caughtUp(t, kc, fresh, reg)
			for _, table := range reg.Tables {
				if got, want := digest(t, pool, table), digest(t, fresh, table); got != want {
					t.Errorf("%s after the rebuild: %s; a fresh projection: %s", table, got, want)
				}
			}
			count := func(sql string, args ...any) int64 {
				t.Helper()
				var n int64
				if err := pool.QueryRow(t.Context(), sql, args...).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			if n := count(`SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tms\_rebuild\_%'`); n != 0 {
				t.Errorf("%d shadow schemas left after the switch", n)
			}
			if n := count(`SELECT count(*) FROM projector_offsets WHERE projector LIKE '%.rebuild.%'`); n != 0 {
				t.Errorf("%d offsets of the rebuild's group left in the live offsets", n)
			}
			if tc.partitioned {
				all := count(`SELECT count(*) FROM pg_inherits WHERE inhparent = 'public.positions'::regclass`)
				n := count(`SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
					WHERE i.inhparent = 'public.positions'::regclass AND c.relnamespace = 'public'::regnamespace`)
				if all == 0 || n != all {
					t.Errorf("positions has %d partitions, %d of them in the live schema after the switch", all, n)
				}
				if n := count(`SELECT count(*) FROM public.positions_p202512`); n == 0 {
					t.Error("the December 2025 partition is empty after the switch")
				}
			}
			list, err := rebuild.NewStore(pool).List(t.Context(), 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 1 || list[0].State != rebuild.StateDone || list[0].SwitchedAt == nil ||
				len(list[0].Models) != 1 || list[0].Models[0].Done != list[0].Models[0].Total {
				t.Errorf("the stored rebuilds: %+v; want one, done, switched, done = total", list)
			}
		})
	}
}

// TestRebuildGoesOnAfterAnInterruption stops a rebuild part way: it is
// recorded interrupted, a rebuild of other read models is refused (and
// says how to go on), and the next rebuild of the same read models goes
// on from its offsets to the switch.
func TestRebuildGoesOnAfterAnInterruption(t *testing.T) {
	t.Parallel()
	cfg, pool := vehiclesRebuild(t, 20, 1000)
	cfg.MaxBatch, cfg.ProgressInterval = 500, 20*time.Millisecond

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stoppedAt int64
	first := cfg
	first.Report = func(p rebuild.Progress) {
		if m := p.Models[0]; m.Done > 0 && stoppedAt == 0 {
			stoppedAt = m.Done
			cancel()
		}
	}
	if _, err := rebuild.Run(ctx, first); !errors.Is(err, context.Canceled) {
		t.Fatalf("the interrupted rebuild returned %v, want context.Canceled", err)
	}
	list, err := rebuild.NewStore(pool).List(t.Context(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].State != rebuild.StateInterrupted || list[0].Models[0].Done == 0 ||
		list[0].Models[0].Done >= list[0].Models[0].Total {
		t.Fatalf("after the interruption: %+v; want one rebuild, interrupted part way", list)
	}

	other, err := projections.Select("visits")
	if err != nil {
		t.Fatal(err)
	}
	otherCfg := cfg
	otherCfg.ReadModels = other
	if _, err := rebuild.Run(t.Context(), otherCfg); !errors.Is(err, rebuild.ErrUnfinished) {
		t.Fatalf("a rebuild of other read models returned %v, want ErrUnfinished", err)
	}

	res, err := rebuild.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed || res.ID != list[0].ID || res.Records != 20*1000 || res.Projected >= res.Records {
		t.Errorf("the second run: %+v; want rebuild %s resumed, %d records of which fewer projected by this run",
			res, list[0].ID, 20*1000)
	}
	var n int64
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM positions`).Scan(&n); err != nil || n != 20*1000 {
		t.Errorf("positions after the resumed rebuild: %d (%v), want %d", n, err, 20*1000)
	}
}

// TestOneRebuildAtATime: while a rebuild runs (holds its lock), another
// is refused at once.
func TestOneRebuildAtATime(t *testing.T) {
	t.Parallel()
	kc := svc.Kafka(t)
	url := svc.Postgres(t)
	pool := openPool(t, url)
	models, err := projections.Select("stations")
	if err != nil {
		t.Fatal(err)
	}
	cfg := rebuild.Config{ReadModels: models, Kafka: kc, Pool: pool, DatabaseURL: url}
	started := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error, 1)
	first := cfg
	var once sync.Once
	first.Report = func(rebuild.Progress) {
		once.Do(func() { close(started); <-release })
	}
	go func() {
		_, err := rebuild.Run(t.Context(), first)
		done <- err
	}()
	<-started
	_, err = rebuild.Run(t.Context(), cfg)
	close(release)
	if !errors.Is(err, rebuild.ErrRunning) {
		t.Errorf("a second rebuild while one runs returned %v, want ErrRunning", err)
	}
	if err := <-done; err != nil {
		t.Errorf("the first rebuild: %v", err)
	}
}

// TestARebuildCountsWhatItProjected: a read model small enough to be
// built before the first progress tick still counts every record as
// projected by this run (it counted none, measured from that tick).
func TestARebuildCountsWhatItProjected(t *testing.T) {
	t.Parallel()
	cfg, _ := vehiclesRebuild(t, 5, 100)
	cfg.ProgressInterval = 3 * time.Second
	res, err := rebuild.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 5*100 || res.Projected != res.Records || res.Resumed {
		t.Errorf("%+v: want %d records, all projected by this run", res, 5*100)
	}
}

// vehiclesRebuild feeds a fresh positions topic with the fixes of
// vehicles vehicles, each perVehicle of them, and returns the Config of a
// one-member rebuild of the vehicles read model from it into a fresh
// database, with that database's pool.
func vehiclesRebuild(t *testing.T, vehicles, perVehicle int) (rebuild.Config, *pgxpool.Pool) {
	t.Helper()
	kc := svc.Kafka(t)
	url := svc.Postgres(t)
	pool := openPool(t, url)
	models, err := projections.Select("vehicles")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kc.NewClient("test-producer")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce(t, cl, fixes(t, kc, vehicles, 0, perVehicle))
	return rebuild.Config{ReadModels: models, Kafka: kc, Pool: pool, DatabaseURL: url, Members: 1}, pool
}
