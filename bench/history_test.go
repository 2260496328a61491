package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tmsfleet/tms/adapters/httpapi"
	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/job"
	"github.com/tmsfleet/tms/domain/simplify"
	"github.com/tmsfleet/tms/domain/station"
	"github.com/tmsfleet/tms/domain/trip"
	"github.com/tmsfleet/tms/internal/geoworkload"
	"github.com/tmsfleet/tms/pipeline/jobcmd"
	"github.com/tmsfleet/tms/pipeline/stationcmd"
	"github.com/tmsfleet/tms/projections/g7events"
	"github.com/tmsfleet/tms/projections/jobs"
	"github.com/tmsfleet/tms/projections/rebuild"
	"github.com/tmsfleet/tms/projections/replays"
	"github.com/tmsfleet/tms/projections/stations"
	"github.com/tmsfleet/tms/projections/trips"
	"github.com/tmsfleet/tms/projections/vehicles"
	"github.com/tmsfleet/tms/projections/visits"
)

// The history benchmark's fleet: historyVehicles vehicles over
// historyDays days from historyStart (across a month's end, so that
// queries read two partitions), the first historyDense of them reporting
// every 10 s around the clock (8,640 fixes a day, 267,840 a month), the
// others every 5 minutes: 21.9 million positions.
const (
	historyVehicles = 1000
	historyDense    = 50
	historyDays     = 31
	historyDenseDt  = 10  // seconds
	historySparseDt = 300 // seconds
	// historyRequests is how many requests each latency is measured over.
	historyRequests = 200
	// historyMonthRequests is how many simplified months are measured.
	historyMonthRequests = 50
)

var historyStart = time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)

