// Package fleettest builds small, deterministic geofence worlds for tests
// of the geofence processor and of the tms binary: stations on a line,
// vehicles driving up and down it (sparse enough that some crossings are
// interpolated), the station and position records to produce, and the
// events an uninterrupted tracker makes of them, to compare what Kafka
// holds against.
package fleettest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/domain/station"
)

// T0 is when the worlds' fixes begin.
var T0 = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

// Source is the geofence's CloudEvents source, which its event ids do not
// depend on but its envelopes carry.
const Source = "/tms/geofence"

// World is a set of station changes and the fixes of a fleet.
type World struct {
	// Changes are station events, in order, each with its time.
	Changes []Change
	// Fixes are in production order.
	Fixes []position.Position
}

// Change is one station event: an upsert (Station set) or a deletion.
type Change struct {
	Station *station.Station
	Deleted string
	Version int64
	At      time.Time
}

var stationDefs = []string{
	`{"id":"HAZ","name":"Chemical works","type":"hazard","geometry":{"type":"Point","coordinates":[121.000,31.000]},"radius_m":150}`,
	`{"id":"LOAD","name":"Quarry","type":"loading","geometry":{"type":"Point","coordinates":[121.000,31.010]},"radius_m":400}`,
	`{"id":"YARD","name":"Yard","type":"parking","geometry":{"type":"Polygon","coordinates":[[[120.995,31.018],[121.005,31.018],[121.005,31.022],[120.995,31.022],[120.995,31.018]]]}}`,
}

// New makes a world of vehicles each reporting fixesEach fixes, plus a
// final fix far in the future that moves every real fix out of the
// reorder window. Its stations exist from an hour before T0.
func New(t testing.TB, vehicles, fixesEach int) World {
	t.Helper()
	var w World
	for _, d := range stationDefs {
		w.Changes = append(w.Changes, Change{Station: mustParse(t, d), Version: 1, At: T0.Add(-time.Hour)})
	}
	for i := range fixesEach {
		for v := range vehicles {
			// Each vehicle oscillates along the line at its own pace.
			phase := float64(i*(v+3)) / 40
			p := position.Position{
				Plate: Plate(v), FixTime: T0.Add(time.Duration(i*7+v) * time.Second),
				Lat: 31.005 + 0.02*math.Sin(phase), Lng: 121.0 + 0.0002*float64(v%5), SpeedKmh: 40,
			}
			p.ReceivedAt = p.FixTime.Add(time.Second)
			w.Fixes = append(w.Fixes, p)
		}
	}
	for v := range vehicles {
		p := position.Position{Plate: Plate(v), FixTime: T0.Add(24 * time.Hour), Lat: 40, Lng: 100}
		p.ReceivedAt = p.FixTime
		w.Fixes = append(w.Fixes, p)
	}
	return w
}

// Plate is vehicle v's plate.
func Plate(v int) string { return fmt.Sprintf("沪G%05d", v) }

