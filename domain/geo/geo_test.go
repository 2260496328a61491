package geo

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestHaversine(t *testing.T) {
	t.Parallel()
	cases := []struct {
		a, b Point
		want float64
	}{
		{Point{0, 0}, Point{0, 1}, MetresPerDegreeLat},
		{Point{0, 0}, Point{1, 0}, MetresPerDegreeLat},
		{Point{90, 0}, Point{-90, 0}, math.Pi * EarthRadiusM},
		{Point{0, 179.5}, Point{0, -179.5}, MetresPerDegreeLat},      // across the antimeridian
		{Point{89.9, 0}, Point{89.9, 180}, 0.2 * MetresPerDegreeLat}, // over the pole
		{Point{31.2304, 121.4737}, Point{31.2304, 121.4737}, 0},
	}
	for _, c := range cases {
		if got := Haversine(c.a, c.b); math.Abs(got-c.want) > 1e-6 {
			t.Errorf("Haversine(%v, %v) = %.9f, want %.9f", c.a, c.b, got, c.want)
		}
	}
}

// TestHaversineIsRadiusTimesCentralAngle checks, bit for bit, that the
// contract's distance is the radius times the angle the H3 index measures
// in, and that both are still the formula of the package documentation,
// written out here as it stood before the angle was split off.
func TestHaversineIsRadiusTimesCentralAngle(t *testing.T) {
	t.Parallel()
	formula := func(a, b Point) float64 {
		s1 := math.Sin((b.Lat - a.Lat) * radians / 2)
		s2 := math.Sin((b.Lng - a.Lng) * radians / 2)
		h := math.Min(1, s1*s1+math.Cos(a.Lat*radians)*math.Cos(b.Lat*radians)*s2*s2)
		return 2 * EarthRadiusM * math.Asin(math.Sqrt(h))
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range 200_000 {
		a := Point{Lat: rnd.Float64()*180 - 90, Lng: rnd.Float64()*360 - 180}
		b := Point{Lat: rnd.Float64()*180 - 90, Lng: rnd.Float64()*360 - 180}
		if i%2 == 0 { // near each other, where stations are
			b = Point{Lat: math.Max(-90, math.Min(90, a.Lat+rnd.NormFloat64()*0.01)), Lng: a.Lng + rnd.NormFloat64()*0.01}
		}
		h, c := Haversine(a, b), CentralAngle(a, b)
		if h != EarthRadiusM*c || h != formula(a, b) {
			t.Fatalf("%v-%v: Haversine %v, R·CentralAngle %v, formula %v", a, b, h, EarthRadiusM*c, formula(a, b))
		}
	}
}

func TestSegmentDistance(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		ax, ay, bx, by, want float64
	}{
		{-1, 1, 1, 1, 1},  // passes over the origin: the foot is inside
		{2, 0, 3, 0, 2},   // the near end
		{3, 4, 3, 4, 5},   // a point
		{-3, -4, 3, 4, 0}, // through the origin
		{1, 1, 2, 2, math.Sqrt2},
	} {
		if got := SegmentDistance(c.ax, c.ay, c.bx, c.by); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("SegmentDistance(%v, %v, %v, %v) = %v, want %v", c.ax, c.ay, c.bx, c.by, got, c.want)
		}
	}
}

func square(minLng, minLat, maxLng, maxLat float64) Ring {
	return Ring{{minLat, minLng}, {minLat, maxLng}, {maxLat, maxLng}, {maxLat, minLng}, {minLat, minLng}}
}

func TestPolygonContainsEdgesExactly(t *testing.T) {
	t.Parallel()
	// A 2x2 square with a 1x1 hole in its middle, and a diamond whose
	// diagonal edges pass through points that are not round numbers.
	withHole := Polygon{square(0, 0, 2, 2), square(0.5, 0.5, 1.5, 1.5)}
	diamond := Polygon{Ring{{0, 0}, {1, 1}, {0, 2}, {-1, 1}, {0, 0}}}
	cases := []struct {
		name string
		pg   Polygon
		p    Point
		want bool
	}{
		{"inside", withHole, Point{0.25, 0.25}, true},
		{"outside", withHole, Point{2.5, 1}, false},
		{"on an outer edge", withHole, Point{0, 1}, true},
		{"on an outer vertex", withHole, Point{2, 2}, true},
		{"in the hole", withHole, Point{1, 1}, false},
		{"on the hole's edge", withHole, Point{0.5, 1}, true},
		{"on the hole's vertex", withHole, Point{1.5, 1.5}, true},
		{"on a diagonal edge at a non-round point", diamond, Point{0.1, 0.1}, true},
		{"next float off the diagonal edge, inside", diamond, Point{0.1, math.Nextafter(0.1, 1)}, true},
		{"next float off the diagonal edge, outside", diamond, Point{math.Nextafter(0.1, 1), 0.1}, false},
		{"level with two vertices, outside", diamond, Point{0, 2.5}, false},
		{"level with two vertices, inside", diamond, Point{0, 1}, true},
		{"level with the top vertex, outside", diamond, Point{1, 0.5}, false},
	}
	for _, c := range cases {
		if got := c.pg.Contains(c.p); got != c.want {
			t.Errorf("%s: Contains(%v) = %v, want %v", c.name, c.p, got, c.want)
		}
	}
}

