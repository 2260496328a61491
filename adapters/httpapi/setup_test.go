package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/domain/job"
	"github.com/tmsfleet/tms/domain/station"
	"github.com/tmsfleet/tms/internal/testenv"
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

// The real stores and commands are what the API is built against.
var (
	_ VehicleStore    = (*vehicles.Store)(nil)
	_ StationStore    = (*stations.Store)(nil)
	_ VisitStore      = (*visits.Store)(nil)
	_ ReplayStore     = (*replays.Store)(nil)
	_ StationCommands = (*stationcmd.Commands)(nil)
	_ JobStore        = (*jobs.Store)(nil)
	_ JobCommands     = (*jobcmd.Commands)(nil)
	_ TripStore       = (*trips.Store)(nil)
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode) // no route listing on stdout
	os.Exit(m.Run())
}

const (
	viewerToken   = "v-3f9a1c"
	operatorToken = "op-77e2b0"
)

// base is the start of the seeded history; the API's clock is pinned an
// hour after it.
var base = time.Date(2025, 3, 10, 8, 0, 0, 0, time.UTC)

// fix is one row to seed into positions.
type fix struct {
	plate    string
	at       time.Time
	lat, lng float64
	speed    float64
	course   *float64
	flags    []string
}

func ptr[T any](v T) *T { return &v }

// fleet is the seeded data: a track of ten fixes for 沪A12345, one fix
// for 京B00001, and vehicles placed to test bounding boxes, two of them
// on either side of the antimeridian.
func fleet() []fix {
	var out []fix
	for i := range 10 {
		f := fix{plate: "沪A12345", at: base.Add(time.Duration(i) * time.Minute),
			lat: 31.20 + float64(i)*0.001, lng: 121.40 + float64(i)*0.002, speed: float64(10 * i), course: ptr(90.0)}
		if i == 3 {
			f.course = nil
			f.flags = []string{"gap"}
		}
		out = append(out, f)
	}
	return append(out,
		fix{plate: "京B00001", at: base.Add(5 * time.Minute), lat: 39.90, lng: 116.40, speed: 42},
		fix{plate: "粤C77777", at: base, lat: 23.13, lng: 113.26, speed: 0},
		fix{plate: "FIJI-1", at: base, lat: -17.70, lng: 178.00, speed: 30},
		fix{plate: "SAMOA-1", at: base, lat: -13.80, lng: -172.00, speed: 30},
		fix{plate: "ANCH-9", at: base, lat: 61.20, lng: -149.90, speed: 55},
	)
}

// fleetPlates are the plates fleet seeds.
func fleetPlates() []string {
	var out []string
	for _, f := range fleet() {
		if !slices.Contains(out, f.plate) {
			out = append(out, f.plate)
		}
	}
	return out
}

// newDB gives the test a fresh migrated database filled with fixes, as
// the projector would have left it: every fix in positions, and each
// vehicle's latest fix and totals in vehicles.
func newDB(t *testing.T, fixes []fix) *pgxpool.Pool {
	t.Helper()
	url := testenv.FromEnv(os.LookupEnv).Postgres(t)
	pool, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	times := make([]time.Time, len(fixes))
	for i, f := range fixes {
		times[i] = f.at
	}
	if _, err := vehicles.EnsurePartitions(t.Context(), pool, vehicles.PositionsTable, times...); err != nil {
		t.Fatal(err)
	}
	rows := make([][]any, len(fixes))
	for i, f := range fixes {
		flags := f.flags
		if flags == nil {
			flags = []string{}
		}
		rows[i] = []any{f.plate, f.at, f.at.Add(2 * time.Second), f.lat, f.lng, f.speed, f.course, flags}
	}
	_, err = pool.CopyFrom(t.Context(), pgx.Identifier{"positions"},
		[]string{"plate", "fix_time", "received_at", "lat", "lng", "speed_kmh", "course_deg", "flags"}, pgx.CopyFromRows(rows))
	if err != nil {
		t.Fatalf("seed positions: %v", err)
	}
	_, err = pool.Exec(t.Context(), `
		INSERT INTO vehicles (plate, fix_time, received_at, lat, lng, speed_kmh, course_deg, flags,
		                      first_seen, last_seen, positions_count)
		SELECT DISTINCT ON (p.plate) p.plate, p.fix_time, p.received_at, p.lat, p.lng, p.speed_kmh,
		       p.course_deg, p.flags, s.first_seen, s.last_seen, s.n
		FROM positions p
		JOIN (SELECT plate, min(received_at) AS first_seen, max(received_at) AS last_seen, count(*) AS n
		      FROM positions GROUP BY plate) s USING (plate)
		ORDER BY p.plate, p.fix_time DESC`)
	if err != nil {
		t.Fatalf("seed vehicles: %v", err)
	}
	return pool
}

// syncBuffer is a log sink safe for concurrent handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testAPI is an API under test, with what the test may inspect.
type testAPI struct {
	srv     *server
	handler http.Handler
	reg     *prometheus.Registry
	logs    *syncBuffer
}

