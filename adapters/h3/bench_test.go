package h3

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/internal/geoworkload"
)

const (
	benchStations = 10000
	benchVehicles = 10000
	benchSteps    = 100 // 1,000,000 fixes
)

var bench = sync.OnceValues(func() (*geoworkload.World, []fix) {
	rng := rand.New(rand.NewPCG(2024, 7))
	w := newDeltaWorld(rng, benchStations)
	return w, deltaFixes(rng, w, benchVehicles, benchSteps)
})

// BenchmarkLocate locates the fixes of 10,000 vehicles among 10,000
// stations: one op is one fix, in time order, each vehicle with its own
// cursor; 1,000,000 fixes are prepared before the timer. h3 is this
// index (h3-res8 and h3-res10 at other base resolutions), grid the
// baseline of about 1 km cells, bruteforce the reference (about 1 ms a
// fix: give it a time, not a count):
//
//	go test -run '^$' -bench 'Locate/(h3|grid)' -benchtime 1000000x -cpu 1 ./adapters/h3
//	go test -run '^$' -bench 'Locate/bruteforce' -benchtime 3s -cpu 1 ./adapters/h3
func BenchmarkLocate(b *testing.B) {
	w, fixes := bench()
	b.Run("h3", func(b *testing.B) { benchH3(b, w, fixes, Config{}) })
	for _, res := range []int{8, 10} {
		b.Run(fmt.Sprintf("h3-res%d", res), func(b *testing.B) { benchH3(b, w, fixes, Config{Resolution: res}) })
	}
	b.Run("grid", func(b *testing.B) {
		g := newGridIndex()
		for k, s := range w.Stations {
			g.add(geofence.Key(k), s)
		}
		var dst []geofence.Key
		b.ResetTimer()
		i := 0
		for b.Loop() {
			f := &fixes[i]
			dst = g.locate(f.P, dst[:0])
			if i++; i == len(fixes) {
				i = 0
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fixes/s")
	})
	b.Run("bruteforce", func(b *testing.B) {
		bf := geofence.NewBruteForce()
		for k, s := range w.Stations {
			if err := bf.Add(geofence.Key(k), s); err != nil {
				b.Fatal(err)
			}
		}
		c := bf.NewCursor()
		var dst []geofence.Key
		b.ResetTimer()
		i := 0
		for b.Loop() {
			f := &fixes[i]
			dst = c.Locate(f.P, dst[:0])
			if i++; i == len(fixes) {
				i = 0
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fixes/s")
	})
}

func benchH3(b *testing.B, w *geoworkload.World, fixes []fix, cfg Config) {
	ix, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	for k, s := range w.Stations {
		if err := ix.Add(geofence.Key(k), s); err != nil {
			b.Fatal(err)
		}
	}
	cursors := make([]*Cursor, benchVehicles)
	for i := range cursors {
		cursors[i] = ix.NewCursor().(*Cursor)
	}
	var dst []geofence.Key
	found := 0
	b.ResetTimer()
	i := 0
	for b.Loop() {
		f := &fixes[i]
		dst = cursors[f.Vehicle].Locate(f.P, dst[:0])
		found += len(dst)
		if i++; i == len(fixes) {
			i = 0
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fixes/s")
	refreshes := 0
	for _, c := range cursors {
		refreshes += c.refreshes
	}
	b.ReportMetric(float64(refreshes)/float64(b.N), "h3lookups/fix")
	b.ReportMetric(float64(found)/float64(b.N), "stations/fix")
}

// BenchmarkAdd measures building the index of the benchmark's stations.
func BenchmarkAdd(b *testing.B) {
	w, _ := bench()
	for b.Loop() {
		ix, _ := New(Config{})
		for k, s := range w.Stations {
			if err := ix.Add(geofence.Key(k), s); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/benchStations, "µs/station")
}

// BenchmarkMemory builds the geofence of 100,000 stations and 100,000
// vehicles: a catalogue over this index, and a tracker that has decided
// 35 fixes of every vehicle (so each has its full state and its cursor). It
// reports the heap in use (totalMB: all of it, the stations' own
// coordinates and the benchmark's fixes included; MB: what the geofence
// added; indexMB and vehiclesMB split that):
// "country" spreads them over ten metropolitan regions with the density of
// BenchmarkLocate's; "dense" packs them all into the delta's seven cities,
// ten times denser (about 65 stations listed per cell in the parks).
func BenchmarkMemory(b *testing.B) {
	for _, tc := range []struct {
		name   string
		cities []city
	}{
		{"country", citiesAround(regionAnchors)},
		{"dense", deltaCities},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				memoryOnce(b, tc.cities)
			}
		})
	}
}

// memoryOnce reports what the geofence holds for 100,000 stations and
// 100,000 vehicles: the stations' shapes, the catalogue and its index
// (indexMB), and the vehicles' state with their cursors (vehiclesMB); MB
// is their sum. The benchmark's own fixes are not counted.
func memoryOnce(b *testing.B, cities []city) {
	const n = 100000
	rng := rand.New(rand.NewPCG(99, 1))
	base := heapInUse()
	w := newWorld(rng, n, cities)
	shapes := int64(heapInUse()) - int64(base)
	// 35 fixes each: more than enough to fill every vehicle's duplicate
	// memory (8 fix times), its fullest steady state.
	fixes := deltaFixes(rng, w, n, 35)
	before := heapInUse()
	ix, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	catalog := geofence.NewCatalog(ix)
	for k, s := range w.Stations {
		st := geofence.Station{ID: fmt.Sprintf("S%06d", k), Type: geofence.TypeLoading, Version: 1, Shape: s}
		if err := catalog.Upsert(st, time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
	afterIndex := heapInUse()
	tracker, err := geofence.NewTracker(geofence.Config{ReorderWindow: geofence.DefaultReorderWindow}, catalog)
	if err != nil {
		b.Fatal(err)
	}
	vehicles := make([]*geofence.Vehicle, n)
	for i := range vehicles {
		vehicles[i] = geofence.NewVehicle(geofence.VehicleState{Plate: fmt.Sprintf("沪V%06d", i)})
	}
	var out []geofence.Transition
	at := make([]time.Time, n)
	for _, f := range fixes {
		at[f.Vehicle] = at[f.Vehicle].Add(time.Second)
		out = tracker.Observe(vehicles[f.Vehicle], geofence.Fix{Time: at[f.Vehicle], Point: f.P}, out[:0])
	}
	runtime.KeepAlive(at)
	after := heapInUse()
	// The fix times kept above are the benchmark's, not the geofence's.
	atBytes := int64(n) * int64(unsafe.Sizeof(time.Time{}))
	mb := func(bytes int64) float64 { return float64(bytes) / (1 << 20) }
	b.ReportMetric(mb(shapes+int64(after)-int64(before)-atBytes), "MB")
	b.ReportMetric(mb(shapes), "shapesMB")
	b.ReportMetric(mb(int64(afterIndex)-int64(before)), "indexMB")
	b.ReportMetric(mb(int64(after)-int64(afterIndex)-atBytes), "vehiclesMB")
	b.ReportMetric(float64(len(ix.cells)), "cells")
	runtime.KeepAlive(w)
	runtime.KeepAlive(vehicles)
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
