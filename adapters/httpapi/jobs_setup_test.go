package httpapi

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/job"
	"github.com/tmsfleet/tms/internal/jobtest"
	"github.com/tmsfleet/tms/projections/jobs"
)

// Stations of the jobs tests, on a line east of (31, 121): L (loading)
// at 0 km, U1 at 10 km, U2 at 20 km.
var jobStations = map[string]job.Station{
	"L":  {ID: "L", Name: "Quarry", Type: "loading", Point: job.Point{Lat: 31, Lng: 121}},
	"U1": {ID: "U1", Name: "Site 1", Type: "unloading", Point: jobPoint(jobtest.East(31, 121, 10000))},
	"U2": {ID: "U2", Name: "Site 2", Type: "unloading", Point: jobPoint(jobtest.East(31, 121, 20000))},
}

// jobPoint is p as job events carry it: to 7 decimals.
func jobPoint(p geo.Point) job.Point {
	r := func(v float64) float64 { return math.Round(v*1e7) / 1e7 }
	return job.Point{Lat: r(p.Lat), Lng: r(p.Lng)}
}

func east(m float64) geo.Point { return jobtest.East(31, 121, m) }

// at is s seconds after base.
func at(s float64) time.Time { return base.Add(time.Duration(s * float64(time.Second))) }

// jobHistory is the jobs every read test below reads, made by domain/job's
// rules (the API's clock is pinned at 3600 s):
//
//   - 沪A00001's ORD-1 (L, U1) is completed, and a late fix amended it to
//     revision 2; its second job (L, U2), queued behind it, started at
//     ORD-1's end (1400 s) and is at L.
//   - 沪B00002's ORD-3 (L, U1) is active; its ORD-4 (U1, U2) was
//     cancelled while queued.
type jobHistory struct {
	a, b                     *jobtest.Vehicle
	ord1, second, ord3, ord4 job.Create
}

func makeJobHistory(t *testing.T) jobHistory {
	t.Helper()
	var h jobHistory
	a := jobtest.New(t, "沪A00001", jobStations)
	a.Drive(at(0), at(10), time.Second, east(-200), east(-200))
	h.ord1 = a.Create(at(10), "ORD-1", 20000, "L:loading", "U1:unloading")
	h.second = a.Create(at(15), "", 8000, "L:loading", "U2:unloading")
	a.Drive(at(11), at(20), time.Second, east(-200), east(0))
	a.Enter("L", at(20))
	a.Drive(at(21), at(600), 10*time.Second, east(0), east(0))
	a.Exit("L", at(600))
	a.Drive(at(601), at(1100), 10*time.Second, east(0), east(10000))
	a.Enter("U1", at(1100))
	a.Drive(at(1101), at(1400), 10*time.Second, east(10000), east(10000))
	a.Exit("U1", at(1400))
	a.Drive(at(1401), at(1500), 10*time.Second, east(10000), east(5000))
	a.Fix(at(855), jobtest.East(31.001, 121, 5000), 60) // late: amends ORD-1
	a.Drive(at(1501), at(2000), 10*time.Second, east(5000), east(0))
	a.Enter("L", at(2000))
	a.Drive(at(2001), at(2200), 10*time.Second, east(0), east(0))

	b := jobtest.New(t, "沪B00002", jobStations)
	b.Drive(at(0), at(100), 10*time.Second, east(3000), east(3000))
	h.ord3 = b.Create(at(100), "ORD-3", 1000, "L:loading", "U1:unloading")
	h.ord4 = b.Create(at(200), "ORD-4", 2000, "U1:loading", "U2:unloading")
	b.Cancel(at(300), h.ord4.JobID, "order withdrawn")
	b.Drive(at(101), at(2200), 10*time.Second, east(3000), east(3000))
	h.a, h.b = a, b
	if n := len(a.Of(event.TypeJobAmended)); n != 1 {
		t.Fatalf("the history has %d amendments, want ORD-1's", n)
	}
	return h
}

// completion is the latest completion of job id in the history.
func (h jobHistory) completion(t *testing.T, id string) job.Completion {
	t.Helper()
	var out job.Completion
	for _, e := range append(h.a.Records, h.b.Records...) {
		if e.Type != event.TypeJobCompleted && e.Type != event.TypeJobAmended {
			continue
		}
		var c job.Completion
		if err := json.Unmarshal(e.Data, &c); err != nil {
			t.Fatal(err)
		}
		if c.JobID == id && c.Revision > out.Revision {
			out = c
		}
	}
	return out
}

// seedJobHistory fills a fresh database with the history: the vehicles'
// fixes as positions, and the records of tms.jobs through the jobs
// projection.
func seedJobHistory(t *testing.T) (*pgxpool.Pool, jobHistory) {
	t.Helper()
	h := makeJobHistory(t)
	var fixes []fix
	for plate, v := range map[string]*jobtest.Vehicle{"沪A00001": h.a, "沪B00002": h.b} {
		for _, f := range v.Fixes {
			fixes = append(fixes, fix{plate: plate, at: f.Time, lat: f.Point.Lat, lng: f.Point.Lng, speed: f.SpeedKmh, course: ptr(90.0)})
		}
	}
	pool := newDB(t, fixes)
	seedJobRecords(t, pool, append(h.a.Records, h.b.Records...)...)
	return pool, h
}

// seedJobRecords applies records of tms.jobs as the jobs projection does,
// through it.
func seedJobRecords(t *testing.T, pool *pgxpool.Pool, envelopes ...event.Envelope) {
	t.Helper()
	p := jobs.NewProjection(nil, nil)
	var changes []jobs.Change
	for _, e := range envelopes {
		v, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if c, ok := p.Decode(&kgo.Record{Value: v}); ok {
			changes = append(changes, c)
		}
	}
	err := pgx.BeginFunc(t.Context(), pool, func(tx pgx.Tx) error { return p.Apply(t.Context(), tx, changes) })
	if err != nil {
		t.Fatal(err)
	}
}
