package geofence

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/h3"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/internal/geoworkload"
	"github.com/tmsfleet/tms/internal/testenv"
)

// v1Snapshot is a snapshot of 40 vehicles as the previous version wrote
// it (JSON chunks), made by its snapshotRecords: every field of the state
// set in some vehicle, a zone offset, a run, closed visits.
func v1Snapshot(t *testing.T) []*kgo.Record {
	t.Helper()
	raw, err := os.ReadFile("testdata/snapshot-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var recs []struct {
		Key   string          `json:"key"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &recs); err != nil {
		t.Fatal(err)
	}
	var out []*kgo.Record
	for _, r := range recs {
		// Stored indented, to be read; written compact, as goccy wrote it.
		var value bytes.Buffer
		if err := json.Compact(&value, r.Value); err != nil {
			t.Fatal(err)
		}
		out = append(out, &kgo.Record{Key: []byte(r.Key), Value: value.Bytes()})
	}
	return out
}

// statesJSON is the JSON form of states, sorted by plate: the form the
// lead's changes to the state keep, and what the codec must keep.
func statesJSON(t *testing.T, states []geofence.VehicleState) string {
	t.Helper()
	states = slices.Clone(states)
	slices.SortFunc(states, func(a, b geofence.VehicleState) int { return cmpString(a.Plate, b.Plate) })
	out, err := json.Marshal(states)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func v1States(t *testing.T) (snapshotHeader, []geofence.VehicleState) {
	t.Helper()
	var header snapshotHeader
	var states []geofence.VehicleState
	for _, r := range v1Snapshot(t) {
		if string(r.Key) == headerKey {
			if err := json.Unmarshal(r.Value, &header); err != nil {
				t.Fatal(err)
			}
			continue
		}
		var c snapshotChunk
		if err := json.Unmarshal(r.Value, &c); err != nil {
			t.Fatal(err)
		}
		states = append(states, c.Vehicles...)
	}
	return header, states
}

func TestSnapshotCodecKeepsEveryVehicleAsItsJSONFormDoes(t *testing.T) {
	t.Parallel()
	_, states := v1States(t)
	if len(states) != 40 {
		t.Fatalf("%d vehicles in the old snapshot", len(states))
	}
	// A fix in another zone, and times of every kind.
	states[1].Pending = append(states[1].Pending, geofence.Fix{Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("X", -5*3600)), Point: geo.Point{Lat: -0.0, Lng: 5e-324}})
	chunk := appendChunkStart(nil, "id1")
	for i := range states {
		chunk = appendVehicle(chunk, &states[i])
	}
	id, decoded, err := decodeChunk(chunk)
	if err != nil || id != "id1" {
		t.Fatalf("decodeChunk: %q, %v", id, err)
	}
	if got, want := statesJSON(t, decoded), statesJSON(t, states); got != want {
		t.Errorf("decoded\n%s\nwant\n%s", got, want)
	}
	// A chunk cut short never decodes as the whole: it is refused, or,
	// cut between two vehicles, reads as fewer (the header's vehicle
	// count is checked against the chunks).
	for n := range len(chunk) - 1 {
		if _, vs, err := decodeChunk(chunk[:n]); err == nil && len(vs) >= len(states) {
			t.Fatalf("a chunk cut at %d of %d bytes decodes as %d vehicles", n, len(chunk), len(vs))
		}
	}
}

// TestSnapshotCodecCoversEveryField fails when the state gains an
// exported field: the binary format must then learn it (a new format
// byte, the old ones still read), or restores would lose it.
func TestSnapshotCodecCoversEveryField(t *testing.T) {
	t.Parallel()
	known := map[reflect.Type][]string{
		reflect.TypeFor[geofence.VehicleState](): {"Plate", "Last", "MaxSeen", "Pending", "Recent", "Members", "Late", "Duplicates", "Seq"},
		// The visit id and the times through VisitID, EnteredAt and
		// LastVisit, their setters for reading.
		reflect.TypeFor[geofence.Membership](): {"StationID", "Version", "Inside", "Run"},
		reflect.TypeFor[geofence.Run]():        {"Start", "Count", "Gap", "Cause"},
		reflect.TypeFor[geofence.Fix]():        {"Time", "Point"},
		reflect.TypeFor[geo.Point]():           {"Lat", "Lng"},
	}
	for typ, fields := range known {
		var exported []string
		for f := range typ.Fields() {
			if f.IsExported() && f.Tag.Get("json") != "-" {
				exported = append(exported, f.Name)
			}
		}
		if !slices.Equal(exported, fields) {
			t.Errorf("%s has the exported fields %v; the snapshot codec (snapshot_codec.go) encodes %v", typ, exported, fields)
		}
	}
}

func TestChunkIDOfBothFormats(t *testing.T) {
	t.Parallel()
	for _, r := range v1Snapshot(t) {
		if string(r.Key) == headerKey {
			continue
		}
		if id, ok := chunkID(r.Value); !ok || id != "ed4d651044c3eabb" {
			t.Errorf("chunkID of the old chunk %s = %q, %v", r.Key, id, ok)
		}
	}
	if id, ok := chunkID(appendChunkStart(nil, "abc")); !ok || id != "abc" {
		t.Errorf("chunkID of a new chunk = %q, %v", id, ok)
	}
}

// TestAnOldFormatSnapshotIsRestored restores a partition whose latest
// snapshot the previous version wrote, through Kafka, as a takeover from
// an instance of that version does.
func TestAnOldFormatSnapshotIsRestored(t *testing.T) {
	t.Parallel()
	kc := testenv.FromEnv(os.LookupEnv).Kafka(t)
	header, want := v1States(t)
	records := v1Snapshot(t)
	for _, r := range records {
		r.Topic, r.Partition = kc.Topic(event.TopicGeofenceState), 1
	}
	produceTransaction(t, kc, records)
	marker, err := kc.NewClient("test-marker", kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer marker.Close()
	tracker, err := geofence.NewTracker(geofence.Config{}, geofence.NewCatalog(geofence.NewBruteForce()))
	if err != nil {
		t.Fatal(err)
	}
	r := &restorer{kafka: kc, marker: marker, fleetCapacity: 1000}
	// resume at the snapshot's offset: nothing to replay.
	ps, replayed, err := r.restore(t.Context(), tracker, 1, header.NextOffset)
	if err != nil {
		t.Fatal(err)
	}
	var got []geofence.VehicleState
	ps.fleet.Each(func(v *geofence.Vehicle) { got = append(got, v.State) })
	if replayed != 0 || ps.next != header.NextOffset || statesJSON(t, got) != statesJSON(t, want) {
		t.Errorf("restored %d vehicles at offset %d (replayed %d); want the %d of the snapshot at %d",
			len(got), ps.next, replayed, len(want), header.NextOffset)
	}
}

// FuzzDecodeChunk: whatever a state partition holds, decoding it returns
// an error or vehicles, never a panic.
func FuzzDecodeChunk(f *testing.F) {
	var states []geofence.VehicleState
	for _, r := range []string{"a", "b"} {
		states = append(states, geofence.VehicleState{Plate: r, Recent: []int64{1, 2}})
	}
	chunk := appendChunkStart(nil, "x")
	for i := range states {
		chunk = appendVehicle(chunk, &states[i])
	}
	f.Add(chunk)
	f.Add([]byte(`{"id":"x","vehicles":[]}`))
	f.Fuzz(func(t *testing.T, value []byte) { _, _, _ = decodeChunk(value) })
}

// codecStates are the states of 10,000 vehicles of the dense workload
// after restoreRounds fixes each, as BenchmarkRestore builds them.
var codecStates = sync.OnceValues(func() ([]geofence.VehicleState, error) {
	const vehicles = 10_000
	rng := rand.New(rand.NewPCG(12, 2026))
	world := geoworkload.NewDenseWorld(rng, restoreStations)
	idx, err := h3.New(h3.Config{})
	if err != nil {
		return nil, err
	}
	catalog := geofence.NewCatalog(idx)
	for i, shape := range world.Stations {
		if err := catalog.Upsert(geofence.Station{ID: fmt.Sprintf("D%05d", i), Type: "loading", Version: 1, Shape: shape}, time.Time{}); err != nil {
			return nil, err
		}
	}
	tracker, err := geofence.NewTracker(geofence.Config{ReorderWindow: geofence.DefaultReorderWindow}, catalog)
	if err != nil {
		return nil, err
	}
	fleet := geofence.NewFleet(vehicles)
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	var out []geofence.Transition
	for i, f := range geoworkload.DenseFixes(rand.New(rand.NewPCG(7, 12)), world, vehicles, restoreRounds) {
		at := t0.Add(time.Duration(i/vehicles) * geoworkload.DenseInterval)
		out, _ = fleet.Observe(tracker, fmt.Sprintf("沪D%06d", f.Vehicle), geofence.Fix{Time: at, Point: f.P}, int64(i), out[:0])
	}
	var states []geofence.VehicleState
	fleet.Each(func(v *geofence.Vehicle) { states = append(states, v.State) })
	return states, nil
})

// BenchmarkSnapshotCodec encodes and decodes the chunks of the states of
// 10,000 vehicles in both formats, on one goroutine. One op is the 10,000 vehicles.
func BenchmarkSnapshotCodec(b *testing.B) {
	states, err := codecStates()
	if err != nil {
		b.Fatal(err)
	}
	ps := &partitionState{fleet: geofence.NewFleet(len(states))}
	for _, s := range states {
		ps.fleet.Restore(s)
	}
	encode := func(format string) func() [][]byte {
		return func() [][]byte {
			records, err := snapshotRecords("state", 0, ps, format)
			if err != nil {
				b.Fatal(err)
			}
			var chunks [][]byte
			for _, r := range records[:len(records)-1] {
				chunks = append(chunks, r.Value)
			}
			return chunks
		}
	}
	for _, format := range []struct {
		name   string
		encode func() [][]byte
	}{{"json", encode(SnapshotJSON)}, {"binary", encode(SnapshotBinary)}} {
		chunks := format.encode()
		size := 0
		for _, c := range chunks {
			size += len(c)
		}
		b.Run(format.name+"/encode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				format.encode()
			}
			b.ReportMetric(float64(size)/float64(len(states)), "B/vehicle")
		})
		b.Run(format.name+"/decode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for _, c := range chunks {
					if _, _, err := decodeChunk(c); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(states)), "ns/vehicle")
		})
	}
}
