package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/internal/fleettest"
	"github.com/tmsfleet/tms/internal/jobtest"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/internal/tmsproc"
	"github.com/tmsfleet/tms/projections"
	"github.com/tmsfleet/tms/projections/projector"
)

// rebuildsJSON is GET /api/v1/rebuilds as the test reads it.
type rebuildsJSON struct {
	Rebuilds []struct {
		ID         string     `json:"id"`
		State      string     `json:"state"`
		SwitchedAt *time.Time `json:"switched_at"`
		ReadModels []struct {
			Name  string `json:"name"`
			State string `json:"state"`
			Done  int64  `json:"done"`
			Total int64  `json:"total"`
		} `json:"read_models"`
	} `json:"rebuilds"`
}

// bulkFixes are vehicles x rounds fixes far from every station, from
// round first on, as ingest would produce them.
func bulkFixes(t *testing.T, kc *kafka.Config, vehicles, first, rounds int) []*kgo.Record {
	t.Helper()
	var fixes []position.Position
	for r := first; r < first+rounds; r++ {
		for v := range vehicles {
			at := fleettest.T0.Add(time.Duration(r)*10*time.Second + time.Duration(v)*time.Millisecond)
			fixes = append(fixes, position.Position{Plate: fmt.Sprintf("沪B%05d", v), FixTime: at, ReceivedAt: at.Add(time.Second),
				Lat: 30 + float64(v)/1e3, Lng: 120 + float64(r)/1e4, SpeedKmh: 50})
		}
	}
	return fleettest.PositionRecords(t, kc, fixes)
}

// hammer queries the API without pause from a few clients until stop,
// and records every answer that is not a 200.
type hammer struct {
	requests atomic.Int64
	mu       sync.Mutex
	failures []string
	// times are when each answer came, for telling before a switch from
	// after it.
	times []time.Time
}

func (h *hammer) run(d *tmsproc.Deployment, paths []string, stop <-chan struct{}, wg *sync.WaitGroup) {
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 30 * time.Second}
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				path := paths[i%len(paths)]
				req, _ := http.NewRequest(http.MethodGet, "http://"+d.HTTPAddr+path, nil)
				req.Header.Set("Authorization", "Bearer "+tmsproc.ViewerToken)
				resp, err := client.Do(req)
				h.requests.Add(1)
				h.mu.Lock()
				h.times = append(h.times, time.Now())
				switch {
				case err != nil:
					h.failures = append(h.failures, fmt.Sprintf("GET %s: %v", path, err))
				case resp.StatusCode != http.StatusOK:
					body, _ := io.ReadAll(resp.Body)
					h.failures = append(h.failures, fmt.Sprintf("GET %s: %d %s", path, resp.StatusCode, body))
				}
				h.mu.Unlock()
				if resp != nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
}

