package h3

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	h3 "github.com/uber/h3-go/v4"

	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/geofence"
)

// The oracle: the same shapes in an Index and in geofence.BruteForce, and
// many points, ordinary and nasty, located by both. Locate must be equal;
// Near must be a superset of the shapes OutsideBy does not exclude; both
// in ascending order without repeats.

// twin is an Index and the brute-force reference holding the same shapes.
type twin struct {
	ix     *Index
	bf     *geofence.BruteForce
	shapes map[geofence.Key]geofence.Shape
}

func newTwin(t testing.TB, cfg Config) *twin {
	t.Helper()
	ix, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &twin{ix: ix, bf: geofence.NewBruteForce(), shapes: map[geofence.Key]geofence.Shape{}}
}

func (tw *twin) add(t testing.TB, k geofence.Key, s geofence.Shape) {
	t.Helper()
	if err := tw.ix.Add(k, s); err != nil {
		t.Fatalf("Add(%d, %s): %v", k, describe(s), err)
	}
	if err := tw.bf.Add(k, s); err != nil {
		t.Fatalf("brute force Add(%d): %v", k, err)
	}
	tw.shapes[k] = s
}

func (tw *twin) remove(k geofence.Key) {
	tw.ix.Remove(k)
	tw.bf.Remove(k)
	delete(tw.shapes, k)
}

func describe(s geofence.Shape) string {
	if s.Circle != nil {
		return fmt.Sprintf("circle(%v, %v, r=%v m)", s.Circle.Center.Lat, s.Circle.Center.Lng, s.Circle.RadiusM)
	}
	n := 0
	for _, pg := range s.Polygons {
		for _, r := range pg {
			n += len(r)
		}
	}
	return fmt.Sprintf("%d polygon(s), %d positions, first %v", len(s.Polygons), n, s.Polygons[0][0][0])
}

// nearDistances are the distances Near is checked at, in metres.
var nearDistances = []float64{0, 3, 50, 400, 3000, 60000}

// check locates every point with a fresh cursor, with one cursor walking
// the points in order (jumping about), and with the given cursors (which
// may be stale: made before the index last changed), and compares.
func (tw *twin) check(t testing.TB, points []geo.Point, cursors ...geofence.Cursor) {
	t.Helper()
	walker := tw.ix.NewCursor()
	cursors = append(cursors, walker)
	ref := tw.bf.NewCursor()
	var got, want []geofence.Key
	failures := 0
	fail := func(format string, args ...any) {
		t.Helper()
		failures++
		if failures <= 10 {
			t.Errorf(format, args...)
		}
	}
	for i, p := range points {
		want = ref.Locate(p, want[:0])
		got = tw.ix.NewCursor().Locate(p, got[:0])
		if !slices.Equal(got, want) {
			fail("point %d %v: Locate (fresh cursor) = %v, brute force %v%s", i, fmtPoint(p), got, want, tw.explain(p, got, want))
		}
		for j, c := range cursors {
			got = c.Locate(p, got[:0])
			if !slices.Equal(got, want) {
				fail("point %d %v: Locate (cursor %d) = %v, brute force %v%s", i, fmtPoint(p), j, got, want, tw.explain(p, got, want))
			}
		}
		if i%3 != 0 {
			continue
		}
		d := nearDistances[i/3%len(nearDistances)]
		want = ref.Near(p, d, want[:0])
		got = walker.Near(p, d, got[:0])
		if !isSet(got) {
			fail("point %d %v: Near(%v) = %v: not ascending without repeats", i, fmtPoint(p), d, got)
		}
		for _, k := range want {
			if _, ok := slices.BinarySearch(got, k); !ok {
				fail("point %d %v: Near(%v) = %v misses %d (%s)", i, fmtPoint(p), d, got, k, describe(tw.shapes[k]))
				break
			}
		}
	}
	if failures > 10 {
		t.Errorf("... %d failures in all", failures)
	}
	if n := tw.ix.fallbacks.Load(); n != 0 {
		t.Errorf("%d lookups fell back to testing every shape", n)
	}
}

