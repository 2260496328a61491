package h3

import (
	"math"
	"slices"

	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/internal/geoworkload"
)

// The benchmark and test workload lives in internal/geoworkload, shared
// with the service's benchmarks; these names keep the tests short.
var (
	offset        = geoworkload.Offset
	logUniform    = geoworkload.LogUniform
	randomStation = geoworkload.RandomStation
	newDeltaWorld = geoworkload.NewDeltaWorld
	newWorld      = geoworkload.NewWorld
	deltaFixes    = geoworkload.Fixes
	citiesAround  = geoworkload.CitiesAround
	deltaCities   = geoworkload.DeltaCities
	regionAnchors = geoworkload.RegionAnchors
)

type (
	city = geoworkload.City
	fix  = geoworkload.Fix
)

// gridIndex is the baseline: a plain uniform grid of about 1 km cells
// (0.01° of latitude and longitude), each listing the shapes whose
// bounding box meets it, every candidate tested exactly.
type gridIndex struct {
	cells  map[uint64][]geofence.Key
	shapes map[geofence.Key]geofence.Shape
}

const gridDeg = 0.01

func gridCell(lat, lng float64) uint64 {
	return uint64(uint32(int32(math.Floor(lat/gridDeg))))<<32 | uint64(uint32(int32(math.Floor(lng/gridDeg))))
}

func newGridIndex() *gridIndex {
	return &gridIndex{cells: map[uint64][]geofence.Key{}, shapes: map[geofence.Key]geofence.Shape{}}
}

func (g *gridIndex) add(k geofence.Key, s geofence.Shape) {
	g.shapes[k] = s
	b := s.Bounds()
	const m = 1e-6 // Bounds is not widened for rounding
	for y := math.Floor((b.MinLat - m) / gridDeg); y <= math.Floor((b.MaxLat+m)/gridDeg); y++ {
		for x := math.Floor((b.MinLng - m) / gridDeg); x <= math.Floor((b.MaxLng+m)/gridDeg); x++ {
			c := uint64(uint32(int32(y)))<<32 | uint64(uint32(int32(x)))
			l := g.cells[c]
			i, _ := slices.BinarySearch(l, k)
			g.cells[c] = slices.Insert(l, i, k)
		}
	}
}

func (g *gridIndex) locate(p geo.Point, dst []geofence.Key) []geofence.Key {
	for _, k := range g.cells[gridCell(p.Lat, p.Lng)] {
		if g.shapes[k].Contains(p) {
			dst = append(dst, k)
		}
	}
	return dst
}
