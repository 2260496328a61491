package g7events_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/g7event"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/internal/tmsproc"
	"github.com/tmsfleet/tms/migrations"
	"github.com/tmsfleet/tms/projections"
	"github.com/tmsfleet/tms/projections/projector"
	"github.com/tmsfleet/tms/projections/rebuild"
)

// TestRebuildMakesWhatTheLiveProjectorMade: `tms rebuild g7events` over
// a topic of shuffled reports (opens, repeats, closes, corrections) puts
// back, in place of a damaged live table, the rows the live projector had
// made: one per event, the highest-ranking report in each.
func TestRebuildMakesWhatTheLiveProjectorMade(t *testing.T) {
	t.Parallel()
	svc := testenv.FromEnv(os.LookupEnv)
	kc := svc.Kafka(t)
	url := svc.Postgres(t)
	pool, err := postgres.OpenPool(t.Context(), url, postgres.PoolConfig{MaxConns: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	models, err := projections.Select("g7events")
	if err != nil {
		t.Fatal(err)
	}
	reg := models[0]

	rng := rand.New(rand.NewPCG(7, 7))
	var records []*kgo.Record
	for v := range 20 {
		plate := fmt.Sprintf("沪E%05d", v)
		for ev := range 10 {
			start := ev * 60
			kind := g7event.Kinds[ev%3]
			for _, r := range []g7event.Report{
				report(plate, kind, start, nil, ptr(start+1)),
				report(plate, kind, start, nil, ptr(start+1)),
				report(plate, kind, start, ptr(start+20), ptr(start+21)),
				report(plate, kind, start, ptr(start+19), ptr(start+30)),
			} {
				v, _ := json.Marshal(envelope(t, r))
				records = append(records, &kgo.Record{Topic: kc.Topic(event.TopicG7Events), Key: []byte(plate), Value: v})
			}
		}
	}
	rng.Shuffle(len(records), func(i, j int) { records[i], records[j] = records[j], records[i] })
	cl, err := kc.NewClient("test-producer")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(t.Context(), records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	run, err := reg.NewProjector(projector.Deps{Kafka: kc, Pool: pool, Members: 2})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Go(t, "live projector", run)
	committed := func() bool {
		var at int64
		if err := pool.QueryRow(t.Context(), `SELECT coalesce(sum(next_offset), 0) FROM projector_offsets WHERE projector = $1`,
			reg.Name).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at >= int64(len(records))
	}
	tmsproc.Eventually(t, time.Minute, "the live projector at the end of tms.g7events", committed)
	live := digest(t, pool)
	var closed, n int64
	if err := pool.QueryRow(t.Context(), `SELECT count(*), count(*) FILTER (WHERE NOT open AND end_time - start_time = interval '19 minutes')
		FROM g7_events`).Scan(&n, &closed); err != nil {
		t.Fatal(err)
	}
	if n != 200 || closed != 200 {
		t.Fatalf("%d rows, %d holding the corrected close; want 200 and 200", n, closed)
	}
	if _, err := pool.Exec(t.Context(), `UPDATE g7_events SET open = true, end_time = NULL WHERE kind = 'idle'`); err != nil {
		t.Fatal(err)
	}
	if _, err := rebuild.Run(t.Context(), rebuild.Config{ReadModels: models, Kafka: kc, Pool: pool, DatabaseURL: url,
		Migrations: migrations.FS, Members: 2, ProgressInterval: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if got := digest(t, pool); got != live {
		t.Errorf("after the rebuild: %s; the live projector made %s", got, live)
	}
}

func digest(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var n int64
	var d string
	if err := pool.QueryRow(t.Context(), `SELECT count(*), coalesce(md5(string_agg(t::text, E'\n' ORDER BY t::text)), '')
		FROM g7_events t`).Scan(&n, &d); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d rows, digest %s", n, d)
}
