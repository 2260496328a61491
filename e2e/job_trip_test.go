package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/job"
	"github.com/tmsfleet/tms/internal/geoworkload"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/internal/tmsproc"
)

// A trip east along latitude 31.3: the quarry L at 0 m, the sites U1 at
// 700 m and U2 at 1,400 m, each a circle of 100 m.
var tripOrigin = geo.Point{Lat: 31.3, Lng: 121.5}

func tripPoint(x float64) geo.Point { return geoworkload.Offset(tripOrigin, 0, x) }

// leg is one part of the trip: from x0 to x1 metres over d.
type leg struct {
	x0, x1 float64
	d      time.Duration
}

// tripLegs: from 250 m west of the quarry at 40 m/s, 6 s at each stop.
var tripLegs = []leg{
	{-250, 0, 6250 * time.Millisecond}, {0, 0, 6 * time.Second},
	{0, 700, 17500 * time.Millisecond}, {700, 700, 6 * time.Second},
	{700, 1400, 17500 * time.Millisecond}, {1400, 1400, 6 * time.Second},
	{1400, 1700, 7500 * time.Millisecond},
}

// tripAt is where the vehicle is after e on the trip (before it starts,
// at its start; after it ends, at its end), and whether it is moving.
func tripAt(e time.Duration) (x float64, moving bool) {
	if e < 0 {
		return tripLegs[0].x0, false
	}
	for _, l := range tripLegs {
		if e <= l.d {
			return l.x0 + (l.x1-l.x0)*float64(e)/float64(l.d), l.x0 != l.x1
		}
		e -= l.d
	}
	return tripLegs[len(tripLegs)-1].x1, false
}

