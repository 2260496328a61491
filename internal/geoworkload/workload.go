// Package geoworkload generates the geofence benchmarks' workload:
// stations clustered in the cities of the Yangtze delta (Shanghai and
// southern Jiangsu), many in industrial parks where they overlap, and
// vehicles driving between them or parked at them, one fix a second each.
// The H3 index's benchmarks and the service's benchmarks (bench/) use the
// same world, so that their figures compare.
package geoworkload

import (
	"math"
	"math/rand/v2"

	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/geofence"
)

// City is a cluster of stations and vehicles, weighted by its share.
type City struct {
	name     string
	lat, lng float64
	weight   float64
}

var DeltaCities = []City{
	{"Shanghai", 31.2304, 121.4737, 4},
	{"Suzhou", 31.2989, 120.5853, 2},
	{"Nanjing", 32.0603, 118.7969, 2},
	{"Wuxi", 31.4912, 120.3119, 1.5},
	{"Changzhou", 31.8107, 119.9741, 1},
	{"Nantong", 31.9802, 120.8943, 1},
	{"Kunshan", 31.3856, 120.9808, 0.8},
}

// offset moves p by north and east metres (a local flat approximation,
// good enough for generating data).
func Offset(p geo.Point, north, east float64) geo.Point {
	return geo.Point{
		Lat: p.Lat + north/geo.MetresPerDegreeLat,
		Lng: p.Lng + east/(geo.MetresPerDegreeLat*math.Cos(p.Lat*math.Pi/180)),
	}
}

func LogUniform(rng *rand.Rand, lo, hi float64) float64 {
	return lo * math.Exp(rng.Float64()*math.Log(hi/lo))
}

// Anchors of ten metropolitan regions of China: the delta's layout of
// cities, translated so that Shanghai falls on each, makes a country-scale
// world with the benchmark's density.
var RegionAnchors = []geo.Point{
	{Lat: 31.2304, Lng: 121.4737}, // Shanghai: the delta itself
	{Lat: 23.1291, Lng: 113.2644}, // Guangzhou
	{Lat: 39.9042, Lng: 116.4074}, // Beijing
	{Lat: 30.5728, Lng: 104.0668}, // Chengdu
	{Lat: 30.5928, Lng: 114.3055}, // Wuhan
	{Lat: 34.3416, Lng: 108.9398}, // Xi'an
	{Lat: 41.8057, Lng: 123.4315}, // Shenyang
	{Lat: 25.0389, Lng: 102.7183}, // Kunming
	{Lat: 34.7466, Lng: 113.6254}, // Zhengzhou
	{Lat: 24.4798, Lng: 118.0894}, // Xiamen
}

func CitiesAround(anchors []geo.Point) []City {
	var out []City
	for _, a := range anchors {
		for _, c := range DeltaCities {
			out = append(out, City{c.name, c.lat - DeltaCities[0].lat + a.Lat, c.lng - DeltaCities[0].lng + a.Lng, c.weight})
		}
	}
	return out
}

// World is the stations of a workload.
type World struct {
	cities []City
	parks  [][]geo.Point // per city
	// Stations are the stations' shapes.
	Stations []geofence.Shape
	city     []int // city of each station
	byCity   [][]int
}

func pickCity(rng *rand.Rand, cities []City) int {
	total := 0.0
	for _, c := range cities {
		total += c.weight
	}
	x := rng.Float64() * total
	for i, c := range cities {
		if x -= c.weight; x < 0 {
			return i
		}
	}
	return 0
}

// NewDeltaWorld makes n stations in the delta's cities.
func NewDeltaWorld(rng *rand.Rand, n int) *World { return NewWorld(rng, n, DeltaCities) }

// newWorld makes n stations: 65% circles of 50 m to 2 km radius, 35%
// polygons (concave stars of 4 to 24 vertices, rectangles, some with a
// hole) of similar sizes; 60% of them in industrial parks.
func NewWorld(rng *rand.Rand, n int, cities []City) *World {
	w := &World{cities: cities, byCity: make([][]int, len(cities))}
	for _, c := range cities {
		var parks []geo.Point
		for range 12 {
			parks = append(parks, Offset(geo.Point{Lat: c.lat, Lng: c.lng}, rng.NormFloat64()*10000, rng.NormFloat64()*10000))
		}
		w.parks = append(w.parks, parks)
	}
	for i := range n {
		ci := pickCity(rng, cities)
		c := cities[ci]
		var centre geo.Point
		if rng.Float64() < 0.6 {
			park := w.parks[ci][rng.IntN(len(w.parks[ci]))]
			centre = Offset(park, rng.NormFloat64()*1500, rng.NormFloat64()*1500)
		} else {
			centre = Offset(geo.Point{Lat: c.lat, Lng: c.lng}, rng.NormFloat64()*9000, rng.NormFloat64()*9000)
		}
		w.Stations = append(w.Stations, RandomStation(rng, centre))
		w.city = append(w.city, ci)
		w.byCity[ci] = append(w.byCity[ci], i)
	}
	return w
}

