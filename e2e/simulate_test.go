package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/internal/tmsproc"
	"github.com/tmsfleet/tms/simulator"
)

// The simulator run of TestSimulateDefinesStationsAndDrivesJobs: a small
// yard, where legs take seconds, stays of a second or so, a fix every
// 200 ms. Fix times are the wall clock's: the job processor's watermark
// is capped at receive times, so a run cannot go faster than real time,
// only shorter.
const (
	simVehicles = 3
	simJobs     = 2
	simInterval = 200 * time.Millisecond
	simDwell    = 2 * time.Second
	// simSettle and simDecision are the job processor's settings for the
	// test (docs/jobs.md), kept short so that a job completes soon after
	// its last departure.
	simSettle   = 6 * time.Second
	simDecision = 3 * time.Second
)

// jobEventTypes are the job events a dispatcher's dashboard subscribes to.
var jobEventTypes = []string{event.TypeJobCreated, event.TypeJobStarted, event.TypeJobStopArrived,
	event.TypeJobStopDeparted, event.TypeJobCompleted}

// TestSimulateDefinesStationsAndDrivesJobs runs `tms simulate --jobs`
// against the binary with every role, the job processor included, as a
// newcomer does after `make run`, finding the API and the operator token
// by itself (TMS_HTTP_ADDR, TMS_API_TOKENS): the yard's sites become
// stations, both jobs are created, their vehicles arrive at their stops,
// one job completes, and WebSocket clients subscribed to the job event
// types (and one to its vehicle too) receive its events, each once and in
// order. A second run changes nothing: no station is written again, no
// job added.
func TestSimulateDefinesStationsAndDrivesJobs(t *testing.T) {
	t.Parallel()
	began := time.Now()
	// The seed whose quickest job ends soonest, by the simulator's own
	// model (the run follows it closely, fix times aside): it keeps the
	// test short without assuming anything about the model.
	seed, quickest, end := quickestJob(t)
	plate := quickest.Plate
	t.Logf("seed %d: job %d of %s ends about %s into the run", seed, quickest.Index, plate, end.Round(time.Second))

	d := newDeployment(t, "TMS_JOBS_DECISION_DELAY="+simDecision.String(), "TMS_JOBS_SETTLE="+simSettle.String())
	d.Start()
	typesJSON, _ := json.Marshal(jobEventTypes)
	all := subscribeEvents(t, d, `{"subscribe":{"types":`+string(typesJSON)+`}}`)
	mine := subscribeEvents(t, d, `{"subscribe":{"vehicles":["`+plate+`"],"types":`+string(typesJSON)+`}}`)

	// The run lasts until the job's completion has settled, and a little.
	duration := (end + simSettle + simDecision + 12*time.Second).Round(time.Second)
	args := []string{"simulate", "--area", "yard", "--vehicles", fmt.Sprint(simVehicles), "--jobs", fmt.Sprint(simJobs),
		"--seed", fmt.Sprint(seed), "--interval", simInterval.String(), "--dwell", simDwell.String(),
		"--client-id", testenv.Name("sim")}
	first, firstOut := simulate(t, d, append(args, "--duration", duration.String())...)

	// The stations, as the sites define them.
	area := simulator.Yard()
	sites := map[string]simulator.Site{}
	for i, site := range area.Sites {
		sites[area.StationID(i)] = site
	}
	var stations stationList
	tmsproc.Eventually(t, 30*time.Second, "the yard's stations in the API", func() bool {
		return d.Get("/api/v1/stations?limit=100", &stations) == 200 && len(stations.Stations) == len(area.Sites)
	})
	for _, s := range stations.Stations {
		site, ok := sites[s.ID]
		if !ok || s.Name != site.Name || s.Type != string(site.Kind) || s.RadiusM != area.StationRadius() || s.Version != 1 {
			t.Errorf("station %+v is not a site's", s)
		}
	}

	// Both jobs, as planned; the quickest one's vehicle arrives, departs
	// and completes it.
	var jobs jobList
	tmsproc.Eventually(t, 30*time.Second, "both jobs in the API", func() bool {
		return d.Get("/api/v1/jobs?limit=10", &jobs) == 200 && len(jobs.Jobs) == simJobs
	})
	planned := plannedJobs(t, seed)
	for _, j := range jobs.Jobs {
		k := slices.IndexFunc(planned, func(p simulator.Job) bool { return j.ExternalRef != nil && *j.ExternalRef == p.ExternalRef })
		if k < 0 || j.Vehicle != planned[k].Plate || len(j.Stops) != len(planned[k].Stops) || j.Cargo.WeightKg != planned[k].CargoKg {
			t.Fatalf("job %+v is none of the planned %+v", j, planned)
		}
		for i, s := range j.Stops {
			if s.StationID != planned[k].Stops[i].StationID || s.Kind != string(planned[k].Stops[i].Kind) {
				t.Errorf("job %s stop %d: %+v, planned %+v", j.ID, i, s, planned[k].Stops[i])
			}
		}
	}
	var job apiJob
	tmsproc.Eventually(t, duration+10*time.Second, "a vehicle arrives at a stop of its job", func() bool {
		return d.Get("/api/v1/jobs?limit=10", &jobs) == 200 && slices.ContainsFunc(jobs.Jobs, func(j apiJob) bool {
			return slices.ContainsFunc(j.Stops, func(s apiStop) bool { return s.ArrivedAt != nil })
		})
	})
	t.Logf("first arrival %s after the start", time.Since(began).Round(time.Second))
	tmsproc.Eventually(t, duration+10*time.Second, "job "+quickest.ExternalRef+" completed", func() bool {
		return d.Get("/api/v1/jobs?limit=10&vehicle="+plate, &jobs) == 200 && len(jobs.Jobs) == 1 &&
			jobs.Jobs[0].Status == "completed" && func() bool { job = jobs.Jobs[0]; return true }()
	})
	t.Logf("completed %s after the start", time.Since(began).Round(time.Second))
	for i, s := range job.Stops {
		if s.Status != "departed" || s.ArrivedAt == nil || s.DepartedAt == nil || s.DwellS == nil || *s.DwellS <= 0 || len(s.Flags) != 0 {
			t.Errorf("completed job's stop %d, reached by driving in: %+v", i, s)
		}
	}
	if job.DistanceM == nil || job.DistanceM.Loaded <= 0 || job.Revision != 1 {
		t.Errorf("completed job without distances: %+v", job)
	}

	// Every job event of it reached the WebSocket clients, once, in order.
	want := append([]string{event.TypeJobCreated, event.TypeJobStarted}, stopEvents(quickest)...)
	want = append(want, event.TypeJobCompleted)
	for name, c := range map[string]*wsEvents{"types": all, "vehicle and types": mine} {
		got := c.jobEvents(t, job.ID, len(want))
		if !slices.Equal(got, want) {
			t.Errorf("WebSocket client subscribed to %s received %v for job %s, want %v", name, got, job.ID, want)
		}
		if other := c.foreign(jobEventTypes, plate); name == "vehicle and types" && other != "" {
			t.Errorf("the client of %s received %s", plate, other)
		}
		if other := c.foreign(jobEventTypes, ""); other != "" {
			t.Errorf("the client subscribed to job events received %s", other)
		}
	}

	// Interrupted (Ctrl-C), the run stops cleanly.
	if err := first.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := first.Wait(); err != nil {
		t.Fatalf("tms simulate: %v\n%s", err, firstOut)
	}
	// A second run finds the stations defined and the jobs created.
	second, secondOut := simulate(t, d, append(args, "--duration", "3s")...)
	if err := second.Wait(); err != nil {
		t.Fatalf("tms simulate again: %v\n%s", err, secondOut)
	}
	for _, line := range []string{"created=0 unchanged=7 replaced=0 failed=0", "created=0 existed=2 accepted=0 conflicts=0 failed=0"} {
		if !strings.Contains(secondOut.String(), line) {
			t.Errorf("the second run does not say %q:\n%s", line, secondOut)
		}
	}
	if d.Get("/api/v1/stations?limit=100", &stations) != 200 || len(stations.Stations) != len(area.Sites) ||
		slices.ContainsFunc(stations.Stations, func(s apiStation) bool { return s.Version != 1 }) {
		t.Errorf("after a second run: %+v", stations)
	}
	if d.Get("/api/v1/jobs?limit=10", &jobs) != 200 || len(jobs.Jobs) != simJobs {
		t.Errorf("after a second run, %d jobs", len(jobs.Jobs))
	}
	for name, out := range map[string]*lockedBuffer{"first": firstOut, "second": secondOut} {
		if strings.Contains(out.String(), tmsproc.OperatorToken) {
			t.Errorf("the %s run logged the token:\n%s", name, out)
		}
	}
	t.Logf("whole test %s", time.Since(began).Round(time.Second))
}