// BenchmarkHistory populates the positions read model with the history
// of a fleet, by COPY straight into Postgres (not through MQTT or Kafka),
// then measures the analysts' queries through the query API
// (adapters/httpapi on a real listener, with the real stores), one
// client at a time: a vehicle-day's track, a vehicle-month simplified to
// 2,000 points, a fleet-day's visits and trips, and exports.
func BenchmarkHistory(b *testing.B) {
	b.StopTimer()
	ctx := context.Background()
	dbURL, stop := historyDB(b)
	defer stop()
	pool, err := postgres.Open(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	setup := populatedHistory(b, pool)
	api := historyAPI(b, pool)
	defer api.Close()
	client := api.Client()
	get := func(target string) (time.Duration, []byte) {
		req, _ := http.NewRequest(http.MethodGet, api.URL+target, nil)
		req.Header.Set("Authorization", "Bearer bench-viewer")
		start := time.Now()
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		took := time.Since(start)
		if err != nil || res.StatusCode != http.StatusOK {
			b.Fatalf("%s: %d %v: %.300s", target, res.StatusCode, err, body)
		}
		return took, body
	}
	dense := func(i int) string { return url.PathEscape(historyPlate(i % historyDense)) }
	rng := rand.New(rand.NewPCG(5, 5))

	b.Run("DayTrack", func(b *testing.B) {
		reportCores(b, setup+"; GET /api/v1/vehicles/{plate}/track?from=&to=&limit=10000 of a random 10 s vehicle's random day (8,640 fixes)")
		var lat []float64
		for range b.N * historyRequests {
			day := historyStart.AddDate(0, 0, rng.IntN(historyDays))
			took, body := get(fmt.Sprintf("/api/v1/vehicles/%s/track?limit=10000&from=%s&to=%s", dense(rng.IntN(historyDense)),
				day.Format(time.RFC3339), day.AddDate(0, 0, 1).Format(time.RFC3339)))
			if len(body) < 8640*100 {
				b.Fatalf("a day's track of %d bytes", len(body))
			}
			lat = append(lat, ms(took))
		}
		reportLatency(b, lat)
	})
	b.Run("MonthSimplified", func(b *testing.B) {
		reportCores(b, setup+"; GET /api/v1/vehicles/{plate}/track?max_points=2000 over the 31 days of a random 10 s vehicle (267,840 fixes)")
		var lat []float64
		var tol []float64
		for range b.N * historyMonthRequests {
			took, body := get(fmt.Sprintf("/api/v1/vehicles/%s/track?max_points=2000&from=%s&to=%s", dense(rng.IntN(historyDense)),
				historyStart.Format(time.RFC3339), historyStart.AddDate(0, 0, historyDays).Format(time.RFC3339)))
			lat = append(lat, ms(took))
			tol = append(tol, tolerance(b, body))
		}
		slices.Sort(tol)
		b.Logf("tolerance over %d vehicle-months: median %.1f m, max %.1f m", len(tol), percentile(tol, 50), tol[len(tol)-1])
		reportLatency(b, lat)
	})
	b.Run("FleetDayVisits", func(b *testing.B) {
		reportCores(b, setup+"; every page (limit=1000) of GET /api/v1/visits?from=&to= for a random day of the whole fleet")
		var lat []float64
		var pages, rows int
		for range b.N * historyRequests / 4 {
			day := historyStart.AddDate(0, 0, rng.IntN(historyDays))
			q := url.Values{"from": {day.Format(time.RFC3339)}, "to": {day.AddDate(0, 0, 1).Format(time.RFC3339)}, "limit": {"1000"}}
			var total time.Duration
			for {
				took, body := get("/api/v1/visits?" + q.Encode())
				total += took
				pages++
				var page struct {
					Visits     []struct{} `json:"visits"`
					NextCursor *string    `json:"next_cursor"`
				}
				mustJSON(b, body, &page)
				rows += len(page.Visits)
				if page.NextCursor == nil {
					break
				}
				q.Set("cursor", *page.NextCursor)
			}
			lat = append(lat, ms(total))
		}
		b.Logf("%d fleet-days: %d visits in %d pages (%.0f visits a day)", len(lat), rows, pages, float64(rows)/float64(len(lat)))
		reportLatency(b, lat)
	})
	b.Run("FleetDayTrips", func(b *testing.B) {
		reportCores(b, setup+"; GET /api/v1/trips?from=&to=&limit=1000 for a random day of the whole fleet: the first page "+
			"(first_page_p99_ms) and every page (p99_ms), each trip with the stations at its ends and its job looked up")
		var first, all []float64
		var pages, rows int
		for range b.N * historyRequests / 4 {
			day := historyStart.AddDate(0, 0, 1+rng.IntN(historyDays-1))
			q := url.Values{"from": {day.Format(time.RFC3339)}, "to": {day.AddDate(0, 0, 1).Format(time.RFC3339)}, "limit": {"1000"}}
			var total time.Duration
			for {
				took, body := get("/api/v1/trips?" + q.Encode())
				if total == 0 {
					first = append(first, ms(took))
				}
				total += took
				pages++
				var page struct {
					Trips      []struct{} `json:"trips"`
					NextCursor *string    `json:"next_cursor"`
				}
				mustJSON(b, body, &page)
				rows += len(page.Trips)
				if page.NextCursor == nil {
					break
				}
				q.Set("cursor", *page.NextCursor)
			}
			all = append(all, ms(total))
		}
		if rows == 0 {
			b.Fatal("no trips in the fleet's days")
		}
		b.Logf("%d fleet-days: %d trips in %d pages (%.0f trips a day)", len(all), rows, pages, float64(rows)/float64(len(all)))
		slices.Sort(first)
		b.ReportMetric(percentile(first, 99), "first_page_p99_ms")
		reportLatency(b, all)
	})
	for _, format := range []string{"csv", "ndjson"} {
		b.Run("Export/fleet-day/"+format, func(b *testing.B) {
			reportCores(b, setup+"; GET /api/v1/exports/positions?format="+format+" of a day of the whole fleet, read by a client as it comes")
			day := historyStart.AddDate(0, 0, 20)
			var rows int64
			var took time.Duration
			for range b.N {
				n, d := export(b, api, fmt.Sprintf("/api/v1/exports/positions?format=%s&from=%s&to=%s", format,
					day.Format(time.RFC3339), day.AddDate(0, 0, 1).Format(time.RFC3339)))
				rows += n
				took += d
			}
			b.ReportMetric(float64(rows)/took.Seconds(), "rows/s")
			b.Logf("%d rows in %s", rows, took.Round(time.Millisecond))
		})
	}
	b.Run("Export/fleet-month-trips/csv", func(b *testing.B) {
		reportCores(b, setup+"; GET /api/v1/exports/trips of the whole fleet's 31 days")
		var rows int64
		var took time.Duration
		for range b.N {
			n, d := export(b, api, fmt.Sprintf("/api/v1/exports/trips?from=%s&to=%s",
				historyStart.Format(time.RFC3339), historyStart.AddDate(0, 0, historyDays).Format(time.RFC3339)))
			rows += n
			took += d
		}
		b.ReportMetric(float64(rows)/took.Seconds(), "rows/s")
		b.Logf("%d rows in %s", rows, took.Round(time.Millisecond))
	})
	b.Run("Export/vehicle-month/csv", func(b *testing.B) {
		reportCores(b, setup+"; GET /api/v1/exports/positions?vehicle= of a 10 s vehicle's 31 days")
		var rows int64
		var took time.Duration
		for i := range b.N {
			n, d := export(b, api, fmt.Sprintf("/api/v1/exports/positions?vehicle=%s&from=%s&to=%s", dense(i),
				historyStart.Format(time.RFC3339), historyStart.AddDate(0, 0, historyDays).Format(time.RFC3339)))
			rows += n
			took += d
		}
		b.ReportMetric(float64(rows)/took.Seconds(), "rows/s")
		b.Logf("%d rows in %s", rows, took.Round(time.Millisecond))
	})
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// reportLatency reports the p50, p99 and max of latencies in ms.
func reportLatency(b *testing.B, lat []float64) {
	b.Helper()
	slices.Sort(lat)
	b.ReportMetric(percentile(lat, 50), "p50_ms")
	b.ReportMetric(percentile(lat, 99), "p99_ms")
	b.ReportMetric(lat[len(lat)-1], "max_ms")
	b.Logf("%d requests: p50 %.1f ms, p99 %.1f ms, max %.1f ms", len(lat), percentile(lat, 50), percentile(lat, 99), lat[len(lat)-1])
}

func tolerance(b *testing.B, body []byte) float64 {
	var t struct {
		Simplification struct {
			Fixes      int64   `json:"fixes"`
			Points     int     `json:"points"`
			ToleranceM float64 `json:"tolerance_m"`
		} `json:"simplification"`
	}
	mustJSON(b, body, &t)
	if t.Simplification.Fixes < 250_000 || t.Simplification.Points > 2000 {
		b.Fatalf("a simplified month: %+v", t.Simplification)
	}
	return t.Simplification.ToleranceM
}

// export runs one export and returns the rows it counted in its trailer
// and the time until its last byte.
func export(b *testing.B, api *httptest.Server, target string) (int64, time.Duration) {
	req, _ := http.NewRequest(http.MethodGet, api.URL+target, nil)
	req.Header.Set("Authorization", "Bearer bench-viewer")
	start := time.Now()
	res, err := api.Client().Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	var lines int64
	r := bufio.NewReaderSize(res.Body, 256<<10)
	for {
		_, err := r.ReadSlice('\n')
		if err == io.EOF {
			break
		}
		if err != nil && err != bufio.ErrBufferFull {
			b.Fatal(err)
		}
		if err == nil {
			lines++
		}
	}
	took := time.Since(start)
	n, err := strconv.ParseInt(res.Trailer.Get("Tms-Export-Rows"), 10, 64)
	if res.StatusCode != http.StatusOK || err != nil || n < lines-1 || n == 0 {
		b.Fatalf("%s: status %d, trailer %q, %d lines", target, res.StatusCode, res.Trailer.Get("Tms-Export-Rows"), lines)
	}
	return n, took
}

// historyPlate is the plate of vehicle i.
func historyPlate(i int) string { return fmt.Sprintf("沪H%05d", i) }

// historyVehicle is one simulated vehicle: it drives between stations
// near its home at 20 to 80 km/h and parks at each for 10 minutes to 6
// hours, as geoworkload's fleet does, its fixes with 3 m of GPS noise.
type historyVehicle struct {
	plate      string
	dt         int64
	phase      int64
	rng        *rand.Rand
	near       []int // stations within reach of its home
	pos, dest  geo.Point
	destIdx    int
	speed      float64 // m/s
	parkedTill int64   // Unix seconds
	at         int     // the station it is parked at, -1 when driving
	entered    int64
	last       int64
	// departed and from are where and when the drive under way began.
	departed int64
	from     geo.Point
}

// historyVisit is a stay of a vehicle at a station, as a visit row; a
// drive between two stays is a historyTrip.
type historyVisit struct {
	vehicle, station string
	entered, exited  int64
}

type historyTrip struct {
	vehicle          string
	started, ended   int64
	from, to         geo.Point
	distance, speedV float64
}

func stationCentre(s *geoworkload.World, i int) geo.Point {
	sh := s.Stations[i]
	if sh.Circle != nil {
		return sh.Circle.Center
	}
	r := sh.Bounds()
	return geo.Point{Lat: (r.MinLat + r.MaxLat) / 2, Lng: (r.MinLng + r.MaxLng) / 2}
}

// step moves the vehicle to time t and returns its fix there; a visit it
// ended on the way is passed to visit.
func (v *historyVehicle) step(w *geoworkload.World, t int64, visit func(historyVisit), drove func(historyTrip)) (geo.Point, float64, float64) {
	for v.last < t {
		if v.at >= 0 {
			if t < v.parkedTill {
				v.last = t
				break
			}
			visit(historyVisit{vehicle: v.plate, station: fmt.Sprintf("S%05d", v.at), entered: v.entered, exited: v.parkedTill})
			v.last, v.at = v.parkedTill, -1
			v.departed, v.from = v.parkedTill, v.pos
			v.destIdx = v.near[v.rng.IntN(len(v.near))]
			v.dest = stationCentre(w, v.destIdx)
			v.speed = (20 + 60*v.rng.Float64()) / 3.6
			continue
		}
		dn := (v.dest.Lat - v.pos.Lat) * geo.MetresPerDegreeLat
		de := (v.dest.Lng - v.pos.Lng) * geo.MetresPerDegreeLat * math.Cos(v.pos.Lat*math.Pi/180)
		dist := math.Hypot(dn, de)
		reach := v.speed * float64(t-v.last)
		if dist <= reach {
			arrive := v.last + int64(dist/v.speed)
			drove(historyTrip{vehicle: v.plate, started: v.departed, ended: arrive, from: v.from, to: v.dest,
				distance: geo.Haversine(v.from, v.dest), speedV: v.speed})
			v.pos, v.at, v.entered = v.dest, v.destIdx, arrive
			v.parkedTill = arrive + int64(geoworkload.LogUniform(v.rng, 600, 6*3600))
			v.last = arrive
			continue
		}
		v.pos = geoworkload.Offset(v.pos, dn/dist*reach, de/dist*reach)
		v.last = t
	}
	noisy := geoworkload.Offset(v.pos, v.rng.NormFloat64()*3, v.rng.NormFloat64()*3)
	if v.at >= 0 {
		return noisy, 0, 0
	}
	course := math.Mod(math.Atan2((v.dest.Lng-v.pos.Lng)*math.Cos(v.pos.Lat*math.Pi/180), v.dest.Lat-v.pos.Lat)*180/math.Pi+360, 360)
	return noisy, v.speed * 3.6, math.Round(course)
}

// fleetSource is a COPY source of one share of the fleet's positions, in
// fix-time order across its vehicles (the order the projector writes
// them in, which interleaves the vehicles in the heap).
type fleetSource struct {
	w        *geoworkload.World
	vehicles []*historyVehicle
	t, end   int64
	// until is where this COPY stops (the next month): the source goes on
	// from there into the next.
	until  int64
	i      int
	row    []any
	visits []historyVisit
	trips  []historyTrip
	rows   int64
}

func (s *fleetSource) Next() bool {
	for s.t < s.end && s.t < s.until {
		for s.i < len(s.vehicles) {
			v := s.vehicles[s.i]
			s.i++
			if (s.t-v.phase)%v.dt != 0 {
				continue
			}
			p, speed, course := v.step(s.w, s.t, func(h historyVisit) { s.visits = append(s.visits, h) },
				func(h historyTrip) { s.trips = append(s.trips, h) })
			at := time.Unix(s.t, 0)
			var c any
			if speed > 0 {
				c = course
			}
			s.row = []any{v.plate, at, at.Add(1500 * time.Millisecond), p.Lat, p.Lng, math.Round(speed*10) / 10, c, []string{}}
			s.rows++
			return true
		}
		s.i = 0
		s.t += historyDenseDt
	}
	return false
}

func (s *fleetSource) Values() ([]any, error) { return s.row, nil }
func (s *fleetSource) Err() error             { return nil }

// historyVersion names the populated history: a database whose marker
// (bench.history_marker) holds it is reused as it is. Change it when the
// generator or the tables change.
const historyVersion = "history-v2: 1000 vehicles, 50 at 10 s, 31 days from 2026-01-10, covering key, trips"

// historyDB returns the database BenchmarkHistory runs on and what stops
// it. With TMS_BENCH_HISTORY_DIR (make bench sets it to
// /var/tmp/tms-bench-history, where the postgres user can reach it as
// root), that is a Postgres cluster of its own kept in that directory
// (adapters/postgres.StartLocal, as `make run`'s), so that the populated
// history (21.9 million positions, 4.3 GB) is made once and reused by
// every later run; otherwise a fresh database of the test services,
// populated on each run. Populating takes about 75 s on the 2-core
// machine (COPY 24 s at 900,000 rows/s in two streams, keys 41 s, vacuum
// 3 s); BenchmarkHistory then takes some 50 s on a reused history.
func historyDB(b *testing.B) (url string, stop func()) {
	dir := os.Getenv("TMS_BENCH_HISTORY_DIR")
	if dir == "" {
		return svc.Postgres(b), func() {}
	}
	ctx := context.Background()
	start := func() *postgres.Local {
		l, err := postgres.StartLocal(ctx, postgres.LocalConfig{Dir: dir, Port: freePort(b), Logger: quiet})
		if err != nil {
			b.Fatalf("TMS_BENCH_HISTORY_DIR=%s: %v", dir, err)
		}
		return l
	}
	l := start()
	if !l.Started() {
		// Left running by an interrupted run, on a port of its own: start
		// it again on the one it was given.
		if err := l.Stop(ctx); err != nil {
			b.Fatal(err)
		}
		l = start()
	}
	if err := postgres.Migrate(l.URL()); err != nil {
		_ = l.Stop(ctx)
		b.Fatal(err)
	}
	return l.URL(), func() {
		if err := l.Stop(ctx); err != nil {
			b.Error(err)
		}
	}
}

// freePort is a TCP port free on 127.0.0.1 now.
func freePort(b *testing.B) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// populatedHistory returns the setup of the history in pool, populating
// it first unless a marker says a complete one of historyVersion is
// there. An incomplete one (a run interrupted while populating) is
// emptied first.
func populatedHistory(b *testing.B, pool *pgxpool.Pool) string {
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS bench;
		CREATE TABLE IF NOT EXISTS bench.history_marker (version text PRIMARY KEY, setup text NOT NULL, populated_at timestamptz NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	var setup string
	err := pool.QueryRow(ctx, `SELECT setup FROM bench.history_marker WHERE version = $1`, historyVersion).Scan(&setup)
	switch {
	case err == nil:
		b.Logf("reusing the populated history (bench.history_marker: %s)", historyVersion)
		return setup + "; reused from an earlier run"
	case !errors.Is(err, pgx.ErrNoRows):
		b.Fatal(err)
	}
	parts, err := vehicles.Partitions(ctx, pool, vehicles.PositionsTable)
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range parts {
		if _, err := pool.Exec(ctx, `DROP TABLE `+pgx.Identifier{p.Name}.Sanitize()); err != nil {
			b.Fatal(err)
		}
	}
	for _, sql := range []string{`TRUNCATE visits, vehicles, trips, stops, trip_vehicles`, `DELETE FROM bench.history_marker`} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			b.Fatal(err)
		}
	}
	setup = populateHistory(b, pool)
	if _, err := pool.Exec(ctx, `INSERT INTO bench.history_marker (version, setup, populated_at) VALUES ($1, $2, now())`,
		historyVersion, setup); err != nil {
		b.Fatal(err)
	}
	return setup
}

// populateHistory fills positions (and visits) with the fleet's history
// in two COPY streams, then vacuums and analyses them, and returns the
// setup as the benchmark reports it.
func populateHistory(b *testing.B, pool *pgxpool.Pool) string {
	ctx := context.Background()
	start := time.Now()
	rng := rand.New(rand.NewPCG(9, 10))
	w := geoworkload.NewDeltaWorld(rng, 2000)
	var vs []*historyVehicle
	for i := range historyVehicles {
		home := rng.IntN(len(w.Stations))
		hc := stationCentre(w, home)
		var near []int
		for j := range w.Stations {
			if geo.Haversine(hc, stationCentre(w, j)) < 40_000 && j != home {
				near = append(near, j)
			}
		}
		if len(near) == 0 {
			near = []int{(home + 1) % len(w.Stations)}
		}
		v := &historyVehicle{plate: historyPlate(i), dt: historySparseDt, phase: int64(rng.IntN(historySparseDt/historyDenseDt)) * historyDenseDt,
			rng: rand.New(rand.NewPCG(uint64(i), 1)), near: near, pos: hc, at: home, entered: historyStart.Unix(),
			parkedTill: historyStart.Unix() + int64(rng.IntN(4*3600)), last: historyStart.Unix()}
		if i < historyDense {
			v.dt, v.phase = historyDenseDt, 0
		}
		vs = append(vs, v)
	}
	end := historyStart.AddDate(0, 0, historyDays)
	// Each month is loaded into a table of positions' shape, then given
	// its key (built sorted, which is several times faster than keeping it
	// row by row) and attached as the month's partition. The heap is laid
	// out as the projector lays it out (fixes in time order, the fleet's
	// interleaved); the index is more compact than one grown row by row
	// (some 30 % fewer pages).
	var months []time.Time
	for m := vehicles.MonthStart(historyStart); m.Before(end); m = m.AddDate(0, 1, 0) {
		months = append(months, m)
		name := pgx.Identifier{"positions_p" + m.Format("200601")}.Sanitize()
		if _, err := pool.Exec(ctx, `CREATE TABLE `+name+` (LIKE positions INCLUDING DEFAULTS)`); err != nil {
			b.Fatal(err)
		}
	}
	// Two streams, a vehicle in two each: the machine's two cores.
	sources := []*fleetSource{{}, {}}
	for i, v := range vs {
		s := sources[i%2]
		s.w, s.vehicles, s.t, s.end = w, append(s.vehicles, v), historyStart.Unix(), end.Unix()
	}
	var wg sync.WaitGroup
	var failed atomic.Value
	for _, s := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, m := range months {
				s.until = m.AddDate(0, 1, 0).Unix()
				if _, err := pool.CopyFrom(ctx, pgx.Identifier{"positions_p" + m.Format("200601")},
					[]string{"plate", "fix_time", "received_at", "lat", "lng", "speed_kmh", "course_deg", "flags"}, s); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatalf("copy positions: %v", err)
	}
	loaded := time.Since(start)
	for _, m := range months {
		name := pgx.Identifier{"positions_p" + m.Format("200601")}.Sanitize()
		from, to := m.Format(time.RFC3339), m.AddDate(0, 1, 0).Format(time.RFC3339)
		conn, err := pool.Acquire(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for _, sql := range []string{
			`SET maintenance_work_mem = '512MB'`,
			`ALTER TABLE ` + name + ` ADD CONSTRAINT bounds CHECK (fix_time >= '` + from + `' AND fix_time < '` + to + `')`,
			`ALTER TABLE ` + name + ` ADD PRIMARY KEY (plate, fix_time) INCLUDE (received_at, lat, lng, speed_kmh, course_deg, flags)`,
			`ALTER TABLE positions ATTACH PARTITION ` + name + ` FOR VALUES FROM ('` + from + `') TO ('` + to + `')`,
			`ALTER TABLE ` + name + ` DROP CONSTRAINT bounds`,
			`RESET maintenance_work_mem`,
		} {
			if _, err := conn.Exec(ctx, sql); err != nil {
				b.Fatalf("%s: %v", sql, err)
			}
		}
		conn.Release()
	}
	copied := time.Since(start)
	var rows int64
	var visitRows [][]any
	for _, s := range sources {
		rows += s.rows
		for _, v := range s.visits {
			visitRows = append(visitRows, []any{uuid.NewSHA1(uuid.NameSpaceOID, []byte(v.vehicle+v.station+strconv.FormatInt(v.entered, 10))),
				v.vehicle, v.station, "loading", int64(1), time.Unix(v.entered, 0), time.Unix(v.exited, 0), float64(v.exited - v.entered)})
		}
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"visits"}, []string{"visit_id", "vehicle", "station_id", "station_type",
		"station_version", "entered_at", "exited_at", "dwell_s"}, pgx.CopyFromRows(visitRows)); err != nil {
		b.Fatalf("copy visits: %v", err)
	}
	tripCount := copyTrips(b, pool, sources, vs, end)
	if _, err := pool.Exec(ctx, `
		INSERT INTO vehicles (plate, fix_time, received_at, lat, lng, speed_kmh, course_deg, flags, first_seen, last_seen, positions_count)
		SELECT DISTINCT ON (plate) plate, fix_time, received_at, lat, lng, speed_kmh, course_deg, flags, $1, $2, 0
		FROM positions WHERE fix_time >= $3 ORDER BY plate, fix_time DESC`, historyStart, end, end.Add(-time.Hour)); err != nil {
		b.Fatal(err)
	}
	vacuumStart := time.Now()
	for _, sql := range []string{`VACUUM (ANALYZE) positions`, `VACUUM (ANALYZE) visits`, `ANALYZE vehicles`,
		`VACUUM (ANALYZE) trips`, `ANALYZE trip_vehicles`} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			b.Fatal(err)
		}
	}
	var size string
	if err := pool.QueryRow(ctx, `SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) FROM pg_inherits
		WHERE inhparent = 'positions'::regclass`).Scan(&size); err != nil {
		b.Fatal(err)
	}
	if rows < 20_000_000 {
		b.Fatalf("populated %d positions, want at least 20 million", rows)
	}
	setup := fmt.Sprintf("%d positions (%d vehicles over %d days from %s, %d reporting every %d s, the others every %d s; "+
		"geoworkload's delta, driving between stations and parking 10 min to 6 h), %d visits and %d trips, COPY'd in %s (%.0f rows/s, "+
		"two streams), keyed in %s, vacuumed in %s; positions take %s with their index",
		rows, historyVehicles, historyDays, historyStart.Format(time.DateOnly), historyDense, historyDenseDt, historySparseDt,
		len(visitRows), tripCount, loaded.Round(time.Second), float64(rows)/loaded.Seconds(), (copied - loaded).Round(time.Second),
		time.Since(vacuumStart).Round(time.Second), size)
	b.Logf("populated in %s: %s", time.Since(start).Round(time.Second), setup)
	return setup
}

