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

	gojson "github.com/goccy/go-json"
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
	id, decoded, err := decodeChunk(chunk, map[string]string{})
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
		if _, vs, err := decodeChunk(chunk[:n], nil); err == nil && len(vs) >= len(states) {
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
		reflect.TypeFor[geofence.Membership]():   {"StationID", "Version", "Inside", "VisitID", "EnteredAt", "Run", "LastFrom", "LastUntil"},
		reflect.TypeFor[geofence.Run]():          {"Start", "Count", "Gap", "Cause"},
		reflect.TypeFor[geofence.Fix]():          {"Time", "Point"},
		reflect.TypeFor[geo.Point]():             {"Lat", "Lng"},
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
	f.Fuzz(func(t *testing.T, value []byte) { _, _, _ = decodeChunk(value, map[string]string{}) })
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
// 10,000 vehicles in the format of version 1 (JSON, goccy/go-json) and in
// the binary one, on one goroutine. One op is the 10,000 vehicles.
func BenchmarkSnapshotCodec(b *testing.B) {
	states, err := codecStates()
	if err != nil {
		b.Fatal(err)
	}
	ps := &partitionState{fleet: geofence.NewFleet(len(states))}
	for _, s := range states {
		ps.fleet.Restore(s)
	}
	v1 := func() [][]byte { // as the previous version wrote them
		var chunks [][]byte
		chunk := chunkEncoding{ID: "x"}
		for i := range states {
			state, _ := gojson.Marshal(&states[i])
			chunk.Vehicles = append(chunk.Vehicles, state)
			if len(chunk.Vehicles) == 130 {
				value, _ := gojson.Marshal(chunk)
				chunks, chunk.Vehicles = append(chunks, value), nil
			}
		}
		value, _ := gojson.Marshal(chunk)
		return append(chunks, value)
	}
	v2 := func() [][]byte {
		records, err := snapshotRecords("state", 0, ps)
		if err != nil {
			b.Fatal(err)
		}
		var chunks [][]byte
		for _, r := range records[:len(records)-1] {
			chunks = append(chunks, r.Value)
		}
		return chunks
	}
	for _, format := range []struct {
		name   string
		encode func() [][]byte
	}{{"v1-json", v1}, {"v2-binary", v2}} {
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
					if _, _, err := decodeChunk(c, map[string]string{}); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(states)), "ns/vehicle")
		})
	}
}

// chunkEncoding is how version 1 wrote a chunk: the vehicles encoded one
// by one.
type chunkEncoding struct {
	ID       string              `json:"id"`
	Vehicles []gojson.RawMessage `json:"vehicles"`
}

// TestRestoreFindsTheLatestSnapshotBehindOthers restores a state
// partition holding an old-format snapshot, then a newer one of several
// chunks, then restore markers: whether the first window read holds the
// whole latest snapshot or only its end, the restore finds it whole.
func TestRestoreFindsTheLatestSnapshotBehindOthers(t *testing.T) {
	t.Parallel()
	kc := testenv.FromEnv(os.LookupEnv).Kafka(t)
	topic := kc.Topic(event.TopicGeofenceState)
	old := v1Snapshot(t)
	for _, r := range old {
		r.Topic, r.Partition = topic, 2
	}
	produceTransaction(t, kc, old)
	ps := &partitionState{fleet: geofence.NewFleet(5000), next: 7}
	var want []geofence.VehicleState
	for v := range 3000 {
		s := geofence.VehicleState{Plate: fmt.Sprintf("沪N%05d", v), MaxSeen: time.Unix(1764230000+int64(v), 0).UTC()}
		for i := range 8 {
			s.Members = append(s.Members, geofence.Membership{StationID: fmt.Sprintf("S%04d", i+v%50), Version: 1, Inside: true,
				VisitID: fmt.Sprintf("visit-%d-%d", v, i), EnteredAt: time.Unix(1764229000, 0).UTC()})
		}
		ps.fleet.Restore(s)
		want = append(want, s)
	}
	latest, err := snapshotRecords(topic, 2, ps)
	if err != nil {
		t.Fatal(err)
	}
	if len(latest) < 4 {
		t.Fatalf("the snapshot has %d records; the test needs several chunks", len(latest))
	}
	produceTransaction(t, kc, latest)
	marker, err := kc.NewClient("test-marker", kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer marker.Close()
	tracker, err := geofence.NewTracker(geofence.Config{}, geofence.NewCatalog(geofence.NewBruteForce()))
	if err != nil {
		t.Fatal(err)
	}
	// Each restore leaves a marker: the later ones read past the earlier.
	for _, window := range []int64{0, 2, 3, 1} {
		r := &restorer{kafka: kc, marker: marker, fleetCapacity: 5000, window: window}
		restored, _, err := r.restore(t.Context(), tracker, 2, 7)
		if err != nil {
			t.Fatalf("window %d: %v", window, err)
		}
		var got []geofence.VehicleState
		restored.fleet.Each(func(v *geofence.Vehicle) { got = append(got, v.State) })
		if restored.next != 7 || statesJSON(t, got) != statesJSON(t, want) {
			t.Errorf("window %d: restored %d vehicles at offset %d; want the %d of the latest snapshot at 7",
				window, len(got), restored.next, len(want))
		}
	}
}