// newAPI builds an API over store with the test tokens, a registry and a
// log of its own, and the clock pinned an hour after base. tweak, when
// given, adjusts the config first.
func newAPI(t *testing.T, store VehicleStore, tweak ...func(*Config)) *testAPI {
	t.Helper()
	a := &testAPI{reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	cfg := Config{
		Vehicles:        store,
		Stations:        stations.NewStore(nil),
		Visits:          visits.NewStore(nil),
		Replays:         replays.NewStore(nil),
		Rebuilds:        rebuild.NewStore(nil),
		StationCommands: noCommands{},
		Jobs:            jobs.NewStore(nil),
		JobCommands:     noJobCommands{},
		Trips:           trips.NewStore(nil),
		G7Events:        g7events.NewStore(nil),
		Tokens:          map[string]Role{viewerToken: RoleViewer, operatorToken: RoleOperator},
		Registerer:      a.reg,
		Logger:          slog.New(slog.NewTextHandler(a.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:             func() time.Time { return base.Add(time.Hour) },
	}
	for _, f := range tweak {
		f(&cfg)
	}
	s, err := newServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.srv, a.handler = s, s.engine()
	return a
}

// noStore is a real store that no request of the test reaches: for tests
// of routes that do not read vehicles, so they run without Postgres.
func noStore() VehicleStore { return vehicles.NewStore(nil) }

// newDBAPI is newAPI over every read model in pool.
func newDBAPI(t *testing.T, pool *pgxpool.Pool, tweak ...func(*Config)) *testAPI {
	t.Helper()
	return newAPI(t, vehicles.NewStore(pool), append([]func(*Config){func(c *Config) {
		c.Stations, c.Visits, c.Replays = stations.NewStore(pool), visits.NewStore(pool), replays.NewStore(pool)
		c.Jobs, c.Rebuilds, c.Trips = jobs.NewStore(pool), rebuild.NewStore(pool), trips.NewStore(pool)
		c.G7Events = g7events.NewStore(pool)
	}}, tweak...)...)
}

// noCommands stands in for the station commands where a test writes none.
type noCommands struct{}

var errNoCommands = errors.New("this test has no station commands")

func (noCommands) Parse(body []byte) (*station.Station, error) { return station.Parse(body) }

func (noCommands) Create(context.Context, *station.Station) (stationcmd.Result, error) {
	return stationcmd.Result{}, errNoCommands
}

func (noCommands) Put(context.Context, *station.Station, station.Condition) (stationcmd.Result, error) {
	return stationcmd.Result{}, errNoCommands
}

func (noCommands) Delete(context.Context, string, station.Condition) (stationcmd.Result, error) {
	return stationcmd.Result{}, errNoCommands
}

// noJobCommands stands in for the job commands where a test writes none.
type noJobCommands struct{}

func (noJobCommands) Create(context.Context, job.CreateRequest) (jobcmd.Result, error) {
	return jobcmd.Result{}, errNoCommands
}

func (noJobCommands) Cancel(context.Context, string, string) (jobcmd.Result, error) {
	return jobcmd.Result{}, errNoCommands
}

// do sends a request with token (none when empty) and records the answer.
func (a *testAPI) do(t *testing.T, method, target, token string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequestWithContext(t.Context(), method, target, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	a.handler.ServeHTTP(w, r)
	return w
}

func (a *testAPI) get(t *testing.T, target string) *httptest.ResponseRecorder {
	t.Helper()
	return a.do(t, http.MethodGet, target, viewerToken)
}

// decode reads a 200 JSON answer of contentType into a T.
func decode[T any](t *testing.T, w *httptest.ResponseRecorder, contentType string) T {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("status %d, want 200; body: %s", w.Code, w.Body)
	}
	if got := w.Header().Get("Content-Type"); !strings.HasPrefix(got, contentType) {
		t.Fatalf("Content-Type %q, want %s", got, contentType)
	}
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %T: %v; body: %s", v, err, w.Body)
	}
	return v
}

// wantProblem checks that w is an RFC 9457 problem with status, for
// the request path, and (when fields are given) that its errors name
// exactly those fields.
func wantProblem(t *testing.T, w *httptest.ResponseRecorder, path string, status int, fields ...string) problem {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d; body: %s", w.Code, status, w.Body)
	}
	if got := w.Header().Get("Content-Type"); got != contentProblem {
		t.Errorf("Content-Type %q, want %s", got, contentProblem)
	}
	var p problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatalf("decode problem: %v; body: %s", err, w.Body)
	}
	if p.Status != status || !strings.HasPrefix(p.Type, problemBase) || p.Title == "" || p.Detail == "" || p.Instance != path {
		t.Errorf("problem %+v: want status %d, a type under %s, a title, a detail, instance %s", p, status, problemBase, path)
	}
	if fields != nil {
		var got []string
		for _, e := range p.Errors {
			if e.Detail == "" {
				t.Errorf("field %s has no detail", e.Field)
			}
			if !slices.Contains(got, e.Field) {
				got = append(got, e.Field)
			}
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(fields))
		if !slices.Equal(got, want) {
			t.Errorf("errors name %v, want %v; body: %s", got, want, w.Body)
		}
	}
	return p
}
