package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/projections/jobs"
	"github.com/tmsfleet/tms/projections/timeline"
	"github.com/tmsfleet/tms/projections/vehicles"
	"github.com/tmsfleet/tms/projections/visits"
)

// The replay benchmark's history: replayVehicles vehicles, each with a
// day of fixes replayStep apart, a station visit every half hour (20
// minutes inside) and a job of two stops every three hours.
const (
	replayVehicles = 100
	replayStep     = 10 * time.Second
	replayDay      = 24 * time.Hour
	replayPageRows = 500 // TMS_WS_REPLAY_PAGE_ROWS' default
)

// BenchmarkReplayTimeline measures what bounds a WebSocket replay: how
// fast one vehicle's day (8,640 fixes, 48 visits, 8 jobs: 8,800 events)
// is read from the read models and rebuilt as events, a page of 500 rows
// of each stream at a time, by timeline.Reader over timeline.Store, and
// how long each page query takes. A replay needs (fixes per second of
// history) x speed items per second: a fix every 10 s at the top speed
// of 1000 is 100 items/s.
func BenchmarkReplayTimeline(b *testing.B) {
	ctx := context.Background()
	pool, err := postgres.Open(ctx, svc.Postgres(b))
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	t0 := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	start := time.Now()
	fixesPerDay := int(replayDay / replayStep)
	for _, fill := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO positions (plate, fix_time, received_at, lat, lng, speed_kmh, course_deg, flags)
		 SELECT format('沪V%s', lpad(v::text, 5, '0')), $1::timestamptz + make_interval(secs => i * $2::float8),
		        $1::timestamptz + make_interval(secs => i * $2::float8 + 1), 31 + v * 0.01, 121 + i * 1e-5, 36, 90, '{}'
		 FROM generate_series(1, $3::int) v, generate_series(0, $4::int - 1) i`,
			[]any{t0, replayStep.Seconds(), replayVehicles, fixesPerDay}},
		{`INSERT INTO visits (visit_id, vehicle, station_id, station_type, station_version, entered_at, exited_at, dwell_s)
		 SELECT gen_random_uuid(), format('沪V%s', lpad(v::text, 5, '0')), format('S%s', k % 7), 'loading', 1,
		        $1::timestamptz + make_interval(mins => k * 30 + 5), $1::timestamptz + make_interval(mins => k * 30 + 25), 1200
		 FROM generate_series(1, $2::int) v, generate_series(0, 47) k`, []any{t0, replayVehicles}},
		{`INSERT INTO jobs (id, vehicle, status, cargo, stops, created_at, started_at, completed_at, revision, completion, updated_at)
		 SELECT gen_random_uuid(), format('沪V%s', lpad(v::text, 5, '0')), 'completed', '{"weight_kg": 20000}',
		        jsonb_build_array(
		          jsonb_build_object('index', 0, 'station_id', 'S1', 'kind', 'loading', 'station_name', 'S1',
		            'point', jsonb_build_object('lat', 31, 'lng', 121), 'status', 'departed', 'flags', '[]'::jsonb,
		            'arrived_at', s + interval '35 minutes', 'departed_at', s + interval '55 minutes', 'dwell_s', 1200),
		          jsonb_build_object('index', 1, 'station_id', 'S2', 'kind', 'unloading', 'station_name', 'S2',
		            'point', jsonb_build_object('lat', 31, 'lng', 121), 'status', 'departed', 'flags', '[]'::jsonb,
		            'arrived_at', s + interval '125 minutes', 'departed_at', s + interval '145 minutes', 'dwell_s', 1200)),
		        s - interval '10 minutes', s, s + interval '145 minutes', 1,
		        jsonb_build_object('job_id', 'x', 'vehicle', 'x', 'revision', 1, 'started_at', s,
		          'completed_at', s + interval '145 minutes', 'duration_s', 8700, 'stops', '[]'::jsonb,
		          'distance_m', jsonb_build_object('empty', 0, 'loaded', 0, 'total', 0), 'legs', '[]'::jsonb,
		          'noise', jsonb_build_object('fixes_used', 0, 'fixes_dropped', 0, 'distance_dropped_m', 0),
		          'cargo', jsonb_build_object('weight_kg', 20000)),
		        s + interval '145 minutes'
		 FROM generate_series(1, $2::int) v, generate_series(0, 7) k,
		      LATERAL (SELECT $1::timestamptz + make_interval(hours => k * 3) AS s) x`, []any{t0, replayVehicles}},
	} {
		if _, err := pool.Exec(ctx, fill.sql, fill.args...); err != nil {
			b.Fatalf("fill: %v", err)
		}
	}
	if _, err := pool.Exec(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	reportCores(b, fmt.Sprintf("%d vehicles x a day (%d fixes %s apart, 48 visits, 8 jobs of 2 stops each) inserted into a fresh "+
		"database in %s; one vehicle's day read by timeline.Reader over timeline.Store, pages of %d rows, in the benchmark process",
		replayVehicles, fixesPerDay, replayStep, time.Since(start).Round(time.Millisecond), replayPageRows))

	src := &timedSource{Source: timeline.NewStore(pool)}
	q := timeline.Query{Vehicle: "沪V00042", From: t0, To: t0.Add(replayDay)}
	// A pass to warm the cache, as a replay of a day an analyst just
	// looked at would find it.
	items := readTimeline(b, src, q)
	src.reset()
	b.ResetTimer()
	var elapsed time.Duration
	for range b.N {
		begin := time.Now()
		if n := readTimeline(b, src, q); n != items {
			b.Fatalf("%d items, then %d", items, n)
		}
		elapsed += time.Since(begin)
	}
	b.StopTimer()
	pages := src.sorted()
	b.ReportMetric(float64(b.N*items)/elapsed.Seconds(), "items/s")
	b.ReportMetric(percentile(pages, 50), "page-p50-ms")
	b.ReportMetric(percentile(pages, 99), "page-p99-ms")
	b.Logf("%d items a day; %d page queries, p50 %.2f ms, p99 %.2f ms, max %.2f ms",
		items, len(pages), percentile(pages, 50), percentile(pages, 99), pages[len(pages)-1])
}

func readTimeline(b *testing.B, src timeline.Source, q timeline.Query) int {
	b.Helper()
	r := timeline.NewReader(src, q, replayPageRows)
	n := 0
	for {
		_, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			b.Fatal(err)
		}
		n++
	}
}

// timedSource times every page query.
type timedSource struct {
	timeline.Source
	mu sync.Mutex
	ms []float64
}

func (s *timedSource) time(begin time.Time) {
	s.mu.Lock()
	s.ms = append(s.ms, float64(time.Since(begin).Microseconds())/1e3)
	s.mu.Unlock()
}

func (s *timedSource) reset() { s.mu.Lock(); s.ms = nil; s.mu.Unlock() }

func (s *timedSource) sorted() []float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.ms)
	slices.Sort(out)
	return out
}

func (s *timedSource) Track(ctx context.Context, q vehicles.TrackQuery) ([]vehicles.Fix, error) {
	defer s.time(time.Now())
	return s.Source.Track(ctx, q)
}

func (s *timedSource) Entries(ctx context.Context, q visits.TimelineQuery) ([]visits.Visit, error) {
	defer s.time(time.Now())
	return s.Source.Entries(ctx, q)
}

func (s *timedSource) Exits(ctx context.Context, q visits.TimelineQuery) ([]visits.Visit, error) {
	defer s.time(time.Now())
	return s.Source.Exits(ctx, q)
}

func (s *timedSource) JobEvents(ctx context.Context, q jobs.TimelineQuery) ([]jobs.TimelineEvent, error) {
	defer s.time(time.Now())
	return s.Source.JobEvents(ctx, q)
}
