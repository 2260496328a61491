package h3

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/geofence"
)

// fuzzAnchors are the places a fuzz input builds its index around.
var fuzzAnchors = []geo.Point{
	{Lat: 31.2304, Lng: 121.4737}, // Shanghai
	{Lat: 12.5, Lng: 180},         // the antimeridian
	{Lat: -47.25, Lng: -180},      // the antimeridian, the other way
	{Lat: 90, Lng: 0},             // the north pole
	{Lat: -89.999, Lng: 179.99},   // near the south pole and the antimeridian
	{Lat: 0, Lng: 0},
	{Lat: 64.75, Lng: -21.9375}, // dyadic coordinates
}

// fuzzReader hands out the bytes of a fuzz input; past the end it gives
// zeros.
type fuzzReader struct{ b []byte }

func (r *fuzzReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *fuzzReader) u16() int       { return int(r.byte())<<8 | int(r.byte()) }
func (r *fuzzReader) unit() float64  { return float64(r.u16()) / 65535 }
func (r *fuzzReader) angle() float64 { return float64(r.byte()) / 256 * 2 * math.Pi }

// FuzzLocate builds a small index from the input (an anchor, a
// resolution, up to four circles or polygons), locates points the input
// chooses (around the anchor, on vertices and edges, on the float
// boundary of circles) and compares with brute force.
func FuzzLocate(f *testing.F) {
	f.Add([]byte{0, 4, 3, 0, 10, 0, 0, 200, 0, 1, 2, 0, 50, 80, 8, 3, 20, 1, 50, 0, 0, 3, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	f.Add([]byte{1, 4, 2, 0, 0, 0, 0, 255, 255, 1, 0, 0, 0, 100, 6, 0, 255, 9, 9, 9, 1, 200, 2, 3, 3, 3})
	f.Add([]byte{3, 2, 2, 0, 0, 0, 0, 128, 0, 1, 10, 10, 0, 60, 5, 1, 5, 5, 5, 5, 2, 2, 2, 1, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		tw, points, res := fuzzWorld(t, data)
		tw.check(t, points)
		if testing.Verbose() {
			t.Logf("resolution %d, %d shapes, %d cells, %d points", res, len(tw.shapes), len(tw.ix.cells), len(points))
		}
	})
}

// fuzzWorld decodes a fuzz input into an index and the points to check.
func fuzzWorld(t *testing.T, data []byte) (*twin, []geo.Point, int) {
	r := &fuzzReader{b: data}
	anchor := fuzzAnchors[int(r.byte())%len(fuzzAnchors)]
	res := 5 + int(r.byte())%6
	maxSize := 50000.0
	if res >= 9 {
		maxSize = 5000
	}
	tw := newTwin(t, Config{Resolution: res, CoarseCells: 1 + int(r.byte())%64})
	n := 1 + int(r.byte())%4
	var shapes []geofence.Shape
	for k := range n {
		kind := r.byte()
		c := polar(anchor.Lat, anchor.Lng, r.unit()*maxSize, r.angle())
		size := math.Pow(10, -2+math.Log10(maxSize*100)*r.unit()) // 1 cm to maxSize
		var s geofence.Shape
		if kind%2 == 0 {
			s = circleAt(c, size)
		} else {
			var ring geo.Ring
			nv := 3 + int(r.byte())%12
			for i := range nv {
				a := r.angle()
				if kind&2 != 0 { // in order: a star; otherwise anything
					a = (float64(i) + a/(2*math.Pi)) / float64(nv) * 2 * math.Pi
				}
				p := polar(c.Lat, c.Lng, size*(0.2+0.8*r.unit()), a)
				if kind&4 != 0 {
					p = geo.Point{Lat: dyadic(p.Lat), Lng: dyadic(p.Lng)}
				}
				ring = append(ring, p)
			}
			ring = append(ring, ring[0])
			rings := []geo.Ring{ring}
			if kind&8 != 0 {
				rings = append(rings, geo.Ring{c, polar(c.Lat, c.Lng, size*0.1, 0), polar(c.Lat, c.Lng, size*0.1, 2), c})
			}
			s = polygonShape(rings...)
		}
		if _, err := newShapeRec(0, s); err != nil {
			continue
		}
		before := len(tw.ix.cells)
		tw.add(t, geofence.Key(k), s)
		shapes = append(shapes, s)
		if testing.Verbose() {
			t.Logf("shape %d: %s: %d cells", k, describe(s), len(tw.ix.cells)-before)
		}
	}
	rng := rand.New(rand.NewPCG(uint64(len(data)), uint64(r.u16())))
	var points []geo.Point
	for len(r.b) > 0 && len(points) < 1000 {
		mode := r.byte()
		switch {
		case mode < 128 || len(shapes) == 0:
			points = append(points, polar(anchor.Lat, anchor.Lng, r.unit()*maxSize*1.5, r.angle()))
		case mode < 192:
			s := shapes[int(mode)%len(shapes)]
			points = append(points, boundaryPoints(rng, s, 1)...)
		default:
			points = append(points, cellPoints(rng, tw.ix, 1)...)
		}
	}
	points = append(points, anchor, nudge(rng, anchor))
	return tw, points, res
}