func RandomStation(rng *rand.Rand, centre geo.Point) geofence.Shape {
	if rng.Float64() < 0.65 {
		return geofence.Shape{Circle: &geo.Circle{Center: centre, RadiusM: LogUniform(rng, 50, 2000)}}
	}
	size := LogUniform(rng, 50, 1500)
	var outer geo.Ring
	if rng.Float64() < 0.3 {
		w, h := size*(0.5+rng.Float64()), size*(0.5+rng.Float64())
		outer = geo.Ring{Offset(centre, -h, -w), Offset(centre, -h, w), Offset(centre, h, w), Offset(centre, h, -w), Offset(centre, -h, -w)}
	} else {
		nv := 4 + rng.IntN(21)
		for i := range nv {
			a := 2 * math.Pi * (float64(i) + 0.3*rng.Float64()) / float64(nv)
			r := size * (0.45 + 0.55*rng.Float64())
			outer = append(outer, Offset(centre, r*math.Sin(a), r*math.Cos(a)))
		}
		outer = append(outer, outer[0])
	}
	pg := geo.Polygon{outer}
	if rng.Float64() < 0.1 {
		h := size * 0.15
		pg = append(pg, geo.Ring{Offset(centre, -h, -h), Offset(centre, -h, h), Offset(centre, h, h), Offset(centre, h, -h), Offset(centre, -h, -h)})
	}
	return geofence.Shape{Polygons: geo.MultiPolygon{pg}}
}

// somewhere returns a point of station s: near its centre, or anywhere up
// to a little beyond its edge.
func somewhere(rng *rand.Rand, s geofence.Shape) geo.Point {
	if s.Circle != nil {
		r := s.Circle.RadiusM * 1.1 * math.Sqrt(rng.Float64())
		a := rng.Float64() * 2 * math.Pi
		return Offset(s.Circle.Center, r*math.Sin(a), r*math.Cos(a))
	}
	b := s.Bounds()
	return geo.Point{Lat: b.MinLat + rng.Float64()*(b.MaxLat-b.MinLat), Lng: b.MinLng + rng.Float64()*(b.MaxLng-b.MinLng)}
}

type vehicle struct {
	pos     geo.Point
	city    int
	speed   float64 // m/s cruising
	dest    geo.Point
	parked  int // seconds left parked
	heading float64
}

// Fix is one position of one vehicle (an index into the fleet).
type Fix struct {
	Vehicle int32
	P       geo.Point
}

// Fixes simulates nv vehicles for steps seconds and returns their
// fixes in time order: 30% parked at a station for the whole time (with
// GPS noise), the others driving at 0-120 km/h between stations of their
// city, parking a while on arrival.
func Fixes(rng *rand.Rand, w *World, nv, steps int) []Fix {
	vs := make([]vehicle, nv)
	station := func(ci int) geofence.Shape {
		l := w.byCity[ci]
		return w.Stations[l[rng.IntN(len(l))]]
	}
	for i := range vs {
		ci := pickCity(rng, w.cities)
		v := &vs[i]
		v.city = ci
		v.pos = somewhere(rng, station(ci))
		if rng.Float64() < 0.3 {
			v.parked = math.MaxInt
			continue
		}
		v.speed = rng.Float64() * 120 / 3.6
		v.dest = somewhere(rng, station(ci))
		// Start part of the way along a trip.
		v.pos = geo.Point{Lat: v.pos.Lat + (v.dest.Lat-v.pos.Lat)*rng.Float64(), Lng: v.pos.Lng + (v.dest.Lng-v.pos.Lng)*rng.Float64()}
	}
	fixes := make([]Fix, 0, nv*steps)
	for range steps {
		for i := range vs {
			v := &vs[i]
			noise := Offset(v.pos, rng.NormFloat64()*3, rng.NormFloat64()*3)
			fixes = append(fixes, Fix{int32(i), noise})
			if v.parked > 0 {
				v.parked--
				continue
			}
			dn := (v.dest.Lat - v.pos.Lat) * geo.MetresPerDegreeLat
			de := (v.dest.Lng - v.pos.Lng) * geo.MetresPerDegreeLat * math.Cos(v.pos.Lat*math.Pi/180)
			dist := math.Hypot(dn, de)
			speed := math.Max(0, v.speed*(0.8+0.4*rng.Float64()))
			if dist < speed+20 {
				v.pos = v.dest
				v.parked = 20 + rng.IntN(200)
				v.dest = somewhere(rng, station(v.city))
				continue
			}
			h := math.Atan2(de, dn) + rng.NormFloat64()*0.1
			v.pos = Offset(v.pos, speed*math.Cos(h), speed*math.Sin(h))
		}
	}
	return fixes
}
