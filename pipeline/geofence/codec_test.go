package geofence

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/h3"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/internal/geoworkload"
)

// codecWorkload is bench's BenchmarkGeofenceKafka workload (10,000
// stations of the delta, 10,000 vehicles, one fix a second, 1,000,000
// fixes) as the processor meets it: the position records' values, and
// the transitions the tracker decides at each fix.
type codecWorkload struct {
	values      [][]byte
	transitions map[int][]geofence.Transition
	count       int
}

var codecFixes = sync.OnceValues(func() (*codecWorkload, error) {
	const vehicles, steps = 10_000, 100
	rng := rand.New(rand.NewPCG(2024, 7))
	world := geoworkload.NewDeltaWorld(rng, 10_000)
	fixes := geoworkload.Fixes(rng, world, vehicles, steps)
	idx, err := h3.New(h3.Config{})
	if err != nil {
		return nil, err
	}
	catalog := geofence.NewCatalog(idx)
	for i, shape := range world.Stations {
		// A shape the catalogue refuses is left out, as bench does.
		_ = catalog.Upsert(geofence.Station{ID: fmt.Sprintf("B%05d", i), Type: "loading", Version: 1, Shape: shape}, time.Time{})
	}
	tracker, err := geofence.NewTracker(geofence.Config{ReorderWindow: geofence.DefaultReorderWindow}, catalog)
	if err != nil {
		return nil, err
	}
	w := &codecWorkload{transitions: map[int][]geofence.Transition{}}
	fleet := geofence.NewFleet(vehicles)
	t0 := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	var out []geofence.Transition
	for i, f := range fixes {
		at := t0.Add(time.Duration(i/vehicles) * time.Second)
		p := position.Position{Plate: fmt.Sprintf("沪V%05d", f.Vehicle), FixTime: at, ReceivedAt: at.Add(time.Second),
			Lat: f.P.Lat, Lng: f.P.Lng, SpeedKmh: 30}
		e, err := p.Event("/tms/ingest/g7")
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		w.values = append(w.values, v)
		out, _ = fleet.Observe(tracker, p.Plate, geofence.Fix{Time: at, Point: geoPoint(p)}, int64(i), out[:0])
		if len(out) > 0 {
			w.transitions[i] = append([]geofence.Transition(nil), out...)
			w.count += len(out)
		}
	}
	return w, nil
})

// BenchmarkCodec measures what the processor does per fix apart from
// deciding, on one goroutine: decode the position record and encode and
// hand over the records of the transitions the tracker decided at that
// fix (0.09 a fix in this workload). One op is one fix.
func BenchmarkCodec(b *testing.B) {
	w, err := codecFixes()
	if err != nil {
		b.Fatal(err)
	}
	p := &Processor{metrics: newMetrics(nil)}
	p.topics.geofence = "tms.geofence"
	ps := &partitionState{}
	records := 0
	produce := func(r *kgo.Record) { sink = r; records++ }
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		j := i % len(w.values)
		pos, ok, err := decodeFix(ps, w.values[j])
		if !ok || err != nil {
			b.Fatal(ok, err)
		}
		sinkPosition = pos
		for k := range w.transitions[j] {
			if err := emitTransition(p, produce, ps, &w.transitions[j][k]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fixes/s")
	b.ReportMetric(float64(records)/float64(b.N), "records/fix")
}

// sink and sinkPosition keep what the benchmark makes alive, as the
// client keeps the records it is given.
var (
	sink         *kgo.Record
	sinkPosition position.Position
)

// decodeFix and emitTransition are the processor's codec path (the only
// lines that differ in the baseline build the A/B runs compare with).
func decodeFix(ps *partitionState, value []byte) (position.Position, bool, error) {
	return ps.decoder.Decode(value)
}

func emitTransition(p *Processor, produce func(*kgo.Record), ps *partitionState, tr *geofence.Transition) error {
	return p.emit(produce, ps, tr)
}