// copyTrips writes the fleet's drives as trips (each from its departure
// to its arrival, straight, as the generator drove them) and each
// vehicle's row in trip_vehicles (which the fleet's trips query reads for
// the trips in progress at a window's start), and returns the trips'
// count. The rows are what the trips read model holds, not what the
// projection would cut from these fixes: the query's cost depends on the
// rows' number and shape, not on how they were made.
func copyTrips(b *testing.B, pool *pgxpool.Pool, sources []*fleetSource, vs []*historyVehicle, end time.Time) int {
	ctx := context.Background()
	var rows [][]any
	for _, s := range sources {
		for _, t := range s.trips {
			start := time.Unix(t.started, 0).UTC()
			moving := float64(t.ended - t.started)
			rows = append(rows, []any{trips.SegmentID(trip.KindTrip, t.vehicle, start), t.vehicle, start, t.from.Lat, t.from.Lng,
				time.Unix(t.ended, 0).UTC(), t.to.Lat, t.to.Lng, false, math.Round(t.distance*10) / 10,
				math.Round(t.speedV*36) / 10, moving, 0.0, int32(moving / historySparseDt), int32(moving / historySparseDt),
				int32(0), 0.0, []string{}, int32(1)})
		}
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"trips"}, []string{"id", "vehicle", "start_time", "start_lat", "start_lng",
		"end_time", "end_lat", "end_lng", "open", "distance_m", "max_speed_kmh", "moving_s", "idle_s", "fixes", "fixes_used",
		"fixes_dropped", "distance_dropped_m", "flags", "revision"}, pgx.CopyFromRows(rows)); err != nil {
		b.Fatalf("copy trips: %v", err)
	}
	var states [][]any
	for _, v := range vs {
		states = append(states, []any{v.plate, []byte{0}, end, []time.Time{}})
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"trip_vehicles"}, []string{"vehicle", "state", "newest", "snapshots"},
		pgx.CopyFromRows(states)); err != nil {
		b.Fatalf("copy trip_vehicles: %v", err)
	}
	return len(rows)
}