// TestPolygonContainsAgreesWithAGrid checks the crossing rule against
// an independent count on a ring with many vertices at awkward places.
func TestPolygonContainsAgreesWithAGrid(t *testing.T) {
	t.Parallel()
	// A star: vertices alternate between radius 1 and 0.4.
	var star Ring
	for i := range 16 {
		r := 1.0
		if i%2 == 1 {
			r = 0.4
		}
		a := float64(i) * math.Pi / 8
		star = append(star, Point{Lat: r * math.Sin(a), Lng: r * math.Cos(a)})
	}
	star = append(star, star[0])
	pg := Polygon{star}
	for x := -1.2; x <= 1.2; x += 0.05 {
		for y := -1.2; y <= 1.2; y += 0.05 {
			p := Point{Lat: y, Lng: x}
			if got, want := pg.Contains(p), windingInside(star, p); got != want && !nearBoundary(star, p) {
				t.Errorf("Contains(%v) = %v, winding number says %v", p, got, want)
			}
		}
	}
}

func windingInside(r Ring, p Point) bool {
	total := 0.0
	for i := 0; i+1 < len(r); i++ {
		a1 := math.Atan2(r[i].Lat-p.Lat, r[i].Lng-p.Lng)
		a2 := math.Atan2(r[i+1].Lat-p.Lat, r[i+1].Lng-p.Lng)
		d := a2 - a1
		for d > math.Pi {
			d -= 2 * math.Pi
		}
		for d < -math.Pi {
			d += 2 * math.Pi
		}
		total += d
	}
	return math.Abs(total) > math.Pi
}

func nearBoundary(r Ring, p Point) bool {
	return MultiPolygon{{r}}.BoundaryDistance(p) < 1e-6*MetresPerDegreeLat
}

func TestCircleContains(t *testing.T) {
	t.Parallel()
	c := Circle{Center: Point{31.2304, 121.4737}, RadiusM: 300}
	on := Point{31.2304 + 300/MetresPerDegreeLat, 121.4737}
	if d := Haversine(c.Center, on); !c.Contains(on) && d <= 300 {
		t.Errorf("a point at %.12f m is outside a 300 m circle", d)
	}
	if c.Contains(Point{31.2304 + 301/MetresPerDegreeLat, 121.4737}) {
		t.Error("a point 301 m away is inside a 300 m circle")
	}
	polar := Circle{Center: Point{90, 0}, RadiusM: 1000}
	if !polar.Contains(Point{89.995, -170}) || polar.Contains(Point{89.98, 10}) {
		t.Error("a circle on the pole is wrong")
	}
}

func TestBoundaryDistance(t *testing.T) {
	t.Parallel()
	mp := MultiPolygon{{square(0, 0, 1, 1)}}
	p := Point{Lat: 0.5, Lng: 1 + 100/MetresPerDegreeLat}
	if d := mp.BoundaryDistance(p); math.Abs(d-100) > 0.01 {
		t.Errorf("distance = %v, want 100 m", d)
	}
}

func TestValidatePolygon(t *testing.T) {
	t.Parallel()
	ok := []Polygon{
		{square(0, 0, 1, 1)},
		{square(0, 0, 2, 2), square(0.5, 0.5, 1.5, 1.5)},
		{square(179, 0, 180, 1)},
	}
	for _, pg := range ok {
		if err := ValidatePolygon("coordinates", pg); err != nil {
			t.Errorf("%v: %v", pg, err)
		}
	}
	bad := map[string]Polygon{
		"not closed":              {Ring{{0, 0}, {0, 1}, {1, 1}, {1, 0}}},
		"too few positions":       {Ring{{0, 0}, {0, 1}, {0, 0}}},
		"bow tie":                 {Ring{{0, 0}, {1, 1}, {1, 0}, {0, 1}, {0, 0}}},
		"latitude out of range":   {square(0, 89, 1, 91)},
		"NaN":                     {Ring{{0, 0}, {math.NaN(), 1}, {1, 1}, {0, 0}}},
		"across the antimeridian": {Ring{{0, 179}, {0, -179}, {1, -179}, {1, 179}, {0, 179}}},
		"hole outside":            {square(0, 0, 1, 1), square(2, 2, 3, 3)},
		"hole touching the outer": {square(0, 0, 2, 2), square(0, 0.5, 1, 1.5)},
		"no area":                 {Ring{{0, 0}, {0, 1}, {0, 2}, {0, 0}}},
		"spike":                   {Ring{{0, 0}, {0, 2}, {0, 1}, {1, 1}, {0, 0}}},
	}
	for name, pg := range bad {
		if err := ValidatePolygon("coordinates", pg); err == nil {
			t.Errorf("%s: accepted", name)
		} else if err.Field == "" || err.Detail == "" {
			t.Errorf("%s: error without field or detail: %+v", name, err)
		}
	}
}

func TestGCJ02(t *testing.T) {
	t.Parallel()
	// Central Shanghai: GCJ-02 moves a position by several hundred metres.
	w := Point{31.2304, 121.4737}
	g := WGS84ToGCJ02(w)
	if shift := Haversine(w, g); shift < 300 || shift > 700 {
		t.Errorf("GCJ-02 shift in Shanghai = %.0f m", shift)
	}
	if back := GCJ02ToWGS84(g); Haversine(back, w) > 0.001 {
		t.Errorf("round trip is off by %v m", Haversine(back, w))
	}
	paris := Point{48.8566, 2.3522}
	if WGS84ToGCJ02(paris) != paris || GCJ02ToWGS84(paris) != paris {
		t.Error("GCJ-02 applies outside China")
	}
}

func TestPolygonsContainNoNonFinitePoint(t *testing.T) {
	t.Parallel()
	pg := Polygon{square(0, 0, 1, 1)}
	for _, p := range []Point{{math.NaN(), 0.5}, {0.5, math.NaN()}, {math.Inf(1), 0.5}} {
		if pg.Contains(p) {
			t.Errorf("Contains(%v) = true", p)
		}
	}
}
