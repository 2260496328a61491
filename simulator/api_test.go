package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const testToken = "op-token-s3cret"

// fakeAPI is the part of the tms API the simulator uses, with its
// semantics: PUT /stations/{id} with If-None-Match and If-Match against
// versions and ETags, GET /stations/{id}, and POST /jobs idempotent on the
// external reference (201, 200 for a repeat, 409 for other content).
// busy answers the first requests of each path 503 or 429 with
// Retry-After: 0.
type fakeAPI struct {
	t  *testing.T
	mu sync.Mutex
	// stations by id: the definition as stored and its version.
	stations map[string]fakeStation
	// jobs by external reference: the body as first sent.
	jobs map[string]jobRequest
	// busy is how many requests per method and path are answered busy.
	busy     map[string]int
	requests map[string]int
	// writes counts the station writes that changed something.
	writes int
}

type fakeStation struct {
	def     stationJSON
	version int
}

func newFakeAPI(t *testing.T) (*fakeAPI, string) {
	f := &fakeAPI{t: t, stations: map[string]fakeStation{}, jobs: map[string]jobRequest{},
		busy: map[string]int{}, requests: map[string]int{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := r.Method + " " + r.URL.Path
	f.requests[key]++
	if r.URL.Path == "/healthz" {
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+testToken {
		problem(w, http.StatusUnauthorized, "a bearer token is required")
		return
	}
	if n := f.busy[key]; n > 0 {
		f.busy[key]--
		w.Header().Set("Retry-After", "0")
		status := http.StatusServiceUnavailable
		if n%2 == 0 {
			status = http.StatusTooManyRequests
		}
		problem(w, status, "busy")
		return
	}
	body, _ := io.ReadAll(r.Body)
	switch id, station := strings.CutPrefix(r.URL.Path, "/api/v1/stations/"); {
	case station && r.Method == http.MethodPut:
		var def stationJSON
		if err := json.Unmarshal(body, &def); err != nil {
			problem(w, http.StatusBadRequest, err.Error())
			return
		}
		cur, exists := f.stations[id]
		if r.Header.Get("If-None-Match") == "*" && exists ||
			r.Header.Get("If-Match") != "" && (!exists || r.Header.Get("If-Match") != strconv.Quote(strconv.Itoa(cur.version))) {
			problem(w, http.StatusPreconditionFailed, "precondition failed")
			return
		}
		f.stations[id] = fakeStation{def: def, version: cur.version + 1}
		f.writes++
		w.Header().Set("ETag", strconv.Quote(strconv.Itoa(cur.version+1)))
		if exists {
			w.WriteHeader(http.StatusOK)
		} else {
			w.WriteHeader(http.StatusCreated)
		}
		_, _ = w.Write(body)
	case station && r.Method == http.MethodGet:
		cur, exists := f.stations[id]
		if !exists {
			problem(w, http.StatusNotFound, "no such station")
			return
		}
		w.Header().Set("ETag", strconv.Quote(strconv.Itoa(cur.version)))
		_ = json.NewEncoder(w).Encode(cur.def)
	case r.URL.Path == "/api/v1/jobs" && r.Method == http.MethodPost:
		var req jobRequest
		if err := json.Unmarshal(body, &req); err != nil {
			problem(w, http.StatusBadRequest, err.Error())
			return
		}
		for _, s := range req.Stops {
			if _, ok := f.stations[s.StationID]; !ok {
				problem(w, http.StatusBadRequest, "stops: unknown station "+s.StationID)
				return
			}
		}
		prev, exists := f.jobs[req.ExternalRef]
		switch {
		case !exists:
			f.jobs[req.ExternalRef] = req
			w.WriteHeader(http.StatusCreated)
		case jsonOf(prev) == jsonOf(req):
			w.WriteHeader(http.StatusOK)
		default:
			problem(w, http.StatusConflict, "external_ref names a job with other stops or cargo")
			return
		}
		_, _ = w.Write([]byte(`{"id":"job-` + req.ExternalRef + `","status":"active"}`))
	default:
		problem(w, http.StatusNotFound, "no route")
	}
}

// locked runs fn with the fake's state to itself.
func (f *fakeAPI) locked(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

func problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"status": status, "detail": detail})
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// logs is a logger into a buffer, read by the test.
type logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func testAPI(t *testing.T, url string, jobs int, area Area) (*Simulator, *logs) {
	t.Helper()
	l := &logs{}
	sim, err := New(Config{
		BrokerURL: "tcp://127.0.0.1:1", Vehicles: 6, Seed: 3, Area: area, Jobs: jobs,
		APIURL: url, APIToken: testToken, APIAttempts: 4,
		Logger: slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	return sim, l
}

func TestStationsAreDefinedOnceAndLeftAsTheyAre(t *testing.T) {
	t.Parallel()
	fake, url := newFakeAPI(t)
	area := Yard()
	sim, l := testAPI(t, url, 0, area)
	for run := 1; run <= 2; run++ {
		client, err := sim.prepareAPI(t.Context(), sim.cfg.Logger)
		if err != nil || client == nil {
			t.Fatalf("run %d: %v", run, err)
		}
	}
	fake.locked(func() {
		if len(fake.stations) != len(area.Sites) || fake.writes != len(area.Sites) {
			t.Fatalf("two runs: %d stations, %d writes; want %d of each", len(fake.stations), fake.writes, len(area.Sites))
		}
		for i, site := range area.Sites {
			st := fake.stations[area.StationID(i)]
			if st.version != 1 || st.def.Name != site.Name || st.def.Type != string(site.Kind) ||
				st.def.RadiusM != area.StationRadius() || st.def.Geometry.Coordinates != [2]float64{site.Lng, site.Lat} {
				t.Errorf("site %q: station %+v", site.Name, st)
			}
		}
	})
	// Someone changes one station: the next run puts the site's definition
	// back, conditionally on the version it read.
	id := area.StationID(2)
	fake.locked(func() {
		changed := fake.stations[id]
		changed.def.RadiusM, changed.version = 500, 4
		fake.stations[id] = changed
	})
	if _, err := sim.prepareAPI(t.Context(), sim.cfg.Logger); err != nil {
		t.Fatal(err)
	}
	fake.locked(func() {
		if st := fake.stations[id]; st.version != 5 || st.def.RadiusM != area.StationRadius() || fake.writes != len(area.Sites)+1 {
			t.Errorf("changed station after a run: %+v, %d writes", st, fake.writes)
		}
	})
	if out := l.String(); !strings.Contains(out, "created=7 unchanged=0") || !strings.Contains(out, "created=0 unchanged=7") ||
		!strings.Contains(out, "created=0 unchanged=6 replaced=1") {
		t.Errorf("the summaries do not say what happened:\n%s", out)
	}
}

func TestJobsAreCreatedOnceAndConflictsSkipped(t *testing.T) {
	t.Parallel()
	fake, url := newFakeAPI(t)
	sim, l := testAPI(t, url, 8, Yard())
	client, err := sim.prepareAPI(t.Context(), sim.cfg.Logger)
	if err != nil {
		t.Fatal(err)
	}
	jobs := sim.Jobs()
	// The API is busy now and then: answered after its Retry-After.
	fake.locked(func() { fake.busy["POST /api/v1/jobs"] = 3 })
	client.createJobs(t.Context(), jobs)
	fake.locked(func() {
		if len(fake.jobs) != len(jobs) {
			t.Fatalf("%d jobs in the API, want %d", len(fake.jobs), len(jobs))
		}
		for _, j := range jobs {
			req := fake.jobs[j.ExternalRef]
			if req.Vehicle != j.Plate || !req.NewVehicle || req.Cargo.WeightKg != j.CargoKg || len(req.Stops) != len(j.Stops) {
				t.Errorf("job %d sent as %+v", j.Index, req)
			}
			for i, s := range j.Stops {
				if req.Stops[i] != (jobStopJSON{StationID: s.StationID, Kind: string(s.Kind)}) {
					t.Errorf("job %d stop %d sent as %+v", j.Index, i, req.Stops[i])
				}
			}
		}
		if n := fake.requests["POST /api/v1/jobs"]; n != len(jobs)+3 {
			t.Errorf("%d requests for %d jobs and 3 busy answers", n, len(jobs))
		}
		// A second run repeats them; one reference now names other
		// content (say, a run with another fleet): skipped and said so.
		other := fake.jobs[jobs[1].ExternalRef]
		other.Cargo.WeightKg++
		fake.jobs[jobs[1].ExternalRef] = other
	})
	client.createJobs(t.Context(), jobs)
	fake.locked(func() {
		if len(fake.jobs) != len(jobs) {
			t.Errorf("a second run made %d jobs of %d", len(fake.jobs), len(jobs))
		}
	})
	out := l.String()
	for _, want := range []string{"created=8 existed=0", "created=0 existed=7 accepted=0 conflicts=1 failed=0", "other content"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, testToken) {
		t.Errorf("the token is in the log:\n%s", out)
	}
}

func TestAPIGivesUpOnAPersistentlyBusyAPI(t *testing.T) {
	t.Parallel()
	fake, url := newFakeAPI(t)
	sim, l := testAPI(t, url, 1, Yard())
	client, err := sim.prepareAPI(t.Context(), sim.cfg.Logger)
	if err != nil {
		t.Fatal(err)
	}
	fake.locked(func() { fake.busy["POST /api/v1/jobs"] = 100 })
	client.createJobs(t.Context(), sim.Jobs())
	fake.locked(func() {
		if n := fake.requests["POST /api/v1/jobs"]; n != sim.cfg.APIAttempts {
			t.Errorf("%d attempts, want %d", n, sim.cfg.APIAttempts)
		}
	})
	if out := l.String(); !strings.Contains(out, "job not created") || !strings.Contains(out, "failed=1") {
		t.Errorf("a job the API never took is not logged as failed:\n%s", out)
	}
}

func TestWrongTokenIsAClearErrorWithoutTheToken(t *testing.T) {
	t.Parallel()
	_, url := newFakeAPI(t)
	l := &logs{}
	sim, err := New(Config{
		BrokerURL: "tcp://127.0.0.1:1", Vehicles: 2, Area: Yard(), Jobs: 1, APIURL: url, APIToken: "wrong-s3cret",
		Logger: slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = sim.prepareAPI(t.Context(), sim.cfg.Logger)
	if err == nil || !strings.Contains(err.Error(), "refused the token") || !strings.Contains(err.Error(), "operator token") {
		t.Fatalf("a refused token gives %v", err)
	}
	if strings.Contains(err.Error()+l.String(), "wrong-s3cret") {
		t.Errorf("the token is in the error or the log: %v\n%s", err, l.String())
	}
}

// TestWithoutJobsAMissingAPIIsNoError: with nothing listening, the
// simulator says so and publishes positions as before; with jobs asked
// for, it stops with an error naming the API.
func TestWithoutJobsAMissingAPIIsNoError(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now

	sim, l := testAPI(t, url, 0, Yard())
	client, err := sim.prepareAPI(t.Context(), sim.cfg.Logger)
	if err != nil || client != nil {
		t.Fatalf("without jobs: %v, %v", client, err)
	}
	if !strings.Contains(l.String(), "does not answer") {
		t.Errorf("no log line says the API is missing:\n%s", l.String())
	}

	sim, _ = testAPI(t, url, 2, Yard())
	sim.cfg.APIAttempts = 2
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := sim.prepareAPI(ctx, sim.cfg.Logger); err == nil || !strings.Contains(err.Error(), "jobs need the tms API at "+url) {
		t.Errorf("with jobs: %v", err)
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"3": 3 * time.Second, "0": 0, now.Add(5 * time.Second).Format(http.TimeFormat): 5 * time.Second,
	} {
		if got, ok := retryAfter(in, now); !ok || got != want {
			t.Errorf("Retry-After %q = %v, %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "soon", "-1"} {
		if _, ok := retryAfter(in, now); ok {
			t.Errorf("Retry-After %q accepted", in)
		}
	}
}
