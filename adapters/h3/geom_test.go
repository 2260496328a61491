package h3

import (
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tmsfleet/tms/domain/geo"
)

// TestCapRects checks that every point of a cap is in one of its
// rectangles, at the poles and across the antimeridian too.
func TestCapRects(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(4, 4))
	for i := range iterations(20000) {
		c := randomPoint(rng)
		r := math.Pow(10, -9+8*rng.Float64()) // 6 mm to 600 km
		if i%10 == 0 {
			r = rng.Float64() * 2
		}
		rs, n := capRects(c.Lat, c.Lng, r)
		for k := range 8 {
			d := r
			if k > 0 {
				d = r * rng.Float64()
			}
			p := destination(c.Lat, c.Lng, d, rng.Float64()*2*math.Pi)
			if havRad(c.Lat, c.Lng, p.Lat, p.Lng) > r*(1-1e-12) {
				continue // rounded out of the cap
			}
			ok := false
			for _, q := range rs[:n] {
				ok = ok || q.contains(p)
			}
			if !ok {
				t.Fatalf("cap (%v, %v, r=%v): %v is in it but in none of %v", c.Lat, c.Lng, r, p, rs[:n])
			}
		}
	}
}

// TestSegMayMeet checks that whenever a segment and a rectangle share a
// point, the test says they may meet. Segments are made through a point of
// the rectangle, or grazing its corners and edges.
func TestSegMayMeet(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 5))
	for range iterations(200000) {
		x0, y0 := -180+360*rng.Float64(), -90+180*rng.Float64()
		w, h := math.Pow(10, -8+6*rng.Float64()), math.Pow(10, -8+6*rng.Float64())
		r := rect{minLat: y0, minLng: x0, maxLat: y0 + h, maxLng: x0 + w}
		// A point of the rectangle: inside, on an edge, or a corner.
		p := geo.Point{Lat: y0 + h*rng.Float64(), Lng: x0 + w*rng.Float64()}
		switch rng.IntN(4) {
		case 0:
			p.Lat = r.minLat
		case 1:
			p.Lng = r.maxLng
		case 2:
			p = geo.Point{Lat: r.maxLat, Lng: r.minLng}
		}
		// A segment through p (exactly, when p is its end or a dyadic
		// point of it), long or short, in any direction.
		l := math.Pow(10, -9+10*rng.Float64())
		a := rng.Float64() * 2 * math.Pi
		d := geo.Point{Lat: l * math.Sin(a), Lng: l * math.Cos(a)}
		var s, e geo.Point
		if rng.IntN(2) == 0 {
			s, e = p, geo.Point{Lat: p.Lat + d.Lat, Lng: p.Lng + d.Lng}
		} else {
			s, e = geo.Point{Lat: p.Lat - d.Lat, Lng: p.Lng - d.Lng}, geo.Point{Lat: p.Lat + d.Lat, Lng: p.Lng + d.Lng}
		}
		if !meetsExactly(s, e, r) {
			continue // rounding moved the segment off p
		}
		if !segMayMeet(s, e, r) {
			t.Fatalf("segment %v-%v meets %+v, segMayMeet says no", s, e, r)
		}
	}
}

// meetsExactly decides, in rational arithmetic, whether segment a-b
// meets rectangle r (separating axes).
func meetsExactly(a, b geo.Point, r rect) bool {
	if math.Max(a.Lng, b.Lng) < r.minLng || math.Min(a.Lng, b.Lng) > r.maxLng ||
		math.Max(a.Lat, b.Lat) < r.minLat || math.Min(a.Lat, b.Lat) > r.maxLat {
		return false
	}
	q := func(f float64) *big.Rat { return new(big.Rat).SetFloat64(f) }
	side := func(x, y float64) int {
		l := new(big.Rat).Mul(new(big.Rat).Sub(q(b.Lng), q(a.Lng)), new(big.Rat).Sub(q(y), q(a.Lat)))
		rr := new(big.Rat).Mul(new(big.Rat).Sub(q(b.Lat), q(a.Lat)), new(big.Rat).Sub(q(x), q(a.Lng)))
		return l.Cmp(rr)
	}
	s := []int{side(r.minLng, r.minLat), side(r.maxLng, r.minLat), side(r.minLng, r.maxLat), side(r.maxLng, r.maxLat)}
	return slices.Min(s) <= 0 && slices.Max(s) >= 0
}