// TestRebuildWithoutDowntime rebuilds every read model of a populated
// deployment while positions keep arriving and the API is queried
// without pause. The first `tms rebuild` is killed part way (SIGKILL);
// the API shows it interrupted, and the second goes on from where it got
// to and switches over. Every API request is answered 200 throughout,
// before, during and after the switch; and afterwards, once the live
// projectors have caught up with what arrived meanwhile, every read
// model's tables equal row for row a projection from scratch of the same
// topics into a database of its own (trips and stops among them, one
// trip revised by a late fix). The live tables were damaged before the
// rebuild, so tables that were merely kept would not pass.
func TestRebuildWithoutDowntime(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, "TMS_ROLES=geofence,project,api", "TMS_HTTP_TOKEN_RATE=100000", "TMS_HTTP_TOKEN_BURST=100000")
	w := fleettest.New(t, 6, 120)
	want := w.Expected(t, geofence.Config{ReorderWindow: geofence.DefaultReorderWindow})
	fleettest.Produce(t, d.Kafka, w.StationRecords(t, d.Kafka))
	fleettest.Produce(t, d.Kafka, fleettest.PositionRecords(t, d.Kafka, w.Fixes))
	// Trips and stops, one trip revised by a late fix.
	const tripPlate = "沪T00009"
	fleettest.Produce(t, d.Kafka, fleettest.PositionRecords(t, d.Kafka, stopAndGo(tripPlate, fleettest.T0)))
	for i, plate := range []string{"沪J00001", "沪J00002"} {
		jobs := jobtest.Sample(t, plate, fmt.Sprintf("ORD-%d", i), fleettest.T0)
		fleettest.Produce(t, d.Kafka, jobtest.KafkaRecords(t, d.Kafka, jobs.Records...))
	}
	fleettest.Produce(t, d.Kafka, g7Records(t, d, tripPlate, fleettest.T0))
	const bulkVehicles, bulkRounds = 500, 300
	fleettest.Produce(t, d.Kafka, bulkFixes(t, d.Kafka, bulkVehicles, 0, bulkRounds))
	d.Start()
	fleettest.ReadGeofence(t, d.Kafka, fleettest.Count(want), 2*time.Minute)
	tmsproc.Eventually(t, 2*time.Minute, "every projector at the end of its topics", func() bool { return d.ProjectorsBehind() == "" })
	if n := d.Count(`SELECT count(*) FROM trips WHERE vehicle = $1 AND revision > 1`, tripPlate); n != 1 {
		t.Fatalf("premise: the late fix revised one trip of %s, but %d are revised", tripPlate, n)
	}
	for _, sql := range []string{
		`DELETE FROM visits WHERE visit_id IN (SELECT visit_id FROM visits ORDER BY visit_id LIMIT 3)`,
		`UPDATE vehicles SET positions_count = 0`,
		`DELETE FROM positions WHERE fix_time < '` + fleettest.T0.Add(5*time.Minute).Format(time.RFC3339) + `'`,
		`UPDATE jobs SET revision = 0, completion = NULL`,
		`UPDATE trips SET revision = 0, distance_m = 0 WHERE vehicle = '` + tripPlate + `'`,
		`DELETE FROM stops WHERE vehicle = '` + tripPlate + `'`,
		`UPDATE g7_events SET open = true, end_time = NULL`,
	} {
		if _, err := d.Pool.Exec(t.Context(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}

	// Positions keep arriving, and the API is asked for every read model.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		cl, err := d.Kafka.NewClient("e2e-feed")
		if err != nil {
			t.Error(err)
			return
		}
		defer cl.Close()
		for round := bulkRounds; ; round++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if err := cl.ProduceSync(context.Background(), bulkFixes(t, d.Kafka, 50, round, 1)...).FirstErr(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	from, to := url.QueryEscape(fleettest.T0.Add(-time.Hour).Format(time.RFC3339)), url.QueryEscape(fleettest.T0.Add(2*time.Hour).Format(time.RFC3339))
	plate := url.PathEscape(fleettest.Plate(1))
	bulkPlate := "沪B00000" // bulkFixes' first vehicle, driving on as the rebuild runs
	var h hammer
	h.run(d, []string{
		"/api/v1/vehicles?limit=100",
		"/api/v1/vehicles/" + plate,
		"/api/v1/vehicles/" + plate + "/track?from=" + from + "&to=" + to,
		"/api/v1/stations",
		"/api/v1/visits?station=LOAD&from=" + from + "&to=" + to,
		"/api/v1/jobs",
		"/api/v1/rebuilds",
		"/api/v1/vehicles/" + url.PathEscape(tripPlate) + "/trips?from=" + from + "&to=" + to,
		"/api/v1/vehicles/" + url.PathEscape(tripPlate) + "/stops?from=" + from + "&to=" + to,
		"/api/v1/vehicles/" + url.PathEscape(tripPlate) + "/g7-events?from=" + from + "&to=" + to,
		"/api/v1/vehicles/" + url.PathEscape(tripPlate) + "/g7-stops/comparison?from=" + from + "&to=" + to,
		"/api/v1/vehicles/" + url.PathEscape(bulkPlate) + "/trips?from=" + from + "&to=" + to,
	}, stop, &wg)
	stopped := false
	stopAll := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopAll()

	rebuildEnv := []string{"TMS_REBUILD_PROGRESS_INTERVAL=100ms", "TMS_REBUILD_LOG_INTERVAL=1s", "TMS_LOG_LEVEL=info"}
	rebuilds := func() rebuildsJSON {
		var r rebuildsJSON
		if code := d.Get("/api/v1/rebuilds", &r); code != http.StatusOK {
			t.Fatalf("GET /api/v1/rebuilds: %d", code)
		}
		return r
	}
	// The first run is slowed down (small batches, one member) so that it
	// can be caught part way.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	first := d.Command(ctx, "rebuild", "--progress", "log", "--members", "1", "--max-batch", "1000")
	first.Env = append(first.Env, rebuildEnv...)
	var firstOut strings.Builder
	first.Stdout, first.Stderr = &firstOut, &firstOut
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	var id string
	tmsproc.Eventually(t, time.Minute, "the first rebuild part way through the positions", func() bool {
		for _, rb := range rebuilds().Rebuilds {
			for _, m := range rb.ReadModels {
				if rb.State == "building" && m.Name == "vehicles" && m.Done > 0 && m.Done < m.Total/2 {
					id = rb.ID
					return true
				}
			}
		}
		return false
	})
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	tmsproc.Eventually(t, 30*time.Second, "the killed rebuild shown interrupted", func() bool {
		r := rebuilds()
		return len(r.Rebuilds) > 0 && r.Rebuilds[0].ID == id && r.Rebuilds[0].State == "interrupted"
	})
	if strings.Contains(firstOut.String(), "switched over") {
		t.Fatalf("premise: the first rebuild was killed before the switch, but it says:\n%s", firstOut.String())
	}

	second := d.Command(ctx, "rebuild", "--progress", "log")
	second.Env = append(second.Env, rebuildEnv...)
	out, err := second.CombinedOutput()
	if err != nil {
		t.Fatalf("tms rebuild: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "rebuild "+id+": rebuilt (resumed)") || !strings.Contains(string(out), "rebuild progress") {
		t.Errorf("the second tms rebuild did not say it resumed %s, or logged no progress:\n%s", id, out)
	}
	// Go on querying a little past the switch.
	n := h.requests.Load()
	tmsproc.Eventually(t, 30*time.Second, "requests after the switch", func() bool { return h.requests.Load() > n+50 })
	stopAll()

	final := rebuilds().Rebuilds[0]
	var names []string
	for _, m := range final.ReadModels {
		names = append(names, m.Name)
		if m.State != "switched" || m.Done != m.Total {
			t.Errorf("read model %s after the rebuild: %+v; want switched, done = total", m.Name, m)
		}
	}
	var all []string
	for _, r := range projections.All() {
		all = append(all, r.ShortName())
	}
	slices.Sort(all)
	if final.ID != id || final.State != "done" || final.SwitchedAt == nil || !slices.Equal(names, all) {
		t.Fatalf("GET /api/v1/rebuilds after the rebuild: %+v; want %s done, switched, of %v", final, id, all)
	}
	var before, after int
	for _, at := range h.times {
		if at.Before(*final.SwitchedAt) {
			before++
		} else {
			after++
		}
	}
	t.Logf("%d API requests, %d before the switch and %d after; %d failed", h.requests.Load(), before, after, len(h.failures))
	if before == 0 || after == 0 {
		t.Errorf("premise: the API was queried before and after the switch, but %d before and %d after", before, after)
	}
	for i, f := range h.failures {
		if i == 10 {
			t.Errorf("... and %d more", len(h.failures)-10)
			break
		}
		t.Errorf("a request failed: %s", f)
	}

	tmsproc.Eventually(t, 2*time.Minute, "every projector at the end of its topics after the rebuild", func() bool {
		return d.ProjectorsBehind() == ""
	})
	fresh := freshProjection(t, d.Kafka)
	for _, r := range projections.All() {
		for _, table := range r.Tables {
			if got, want := tableDigest(t, d.Pool, table), tableDigest(t, fresh, table); got != want {
				t.Errorf("%s after the rebuild: %s; a projection from scratch: %s", table, got, want)
			}
		}
	}
}

// freshProjection projects every read model from the start of kc's
// topics into a database of its own, until each has reached the topics'
// ends, and returns its pool. Its projectors run in consumer groups of
// their own, beside the deployment's.
func freshProjection(t *testing.T, kc *kafka.Config) *pgxpool.Pool {
	t.Helper()
	pool, err := postgres.OpenPool(t.Context(), testenv.FromEnv(os.LookupEnv).Postgres(t), postgres.PoolConfig{MaxConns: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	adm, err := kc.NewAdmin("e2e-admin")
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	for _, r := range projections.All() {
		group := "e2e.fresh." + r.ShortName()
		run, err := r.NewProjector(projector.Deps{Kafka: kc, Pool: pool, Members: 1,
			Shadow: &projector.Shadow{Group: group, Schema: "public"}})
		if err != nil {
			t.Fatal(err)
		}
		stop := testenv.Go(t, "fresh projection of "+r.Name, run)
		var topics []string
		for _, tp := range r.Topics {
			topics = append(topics, kc.Topic(tp))
		}
		ends, err := adm.ListCommittedOffsets(t.Context(), topics...)
		if err != nil {
			t.Fatal(err)
		}
		var end int64
		ends.Each(func(o kadm.ListedOffset) { end += o.Offset })
		tmsproc.Eventually(t, 2*time.Minute, "the fresh projection of "+r.Name+" at the end of its topics", func() bool {
			var at int64
			if err := pool.QueryRow(t.Context(), `SELECT coalesce(sum(next_offset), 0) FROM projector_offsets WHERE projector = $1`,
				group).Scan(&at); err != nil {
				t.Fatal(err)
			}
			return at >= end
		})
		stop()
	}
	return pool
}

// tableDigest is a table's row count and a digest of its rows.
func tableDigest(t *testing.T, pool *pgxpool.Pool, table string) string {
	t.Helper()
	var n int64
	var digest string
	if err := pool.QueryRow(t.Context(), `SELECT count(*), coalesce(md5(string_agg(t::text, E'\n' ORDER BY t::text)), '')
		FROM `+pgx.Identifier{table}.Sanitize()+` t`).Scan(&n, &digest); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d rows (digest %s)", n, digest)
}