func isSet(keys []geofence.Key) bool {
	for i := 1; i < len(keys); i++ {
		if keys[i] <= keys[i-1] {
			return false
		}
	}
	return true
}

func fmtPoint(p geo.Point) string { return fmt.Sprintf("(%v, %v)", p.Lat, p.Lng) }

// explain says, for a mismatch, what the index knows about the shapes in
// question at p.
func (tw *twin) explain(p geo.Point, got, want []geofence.Key) string {
	s := ""
	for k, sh := range tw.shapes {
		_, g := slices.BinarySearch(got, k)
		_, w := slices.BinarySearch(want, k)
		if g != w {
			s += fmt.Sprintf("\n\tkey %d: %s", k, describe(sh))
			if sh.Circle != nil {
				s += fmt.Sprintf(" haversine %.17g", geo.Haversine(sh.Circle.Center, p))
			}
		}
	}
	x := uint64(h3.LatLngToCell(h3.LatLng{Lat: p.Lat, Lng: p.Lng}, tw.ix.cfg.Resolution))
	e, ok := tw.ix.cells[x]
	return s + fmt.Sprintf("\n\tcell %x listed %v %+v", x, ok, e)
}

// Shapes.

func circleAt(c geo.Point, r float64) geofence.Shape {
	return geofence.Shape{Circle: &geo.Circle{Center: c, RadiusM: r}}
}

func polygonShape(rings ...geo.Ring) geofence.Shape {
	return geofence.Shape{Polygons: geo.MultiPolygon{geo.Polygon(rings)}}
}

// star returns a closed ring of n vertices around c, at angles in order
// and distances between rmin and rmax metres: simple, usually concave.
func star(rng *rand.Rand, c geo.Point, n int, rmin, rmax float64) geo.Ring {
	var r geo.Ring
	for i := range n {
		a := 2 * math.Pi * (float64(i) + 0.8*rng.Float64()) / float64(n)
		d := rmin + (rmax-rmin)*rng.Float64()
		r = append(r, offset(c, d*math.Sin(a), d*math.Cos(a)))
	}
	return append(r, r[0])
}

// dyadic rounds x to a multiple of 2^-20, so that midpoints and eighths of
// edges between such points are exactly representable and lie exactly on
// the edges.
func dyadic(x float64) float64 { return math.Round(x*(1<<20)) / (1 << 20) }

// dyadicPolygon is a polygon (possibly with a hole) whose vertices are on
// the dyadic grid.
func dyadicPolygon(rng *rand.Rand, c geo.Point, size float64) geofence.Shape {
	ring := func(rmin, rmax float64, n int) geo.Ring {
		r := star(rng, c, n, rmin, rmax)
		for i := range r {
			r[i] = geo.Point{Lat: dyadic(r[i].Lat), Lng: dyadic(r[i].Lng)}
		}
		r[len(r)-1] = r[0]
		return r
	}
	rings := []geo.Ring{ring(size*0.6, size, 5+rng.IntN(12))}
	if rng.IntN(2) == 0 {
		rings = append(rings, ring(size*0.1, size*0.35, 4+rng.IntN(5)))
	}
	return polygonShape(rings...)
}