type stationList struct {
	Stations []apiStation `json:"stations"`
}

type apiStation struct {
	ID      string  `json:"id"`
	Name    string  `json:"name"`
	Type    string  `json:"type"`
	RadiusM float64 `json:"radius_m"`
	Version int64   `json:"version"`
}

type jobList struct {
	Jobs []apiJob `json:"jobs"`
}

type apiJob struct {
	ID          string    `json:"id"`
	Vehicle     string    `json:"vehicle"`
	ExternalRef *string   `json:"external_ref"`
	Status      string    `json:"status"`
	Stops       []apiStop `json:"stops"`
	Cargo       struct {
		WeightKg float64 `json:"weight_kg"`
	} `json:"cargo"`
	Revision  int `json:"revision"`
	DistanceM *struct {
		Loaded float64 `json:"loaded"`
	} `json:"distance_m"`
}

type apiStop struct {
	StationID  string     `json:"station_id"`
	Kind       string     `json:"kind"`
	Status     string     `json:"status"`
	ArrivedAt  *time.Time `json:"arrived_at"`
	DepartedAt *time.Time `json:"departed_at"`
	DwellS     *float64   `json:"dwell_s"`
	Flags      []string   `json:"flags"`
}

// stopEvents are the stop events of j, in the order of its stops:
// consecutive stops at one station (a loading and its quality check)
// arrive together at the entry and depart together at the exit.
func stopEvents(j simulator.Job) []string {
	var out []string
	for i := 0; i < len(j.Stops); {
		n := 1
		for i+n < len(j.Stops) && j.Stops[i+n].Site == j.Stops[i].Site {
			n++
		}
		for range n {
			out = append(out, event.TypeJobStopArrived)
		}
		for range n {
			out = append(out, event.TypeJobStopDeparted)
		}
		i += n
	}
	return out
}