// historyAPI serves the query API over pool on a real listener.
func historyAPI(b *testing.B, pool *pgxpool.Pool) *httptest.Server {
	h, err := httpapi.New(httpapi.Config{
		Vehicles: vehicles.NewStore(pool), Stations: stations.NewStore(pool), Visits: visits.NewStore(pool),
		Replays: replays.NewStore(pool), Jobs: jobs.NewStore(pool), Rebuilds: rebuild.NewStore(pool), Trips: trips.NewStore(pool),
		G7Events:        g7events.NewStore(pool),
		StationCommands: noStationCommands{}, JobCommands: noJobCommands{},
		Tokens:    map[string]httpapi.Role{"bench-viewer": httpapi.RoleViewer},
		RateLimit: httpapi.RateLimit{TokenRate: 1e6, TokenBurst: 1e6},
		History:   httpapi.History{ExportMaxRows: 100_000_000},
		Logger:    quiet,
		Now:       func() time.Time { return historyStart.AddDate(0, 0, historyDays) },
	})
	if err != nil {
		b.Fatal(err)
	}
	return httptest.NewServer(h)
}

// The history benchmark writes nothing.
type (
	noStationCommands struct{}
	noJobCommands     struct{}
)

func (noStationCommands) Parse(body []byte) (*station.Station, error) { return station.Parse(body) }
func (noStationCommands) Create(context.Context, *station.Station) (stationcmd.Result, error) {
	return stationcmd.Result{}, fmt.Errorf("read only")
}
func (noStationCommands) Put(context.Context, *station.Station, station.Condition) (stationcmd.Result, error) {
	return stationcmd.Result{}, fmt.Errorf("read only")
}
func (noStationCommands) Delete(context.Context, string, station.Condition) (stationcmd.Result, error) {
	return stationcmd.Result{}, fmt.Errorf("read only")
}
func (noJobCommands) Create(context.Context, job.CreateRequest) (jobcmd.Result, error) {
	return jobcmd.Result{}, fmt.Errorf("read only")
}
func (noJobCommands) Cancel(context.Context, string, string) (jobcmd.Result, error) {
	return jobcmd.Result{}, fmt.Errorf("read only")
}