// TestHUpper checks that hUpper bounds the true haversine of the distance,
// up to the rounding of the coordinate differences (see hUpper).
func TestHUpper(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(6, 6))
	for range iterations(100000) {
		c := randomPoint(rng)
		p := destination(c.Lat, c.Lng, math.Pow(10, -9+8.5*rng.Float64()), rng.Float64()*2*math.Pi)
		if rng.IntN(10) == 0 {
			p = randomPoint(rng)
		}
		cos0 := math.Cos(c.Lat * radians)
		got := hUpper(c.Lat, c.Lng, cos0, p)
		d := havRad(c.Lat, c.Lng, p.Lat, p.Lng)
		if up := 2 * math.Asin(math.Sqrt(math.Min(got, 1))); up < d*(1-1e-12)-2e-15 {
			t.Fatalf("hUpper(%v, %v) = %v bounds %v rad, less than the distance %v rad", c, p, got, up, d)
		}
	}
}

func TestSin2Half(t *testing.T) {
	t.Parallel()
	for x := -0.1; x <= 0.1; x += 1e-5 {
		want := math.Sin(x/2) * math.Sin(x/2)
		if got := sin2half(x); math.Abs(got-want) > 1e-10*want+1e-300 {
			t.Fatalf("sin2half(%v) = %v, want %v", x, got, want)
		}
	}
}

// TestCircleFastTest checks that where the fast test decides, it agrees
// with the contract, and at the float boundary of a circle it defers to it.
func TestCircleFastTest(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 7))
	deferred, decided := 0, 0
	for range iterations(3000) {
		c := geo.Circle{Center: randomPoint(rng), RadiusM: logUniform(rng, 0.01, 2e6)}
		ct := newCircleTest(c)
		check := func(p geo.Point) {
			cosp := math.NaN()
			switch ct.decide(p, &cosp) {
			case 1:
				decided++
				if !c.Contains(p) {
					t.Fatalf("%+v: fast test says %v inside, the contract says outside (d = %.17g)", c, p, geo.Haversine(c.Center, p))
				}
			case -1:
				decided++
				if c.Contains(p) {
					t.Fatalf("%+v: fast test says %v outside, the contract says inside (d = %.17g)", c, p, geo.Haversine(c.Center, p))
				}
			default:
				deferred++
			}
		}
		for range 5 {
			in, out := circleEdge(rng, c)
			check(in)
			check(out)
			check(destination(c.Center.Lat, c.Center.Lng, c.RadiusM/earthR*(0.5+rng.Float64()), rng.Float64()*2*math.Pi))
		}
	}
	if deferred == 0 || decided == 0 {
		t.Errorf("deferred %d, decided %d: the test does not exercise both", deferred, decided)
	}
}

// TestPolygonProgram compiles random polygons for random rectangles and
// compares the program with Polygon.Contains at points of the rectangle,
// many of them on or a float beside edges and vertices.
func TestPolygonProgram(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(8, 8))
	for i := range iterations(3000) {
		base := geo.Point{Lat: -60 + 120*rng.Float64(), Lng: -170 + 340*rng.Float64()}
		s := randomShape(rng, base)
		if s.Circle != nil {
			continue
		}
		sh, err := newShapeRec(0, s)
		if err != nil {
			continue
		}
		// A rectangle around a point near the shape, of a cell's size or so.
		pts := boundaryPoints(rng, s, 4)
		centre := pts[rng.IntN(len(pts))]
		rr := math.Pow(10, -6+3*rng.Float64()) // 6 m to 6 km
		rs, nr := capRects(centre.Lat, centre.Lng, rr)
		if nr != 1 {
			continue
		}
		q := rs[0]
		var sc scratch
		if !emitPolygons(&sc, geofence0, sh, q) {
			t.Fatalf("%d: cannot encode", i)
		}
		var test []geo.Point
		for _, p := range pts {
			if q.contains(p) {
				test = append(test, p)
			}
		}
		for range 50 {
			test = append(test, geo.Point{Lat: q.minLat + (q.maxLat-q.minLat)*rng.Float64(), Lng: q.minLng + (q.maxLng-q.minLng)*rng.Float64()})
		}
		for _, p := range test {
			if got, want := polyAt(sc.prog, 0, p), s.Polygons.Contains(p); got != want {
				t.Fatalf("%d: %s, rectangle %+v: program says %v at %v, Contains %v", i, describe(s), q, got, p, want)
			}
		}
	}
}

const geofence0 = 0

func TestPackCells(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(9, 9))
	for range 100 {
		cells := make([]uint64, rng.IntN(200))
		for i := range cells {
			cells[i] = rng.Uint64()
		}
		packed := packCells(slices.Clone(cells))
		var got []uint64
		unpackCells(packed, func(c uint64) { got = append(got, c) })
		slices.Sort(cells)
		if !slices.Equal(got, cells) {
			t.Fatal("packCells does not round-trip")
		}
	}
}
