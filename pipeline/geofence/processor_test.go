package geofence_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/domain/station"
	"github.com/tmsfleet/tms/internal/testenv"
	pipeline "github.com/tmsfleet/tms/pipeline/geofence"
)

var t0 = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

// world is a few stations on a line and vehicles driving up and down it,
// sparse enough that some crossings are interpolated.
type world struct {
	stations []*station.Station
	fixes    []position.Position // in production order
}

func newWorld(t *testing.T, vehicles, fixesEach int) world {
	t.Helper()
	var w world
	defs := []string{
		`{"id":"HAZ","name":"Chemical works","type":"hazard","geometry":{"type":"Point","coordinates":[121.000,31.000]},"radius_m":150}`,
		`{"id":"LOAD","name":"Quarry","type":"loading","geometry":{"type":"Point","coordinates":[121.000,31.010]},"radius_m":400}`,
		`{"id":"YARD","name":"Yard","type":"parking","geometry":{"type":"Polygon","coordinates":[[[120.995,31.018],[121.005,31.018],[121.005,31.022],[120.995,31.022],[120.995,31.018]]]}}`,
	}
	for _, d := range defs {
		s, err := station.Parse([]byte(d))
		if err != nil {
			t.Fatal(err)
		}
		w.stations = append(w.stations, s)
	}
	for i := range fixesEach {
		for v := range vehicles {
			// Each vehicle oscillates along the line at its own pace.
			phase := float64(i*(v+3)) / 40
			lat := 31.005 + 0.02*math.Sin(phase)
			p := position.Position{
				Plate: fmt.Sprintf("沪G%05d", v), FixTime: t0.Add(time.Duration(i*7+v) * time.Second),
				Lat: lat, Lng: 121.0 + 0.0002*float64(v%5), SpeedKmh: 40,
			}
			p.ReceivedAt = p.FixTime.Add(time.Second)
			w.fixes = append(w.fixes, p)
		}
	}
	return w
}