// BenchmarkSimplifyYear streams a year of one vehicle at one fix a second
// (31.5 million fixes: driving, with a stop every few hours) through
// domain/simplify to 2,000 points, in its default buffer, without the
// database: the simplifier's own rate and the memory it holds, which the
// database's scan of such a window adds to.
func BenchmarkSimplifyYear(b *testing.B) {
	const fixes = 365 * 86400
	rng := rand.New(rand.NewPCG(1, 2))
	for b.Loop() {
		s, err := simplify.New(simplify.Config{MaxPoints: 2000})
		if err != nil {
			b.Fatal(err)
		}
		p := geo.Point{Lat: 31.2, Lng: 121.4}
		heading := 0.0
		t0 := historyStart.UnixMicro()
		var peak uint64
		var m runtime.MemStats
		for i := range int64(fixes) {
			if i%20_000 < 1_200 { // 20 minutes standing every 5.5 hours
				if err := s.Add(simplify.Point{UnixMicro: t0 + i*1e6, Lat: p.Lat + rng.NormFloat64()*3e-5, Lng: p.Lng + rng.NormFloat64()*3e-5}); err != nil {
					b.Fatal(err)
				}
				continue
			}
			heading += rng.NormFloat64() * 0.02
			p = geoworkload.Offset(p, 12*math.Cos(heading), 12*math.Sin(heading))
			if err := s.Add(simplify.Point{UnixMicro: t0 + i*1e6, Lat: p.Lat, Lng: p.Lng}); err != nil {
				b.Fatal(err)
			}
			if i%5_000_000 == 0 {
				runtime.ReadMemStats(&m)
				peak = max(peak, m.HeapInuse)
			}
		}
		r, err := s.Result()
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("%d fixes in %d points, tolerance %.0f m, %d stops; heap in use at most %d MB",
			r.Fixes, len(r.Points), r.ToleranceM, r.Stops, peak>>20)
	}
	reportCores(b, "a year of one vehicle at 1 fix/s (31,536,000 fixes) through domain/simplify to 2,000 points, default buffer (300,000)")
	b.ReportMetric(float64(fixes)*float64(b.N)/b.Elapsed().Seconds(), "fixes/s")
}

func mustJSON(b *testing.B, body []byte, v any) {
	b.Helper()
	if err := json.Unmarshal(body, v); err != nil {
		b.Fatalf("%v: %.300s", err, body)
	}
}