// randomShape makes one shape near c: circles of 10 m to 50 km, concave
// polygons of 4 to 1000 vertices, with or without holes, dyadic polygons,
// MultiPolygons, and now and then an invalid polygon: a self-intersecting
// ring, a hole outside its outer ring, overlapping members (the index
// needs only closed rings).
func randomShape(rng *rand.Rand, c geo.Point) geofence.Shape {
	c = offset(c, rng.NormFloat64()*3000, rng.NormFloat64()*3000)
	size := logUniform(rng, 10, 50000)
	switch rng.IntN(12) {
	case 0, 1, 2, 3:
		return circleAt(c, size)
	case 4:
		return polygonShape(star(rng, c, 4+rng.IntN(20), size*0.3, size))
	case 5:
		return polygonShape(star(rng, c, 4+rng.IntN(30), size*0.5, size), star(rng, c, 3+rng.IntN(8), size*0.1, size*0.4))
	case 6:
		n := 100 + rng.IntN(900)
		if rng.IntN(2) == 0 {
			return polygonShape(star(rng, c, n, size*0.7, size))
		}
		return polygonShape(star(rng, c, n, size*0.7, size), star(rng, c, 20+rng.IntN(80), size*0.2, size*0.5), star(rng, offset(c, size*0.55, 0), 5, size*0.02, size*0.1))
	case 7:
		return dyadicPolygon(rng, c, size)
	case 8:
		a, b := star(rng, c, 6, size*0.2, size*0.3), star(rng, offset(c, size*2, size*2), 7, size*0.5, size)
		return geofence.Shape{Polygons: geo.MultiPolygon{{a}, {b}}}
	case 9: // a hole outside its outer ring, partly or wholly
		return polygonShape(star(rng, c, 5+rng.IntN(8), size*0.5, size), star(rng, offset(c, size*rng.Float64()*2, size), 4+rng.IntN(4), size*0.2, size*0.6))
	case 10: // overlapping members
		return geofence.Shape{Polygons: geo.MultiPolygon{{star(rng, c, 7, size*0.5, size)}, {star(rng, offset(c, size/2, 0), 5, size*0.3, size)}}}
	default:
		var r geo.Ring
		for range 4 + rng.IntN(6) {
			r = append(r, offset(c, rng.NormFloat64()*size, rng.NormFloat64()*size))
		}
		return polygonShape(append(r, r[0]))
	}
}

// indexable returns a random shape near c whose coordinates are all in
// range (near the antimeridian, random shapes often are not).
func indexable(rng *rand.Rand, c geo.Point) geofence.Shape {
	for {
		s := randomShape(rng, c)
		if _, err := newShapeRec(0, s); err == nil {
			return s
		}
	}
}

// Points.

// boundaryPoints returns points at or within a float of the edges of s:
// for a circle, the last float64 positions inside and the first outside
// along random bearings; for polygons, vertices, points exactly on
// axis-parallel or dyadic edges, midpoints, and their float neighbours.
func boundaryPoints(rng *rand.Rand, s geofence.Shape, n int) []geo.Point {
	var out []geo.Point
	if s.Circle != nil {
		for range n {
			in, outside := circleEdge(rng, *s.Circle)
			out = append(out, in, outside)
		}
		return out
	}
	for _, pg := range s.Polygons {
		for _, ring := range pg {
			for range n {
				if len(ring) < 2 {
					break
				}
				i := rng.IntN(len(ring) - 1)
				a, b := ring[i], ring[i+1]
				out = append(out, a)
				for _, f := range []float64{0.5, 0.25, 0.125, 0.875} {
					m := geo.Point{Lat: a.Lat + (b.Lat-a.Lat)*f, Lng: a.Lng + (b.Lng-a.Lng)*f}
					out = append(out, m, nudge(rng, m))
				}
				out = append(out, nudge(rng, a))
			}
		}
	}
	return out
}

// nudge moves p by one float in latitude, longitude or both.
func nudge(rng *rand.Rand, p geo.Point) geo.Point {
	dir := func() float64 {
		if rng.IntN(2) == 0 {
			return math.Inf(1)
		}
		return math.Inf(-1)
	}
	switch rng.IntN(3) {
	case 0:
		p.Lat = math.Nextafter(p.Lat, dir())
	case 1:
		p.Lng = math.Nextafter(p.Lng, dir())
	default:
		p.Lat = math.Nextafter(p.Lat, dir())
		p.Lng = math.Nextafter(p.Lng, dir())
	}
	return clampPoint(p)
}

func clampPoint(p geo.Point) geo.Point {
	p.Lat = math.Max(-90, math.Min(90, p.Lat))
	p.Lng = math.Max(-180, math.Min(180, p.Lng))
	return p
}

