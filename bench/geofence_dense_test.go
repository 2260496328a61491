package bench

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/domain/station"
	"github.com/tmsfleet/tms/internal/geoworkload"
)

// Dense station maps (issue 12): the size of the fleet and of its input.
const (
	denseVehicles = 10_000
	denseSteps    = 100 // 1,000,000 fixes
)

// BenchmarkGeofenceDense measures the whole tracker (reorder window,
// duplicates, hysteresis with one fix in and one out, crossings between
// fixes, visit ids) on one core, GOMAXPROCS=1, over the dense workload
// (internal/geoworkload: clustered circles of 100 m to 1 km around
// Shanghai, 10,000 vehicles reporting every 10 s, 1,000,000 fixes), with
// the production catalogue and H3 index. Decoding fixes and encoding
// events are not counted. One op is the whole workload, with fresh
// vehicles.
//
// fixes/s is by the wall clock; fixes/cpu-s by the process's CPU time
// (user and system), which a busy machine disturbs less.
func BenchmarkGeofenceDense(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		b.Run(fmt.Sprintf("stations=%d", n), func(b *testing.B) { benchDense(b, n) })
	}
}

func benchDense(b *testing.B, stations int) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	rng := rand.New(rand.NewPCG(12, uint64(stations)))
	world := geoworkload.NewDenseWorld(rng, stations)
	fixes := geoworkload.DenseFixes(rng, world, denseVehicles, denseSteps)
	catalog := geofence.NewCatalog(mustH3(b))
	for i, shape := range world.Stations {
		s, err := station.Parse([]byte(stationDef(fmt.Sprintf("D%05d", i), shape)))
		if err != nil {
			b.Fatalf("station %d: %v", i, err)
		}
		if err := catalog.Upsert(s.Geofence(1), time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
	tracker, err := geofence.NewTracker(geofence.Config{ReorderWindow: geofence.DefaultReorderWindow}, catalog)
	if err != nil {
		b.Fatal(err)
	}
	inside := insideShare(catalog, fixes)
	t0 := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	at := make([]time.Time, len(fixes))
	for i := range fixes {
		at[i] = t0.Add(time.Duration(i/denseVehicles) * geoworkload.DenseInterval)
	}
	plates := make([]string, denseVehicles)
	for i := range plates {
		plates[i] = vehiclePlate(int32(i))
	}
	var out []geofence.Transition
	transitions := 0
	var cpu time.Duration
	runtime.GC()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		vehicles := make([]*geofence.Vehicle, denseVehicles)
		for i := range vehicles {
			vehicles[i] = geofence.NewVehicle(geofence.VehicleState{Plate: plates[i]})
		}
		cpu0 := processCPU()
		b.StartTimer()
		for j, f := range fixes {
			out = tracker.Observe(vehicles[f.Vehicle], geofence.Fix{Time: at[j], Point: f.P}, out[:0])
			transitions += len(out)
		}
		b.StopTimer()
		cpu += processCPU() - cpu0
	}
	reportCores(b, fmt.Sprintf("%d clustered circular stations, %d vehicles, one fix every %s each, GOMAXPROCS=1",
		catalog.Stations(), denseVehicles, geoworkload.DenseInterval))
	total := float64(b.N * len(fixes))
	b.ReportMetric(total/b.Elapsed().Seconds(), "fixes/s")
	b.ReportMetric(total/cpu.Seconds(), "fixes/cpu-s")
	b.ReportMetric(float64(transitions)/total, "transitions/fix")
	b.ReportMetric(inside, "inside/fix")
}

// insideShare is the share of the fixes inside at least one station.
func insideShare(catalog *geofence.Catalog, fixes []geoworkload.Fix) float64 {
	c := catalog.NewCursor()
	var keys []geofence.Key
	in := 0
	for _, f := range fixes {
		if keys = c.Locate(f.P, keys[:0]); len(keys) > 0 {
			in++
		}
	}
	return float64(in) / float64(len(fixes))
}

// processCPU is the CPU time, user and system, the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