// MustParse reads a station definition.
func mustParse(t testing.TB, def string) *station.Station {
	t.Helper()
	s, err := station.Parse([]byte(def))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Upsert adds a change of a station to the world.
func (w *World) Upsert(t testing.TB, def string, version int64, at time.Time) {
	t.Helper()
	w.Changes = append(w.Changes, Change{Station: mustParse(t, def), Version: version, At: at})
}

// Delete adds a deletion to the world.
func (w *World) Delete(id string, version int64, at time.Time) {
	w.Changes = append(w.Changes, Change{Deleted: id, Version: version, At: at})
}

// StationRecords are the world's station events as records of kc's
// stations topic.
func (w World) StationRecords(t testing.TB, kc *kafka.Config) []*kgo.Record {
	t.Helper()
	var out []*kgo.Record
	for _, c := range w.Changes {
		var e event.Envelope
		var err error
		id := c.Deleted
		if c.Station != nil {
			id = c.Station.ID()
			e, err = c.Station.Upserted("/test", c.Version, c.At)
		} else {
			e, err = station.DeletedEvent("/test", c.Deleted, c.Version, c.At)
		}
		if err != nil {
			t.Fatal(err)
		}
		v, _ := json.Marshal(e)
		out = append(out, &kgo.Record{Topic: kc.Topic(event.TopicStations), Key: []byte(id), Value: v})
	}
	return out
}

// PositionRecords are fixes as ingest would produce them to kc's
// positions topic.
func PositionRecords(t testing.TB, kc *kafka.Config, fixes []position.Position) []*kgo.Record {
	t.Helper()
	var out []*kgo.Record
	for _, p := range fixes {
		e, err := p.Event("/test")
		if err != nil {
			t.Fatal(err)
		}
		v, _ := json.Marshal(e)
		out = append(out, &kgo.Record{Topic: kc.Topic(event.TopicPositions), Key: []byte(p.Plate), Value: v})
	}
	return out
}

// Produce writes records and waits for Kafka to have them.
func Produce(t testing.TB, kc *kafka.Config, records []*kgo.Record) {
	t.Helper()
	cl, err := kc.NewClient("fleettest-producer")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// Expected is what an uninterrupted tracker with cfg makes of the world:
// per vehicle, its events in order, each as Describe renders it.
func (w World) Expected(t testing.TB, cfg geofence.Config) map[string][]string {
	t.Helper()
	return w.ExpectedInFleets(t, cfg, len(w.Fixes)+1, nil)
}

// ExpectedInFleets is Expected for a processor that keeps each partition's
// vehicles in a geofence.Fleet of capacity: partition gives each record's
// partition (records as PositionRecords made them, in order, once Kafka
// has them), nil putting every fix in one.
func (w World) ExpectedInFleets(t testing.TB, cfg geofence.Config, capacity int, partition []*kgo.Record) map[string][]string {
	t.Helper()
	catalog := geofence.NewCatalog(geofence.NewBruteForce())
	for _, c := range w.Changes {
		if c.Station == nil {
			catalog.Delete(c.Deleted, c.At)
			continue
		}
		if err := catalog.Upsert(c.Station.Geofence(c.Version), c.At); err != nil {
			t.Fatal(err)
		}
	}
	tracker, err := geofence.NewTracker(cfg, catalog)
	if err != nil {
		t.Fatal(err)
	}
	fleets := map[int32]*geofence.Fleet{}
	out := map[string][]string{}
	var transitions []geofence.Transition
	for i, p := range w.Fixes {
		var part int32
		if partition != nil {
			part = partition[i].Partition
		}
		fleet := fleets[part]
		if fleet == nil {
			fleet = geofence.NewFleet(capacity)
			fleets[part] = fleet
		}
		// The fix's index orders the fixes of a partition as its offsets do.
		transitions, _ = fleet.Observe(tracker, p.Plate, geofence.Fix{Time: p.FixTime, Point: geo.Point{Lat: p.Lat, Lng: p.Lng}}, int64(i), transitions[:0])
		for _, tr := range transitions {
			events, err := tr.Events(Source)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range events {
				out[tr.Vehicle] = append(out[tr.Vehicle], Describe(t, e))
			}
		}
	}
	return out
}

// Describe renders a geofence event for comparison: its id, type,
// station, visit, time and flags.
func Describe(t testing.TB, e event.Envelope) string {
	t.Helper()
	var d struct {
		StationID string   `json:"station_id"`
		VisitID   string   `json:"visit_id"`
		Flags     []string `json:"flags"`
	}
	if err := json.Unmarshal(e.Data, &d); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s %s %s %.8s %s %s", e.ID, e.Type, d.StationID, d.VisitID, e.Time.Format(time.RFC3339Nano),
		strings.Join(d.Flags, ","))
}

// Count is the number of events in a per-vehicle map.
func Count(m map[string][]string) int {
	n := 0
	for _, v := range m {
		n += len(v)
	}
	return n
}

// ReadGeofence reads kc's geofence topic as a read_committed consumer
// until it holds at least n events (failing after timeout), and returns
// them per vehicle.
func ReadGeofence(t testing.TB, kc *kafka.Config, n int, timeout time.Duration) map[string][]string {
	t.Helper()
	return ReadEvents(t, kc, event.TopicGeofence, n, timeout, func(t testing.TB, e event.Envelope) (string, bool) {
		return Describe(t, e), true
	})
}

// ReadEvents reads kc's topic as a read_committed consumer until it holds
// at least n events that describe renders (those it answers false for
// are skipped), failing after timeout, and returns them per subject.
func ReadEvents(t testing.TB, kc *kafka.Config, topic string, n int, timeout time.Duration,
	describe func(testing.TB, event.Envelope) (string, bool)) map[string][]string {
	t.Helper()
	cl, err := kc.NewClient("fleettest-reader", kgo.ConsumeTopics(kc.Topic(topic)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := map[string][]string{}
	got := 0
	deadline := time.Now().Add(timeout)
	for got < n {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		for _, r := range fs.Records() {
			e, err := event.Decode(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			if d, ok := describe(t, e); ok {
				out[e.Subject] = append(out[e.Subject], d)
				got++
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events of %s after %s:\n%v", got, n, topic, timeout, out)
		}
	}
	return out
}

// ReadCommittedGeofence reads every tms.geofence event committed so far:
// up to each partition's last stable offset, where a transaction still
// open (one a killed instance left behind) begins. It also reports how
// many records lie beyond those offsets, in open transactions.
func ReadCommittedGeofence(t testing.TB, kc *kafka.Config) (events map[string][]string, pending int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm, err := kc.NewAdmin("fleettest-admin")
	if err != nil {
		t.Fatal(err)
	}
	stable, err := adm.ListCommittedOffsets(ctx, kc.Topic(event.TopicGeofence))
	if err == nil {
		err = stable.Error()
	}
	ends, endErr := adm.ListEndOffsets(ctx, kc.Topic(event.TopicGeofence))
	adm.Close()
	if err = errors.Join(err, endErr, ends.Error()); err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if s, ok := stable.Lookup(o.Topic, o.Partition); ok {
			pending += o.Offset - s.Offset
		}
	})
	// Control records (transaction markers) are kept: the last record
	// before a stable offset is often one.
	cl, err := kc.NewClient("fleettest-geofence", kgo.ConsumeTopics(kc.Topic(event.TopicGeofence)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	behind := map[int32]int64{}
	stable.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			behind[o.Partition] = o.Offset
		}
	})
	out := map[string][]string{}
	for len(behind) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading the committed geofence events: %d partitions not read to their stable offset", len(behind))
		}
		for _, r := range fs.Records() {
			if end, ok := behind[r.Partition]; ok && r.Offset+1 >= end {
				delete(behind, r.Partition)
			}
			if r.Attrs.IsControl() {
				continue
			}
			e, err := event.Decode(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			out[e.Subject] = append(out[e.Subject], Describe(t, e))
		}
	}
	return out, pending
}

// Compare reports how got differs from want.
func Compare(t testing.TB, got, want map[string][]string) {
	t.Helper()
	for plate, w := range want {
		if strings.Join(got[plate], "\n") != strings.Join(w, "\n") {
			t.Errorf("%s: got\n  %s\nwant\n  %s", plate, strings.Join(got[plate], "\n  "), strings.Join(w, "\n  "))
		}
	}
	if Count(got) != Count(want) {
		t.Errorf("%d events, want %d", Count(got), Count(want))
	}
}
