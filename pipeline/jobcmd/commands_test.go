package jobcmd_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/job"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/domain/station"
	"github.com/tmsfleet/tms/internal/jobtest"
	"github.com/tmsfleet/tms/internal/metricstest"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/internal/tmsproc"
	"github.com/tmsfleet/tms/pipeline/jobcmd"
	"github.com/tmsfleet/tms/projections/jobs"
	"github.com/tmsfleet/tms/projections/projector"
	"github.com/tmsfleet/tms/projections/stations"
	"github.com/tmsfleet/tms/projections/vehicles"
)

var t0 = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

const plate = "沪A00001"

type env struct {
	kc   *kafka.Config
	pool *pgxpool.Pool
}

// newEnv is a fresh database with the stations Q (a circle) and Y (a
// polygon) and H (a hazard zone), and 沪A00001 having reported; with the
// jobs projector running when projector is true.
func newEnv(t *testing.T, projector bool) *env {
	t.Helper()
	svc := testenv.FromEnv(os.LookupEnv)
	e := &env{kc: svc.Kafka(t)}
	var err error
	if e.pool, err = postgres.Open(t.Context(), svc.Postgres(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.pool.Close)
	var changes []station.Change
	for _, body := range []string{
		`{"id": "Q", "name": "Quarry", "type": "loading", "geometry": {"type": "Point", "coordinates": [121.40000004, 31.2]}, "radius_m": 300}`,
		`{"id": "Y", "name": "Yard", "type": "unloading", "geometry": {"type": "Polygon", "coordinates": [[[121.5, 31.3], [121.51, 31.3], [121.51, 31.31], [121.5, 31.3]]]}}`,
		`{"id": "H", "name": "Cliff", "type": "hazard", "geometry": {"type": "Point", "coordinates": [121.6, 31.2]}, "radius_m": 100}`,
	} {
		s, err := station.Parse([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		changes = append(changes, station.Change{Kind: station.Upsert, ID: s.ID(), Version: 1, At: t0, Station: s})
	}
	err = pgx.BeginFunc(t.Context(), e.pool, func(tx pgx.Tx) error {
		if err := stations.NewProjection(nil, nil).Apply(t.Context(), tx, changes); err != nil {
			return err
		}
		return vehicles.NewProjection(nil, nil).Apply(t.Context(), tx, []position.Position{
			{Plate: plate, FixTime: t0, ReceivedAt: t0, Lat: 31, Lng: 121},
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if projector {
		e.runProjector(t)
	}
	return e
}

func (e *env) runProjector(t *testing.T) {
	t.Helper()
	p, err := projector.New(projector.Config[jobs.Change]{
		Spec:  jobs.Spec,
		Kafka: e.kc, Pool: e.pool, Projection: jobs.NewProjection(nil, nil), RetryBackoff: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Go(t, "jobs projector", p.Run)
}

// commands are job commands with a clock a second later at each call.
func (e *env) commands(t *testing.T, tweak ...func(*jobcmd.Config)) *jobcmd.Commands {
	t.Helper()
	var mu sync.Mutex
	clock := t0
	cfg := jobcmd.Config{Kafka: e.kc, Pool: e.pool, Timeout: 20 * time.Second, DecideTimeout: 10 * time.Second,
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); clock = clock.Add(time.Second); return clock }}
	for _, f := range tweak {
		f(&cfg)
	}
	c, err := jobcmd.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// request is a job of 沪A00001 from Q to Y of weight kg, with ref.
func request(ref string, kg float64) job.CreateRequest {
	return job.CreateRequest{Vehicle: " 沪a00001 ", ExternalRef: ref, Cargo: job.Cargo{WeightKg: kg, Description: "gravel"},
		Stops: []job.StopRequest{{StationID: "Q", Kind: job.KindLoading}, {StationID: "Y", Kind: job.KindUnloading}}}
}

// commandsIn reads the command records of tms.jobs, in order.
func (e *env) commandsIn(t *testing.T) []event.Envelope {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	topic := e.kc.Topic(event.TopicJobs)
	cl, err := e.kc.NewClient("test-reader", kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var want, n int64
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	var out []event.Envelope
	for n < want {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records: %v", n, want, err)
		}
		for _, r := range fetches.Records() {
			n++
			ev, err := event.Decode(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Type == job.TypeCreateJob || ev.Type == job.TypeCancelJob {
				if string(r.Key) != ev.Subject {
					t.Errorf("%s of %s keyed %q", ev.Type, ev.Subject, r.Key)
				}
				out = append(out, ev)
			}
		}
	}
	return out
}

func fields(err error) []string {
	var verr *job.ValidationError
	if !errors.As(err, &verr) {
		return nil
	}
	var out []string
	for _, f := range verr.Fields {
		out = append(out, f.Field)
	}
	return out
}

func TestConfig(t *testing.T) {
	t.Parallel()
	if _, err := jobcmd.New(jobcmd.Config{}); err == nil {
		t.Error("a config without Kafka and Pool was accepted")
	}
	if _, err := jobcmd.New(jobcmd.Config{Kafka: &kafka.Config{}, Pool: &pgxpool.Pool{}, Timeout: -1}); err == nil {
		t.Error("a negative timeout was accepted")
	}
}

// TestCreateReadYourWrites: a create answers with the job as the read
// model shows it once the processor has made it, with the stations as
// they stood: names and reference points (a circle's centre, a polygon's
// first position, to 7 decimals).
func TestCreateReadYourWrites(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	jobtest.RunProcessor(t, e.kc)
	reg := prometheus.NewRegistry()
	c := e.commands(t, func(c *jobcmd.Config) { c.Registerer = reg })
	ctx := t.Context()

	res, err := c.Create(ctx, request("", 20000))
	if err != nil || res.Accepted || !res.Created || res.Job == nil || res.EventID == "" {
		t.Fatalf("create: %+v, %v", res, err)
	}
	j := res.Job
	if j.ID != res.JobID || j.Vehicle != plate || j.ExternalRef != "" || j.Status != job.StatusActive ||
		!j.CreatedAt.Equal(t0.Add(time.Second)) || j.Cargo.Description != "gravel" || len(j.Stops) != 2 {
		t.Fatalf("job %+v", j)
	}
	q, y := j.Stops[0], j.Stops[1]
	if q.StationName != "Quarry" || q.Point != (job.Point{Lat: 31.2, Lng: 121.4}) || y.StationName != "Yard" ||
		y.Point != (job.Point{Lat: 31.3, Lng: 121.5}) || q.Status != job.StopPending {
		t.Errorf("stops %+v", j.Stops)
	}

	// With a reference: its id is the reference's.
	res, err = c.Create(ctx, request("ORD-1", 20000))
	if err != nil || !res.Created || res.JobID != job.IDFor("ORD-1") || res.Job == nil || res.Job.ExternalRef != "ORD-1" ||
		res.Job.Status != job.StatusQueued {
		t.Fatalf("create ORD-1: %+v, %v", res, err)
	}
	// The same again: the job as it stands, nothing appended.
	again, err := c.Create(ctx, request(" ORD-1", 20000))
	if err != nil || again.Created || again.EventID != "" || again.Job == nil || again.JobID != res.JobID {
		t.Fatalf("repeat: %+v, %v", again, err)
	}
	// Other content under the reference: a conflict.
	other := request("ORD-1", 20000)
	other.Stops[1].PlannedArrival = ptr(t0.Add(time.Hour))
	for _, r := range []job.CreateRequest{request("ORD-1", 19000), other} {
		if _, err := c.Create(ctx, r); !errors.Is(err, job.ErrConflict) {
			t.Errorf("a conflicting repeat: %v", err)
		}
	}
	if n := len(e.commandsIn(t)); n != 2 {
		t.Errorf("%d create commands appended, want 2", n)
	}

	// Invalid requests name every bad field, and append nothing.
	bad := job.CreateRequest{Vehicle: "沪Z99999", Cargo: job.Cargo{WeightKg: -1},
		Stops: []job.StopRequest{{StationID: "H", Kind: job.KindLoading}, {StationID: "NOPE", Kind: "drop"}}}
	_, err = c.Create(ctx, bad)
	if got := fields(err); !slices.Equal(got, []string{"vehicle", "cargo.weight_kg", "stops[0].station_id",
		"stops[1].kind", "stops[1].station_id", "stops[1].kind"}) {
		t.Errorf("invalid: %v (fields %v)", err, got)
	}
	bad.ExternalRef = "ORD-2"
	if got := fields(func() error { _, err := c.Create(ctx, bad); return err }()); len(got) != 6 {
		t.Errorf("invalid, with a reference: %v", got)
	}
	// A vehicle that never reported, accepted as new.
	fresh := request("", 1000)
	fresh.Vehicle, fresh.NewVehicle = "沪Z99999", true
	if res, err := c.Create(ctx, fresh); err != nil || res.Job == nil || res.Job.Vehicle != "沪Z99999" {
		t.Errorf("a new vehicle: %+v, %v", res, err)
	}
	if n := len(e.commandsIn(t)); n != 3 {
		t.Errorf("%d create commands appended, want 3", n)
	}
	for outcome, want := range map[string]float64{"applied": 3, "repeated": 1, "rejected": 2, "invalid": 2} {
		if got := metricstest.Sum(t, reg, "tms_job_commands_total", "command", "create", "outcome", outcome); got != want {
			t.Errorf("tms_job_commands_total{create, %s} = %v, want %v", outcome, got, want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestHostileCreatesOfOneReferenceAcrossInstances: three API instances
// create one reference at once, half of them with other content. One
// create command is appended; every create of its content answers that
// job, every other is a conflict.
func TestHostileCreatesOfOneReferenceAcrossInstances(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	jobtest.RunProcessor(t, e.kc)
	instances := []*jobcmd.Commands{e.commands(t), e.commands(t), e.commands(t)}
	const creates = 12
	results := make([]jobcmd.Result, creates)
	errs := make([]error, creates)
	var wg sync.WaitGroup
	for i := range creates {
		wg.Go(func() {
			results[i], errs[i] = instances[i%3].Create(t.Context(), request("ORD-9", float64(1000+i%2)))
		})
	}
	wg.Wait()
	cmds := e.commandsIn(t)
	if len(cmds) != 1 {
		t.Fatalf("%d create commands appended, want 1", len(cmds))
	}
	var c job.Create
	decodeData(t, cmds[0], &c)
	winner := c.Cargo.WeightKg
	created := 0
	for i := range creates {
		switch {
		case float64(1000+i%2) != winner:
			if !errors.Is(errs[i], job.ErrConflict) {
				t.Errorf("create %d, of other content: %+v, %v", i, results[i], errs[i])
			}
		case errs[i] != nil || results[i].Job == nil || results[i].Job.Cargo.WeightKg != winner:
			t.Errorf("create %d: %+v, %v", i, results[i], errs[i])
		case results[i].Created:
			created++
		}
	}
	if created != 1 {
		t.Errorf("%d creates say they created the job, want 1", created)
	}
}

// TestHostileRepeatBeforeTheJobExists: the processor has not made the job
// yet (it is not running), so the first create is Accepted. A repeat of
// the reference is decided against the command appended, not against the
// job that is not there: the same content appends nothing, a job for
// another vehicle is a conflict. Deciding against the jobs alone would
// have appended a second job of the same id for another vehicle.
func TestHostileRepeatBeforeTheJobExists(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	c := e.commands(t, func(c *jobcmd.Config) { c.Timeout = 300 * time.Millisecond })
	ctx := t.Context()
	res, err := c.Create(ctx, request("ORD-5", 500))
	if err != nil || !res.Accepted || !res.Created || res.JobID != job.IDFor("ORD-5") || res.Job != nil {
		t.Fatalf("create: %+v, %v", res, err)
	}
	again, err := c.Create(ctx, request("ORD-5", 500))
	if err != nil || !again.Accepted || again.Created || again.EventID != "" {
		t.Fatalf("repeat: %+v, %v", again, err)
	}
	elsewhere := request("ORD-5", 500)
	elsewhere.Vehicle, elsewhere.NewVehicle = "沪B00002", true
	if _, err := c.Create(ctx, elsewhere); !errors.Is(err, job.ErrConflict) {
		t.Fatalf("the reference for another vehicle: %v", err)
	}
	if n := len(e.commandsIn(t)); n != 1 {
		t.Errorf("%d create commands appended, want 1", n)
	}
	// Once the processor runs, the job is there, and a repeat shows it.
	jobtest.RunProcessor(t, e.kc)
	c2 := e.commands(t)
	again, err = c2.Create(ctx, request("ORD-5", 500))
	if err != nil || again.Accepted || again.Created || again.Job == nil || again.Job.Cargo.WeightKg != 500 {
		t.Fatalf("repeat once the job exists: %+v, %v", again, err)
	}
}

// TestNothingIsDecidedOnAStaleReadModel: without the jobs projector, a
// create with a reference cannot be decided (was the reference used?):
// ErrUnavailable, nothing appended. One without a reference needs no
// decision and is appended (and Accepted).
func TestNothingIsDecidedOnAStaleReadModel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	c := e.commands(t, func(c *jobcmd.Config) { c.Timeout, c.DecideTimeout = 300*time.Millisecond, time.Second })
	res, err := c.Create(t.Context(), request("", 500))
	if err != nil || !res.Accepted {
		t.Fatalf("without a reference: %+v, %v", res, err)
	}
	if _, err := c.Create(t.Context(), request("ORD-7", 500)); !errors.Is(err, jobcmd.ErrUnavailable) {
		t.Fatalf("with a reference: %v, want ErrUnavailable", err)
	}
	if _, err := c.Cancel(t.Context(), res.JobID, "no"); !errors.Is(err, jobcmd.ErrUnavailable) {
		t.Fatalf("a cancellation: %v, want ErrUnavailable", err)
	}
	if n := len(e.commandsIn(t)); n != 1 {
		t.Errorf("%d commands appended, want 1", n)
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	// ORD-1, completed, and ORD-2, its stops all departed but not yet
	// settled, made by the rules and appended as the processor would.
	stationsByID := map[string]job.Station{
		"Q": {ID: "Q", Name: "Quarry", Type: "loading", Point: job.Point{Lat: 31.2, Lng: 121.4}},
		"Y": {ID: "Y", Name: "Yard", Type: "unloading", Point: job.Point{Lat: 31.3, Lng: 121.5}},
	}
	v := jobtest.New(t, "沪C00003", stationsByID)
	sec := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	v.Create(sec(0), "ORD-1", 100, "Q:loading", "Y:unloading")
	v.Create(sec(1), "ORD-2", 100, "Q:loading", "Y:unloading")
	for i, st := range []string{"Q", "Y", "Q", "Y"} {
		v.Enter(st, sec(100*i+10))
		v.Exit(st, sec(100*i+60))
	}
	v.Until(sec(370)) // ORD-2 ended at 360; it settles at 398
	producer, err := e.kc.NewClient("test-producer")
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	if err := producer.ProduceSync(t.Context(), jobtest.KafkaRecords(t, e.kc, v.Records...)...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if n := len(v.Of(event.TypeJobCompleted)); n != 1 {
		t.Fatalf("%d completions made, want ORD-1's", n)
	}
	jobtest.RunProcessor(t, e.kc)
	c := e.commands(t)
	ctx := t.Context()

	if _, err := c.Cancel(ctx, job.IDFor("nothing"), "no"); !errors.Is(err, job.ErrNotFound) {
		t.Errorf("an unknown job: %v", err)
	}
	if _, err := c.Cancel(ctx, job.IDFor("ORD-1"), "no"); !errors.Is(err, job.ErrFinished) {
		t.Errorf("a completed job: %v", err)
	}
	if _, err := c.Cancel(ctx, job.IDFor("ORD-2"), "no"); !errors.Is(err, job.ErrFinished) {
		t.Errorf("a job whose stops have all departed: %v", err)
	}
	if _, err := c.Cancel(ctx, job.IDFor("ORD-1"), "  "); !slices.Equal(fields(err), []string{"reason"}) {
		t.Errorf("no reason: %v", err)
	}

	created, err := c.Create(ctx, request("ORD-3", 700))
	if err != nil || created.Job == nil {
		t.Fatal(created, err)
	}
	res, err := c.Cancel(ctx, created.JobID, " customer called ")
	if err != nil || res.Accepted || res.Job == nil || res.Job.Status != job.StatusCancelled ||
		res.Job.CancelReason != "customer called" || res.EventID == "" {
		t.Fatalf("cancel: %+v, %v", res, err)
	}
	if _, err := c.Cancel(ctx, created.JobID, "again"); !errors.Is(err, job.ErrFinished) {
		t.Errorf("cancel again: %v", err)
	}
}

// TestCancelBeforeTheJobExists: a job whose create command is appended
// but not yet applied by the processor can be cancelled; the processor
// applies the cancellation after the creation.
func TestCancelBeforeTheJobExists(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	c := e.commands(t, func(c *jobcmd.Config) { c.Timeout = 300 * time.Millisecond })
	created, err := c.Create(t.Context(), request("", 700))
	if err != nil || !created.Accepted {
		t.Fatal(created, err)
	}
	res, err := c.Cancel(t.Context(), created.JobID, "wrong truck")
	if err != nil || !res.Accepted {
		t.Fatalf("cancel: %+v, %v", res, err)
	}
	jobtest.RunProcessor(t, e.kc)
	tmsproc.Eventually(t, 20*time.Second, "the job cancelled", func() bool {
		j, err := jobs.NewStore(e.pool).Get(t.Context(), created.JobID)
		return err == nil && j.Status == job.StatusCancelled && j.CancelReason == "wrong truck"
	})
}

func decodeData(t *testing.T, e event.Envelope, into any) {
	t.Helper()
	if err := json.Unmarshal(e.Data, into); err != nil {
		t.Fatal(err)
	}
}

// TestHostileWaitingIsBounded: with MaxWaiting commands waiting for the
// read model already, a command is appended and answered Accepted at
// once, however long the timeout; it does not poll the database for it.
func TestHostileWaitingIsBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true) // no processor: the job never shows
	c := e.commands(t, func(c *jobcmd.Config) { c.Timeout, c.MaxWaiting = time.Hour, 2 })
	c.FillWaiting()
	done := make(chan error, 1)
	go func() {
		res, err := c.Create(t.Context(), request("ORD-8", 500))
		if err == nil && (!res.Accepted || !res.Created) {
			err = fmt.Errorf("result %+v, want Accepted", res)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the create waits for the read model beyond MaxWaiting")
	}
	if n := len(e.commandsIn(t)); n != 1 {
		t.Errorf("%d create commands appended, want 1", n)
	}
}
