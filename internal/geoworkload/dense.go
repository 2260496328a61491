package geoworkload

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/geofence"
)

// The dense workload is the station map of a company with crowded depots:
// circles of 100 m to 1 km over a 100 km square around Shanghai, 70 % of
// them in 50 clusters (a normal spread of 1.5 km around each cluster's
// centre), so that a vehicle near a cluster has dozens of stations around
// it and most of its fixes are inside several at once. Vehicles report
// one fix every DenseInterval and drive between stations, mostly within
// their cluster, waiting at each. It is the workload of issue 12's
// targets (docs/performance.md, "Dense station maps").

// DenseInterval is the time between two fixes of a vehicle.
const DenseInterval = 10 * time.Second

// Parameters of the dense world.
const (
	denseHalfSideM  = 50_000.0 // the square is 100 km a side
	denseClusters   = 50
	denseClustered  = 0.7    // share of the stations in a cluster
	denseClusterSDM = 1500.0 // standard deviation around a cluster's centre
	denseMinRadiusM = 100.0
	denseMaxRadiusM = 1000.0
)

// DenseCentre is the centre of the dense world's square: Shanghai.
var DenseCentre = geo.Point{Lat: 31.2304, Lng: 121.4737}

// DenseWorld is the stations of the dense workload, with the cluster of
// each (-1 for a station outside the clusters).
type DenseWorld struct {
	Stations  []geofence.Shape
	cluster   []int
	byCluster [][]int
}

// NewDenseWorld makes n circular stations, DenseClustered of them in the
// clusters.
func NewDenseWorld(rng *rand.Rand, n int) *DenseWorld {
	w := &DenseWorld{byCluster: make([][]int, denseClusters)}
	centres := make([]geo.Point, denseClusters)
	for i := range centres {
		centres[i] = Offset(DenseCentre, (rng.Float64()*2-1)*denseHalfSideM, (rng.Float64()*2-1)*denseHalfSideM)
	}
	for i := range n {
		cl := -1
		var centre geo.Point
		if rng.Float64() < denseClustered {
			cl = rng.IntN(denseClusters)
			centre = Offset(centres[cl], rng.NormFloat64()*denseClusterSDM, rng.NormFloat64()*denseClusterSDM)
			w.byCluster[cl] = append(w.byCluster[cl], i)
		} else {
			centre = Offset(DenseCentre, (rng.Float64()*2-1)*denseHalfSideM, (rng.Float64()*2-1)*denseHalfSideM)
		}
		r := denseMinRadiusM + rng.Float64()*(denseMaxRadiusM-denseMinRadiusM)
		w.Stations = append(w.Stations, geofence.Shape{Circle: &geo.Circle{Center: centre, RadiusM: r}})
		w.cluster = append(w.cluster, cl)
	}
	return w
}

// denseVehicle is one simulated vehicle of the dense workload.
type denseVehicle struct {
	pos     geo.Point
	station int // the station it is at or heading for
	dest    geo.Point
	speed   float64 // m/s
	waiting int     // fixes left to wait at the station
}

// next picks the vehicle's next station: four times in five one of its
// cluster's (where it is in one), otherwise any.
func (w *DenseWorld) next(rng *rand.Rand, from int) int {
	if cl := w.cluster[from]; cl >= 0 && len(w.byCluster[cl]) > 1 && rng.Float64() < 0.8 {
		l := w.byCluster[cl]
		return l[rng.IntN(len(l))]
	}
	return rng.IntN(len(w.Stations))
}

// inside returns a point of circle c within a fraction of its radius.
func inside(rng *rand.Rand, c *geo.Circle, fraction float64) geo.Point {
	r := c.RadiusM * fraction * math.Sqrt(rng.Float64())
	a := rng.Float64() * 2 * math.Pi
	return Offset(c.Center, r*math.Sin(a), r*math.Cos(a))
}

// DenseFixes simulates nv vehicles for steps fixes each and returns the
// fixes in time order, one every DenseInterval per vehicle (fix i is taken
// at DenseInterval·(i/nv) after the start). A vehicle waits 2 to 20
// minutes at a station (its fixes scattered by 5 m of GPS noise), then
// drives at 20 to 60 km/h to the next.
func DenseFixes(rng *rand.Rand, w *DenseWorld, nv, steps int) []Fix {
	step := DenseInterval.Seconds()
	wait := func() int { return int((120 + rng.Float64()*1080) / step) }
	vs := make([]denseVehicle, nv)
	for i := range vs {
		v := &vs[i]
		v.station = rng.IntN(len(w.Stations))
		v.pos = inside(rng, w.Stations[v.station].Circle, 0.8)
		v.waiting = 1 + rng.IntN(wait())
	}
	fixes := make([]Fix, 0, nv*steps)
	for range steps {
		for i := range vs {
			v := &vs[i]
			fixes = append(fixes, Fix{int32(i), Offset(v.pos, rng.NormFloat64()*5, rng.NormFloat64()*5)})
			if v.waiting > 0 {
				v.waiting--
				if v.waiting == 0 {
					v.station = w.next(rng, v.station)
					v.dest = inside(rng, w.Stations[v.station].Circle, 0.8)
					v.speed = (20 + rng.Float64()*40) / 3.6
				}
				continue
			}
			dn := (v.dest.Lat - v.pos.Lat) * geo.MetresPerDegreeLat
			de := (v.dest.Lng - v.pos.Lng) * geo.MetresPerDegreeLat * math.Cos(v.pos.Lat*math.Pi/180)
			dist := math.Hypot(dn, de)
			travel := v.speed * step * (0.8 + 0.4*rng.Float64())
			if dist <= travel {
				v.pos, v.waiting = v.dest, max(wait(), 1)
				continue
			}
			h := math.Atan2(de, dn) + rng.NormFloat64()*0.05
			v.pos = Offset(v.pos, travel*math.Cos(h), travel*math.Sin(h))
		}
	}
	return fixes
}
