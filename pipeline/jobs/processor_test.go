package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/domain/job"
	"github.com/tmsfleet/tms/domain/track"
	"github.com/tmsfleet/tms/internal/fleettest"
	"github.com/tmsfleet/tms/internal/metricstest"
	"github.com/tmsfleet/tms/internal/testenv"
	geofencepipeline "github.com/tmsfleet/tms/pipeline/geofence"
	"github.com/tmsfleet/tms/pipeline/jobs"
)

func geofenceConfig() geofence.Config {
	return geofence.Config{ReorderWindow: geofence.DefaultReorderWindow}
}

// runGeofence starts the real geofence processor beside the job
// processor: its visits, and its progress, are the job processor's input.
func runGeofence(t *testing.T, kc *kafka.Config) {
	t.Helper()
	p, err := geofencepipeline.New(geofencepipeline.Config{
		Kafka: kc, Geofence: geofenceConfig(), MaxBatch: 200,
		NewIndex: func() (geofence.Index, error) { return geofence.NewBruteForce(), nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Go(t, "geofence", p.Run)
}

// runJobs starts a job processor with cfg's snapshot settings; stop
// cancels it and waits.
func runJobs(t *testing.T, kc *kafka.Config, cfg jobs.Config) (stop func()) {
	t.Helper()
	own := *kc
	own.Registerer = prometheus.NewRegistry() // client metrics on, as in the service
	cfg.Kafka = &own
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = 100
	}
	// The clock stands an hour before the world: every job event is then
	// decided by event time, as the oracle decides them. With the real
	// clock, a partition that has read its commands before any of its
	// positions is quiet, and its commands (all long past) come due by
	// the clock before the fixes they come after, or not, depending on
	// which fetch is first.
	cfg.Now = func() time.Time { return fleettest.T0.Add(-time.Hour) }
	p, err := jobs.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return testenv.Go(t, "jobs", p.Run)
}

// jobsWorld is a fleettest world with a job for each vehicle (loading at
// LOAD, unloading at YARD), a second one queued for every other vehicle,
// and one cancelled.
type jobsWorld struct {
	fleettest.World
	commands []job.Create
	cancels  []job.Cancel
}

func newJobsWorld(t *testing.T, vehicles, fixesEach int) jobsWorld {
	t.Helper()
	w := jobsWorld{World: fleettest.New(t, vehicles, fixesEach)}
	facts := job.Facts{VehicleKnown: true, Stations: map[string]job.Station{
		"LOAD": {ID: "LOAD", Name: "Quarry", Type: "loading", Point: job.Point{Lat: 31.010, Lng: 121.000}},
		"YARD": {ID: "YARD", Name: "Yard", Type: "parking", Point: job.Point{Lat: 31.018, Lng: 120.995}},
	}}
	for v := range vehicles {
		for n := 0; n < 1+v%2; n++ {
			req := job.CreateRequest{Vehicle: fleettest.Plate(v), ExternalRef: fmt.Sprintf("ORD-%d-%d", v, n),
				Cargo: job.Cargo{WeightKg: 20000 + float64(v)},
				Stops: []job.StopRequest{{StationID: "LOAD", Kind: job.KindLoading}, {StationID: "YARD", Kind: job.KindUnloading}}}
			c, err := job.NewCreate(req, facts, fleettest.T0.Add(time.Duration(n-1)*time.Minute), "")
			if err != nil {
				t.Fatal(err)
			}
			w.commands = append(w.commands, c)
		}
	}
	cancel, err := job.NewCancel(job.IDFor("ORD-1-1"), fleettest.Plate(1), "the customer called", fleettest.T0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	w.cancels = append(w.cancels, cancel)
	return w
}

func (w jobsWorld) commandRecords(t *testing.T, kc *kafka.Config) []*kgo.Record {
	t.Helper()
	var out []*kgo.Record
	add := func(e event.Envelope, err error) {
		if err != nil {
			t.Fatal(err)
		}
		v, _ := json.Marshal(e)
		out = append(out, &kgo.Record{Topic: kc.Topic(event.TopicJobs), Key: []byte(e.Subject), Value: v})
	}
	for _, c := range w.commands {
		add(c.Event())
	}
	for _, c := range w.cancels {
		add(c.Event())
	}
	return out
}

// expected is what the rules make of the world's inputs taken one
// vehicle at a time in event-time order, without Kafka: per vehicle, its
// job events as describe renders them.
func (w jobsWorld) expected(t *testing.T) map[string][]string {
	t.Helper()
	catalog := geofence.NewCatalog(geofence.NewBruteForce())
	for _, c := range w.Changes {
		if err := catalog.Upsert(c.Station.Geofence(c.Version), c.At); err != nil {
			t.Fatal(err)
		}
	}
	tracker, err := geofence.NewTracker(geofenceConfig(), catalog)
	if err != nil {
		t.Fatal(err)
	}
	type input struct {
		at    time.Time
		order int
		apply func(*job.Vehicle)
		fix   *track.Fix
	}
	rules := job.DefaultRules
	inputs := map[string][]input{}
	for _, c := range w.commands {
		inputs[c.Vehicle] = append(inputs[c.Vehicle], input{at: c.RequestedAt, apply: func(v *job.Vehicle) { rules.Create(v, c) }})
	}
	for _, c := range w.cancels {
		inputs[c.Vehicle] = append(inputs[c.Vehicle], input{at: c.RequestedAt, apply: func(v *job.Vehicle) { rules.Cancel(v, c) }})
	}
	fleet := geofence.NewFleet(1 << 20)
	var transitions []geofence.Transition
	for i, p := range w.Fixes {
		f := track.Fix{Time: p.FixTime, Point: geo.Point{Lat: p.Lat, Lng: p.Lng}, SpeedKmh: p.SpeedKmh}
		inputs[p.Plate] = append(inputs[p.Plate], input{at: p.FixTime, order: i, fix: &f})
		transitions, _ = fleet.Observe(tracker, p.Plate, geofence.Fix{Time: p.FixTime, Point: f.Point}, int64(i), transitions[:0])
		for _, tr := range transitions {
			events, err := tr.Events(fleettest.Source)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range events {
				if e.Type == event.TypeAlertRaised {
					continue
				}
				var d geofence.Visit
				if err := json.Unmarshal(e.Data, &d); err != nil {
					t.Fatal(err)
				}
				vis := job.Visit{Exit: e.Type == event.TypeExitedStation, StationID: d.StationID, VisitID: d.VisitID,
					At: d.FixTime, Point: job.Point{Lat: d.Lat, Lng: d.Lng}, Flags: d.Flags}
				inputs[tr.Vehicle] = append(inputs[tr.Vehicle], input{at: vis.At, apply: func(v *job.Vehicle) { rules.Visit(v, vis) }})
			}
		}
	}
	out := map[string][]string{}
	for plate, ins := range inputs {
		slices.SortStableFunc(ins, func(a, b input) int { return a.at.Compare(b.at) })
		v := &job.Vehicle{Plate: plate}
		var events []event.Envelope
		for i, in := range ins {
			if in.fix != nil {
				events = append(events, rules.Fix(v, *in.fix, in.fix.Time, int64(in.order))...)
			} else {
				in.apply(v)
			}
			events = append(events, rules.Advance(v, ins[i].at.Add(-time.Millisecond))...)
		}
		events = append(events, rules.Advance(v, fleettest.T0.Add(48*time.Hour))...)
		for _, e := range events {
			out[plate] = append(out[plate], describe(t, e))
		}
	}
	return out
}

// describe renders a job event whole: its type, id, time and data.
func describe(t testing.TB, e event.Envelope) string {
	t.Helper()
	return fmt.Sprintf("%s %s %s %s", e.Type, e.ID, e.Time.Format(time.RFC3339Nano), e.Data)
}

// readJobs reads kc's jobs topic as a read_committed consumer until it
// holds n job events (commands skipped), failing after timeout.
func readJobs(t *testing.T, kc *kafka.Config, n int, timeout time.Duration) map[string][]string {
	t.Helper()
	return fleettest.ReadEvents(t, kc, event.TopicJobs, n, timeout, func(t testing.TB, e event.Envelope) (string, bool) {
		return describe(t, e), !event.IsCommand(e.Type)
	})
}

func compare(t *testing.T, got, want map[string][]string) {
	t.Helper()
	for plate, w := range want {
		if strings.Join(got[plate], "\n") != strings.Join(w, "\n") {
			t.Errorf("%s: got\n  %s\nwant\n  %s", plate, strings.Join(got[plate], "\n  "), strings.Join(w, "\n  "))
		}
	}
	if fleettest.Count(got) != fleettest.Count(want) {
		t.Errorf("%d job events, want %d", fleettest.Count(got), fleettest.Count(want))
	}
}

// kinds counts a vehicle map's events by type.
func kinds(m map[string][]string) map[string]int {
	out := map[string]int{}
	for _, events := range m {
		for _, e := range events {
			out[strings.Fields(e)[0]]++
		}
	}
	return out
}

func TestProcessorMakesTheRulesEventsExactlyOnce(t *testing.T) {
	t.Parallel()
	kc := testenv.FromEnv(os.LookupEnv).Kafka(t)
	w := newJobsWorld(t, 6, 120)
	want := w.expected(t)
	k := kinds(want)
	if k[event.TypeJobCompleted] < 6 || k[event.TypeJobCancelled] != 1 || k[event.TypeJobStopArrived] < 12 {
		t.Fatalf("the world makes too little to test: %v", k)
	}
	fleettest.Produce(t, kc, w.StationRecords(t, kc))
	fleettest.Produce(t, kc, w.commandRecords(t, kc))
	runGeofence(t, kc)
	runJobs(t, kc, jobs.Config{})
	fleettest.Produce(t, kc, fleettest.PositionRecords(t, kc, w.Fixes))
	compare(t, readJobs(t, kc, fleettest.Count(want), 90*time.Second), want)
}

// TestTakeoversGiveTheSameJobEvents stops the job processor several times
// mid-stream, each successor restoring the snapshots and replaying the
// steps logged since, with a second instance sharing the partitions for a
// while: the events must be those of the rules, each exactly once.
func TestTakeoversGiveTheSameJobEvents(t *testing.T) {
	t.Parallel()
	kc := testenv.FromEnv(os.LookupEnv).Kafka(t)
	w := newJobsWorld(t, 6, 120)
	want := w.expected(t)
	fleettest.Produce(t, kc, w.StationRecords(t, kc))
	fleettest.Produce(t, kc, w.commandRecords(t, kc))
	runGeofence(t, kc)
	positions := fleettest.PositionRecords(t, kc, w.Fixes)
	quarter := len(positions) / 4
	reg := prometheus.NewRegistry()
	instance := func(n string) prometheus.Registerer {
		return prometheus.WrapRegistererWith(prometheus.Labels{"instance": n}, reg)
	}
	stop := runJobs(t, kc, jobs.Config{SnapshotEvery: 1 << 30, Registerer: instance("1")})
	fleettest.Produce(t, kc, positions[:quarter])
	readJobs(t, kc, 4, 60*time.Second) // some progress
	stop()
	a := runJobs(t, kc, jobs.Config{SnapshotEvery: 29, Registerer: instance("2")})
	b := runJobs(t, kc, jobs.Config{SnapshotEvery: 29, Registerer: instance("3")})
	fleettest.Produce(t, kc, positions[quarter:2*quarter])
	a()
	fleettest.Produce(t, kc, positions[2*quarter:3*quarter])
	b()
	runJobs(t, kc, jobs.Config{SnapshotEvery: 1 << 30, Registerer: instance("4")})
	fleettest.Produce(t, kc, positions[3*quarter:])
	compare(t, readJobs(t, kc, fleettest.Count(want), 90*time.Second), want)
	if restored := metricstest.Sum(t, reg, "tms_jobs_replayed_records_total"); restored == 0 {
		t.Error("no takeover replayed a logged step: the test did not exercise the replay")
	}
}

// TestAReplayFromTheBeginningMakesTheSameBytes runs a job processor live
// beside the geofence, then a second one over a copy of its inputs, from
// their beginning, with the geofence long done: the second reads them as
// a backlog, in whatever order its fetches bring, and must make the same
// job events, byte for byte.
func TestAReplayFromTheBeginningMakesTheSameBytes(t *testing.T) {
	t.Parallel()
	svc := testenv.FromEnv(os.LookupEnv)
	live := svc.Kafka(t)
	w := newJobsWorld(t, 6, 120)
	want := w.expected(t)
	fleettest.Produce(t, live, w.StationRecords(t, live))
	fleettest.Produce(t, live, w.commandRecords(t, live))
	runGeofence(t, live)
	stop := runJobs(t, live, jobs.Config{})
	fleettest.Produce(t, live, fleettest.PositionRecords(t, live, w.Fixes))
	got := readJobs(t, live, fleettest.Count(want), 90*time.Second)
	stop()

	replay := svc.Kafka(t)
	for _, topic := range []string{event.TopicPositions, event.TopicGeofence, event.TopicJobs} {
		copyTopic(t, live, replay, topic, func(e event.Envelope) bool {
			return topic != event.TopicJobs || strings.HasPrefix(e.Type, "tms.command.")
		})
	}
	// The geofence finished long ago: its progress is at the end.
	ctx := t.Context()
	adm, err := replay.NewAdmin("test-admin")
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ends, err := adm.ListEndOffsets(ctx, replay.Topic(event.TopicPositions))
	if err != nil {
		t.Fatal(err)
	}
	offsets := kadm.Offsets{}
	ends.Each(func(o kadm.ListedOffset) { offsets.AddOffset(o.Topic, o.Partition, o.Offset, -1) })
	if _, err := adm.CommitOffsets(ctx, replay.Group(geofencepipeline.Group), offsets); err != nil {
		t.Fatal(err)
	}
	runJobs(t, replay, jobs.Config{MaxBatch: 37})
	again := readJobs(t, replay, fleettest.Count(got), 90*time.Second)
	compare(t, again, got)
	compare(t, got, want)
}

// copyTopic copies topic from one namespace to another, partition for
// partition and in order, keeping the records keep accepts.
func copyTopic(t *testing.T, from, to *kafka.Config, topic string, keep func(event.Envelope) bool) {
	t.Helper()
	ctx := t.Context()
	adm, err := from.NewAdmin("test-copy-admin")
	if err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, from.Topic(topic))
	adm.Close()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := from.NewClient("test-copy", kgo.ConsumeTopics(from.Topic(topic)), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	var out []*kgo.Record
	for len(left) > 0 {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if pctx.Err() != nil && fs.NumRecords() == 0 {
			break // the rest are transaction markers
		}
		for _, r := range fs.Records() {
			if r.Offset+1 >= left[r.Partition] {
				delete(left, r.Partition)
			}
			e, err := event.Decode(r.Value)
			if err != nil || !keep(e) {
				continue
			}
			out = append(out, &kgo.Record{Topic: to.Topic(topic), Partition: r.Partition, Key: r.Key, Value: r.Value,
				Timestamp: r.Timestamp, Headers: r.Headers})
		}
	}
	producer, err := to.NewClient("test-copy-producer", kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	if err := producer.ProduceSync(ctx, out...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}
