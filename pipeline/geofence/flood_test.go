package geofence

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/tmsfleet/tms/adapters/h3"
	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/internal/geoworkload"
)

// vehicleBudgetBytes is the memory a vehicle may take in the geofence,
// its map entry, state, recency links and index cursor included, on which
// docs/security.md's bound (TMS_GEOFENCE_MAX_VEHICLES x this) rests.
const vehicleBudgetBytes = 3 << 10

// TestHostileInventedPlatesLeaveTheGeofenceWithinItsMemoryBound floods one
// partition, the worst case, with 1,000,000 invented plates, one fix each,
// a tenth of them inside stations, over the production H3 index: the
// partition must hold no more vehicles than its share of
// TMS_GEOFENCE_MAX_VEHICLES, and its memory must stay within that many
// vehicles' budget. Before the Fleet, every plate stayed in the
// partition's map for good: a million vehicles, over a gigabyte.
func TestHostileInventedPlatesLeaveTheGeofenceWithinItsMemoryBound(t *testing.T) {
	if testing.Short() {
		t.Skip("a million fixes")
	}
	const plates = 1_000_000
	idx, err := h3.New(h3.Config{})
	if err != nil {
		t.Fatal(err)
	}
	catalog := geofence.NewCatalog(idx)
	rng := rand.New(rand.NewPCG(7, 11))
	world := geoworkload.NewDeltaWorld(rng, 1000)
	for i, sh := range world.Stations {
		if err := catalog.Upsert(geofence.Station{ID: fmt.Sprintf("S%04d", i), Type: geofence.TypeLoading, Version: 1, Shape: sh}, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	tracker, err := geofence.NewTracker(geofence.Config{ReorderWindow: geofence.DefaultReorderWindow}, catalog)
	if err != nil {
		t.Fatal(err)
	}
	capacity := fleetCapacity(DefaultMaxVehicles, 12)
	ps := &partitionState{fleet: geofence.NewFleet(capacity)}

	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	var out []geofence.Transition
	forgotten, inside := 0, 0
	for i := range plates {
		p := geo.Point{Lat: 30.8 + rng.Float64()*1.4, Lng: 118.6 + rng.Float64()*2.9}
		if i%10 == 0 { // a tenth inside a station: they hold open visits
			sh := world.Stations[rng.IntN(len(world.Stations))]
			if sh.Circle != nil {
				p = sh.Circle.Center
			} else {
				p = sh.Polygons[0][0][0]
			}
		}
		f := geofence.Fix{Time: t0.Add(time.Duration(i) * time.Millisecond), Point: p}
		var n int
		out, n = ps.fleet.Observe(tracker, fmt.Sprintf("FLOOD%07d", i), f, int64(i), out[:0])
		forgotten += n
		for _, tr := range out {
			if tr.Kind == geofence.Entered {
				inside++
			}
		}
		if ps.fleet.Len() > capacity {
			t.Fatalf("after %d plates the partition holds %d vehicles, more than its %d", i+1, ps.fleet.Len(), capacity)
		}
	}
	// The fleet's memory: the heap with it, less the heap without it.
	held := ps.fleet.Len()
	with := heapInUse()
	runtime.KeepAlive(ps)
	ps = nil
	grown := with - heapInUse()
	perVehicle := grown / int64(held)
	t.Logf("%d plates: %d vehicles held (limit %d), %d forgotten, %d entries; heap grew %.1f MB, %d B a vehicle held",
		plates, held, capacity, forgotten, inside, float64(grown)/1e6, perVehicle)
	if held != capacity || forgotten != plates-capacity {
		t.Errorf("%d vehicles held and %d forgotten, want %d and %d", held, forgotten, capacity, plates-capacity)
	}
	if inside < plates/20 {
		t.Errorf("only %d entries: the flood hardly reached the stations", inside)
	}
	if budget := int64(capacity) * vehicleBudgetBytes; grown > budget {
		t.Errorf("the partition's vehicles take %d bytes, more than %d vehicles' budget of %d", grown, capacity, budget)
	}
}

// heapInUse is the live heap after a full collection.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