// simulate starts `tms simulate args...` in d's environment, logging at
// info, and returns it with its output.
func simulate(t *testing.T, d *tmsproc.Deployment, args ...string) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	cmd := d.Command(t.Context(), args...)
	cmd.Env = append(cmd.Env, "TMS_LOG_LEVEL=info")
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("tms simulate %s:\n%s", strings.Join(args, " "), out)
		}
	})
	return cmd, out
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func plannedJobs(t *testing.T, seed uint64) []simulator.Job {
	t.Helper()
	f, err := simulator.NewFleet(seed, simVehicles, simulator.Yard(), simulator.WithDwell(simDwell), simulator.WithJobs(simJobs))
	if err != nil {
		t.Fatal(err)
	}
	return f.Jobs()
}

// quickestJob steps the model of the fleets of seeds 1 to maxSeed as the
// run will, and returns the seed and job whose vehicle leaves its last
// stop's station soonest, and when; of the jobs whose vehicle starts
// outside its first stop's station, so that each of its stops is reached
// by driving in. (In the yard a job takes a minute or two: mostly braking
// into and starting out of each station.)
func quickestJob(t *testing.T) (seed uint64, quickest simulator.Job, end time.Duration) {
	t.Helper()
	const exitMarginM = 30 // the geofence's default
	end = time.Duration(math.MaxInt64)
	const maxSeed = 200
	for s := uint64(1); s <= maxSeed; s++ {
		f, err := simulator.NewFleet(s, simVehicles, simulator.Yard(), simulator.WithDwell(simDwell), simulator.WithJobs(simJobs))
		if err != nil {
			t.Fatal(err)
		}
		area := f.Area()
		t0 := time.Now().Truncate(time.Second)
		for _, j := range f.Jobs() {
			// The job's stations, one per stay.
			var sites []int
			for _, st := range j.Stops {
				if len(sites) == 0 || sites[len(sites)-1] != st.Site {
					sites = append(sites, st.Site)
				}
			}
			g, _ := simulator.NewFleet(s, simVehicles, area, simulator.WithDwell(simDwell), simulator.WithJobs(simJobs)) // a fresh run
			next, inside := 0, false
			for step := time.Duration(0); step < 3*time.Minute && next < len(sites) && step < end; step += simInterval {
				fx := g.Step(t0.Add(step))[j.Vehicle]
				site := area.Sites[sites[next]]
				dist := haversineM(site.Lat, site.Lng, fx.Lat, fx.Lng)
				if step == 0 && dist <= area.StationRadius()+exitMarginM {
					break // starts inside, or nearly
				}
				switch {
				case !inside && dist <= area.StationRadius():
					inside = true
				case inside && dist > area.StationRadius()+exitMarginM:
					inside, next = false, next+1
					if next == len(sites) && step < end {
						seed, quickest, end = s, j, step
					}
				}
			}
		}
	}
	if end == time.Duration(math.MaxInt64) {
		t.Fatalf("no job of seeds 1 to %d ends within 3 minutes", maxSeed)
	}
	return seed, quickest, end
}