// TestAJobDrivenThroughItsStopsIsBilledOnceThroughASIGKILL: a vehicle
// drives a job over a loading stop, a quality check at the same quarry and
// two drops, reporting twice a second (a parked receiver's wander
// included), while tms is killed with SIGKILL between the quarry and the
// first drop and started again. Every job event must come exactly once,
// in order, and the completion's distance must be within 1 % of the
// route's true length.
func TestAJobDrivenThroughItsStopsIsBilledOnceThroughASIGKILL(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, "TMS_JOBS_DECISION_DELAY=3s", "TMS_JOBS_SETTLE=6s")
	d.Start()
	for i, st := range []struct {
		id, typ string
		x       float64
	}{{"L", "loading", 0}, {"U1", "unloading", 700}, {"U2", "unloading", 1400}} {
		p := tripPoint(st.x)
		body := fmt.Sprintf(`{"id":%q,"name":"site %d","type":%q,"geometry":{"type":"Point","coordinates":[%.7f,%.7f]},"radius_m":100}`,
			st.id, i, st.typ, p.Lng, p.Lat)
		if status, out, _ := post(t, d, "/api/v1/stations", body); status != http.StatusCreated {
			t.Fatalf("create station %s: %d %v", st.id, status, out)
		}
	}

	// The vehicle reports from the start, parked; the trip begins once
	// its job exists.
	const plate = "沪T00001"
	var started atomic.Int64 // the trip's start, Unix ns; 0 before
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(d.MQTTURL).SetClientID(testenv.Name("trip")))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	t.Cleanup(func() { pub.Disconnect(0) })
	rng := rand.New(rand.NewPCG(1, 1))
	testenv.Go(t, "the vehicle", func(ctx context.Context) error {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case now := <-tick.C:
				e := time.Duration(-1)
				if s := started.Load(); s != 0 {
					e = now.Sub(time.Unix(0, s))
				}
				x, moving := tripAt(e)
				speed := 0.0
				if moving {
					speed = 144
				} else {
					x += rng.NormFloat64() * 3 // a parked receiver's wander
				}
				p := tripPoint(x)
				msg := fmt.Sprintf(`{"data":[{"plateNum":%q,"lng":%.7f,"lat":%.7f,"speed":%v,"course":90,"gps_time":%d}]}`,
					plate, p.Lng, p.Lat, speed, now.UnixMilli())
				if tok := pub.Publish(d.Topic, 1, false, msg); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
					return fmt.Errorf("publish: %v (a timed-out token is a failure)", tok.Error())
				}
			}
		}
	})
	tmsproc.Eventually(t, 30*time.Second, "the vehicle in the read model", func() bool {
		return d.Get("/api/v1/vehicles/%E6%B2%AAT00001", nil) == http.StatusOK
	})

	status, created, _ := post(t, d, "/api/v1/jobs", `{"vehicle":"沪T00001","external_ref":"TRIP-1","cargo":{"weight_kg":30000},
		"stops":[{"station_id":"L","kind":"loading"},{"station_id":"L","kind":"quality"},
		         {"station_id":"U1","kind":"unloading"},{"station_id":"U2","kind":"unloading"}]}`)
	if status != http.StatusCreated {
		t.Fatalf("create the job: %d %v", status, created)
	}
	id := created["id"].(string)
	started.Store(time.Now().UnixNano())

	// Between the quarry and the first drop: SIGKILL, and start again.
	tmsproc.Eventually(t, 60*time.Second, "the departure from the quarry", func() bool {
		var j struct{ Stops []struct{ Status string } }
		return d.Get("/api/v1/jobs/"+id, &j) == http.StatusOK && len(j.Stops) == 4 && j.Stops[1].Status == job.StopDeparted
	})
	d.Kill()
	d.Start()

	var done struct {
		Status    string                  `json:"status"`
		DistanceM struct{ Total float64 } `json:"distance_m"`
	}
	tmsproc.Eventually(t, 120*time.Second, "the job completed", func() bool {
		return d.Get("/api/v1/jobs/"+id, &done) == http.StatusOK && done.Status == job.StatusCompleted
	})

	events := readJobEvents(t, d, id)
	var got []string
	ids := map[string]bool{}
	var completion job.Completion
	for _, e := range events {
		if ids[e.ID] {
			t.Errorf("event %s (%s) came twice", e.ID, e.Type)
		}
		ids[e.ID] = true
		s := strings.TrimSuffix(strings.TrimPrefix(e.Type, "tms.job."), ".v1")
		var stop job.StopEvent
		if json.Unmarshal(e.Data, &stop) == nil && (e.Type == event.TypeJobStopArrived || e.Type == event.TypeJobStopDeparted) {
			s += fmt.Sprintf(" %d", stop.Index)
		}
		if e.Type == event.TypeJobCompleted {
			if err := json.Unmarshal(e.Data, &completion); err != nil {
				t.Fatal(err)
			}
		}
		got = append(got, s)
	}
	want := []string{"created", "started", "stop_arrived 0", "stop_arrived 1", "stop_departed 0", "stop_departed 1",
		"stop_arrived 2", "stop_departed 2", "stop_arrived 3", "stop_departed 3", "completed"}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("the job's events:\n  %s\nwant\n  %s", strings.Join(got, ", "), strings.Join(want, ", "))
	}
	// The route's true length from the job's start to its last departure:
	// the vehicle drove straight east, so it is how far east it got.
	begin := time.Unix(0, started.Load())
	xEnd, _ := tripAt(completion.CompletedAt.Sub(begin))
	trueLength := xEnd - tripLegs[0].x0
	if math.Abs(completion.DistanceM.Total-trueLength) > trueLength/100 {
		t.Errorf("distance %.1f m, the route's true length %.1f m: more than 1 %% off (noise %+v)",
			completion.DistanceM.Total, trueLength, completion.Noise)
	}
	if completion.Noise.FixesDropped == 0 || done.DistanceM.Total != completion.DistanceM.Total {
		t.Errorf("the parked wander should be dropped (noise %+v), and the API show the completion (%v)", completion.Noise, done.DistanceM)
	}
	t.Logf("distance %.1f m (true %.1f m), noise %+v", completion.DistanceM.Total, trueLength, completion.Noise)
}

// readJobEvents reads every committed event of job id from the
// deployment's tms.jobs, in order.
func readJobEvents(t *testing.T, d *tmsproc.Deployment, id string) []event.Envelope {
	t.Helper()
	cl, err := d.Kafka.NewClient("e2e-jobs-reader", kgo.ConsumeTopics(d.Kafka.Topic(event.TopicJobs)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []event.Envelope
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		if fs.NumRecords() == 0 {
			return out
		}
		for _, r := range fs.Records() {
			e, err := event.Decode(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			var d struct {
				JobID string `json:"job_id"`
			}
			if !event.IsCommand(e.Type) && json.Unmarshal(e.Data, &d) == nil && d.JobID == id {
				out = append(out, e)
			}
		}
	}
}
