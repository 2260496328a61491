package jobs_test

import (
	"encoding/json"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/job"
	"github.com/tmsfleet/tms/internal/jobtest"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/internal/tmsproc"
	"github.com/tmsfleet/tms/projections/jobs"
	"github.com/tmsfleet/tms/projections/projector"
)

var t0 = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

func sec(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func east(m float64) geo.Point { return jobtest.East(31, 121, m) }

// Stations on a line east of (31, 121): L (loading) at 0 km, U1 at 10 km,
// U2 at 20 km.
var stations = map[string]job.Station{
	"L":  {ID: "L", Name: "Quarry", Type: "loading", Point: job.Point{Lat: 31, Lng: 121}},
	"U1": {ID: "U1", Name: "Site 1", Type: "unloading", Point: point(east(10000))},
	"U2": {ID: "U2", Name: "Site 2", Type: "unloading", Point: point(east(20000))},
}

func point(p geo.Point) job.Point { return job.Point{Lat: p.Lat, Lng: p.Lng} }

type harness struct {
	kc   *kafka.Config
	pool *pgxpool.Pool
	n    int
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	svc := testenv.FromEnv(os.LookupEnv)
	kc := svc.Kafka(t)
	pool, err := postgres.Open(t.Context(), svc.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return &harness{kc: kc, pool: pool}
}

func (h *harness) produce(t *testing.T, records ...*kgo.Record) {
	t.Helper()
	cl, err := h.kc.NewClient("test-producer")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(t.Context(), records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	h.n += len(records)
}

func (h *harness) start(t *testing.T) {
	t.Helper()
	p, err := projector.New(projector.Config[jobs.Change]{
		Spec:  jobs.Spec,
		Kafka: h.kc, Pool: h.pool, Projection: jobs.NewProjection(nil, nil), RetryBackoff: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Go(t, "projector", p.Run)
}

// wait waits until the projector has committed every record produced.
func (h *harness) wait(t *testing.T) {
	t.Helper()
	tmsproc.Eventually(t, 60*time.Second, "the projector to commit every record", func() bool {
		var got int64
		if err := h.pool.QueryRow(t.Context(), `
			SELECT coalesce(sum(next_offset), 0) FROM projector_offsets WHERE projector = $1 AND topic = $2`,
			jobs.ProjectionName, h.kc.Topic(event.TopicJobs)).Scan(&got); err != nil {
			t.Fatal(err)
		}
		return got >= int64(h.n)
	})
}

// history is what every test below reads, made by domain/job's rules:
//
//   - 沪A00001's ORD-1 (L, U1) completes, and a late fix amends it to
//     revision 2; its second job (L, U2), queued behind ORD-1, starts when
//     ORD-1 is complete, arrives at L and is cancelled there.
//   - 沪B00002's ORD-3 (L, U1) is active, its ORD-4 queued and cancelled.
type history struct {
	a, b                       *jobtest.Vehicle
	ord1, second, ord3, ord4   job.Create
	secondCancelled, cancelled time.Time
}

func makeHistory(t *testing.T) history {
	t.Helper()
	var h history
	a := jobtest.New(t, "沪A00001", stations)
	a.Drive(sec(0), sec(10), time.Second, east(-200), east(-200))
	h.ord1 = a.Create(sec(10), "ORD-1", 20000, "L:loading", "U1:unloading")
	h.second = a.Create(sec(15), "", 8000, "L:loading", "U2:unloading")
	a.Drive(sec(11), sec(20), time.Second, east(-200), east(0))
	a.Enter("L", sec(20))
	a.Drive(sec(21), sec(600), 10*time.Second, east(0), east(0))
	a.Exit("L", sec(600))
	a.Drive(sec(601), sec(1100), 10*time.Second, east(0), east(10000))
	a.Enter("U1", sec(1100))
	a.Drive(sec(1101), sec(1400), 10*time.Second, east(10000), east(10000))
	a.Exit("U1", sec(1400))
	a.Drive(sec(1401), sec(1500), 10*time.Second, east(10000), east(5000)) // back to L: settles ORD-1
	// A fix of ORD-1's window that arrived late, 110 m off the road: the
	// completion is amended.
	a.Fix(sec(855), jobtest.East(31.001, 121, 5000), 60)
	a.Drive(sec(1501), sec(2000), 10*time.Second, east(5000), east(0))
	a.Enter("L", sec(2000))
	h.secondCancelled = sec(2100)
	a.Cancel(h.secondCancelled, h.second.JobID, "truck broke down")
	a.Drive(sec(2001), sec(2200), 10*time.Second, east(0), east(0))

	b := jobtest.New(t, "沪B00002", stations)
	b.Drive(sec(0), sec(100), 10*time.Second, east(3000), east(3000))
	h.ord3 = b.Create(sec(100), "ORD-3", 1000, "L:loading", "U1:unloading")
	h.ord4 = b.Create(sec(200), "ORD-4", 2000, "U1:loading", "U2:unloading")
	h.cancelled = sec(300)
	b.Cancel(h.cancelled, h.ord4.JobID, "order withdrawn")
	b.Drive(sec(101), sec(2200), 10*time.Second, east(3000), east(3000))
	h.a, h.b = a, b
	return h
}

func (h history) records(t *testing.T, kc *kafka.Config) []*kgo.Record {
	return append(jobtest.KafkaRecords(t, kc, h.a.Records...), jobtest.KafkaRecords(t, kc, h.b.Records...)...)
}

func seed(t *testing.T) (*harness, history, *jobs.Store) {
	t.Helper()
	h := newHarness(t)
	hist := makeHistory(t)
	h.produce(t, hist.records(t, h.kc)...)
	h.start(t)
	h.wait(t)
	return h, hist, jobs.NewStore(h.pool)
}

func completions(t *testing.T, v *jobtest.Vehicle) []job.Completion {
	t.Helper()
	var out []job.Completion
	for _, e := range v.Records {
		if e.Type == event.TypeJobCompleted || e.Type == event.TypeJobAmended {
			var c job.Completion
			if err := json.Unmarshal(e.Data, &c); err != nil {
				t.Fatal(err)
			}
			out = append(out, c)
		}
	}
	return out
}

func TestEventsMakeJobs(t *testing.T) {
	t.Parallel()
	h, hist, store := seed(t)
	ctx := t.Context()

	// The history is what it says: the rules made every kind of event.
	cs := completions(t, hist.a)
	if len(cs) != 2 || cs[0].Revision != 1 || cs[1].Revision != 2 || cs[1].DistanceM == cs[0].DistanceM {
		t.Fatalf("completions %+v: want revision 1 and an amended revision 2", cs)
	}

	ord1, err := store.Get(ctx, hist.ord1.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if ord1.ID != job.IDFor("ORD-1") || ord1.Vehicle != "沪A00001" || ord1.ExternalRef != "ORD-1" || ord1.Status != job.StatusCompleted ||
		ord1.Revision != 2 || ord1.Completion == nil || ord1.Completion.Revision != 2 || ord1.Completion.AmendedBecause != job.AmendedLateFixes ||
		ord1.Cargo.WeightKg != 20000 || !ord1.CreatedAt.Equal(sec(10)) || !ord1.StartedAt.Equal(sec(10)) ||
		!ord1.CompletedAt.Equal(sec(1400)) || ord1.CancelledAt != nil || !ord1.Finished() {
		t.Errorf("ORD-1: %+v", ord1)
	}
	if a, b := mustJSON(t, ord1.Completion), mustJSON(t, cs[1]); a != b {
		t.Errorf("ORD-1's completion:\n%s\nwant the amendment:\n%s", a, b)
	}
	if len(ord1.Stops) != 2 || ord1.Stops[0].Status != job.StopDeparted || !ord1.Stops[1].DepartedAt.Equal(sec(1400)) ||
		*ord1.Stops[1].DwellS != 300 || ord1.Stops[1].StationName != "Site 1" {
		t.Errorf("ORD-1's stops: %s", mustJSON(t, ord1.Stops))
	}

	second, err := store.Get(ctx, hist.second.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if second.Status != job.StatusCancelled || second.ExternalRef != "" || !second.StartedAt.Equal(sec(1400)) ||
		!second.CancelledAt.Equal(hist.secondCancelled) || second.CancelReason != "truck broke down" || second.Revision != 0 ||
		second.Completion != nil || second.Stops[0].Status != job.StopArrived || !second.Stops[0].ArrivedAt.Equal(sec(2000)) ||
		second.Stops[1].Status != job.StopPending {
		t.Errorf("the second job: %+v", second)
	}

	ord3, err := store.Get(ctx, hist.ord3.JobID)
	if err != nil || ord3.Status != job.StatusActive || !ord3.StartedAt.Equal(sec(100)) || ord3.Finished() {
		t.Errorf("ORD-3: %+v, %v", ord3, err)
	}
	ord4, err := store.Get(ctx, hist.ord4.JobID)
	if err != nil || ord4.Status != job.StatusCancelled || ord4.StartedAt != nil || !ord4.CancelledAt.Equal(hist.cancelled) ||
		!ord4.UpdatedAt.Equal(hist.cancelled) {
		t.Errorf("ORD-4: %+v, %v", ord4, err)
	}
	if _, err := store.Get(ctx, job.IDFor("nothing")); !isNotFound(err) {
		t.Errorf("an unknown job: %v", err)
	}

	// Every create command is kept, as appended.
	for _, c := range []job.Create{hist.ord1, hist.second, hist.ord3, hist.ord4} {
		got, err := jobs.Request(ctx, h.pool, c.JobID)
		if err != nil || mustJSON(t, got) != mustJSON(t, c) {
			t.Errorf("request of %s: %+v, %v", c.JobID, got, err)
		}
	}
	if _, err := jobs.Request(ctx, h.pool, job.IDFor("nothing")); !isNotFound(err) {
		t.Errorf("the request of an unknown job: %v", err)
	}

	// The same records again (a replay), then single events again after
	// everything that followed them: nothing changes, not even updated_at.
	before := all(t, store)
	h.produce(t, hist.records(t, h.kc)...)
	again := []event.Envelope{
		hist.a.Of(event.TypeJobCreated)[0], hist.a.Of(event.TypeJobStarted)[0], hist.a.Of(event.TypeJobStopArrived)[0],
		hist.a.Of(event.TypeJobStopDeparted)[0], hist.a.Of(event.TypeJobCompleted)[0], hist.b.Of(event.TypeJobStarted)[0],
	}
	h.produce(t, jobtest.KafkaRecords(t, h.kc, again...)...)
	h.wait(t)
	if a, b := mustJSON(t, before), mustJSON(t, all(t, store)); a != b {
		t.Errorf("events applied again changed the jobs:\n%s\n%s", a, b)
	}
}

func isNotFound(err error) bool { return errors.Is(err, jobs.ErrNotFound) }

func all(t *testing.T, store *jobs.Store) []jobs.Job {
	t.Helper()
	list, err := store.List(t.Context(), jobs.Query{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func ids(list []jobs.Job) []string {
	out := make([]string, len(list))
	for i, j := range list {
		out[i] = j.ID
	}
	return out
}

func TestListFiltersAndPages(t *testing.T) {
	t.Parallel()
	_, hist, store := seed(t)
	ord1, second, ord3, ord4 := hist.ord1.JobID, hist.second.JobID, hist.ord3.JobID, hist.ord4.JobID
	at := func(s float64) *time.Time { v := sec(s); return &v }
	cases := []struct {
		name string
		q    jobs.Query
		want []string
	}{
		{"everything, newest first", jobs.Query{}, []string{ord4, ord3, second, ord1}},
		{"by vehicle", jobs.Query{Vehicle: "沪A00001"}, []string{second, ord1}},
		{"by status", jobs.Query{Statuses: []string{job.StatusCancelled}}, []string{ord4, second}},
		{"by statuses", jobs.Query{Statuses: []string{job.StatusActive, job.StatusCompleted}}, []string{ord3, ord1}},
		{"by station, any stop", jobs.Query{StationID: "U2"}, []string{ord4, second}},
		{"by station, loading", jobs.Query{StationID: "L"}, []string{ord3, second, ord1}},
		{"by station and vehicle", jobs.Query{StationID: "U1", Vehicle: "沪B00002"}, []string{ord4, ord3}},
		{"created from, included", jobs.Query{CreatedFrom: at(15)}, []string{ord4, ord3, second}},
		{"created to, excluded", jobs.Query{CreatedTo: at(100)}, []string{second, ord1}},
		{"created in a window, at a station", jobs.Query{CreatedFrom: at(11), CreatedTo: at(200), StationID: "L"}, []string{ord3, second}},
		{"completed in a window", jobs.Query{CompletedFrom: at(1400), CompletedTo: at(1401)}, []string{ord1}},
		{"completed after", jobs.Query{CompletedFrom: at(1401)}, nil},
		{"nothing", jobs.Query{StationID: "X"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			q := c.q
			q.Limit = 100
			got, err := store.List(t.Context(), q)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), c.want) && !(len(got) == 0 && len(c.want) == 0) {
				t.Errorf("got  %v\nwant %v", ids(got), c.want)
			}
			// Page by one: the same jobs, in the same order.
			var paged []jobs.Job
			q.Limit = 1
			for range 10 {
				page, err := store.List(t.Context(), q)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				paged = append(paged, page...)
				last := page[len(page)-1]
				q.After = &jobs.Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
			}
			if !slices.Equal(ids(paged), ids(got)) {
				t.Errorf("paged %v\nwhole %v", ids(paged), ids(got))
			}
		})
	}
	if _, err := store.List(t.Context(), jobs.Query{}); err == nil {
		t.Error("a list without a limit was answered")
	}
}

// TestUnreadableRecordsAreSkipped: records the tables could not hold are
// skipped (and counted), and the projection goes on to the next.
func TestUnreadableRecordsAreSkipped(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	hist := makeHistory(t)
	created := hist.b.Of(event.TypeJobCreated)[0]
	var data job.Created
	if err := json.Unmarshal(created.Data, &data); err != nil {
		t.Fatal(err)
	}
	bad := func(edit func(*job.Created)) event.Envelope {
		d := data
		edit(&d)
		e, err := event.New(event.TypeJobCreated, job.Source, d.Vehicle, d.CreatedAt, d, "bad", d.JobID, d.ExternalRef)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	envelopes := []event.Envelope{
		bad(func(d *job.Created) { d.JobID = "not-a-uuid" }),
		bad(func(d *job.Created) { d.ExternalRef = "ORD-1" }), // another job's reference
		bad(func(d *job.Created) { d.Stops = nil }),
		bad(func(d *job.Created) { d.Status = job.StatusCompleted }),
	}
	records := jobtest.KafkaRecords(t, h.kc, envelopes...)
	records = append(records, &kgo.Record{Topic: h.kc.Topic(event.TopicJobs), Key: []byte("x"), Value: []byte("{")})
	h.produce(t, records...)
	h.produce(t, jobtest.KafkaRecords(t, h.kc, hist.b.Records...)...)
	h.start(t)
	h.wait(t)
	got := all(t, jobs.NewStore(h.pool))
	if !slices.Equal(ids(got), []string{hist.ord4.JobID, hist.ord3.JobID}) || got[1].ExternalRef != "ORD-3" {
		t.Errorf("jobs %v", mustJSON(t, got))
	}
}