func (w world) produceStations(t *testing.T, kc *kafka.Config) {
	t.Helper()
	cl, err := kc.NewClient("test-stations")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, s := range w.stations {
		e, err := s.Upserted("/test", 1, t0.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		v, _ := json.Marshal(e)
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: kc.Topic(kafka.TopicStations), Key: []byte(s.ID()), Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

func produceFixes(t *testing.T, kc *kafka.Config, fixes []position.Position) {
	t.Helper()
	cl, err := kc.NewClient("test-positions")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var records []*kgo.Record
	for _, p := range fixes {
		e, err := p.Event("/test")
		if err != nil {
			t.Fatal(err)
		}
		v, _ := json.Marshal(e)
		records = append(records, &kgo.Record{Topic: kc.Topic(kafka.TopicPositions), Key: []byte(p.Plate), Value: v})
	}
	if err := cl.ProduceSync(t.Context(), records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// expected is what an uninterrupted tracker makes of the world: per
// vehicle, its events in order, as "type visit fix_time flags".
func (w world) expected(t *testing.T) map[string][]string {
	t.Helper()
	catalog := geofence.NewCatalog(geofence.NewBruteForce())
	for _, s := range w.stations {
		if err := catalog.Upsert(s.Geofence(1), t0.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	tracker, err := geofence.NewTracker(config(), catalog)
	if err != nil {
		t.Fatal(err)
	}
	vehicles := map[string]*geofence.Vehicle{}
	out := map[string][]string{}
	for _, p := range w.fixes {
		v := vehicles[p.Plate]
		if v == nil {
			v = geofence.NewVehicle(geofence.VehicleState{Plate: p.Plate})
			vehicles[p.Plate] = v
		}
		for _, tr := range tracker.Observe(v, geofence.Fix{Time: p.FixTime, Point: geo.Point{Lat: p.Lat, Lng: p.Lng}}, nil) {
			events, err := tr.Events(pipeline.Source)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range events {
				out[p.Plate] = append(out[p.Plate], describe(t, e))
			}
		}
	}
	return out
}

func config() geofence.Config { return geofence.Config{ReorderWindow: geofence.DefaultReorderWindow} }

func describe(t *testing.T, e event.Envelope) string {
	t.Helper()
	var d struct {
		VisitID string   `json:"visit_id"`
		Flags   []string `json:"flags"`
	}
	if err := json.Unmarshal(e.Data, &d); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s %s %s %s %s", e.ID, e.Type, d.VisitID[:8], e.Time.Format(time.RFC3339Nano), strings.Join(d.Flags, ","))
}

// run starts a processor; stop cancels it and waits.
func run(t *testing.T, kc *kafka.Config, snapshotEvery int, reg ...prometheus.Registerer) (stop func()) {
	t.Helper()
	var r prometheus.Registerer
	if len(reg) > 0 {
		r = reg[0]
	}
	p, err := pipeline.New(pipeline.Config{
		Kafka: kc, Geofence: config(), SnapshotEvery: snapshotEvery, MaxBatch: 50, Registerer: r,
		NewIndex:      func() (geofence.Index, error) { return geofence.NewBruteForce(), nil },
		DecodeStation: decodeStation,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once atomic.Bool
	stop = func() {
		if once.Swap(true) {
			return
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("processor: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

func decodeStation(e event.Envelope) (pipeline.StationChange, error) {
	c, err := station.FromEvent(e)
	if err != nil {
		return pipeline.StationChange{}, err
	}
	if c.Kind == station.Delete {
		return pipeline.StationChange{Deleted: c.ID, At: c.At}, nil
	}
	st := c.Geofence()
	return pipeline.StationChange{Station: &st, At: c.At}, nil
}

// output reads tms.geofence as a read_committed consumer until it holds
// n events, then a little past that to see any extra.
func output(t *testing.T, kc *kafka.Config, n int) map[string][]string {
	t.Helper()
	cl, err := kc.NewClient("test-output", kgo.ConsumeTopics(kc.Topic(kafka.TopicGeofence)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := map[string][]string{}
	got := 0
	deadline := time.Now().Add(90 * time.Second)
	for got < n {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		for _, r := range fs.Records() {
			e, err := event.Decode(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			out[e.Subject] = append(out[e.Subject], describe(t, e))
			got++
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events after 90 s", got, n)
		}
	}
	return out
}

func count(m map[string][]string) int {
	n := 0
	for _, v := range m {
		n += len(v)
	}
	return n
}

func compareOutputs(t *testing.T, got, want map[string][]string) {
	t.Helper()
	for plate, w := range want {
		if !slices.Equal(got[plate], w) {
			t.Errorf("%s: got\n  %s\nwant\n  %s", plate, strings.Join(got[plate], "\n  "), strings.Join(w, "\n  "))
		}
	}
	if count(got) != count(want) {
		t.Errorf("%d events, want %d", count(got), count(want))
	}
}

// lastFix sends a fix to every vehicle far in the future, so that every
// real fix leaves the reorder window and is decided.
func closing(w world, vehicles int) []position.Position {
	var out []position.Position
	for v := range vehicles {
		p := position.Position{Plate: fmt.Sprintf("沪G%05d", v), FixTime: t0.Add(24 * time.Hour), Lat: 40, Lng: 100}
		p.ReceivedAt = p.FixTime
		out = append(out, p)
	}
	return out
}

func TestProcessorMatchesTheTrackerExactlyOnce(t *testing.T) {
	t.Parallel()
	const vehicles, fixesEach = 6, 120
	kc := testenv.FromEnv(os.LookupEnv).Kafka(t)
	w := newWorld(t, vehicles, fixesEach)
	w.fixes = append(w.fixes, closing(w, vehicles)...)
	want := w.expected(t)
	if count(want) < 50 {
		t.Fatalf("the world makes only %d events", count(want))
	}
	w.produceStations(t, kc)
	produceFixes(t, kc, w.fixes)
	run(t, kc, 1000)
	compareOutputs(t, output(t, kc, count(want)), want)
}

// TestTakeoversGiveTheSameEvents stops the processor several times
// mid-stream, each new one taking over from the snapshots and replaying
// the positions after them, with a second instance sharing the
// partitions for a while. The first and last processors never snapshot
// (so their successors replay everything since the last one), the middle
// ones snapshot often.
func TestTakeoversGiveTheSameEvents(t *testing.T) {
	t.Parallel()
	const vehicles, fixesEach = 6, 120
	kc := testenv.FromEnv(os.LookupEnv).Kafka(t)
	w := newWorld(t, vehicles, fixesEach)
	w.fixes = append(w.fixes, closing(w, vehicles)...)
	want := w.expected(t)
	w.produceStations(t, kc)
	quarter := len(w.fixes) / 4
	reg := prometheus.NewRegistry()
	never := 1 << 30

	instance := func(n string) prometheus.Registerer {
		return prometheus.WrapRegistererWith(prometheus.Labels{"instance": n}, reg)
	}

	stop := run(t, kc, never, instance("1"))
	produceFixes(t, kc, w.fixes[:quarter])
	output(t, kc, 1) // some progress
	stop()
	a := run(t, kc, 37, instance("2"))
	b := run(t, kc, 37, instance("3")) // a second instance: the partitions are shared
	produceFixes(t, kc, w.fixes[quarter:2*quarter])
	a()
	produceFixes(t, kc, w.fixes[2*quarter:3*quarter])
	b()
	run(t, kc, never, instance("4"))
	produceFixes(t, kc, w.fixes[3*quarter:])
	compareOutputs(t, output(t, kc, count(want)), want)
	if replayed := counter(t, reg, "tms_geofence_replayed_records_total"); replayed == 0 {
		t.Error("no takeover replayed any position: the test did not exercise the replay")
	}
}

func counter(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