// circleEdge finds, along a random bearing from the centre, the last
// float64 position inside the circle and the first outside (by the
// contract): bisection on the distance, then float steps in latitude or
// longitude.
func circleEdge(rng *rand.Rand, c geo.Circle) (in, out geo.Point) {
	theta := rng.Float64() * 2 * math.Pi
	at := func(t float64) geo.Point {
		return destination(c.Center.Lat, c.Center.Lng, t/earthR, theta)
	}
	lo, hi := 0.0, c.RadiusM*1.01+1
	if !c.Contains(at(lo)) {
		return at(lo), at(lo)
	}
	if c.Contains(at(hi)) {
		return at(hi), at(hi) // a circle over the whole sphere
	}
	for range 200 {
		mid := (lo + hi) / 2
		if mid == lo || mid == hi {
			break
		}
		if c.Contains(at(mid)) {
			lo = mid
		} else {
			hi = mid
		}
	}
	in, out = at(lo), at(hi)
	// Walk one coordinate float by float from in towards out.
	step := func(p geo.Point, lat bool) geo.Point {
		if lat {
			p.Lat = math.Nextafter(p.Lat, out.Lat)
		} else {
			p.Lng = math.Nextafter(p.Lng, out.Lng)
		}
		return p
	}
	lat := rng.IntN(2) == 0
	if (lat && in.Lat == out.Lat) || (!lat && in.Lng == out.Lng) {
		lat = !lat
	}
	// Near a pole a step in longitude moves the point by almost nothing:
	// give up after a while and keep the bisection's pair, a few
	// nanometres apart.
	p := in
	for range 4096 {
		q := step(p, lat)
		if q == p {
			break
		}
		if !c.Contains(q) {
			return p, q
		}
		p = q
	}
	return in, out
}

// cellPoints returns vertices of the H3 cells the index lists, points
// between consecutive vertices, cell centres, and float neighbours of all
// of them: points on, or within a float of, cell boundaries.
func cellPoints(rng *rand.Rand, ix *Index, n int) []geo.Point {
	cells := make([]uint64, 0, len(ix.cells))
	for c := range ix.cells {
		cells = append(cells, c)
	}
	slices.Sort(cells)
	var out []geo.Point
	for range n {
		if len(cells) == 0 {
			break
		}
		c := h3.Cell(cells[rng.IntN(len(cells))])
		if c.Resolution() != ix.cfg.Resolution {
			c = c.CenterChild(ix.cfg.Resolution)
		}
		ll := c.LatLng()
		out = append(out, geo.Point{Lat: ll.Lat, Lng: ll.Lng})
		b := c.Boundary()
		for i, v := range b {
			w := b[(i+1)%len(b)]
			p := geo.Point{Lat: v.Lat, Lng: v.Lng}
			m := geo.Point{Lat: (v.Lat + w.Lat) / 2, Lng: (v.Lng + w.Lng) / 2}
			if math.Abs(v.Lng-w.Lng) > 180 {
				m.Lng = v.Lng // an edge across the antimeridian: skip the midpoint
			}
			out = append(out, p, nudge(rng, p), m, nudge(rng, m))
		}
	}
	return out
}

// around returns n points scattered around c, within about spread metres.
func around(rng *rand.Rand, c geo.Point, spread float64, n int) []geo.Point {
	out := make([]geo.Point, n)
	for i := range out {
		s := spread * math.Exp(-3*rng.Float64())
		out[i] = clampPoint(offset(c, rng.NormFloat64()*s, rng.NormFloat64()*s))
	}
	return out
}

// tracks returns n points along random walks from points near c, in steps
// of up to 40 m (a vehicle's fixes), so that cursors reuse their discs and
// cross cell boundaries.
func tracks(rng *rand.Rand, c geo.Point, spread float64, n int) []geo.Point {
	var out []geo.Point
	for len(out) < n {
		p := clampPoint(offset(c, rng.NormFloat64()*spread, rng.NormFloat64()*spread))
		h := rng.Float64() * 2 * math.Pi
		v := rng.Float64() * 40
		for range 50 {
			out = append(out, p)
			h += rng.NormFloat64() * 0.2
			p = clampPoint(offset(p, v*math.Cos(h), v*math.Sin(h)))
		}
	}
	return out[:n]
}