func haversineM(lat1, lng1, lat2, lng2 float64) float64 {
	rad := math.Pi / 180
	dLat, dLng := (lat2-lat1)*rad, (lng2-lng1)*rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLng/2)*math.Sin(dLng/2)
	return 2 * 6_371_000 * math.Asin(math.Sqrt(h))
}

// wsEvents is a WebSocket client's frames, read as they come.
type wsEvents struct {
	mu     sync.Mutex
	frames []wsFrame
	more   chan struct{}
}

// subscribeEvents opens a WebSocket, subscribes with msg (a filter that
// admits no positions, so no snapshot follows) and reads its frames in
// the background.
func subscribeEvents(t *testing.T, d *tmsproc.Deployment, msg string) *wsEvents {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	conn, _, err := websocket.Dial(ctx, "ws://"+d.HTTPAddr+"/api/v1/ws?access_token="+tmsproc.ViewerToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	c := &wsEvents{more: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, raw, err := conn.Read(ctx)
			if err != nil {
				return
			}
			var f wsFrame
			if err := json.Unmarshal(raw, &f); err != nil {
				t.Errorf("frame %s: %v", raw, err)
				return
			}
			c.mu.Lock()
			c.frames = append(c.frames, f)
			c.mu.Unlock()
			select {
			case c.more <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() { cancel(); conn.CloseNow(); <-done })
	tmsproc.Eventually(t, 10*time.Second, "subscribed", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.frames) > 0
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frames[0].Type != "subscribed" {
		t.Fatalf("first frame %+v", c.frames[0])
	}
	return c
}

// jobEvents waits for n events of job id and returns their types in the
// order they came; fewer if they do not all come within 20 s.
func (c *wsEvents) jobEvents(t *testing.T, id string, n int) []string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		var got []string
		c.mu.Lock()
		for _, f := range c.frames {
			if f.Type != "event" {
				continue
			}
			e, err := event.Decode(f.Event)
			if err != nil {
				t.Fatal(err)
			}
			var data struct {
				JobID string `json:"job_id"`
			}
			if json.Unmarshal(e.Data, &data) == nil && data.JobID == id {
				got = append(got, e.Type)
			}
		}
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-c.more:
		case <-deadline:
			return got
		}
	}
}

// foreign names the first frame received that is not an event of one of
// types (of plate, unless plate is ""), or "" when there is none. Frames
// are numbered from 1, one after the other.
func (c *wsEvents) foreign(types []string, plate string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, f := range c.frames[1:] {
		if f.Seq != uint64(i+2) {
			return fmt.Sprintf("frame %d numbered %d", i+2, f.Seq)
		}
		if f.Type != "event" {
			return fmt.Sprintf("a %s frame", f.Type)
		}
		e, err := event.Decode(f.Event)
		if err != nil || !slices.Contains(types, e.Type) || (plate != "" && e.Subject != plate) {
			return fmt.Sprintf("event %s of %s", e.Type, e.Subject)
		}
	}
	return ""
}
