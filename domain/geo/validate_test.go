package geo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// comb is a valid ring of 4·teeth vertices (plus the closing position):
// a spine along the bottom and teeth up from it, teeth and gaps of equal
// width, at (lng0, lat0) with unit size u degrees. Its tops, gap bottoms
// and sides are long runs of collinear vertices: the shape that made the
// quadratic validation with rational orientations take seconds.
func comb(teeth int, lng0, lat0, u float64) Ring {
	at := func(x, y int) Point { return Point{Lat: lat0 + float64(y)*u, Lng: lng0 + float64(x)*u} }
	w := 2*teeth - 1
	r := Ring{at(0, 0), at(w, 0)}
	for i := teeth - 1; i >= 0; i-- {
		r = append(r, at(2*i+1, 10), at(2*i, 10))
		if i > 0 {
			r = append(r, at(2*i, 1), at(2*i-1, 1))
		}
	}
	return append(r, r[0])
}

// star is a ring of n vertices around (lng0, lat0) at random angles
// (sorted) and random radii in [rmin, rmax]: simple, but with any number
// of spikes.
func star(rng *rand.Rand, n int, lng0, lat0, rmin, rmax float64) Ring {
	angles := make([]float64, n)
	for i := range angles {
		angles[i] = (float64(i) + rng.Float64()*0.9) * 2 * math.Pi / float64(n)
	}
	r := make(Ring, 0, n+1)
	for _, a := range angles {
		d := rmin + rng.Float64()*(rmax-rmin)
		r = append(r, Point{Lat: lat0 + d*math.Sin(a), Lng: lng0 + d*math.Cos(a)})
	}
	return append(r, r[0])
}

// gridRing is a ring of n random vertices on a small integer grid (size
// g), scaled by u and moved to (lng0, lat0): mostly invalid, and full of
// the degenerate cases (shared vertices, collinear overlaps, vertices on
// edges) that a sweep must get right.
func gridRing(rng *rand.Rand, n, g int, lng0, lat0, u float64) Ring {
	r := make(Ring, 0, n+1)
	for range n {
		r = append(r, Point{Lat: lat0 + float64(rng.IntN(g))*u, Lng: lng0 + float64(rng.IntN(g))*u})
	}
	return append(r, r[0])
}

func rect(minLng, minLat, maxLng, maxLat float64) Ring {
	return Ring{{minLat, minLng}, {minLat, maxLng}, {maxLat, maxLng}, {maxLat, minLng}, {minLat, minLng}}
}

func reversed(r Ring) Ring {
	out := make(Ring, len(r))
	for i, p := range r {
		out[len(r)-1-i] = p
	}
	return out
}

// agree checks that the sweep and the oracle accept and refuse the same
// shape.
func agree(t *testing.T, name string, mp MultiPolygon) {
	t.Helper()
	var got, want *ShapeError
	if len(mp) == 1 {
		got, want = ValidatePolygon("c", mp[0]), oracleValidatePolygon("c", mp[0])
	} else {
		got, want = ValidateMultiPolygon("c", mp), oracleValidateMultiPolygon("c", mp)
	}
	if (got == nil) != (want == nil) {
		t.Errorf("%s: sweep says %v, the quadratic oracle %v\n%v", name, got, want, mp)
	}
	if got != nil && (got.Field == "" || got.Detail == "") {
		t.Errorf("%s: error without field or detail: %+v", name, got)
	}
}

// TestValidateAgreesWithTheQuadraticOracle compares the sweep with the
// validation it replaced (all pairs of edges, rational orientations) on
// random and adversarial shapes, valid and not.
func TestValidateAgreesWithTheQuadraticOracle(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 11))
	const u = 1e-4
	lng0, lat0 := 121.4737, 31.2304
	at := func(x, y float64) Point { return Point{Lat: lat0 + y*u, Lng: lng0 + x*u} }
	ring := func(xy ...float64) Ring {
		var r Ring
		for i := 0; i+1 < len(xy); i += 2 {
			r = append(r, at(xy[i], xy[i+1]))
		}
		return append(r, r[0])
	}
	sq := func(x0, y0, x1, y1 float64) Ring { return ring(x0, y0, x1, y0, x1, y1, x0, y1) }

	fixed := map[string]MultiPolygon{
		"comb":                       {{comb(60, lng0, lat0, u)}},
		"comb, clockwise":            {{reversed(comb(60, lng0, lat0, u))}},
		"comb on integers":           {{comb(60, 0, 0, 1)}},
		"comb with a hole per tooth": {append(Polygon{comb(8, 0, 0, 1)}, combHoles(8)...)},
		"figure eight at a vertex":   {{ring(0, 0, 2, 2, 4, 0, 4, 4, 2, 2, 0, 4)}},
		"spike":                      {{ring(0, 0, 4, 0, 4, 4, 2, 4, 2, 6, 2, 4, 0, 4)}},
		"collinear spike":            {{ring(0, 0, 4, 0, 6, 0, 4, 0, 4, 4)}},
		"vertex on an edge":          {{ring(0, 0, 4, 0, 4, 4, 2, 0, 0, 4)}},
		"edges overlapping":          {{ring(0, 0, 4, 0, 4, 2, 1, 2, 1, 0, 0, 0, 0, 4)}},
		"vertical edges overlap":     {{ring(0, 0, 2, 0, 2, 4, 2, 1, 3, 1, 3, 5, 0, 5)}},
		// A notch of the outer ring reaching (2, 2) from the left, and a
		// hole whose tip reaches it from the right: the edges that meet
		// are never in the sweep together, so only the vertex check sees
		// them.
		"hole tip on the outer ring's notch": {{ring(0, 0, 6, 0, 6, 4, 0, 4, 0, 2.5, 2, 2, 0, 1.5), ring(2, 2, 3, 1, 3, 3)}},
		// Two edges that cross at (5, 5), kept apart in the sweep by a
		// hole's edges until x = 2: only the check when those leave finds
		// the crossing.
		"crossing found when an edge between leaves": {{ring(0, 0, 10, 10, 10, 0, 0, 10, -5, 5), ring(-1, 5, 2, 5, 0.5, 5.5)}},
		"hole touching an outer edge":                {{sq(0, 0, 6, 6), ring(0, 2, 2, 1, 2, 3)}},
		"hole sharing an outer edge":                 {{sq(0, 0, 6, 6), sq(0, 2, 2, 4)}},
		"holes touching at a vertex":                 {{sq(0, 0, 6, 6), sq(1, 1, 3, 3), sq(3, 3, 5, 5)}},
		"holes sharing an edge":                      {{sq(0, 0, 6, 6), sq(1, 1, 3, 3), sq(3, 1, 5, 3)}},
		"hole in a hole":                             {{sq(0, 0, 8, 8), sq(1, 1, 7, 7), sq(2, 2, 6, 6)}},
		"hole outside":                               {{sq(0, 0, 4, 4), sq(5, 5, 6, 6)}},
		"hole around the outer ring":                 {{sq(2, 2, 4, 4), sq(0, 0, 6, 6)}},
		"holes, clockwise and not":                   {{sq(0, 0, 8, 8), reversed(sq(1, 1, 3, 3)), sq(4, 4, 6, 6)}},
		"members apart":                              {{sq(0, 0, 2, 2)}, {sq(3, 0, 5, 2)}},
		"members sharing an edge":                    {{sq(0, 0, 2, 2)}, {sq(2, 0, 4, 2)}},
		"members at a vertex":                        {{sq(0, 0, 2, 2)}, {sq(2, 2, 4, 4)}},
		"member inside another":                      {{sq(0, 0, 6, 6)}, {sq(2, 2, 3, 3)}},
		"member inside another's hole":               {{sq(0, 0, 6, 6), sq(1, 1, 5, 5)}, {sq(2, 2, 3, 3)}},
		"member around another":                      {{sq(2, 2, 3, 3)}, {sq(0, 0, 6, 6)}},
		"member touching another's hole":             {{sq(0, 0, 6, 6), sq(1, 1, 5, 5)}, {sq(2, 2, 5, 3)}},
		"no area":                                    {{ring(0, 0, 1, 1, 2, 2)}},
		"repeated position":                          {{ring(0, 0, 4, 0, 4, 0, 4, 4, 0, 4)}},
		"triangle":                                   {{ring(0, 0, 4, 0, 0, 3)}},
		"bow tie":                                    {{ring(0, 0, 2, 2, 2, 0, 0, 2)}},
		"nearly collinear, valid": {{Ring{
			{0, 0}, {math.Nextafter(1, 2), 1}, {2, 2}, {2, 0}, {0, 0},
		}}},
		"nearly collinear, touching": {{Ring{
			{0, 0}, {1, 1}, {2, 2}, {2, 0}, {math.Nextafter(1, 2), 1}, {0, 0.5}, {0, 0},
		}}},
	}
	for name, mp := range fixed {
		agree(t, name, mp)
	}
	for i := range 5000 {
		var mp MultiPolygon
		switch i % 6 {
		case 0: // one random ring on a small grid, mostly invalid
			mp = MultiPolygon{{gridRing(rng, 3+rng.IntN(8), 5, lng0, lat0, u)}}
		case 1: // a star, valid, sometimes snapped to a grid (then often not)
			r := star(rng, 3+rng.IntN(60), 0, 0, 1, 10)
			if rng.IntN(2) == 0 {
				for j := range r {
					r[j] = Point{Lat: math.Round(r[j].Lat), Lng: math.Round(r[j].Lng)}
				}
			}
			mp = MultiPolygon{{r}}
		case 2: // a square with random holes on a grid: inside, touching, crossing
			pg := Polygon{sq(0, 0, 8, 8)}
			for range 1 + rng.IntN(4) {
				x, y := float64(rng.IntN(9)), float64(rng.IntN(9))
				w, h := float64(1+rng.IntN(3)), float64(1+rng.IntN(3))
				pg = append(pg, sq(x, y, x+w, y+h))
			}
			mp = MultiPolygon{pg}
		case 3: // random members on a grid
			for range 2 + rng.IntN(3) {
				x, y := float64(rng.IntN(8)), float64(rng.IntN(8))
				w, h := float64(1+rng.IntN(3)), float64(1+rng.IntN(3))
				mp = append(mp, Polygon{sq(x, y, x+w, y+h)})
			}
		case 4: // a star with a triangle hole on a grid near its centre
			r := star(rng, 4+rng.IntN(20), 0, 0, 4, 8)
			x, y := float64(rng.IntN(5)-2), float64(rng.IntN(5)-2)
			mp = MultiPolygon{{r, Ring{{y, x}, {y, x + 1 + float64(rng.IntN(4))}, {y + 1 + float64(rng.IntN(4)), x}, {y, x}}}}
		case 5: // two random grid rings, as members or as outer and hole
			a, b := gridRing(rng, 3+rng.IntN(5), 6, 0, 0, 1), gridRing(rng, 3+rng.IntN(5), 6, 0, 0, 1)
			if rng.IntN(2) == 0 {
				mp = MultiPolygon{{a}, {b}}
			} else {
				mp = MultiPolygon{{a, b}}
			}
		}
		agree(t, fmt.Sprintf("random shape %d", i), mp)
	}
}

// combHoles are one small square hole in each tooth of comb(teeth, 0, 0, 1).
func combHoles(teeth int) []Ring {
	var holes []Ring
	for i := range teeth {
		x := float64(2 * i)
		holes = append(holes, rect(x+0.25, 4, x+0.75, 6))
	}
	return holes
}

// FuzzValidatePolygon: for any shape on a small grid (where degenerate
// cases abound), the sweep and the quadratic oracle agree. Each byte is a
// position (its low and high nibbles, on an 8x8 grid), 0xff ends a ring
// (which is then closed), 0xfe a polygon.
func FuzzValidatePolygon(f *testing.F) {
	f.Add([]byte{0x00, 0x40, 0x44, 0x04})
	f.Add([]byte{0x00, 0x70, 0x77, 0x07, 0xff, 0x11, 0x31, 0x33, 0x13})
	f.Add([]byte{0x00, 0x22, 0x40, 0x44, 0x22, 0x04})
	f.Add([]byte{0x00, 0x20, 0x22, 0x02, 0xfe, 0x20, 0x40, 0x42, 0x22})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 200 {
			return
		}
		var mp MultiPolygon
		var pg Polygon
		var r Ring
		endRing := func() {
			if len(r) > 0 {
				pg = append(pg, append(r, r[0]))
			}
			r = nil
		}
		for _, c := range b {
			switch c {
			case 0xff:
				endRing()
			case 0xfe:
				endRing()
				if len(pg) > 0 {
					mp = append(mp, pg)
				}
				pg = nil
			default:
				r = append(r, Point{Lat: float64(c >> 4 & 7), Lng: float64(c & 7)})
			}
		}
		endRing()
		if len(pg) > 0 {
			mp = append(mp, pg)
		}
		if len(mp) == 0 {
			return
		}
		agree(t, "fuzzed", mp)
	})
}

// TestOrientIsExact compares Orient with rational arithmetic on points
// that are exactly collinear, a float away from it, tiny, huge, and of
// mixed magnitudes.
func TestOrientIsExact(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 5))
	next := func(x float64) float64 { return math.Nextafter(x, math.Inf(1)) }
	var cases [][3]Point
	for range 20000 {
		scale := math.Pow(10, float64(rng.IntN(620)-320))
		a := Point{Lat: (rng.Float64() - 0.5) * scale, Lng: (rng.Float64() - 0.5) * scale}
		b := Point{Lat: (rng.Float64() - 0.5) * scale, Lng: (rng.Float64() - 0.5) * scale}
		tt := rng.Float64()*3 - 1
		p := Point{Lat: a.Lat + tt*(b.Lat-a.Lat), Lng: a.Lng + tt*(b.Lng-a.Lng)} // on the line, up to rounding
		switch rng.IntN(4) {
		case 1:
			p.Lat = next(p.Lat)
		case 2:
			p.Lng = next(p.Lng)
		case 3: // a second scale: differences spanning hundreds of binades
			p.Lat += (rng.Float64() - 0.5) * math.Pow(10, float64(rng.IntN(620)-320))
		}
		cases = append(cases, [3]Point{a, b, p})
	}
	// Coordinates a real station has, on exactly collinear lattices.
	for range 20000 {
		u := 1e-4 * float64(1+rng.IntN(9))
		pt := func() Point {
			return Point{Lat: 31.2304 + float64(rng.IntN(21)-10)*u, Lng: 121.4737 + float64(rng.IntN(21)-10)*u}
		}
		cases = append(cases, [3]Point{pt(), pt(), pt()})
	}
	for _, c := range cases {
		if got, want := Orient(c[0], c[1], c[2]), orientRational(c[0], c[1], c[2]); got != want {
			t.Fatalf("Orient(%v, %v, %v) = %d, exactly %d", c[0], c[1], c[2], got, want)
		}
	}
}

// TestExactnessDoesNotDependOnScale: a valid polygon is valid at any
// scale, down to coordinates whose products underflow, and however thin:
// the old validation's floating-point area test refused both.
func TestExactnessDoesNotDependOnScale(t *testing.T) {
	t.Parallel()
	// Collinear in decimal, not as float64s: a valid, very thin triangle
	// whose area the old test rounded to zero.
	thin := Ring{{31.2307, 121.4739}, {31.2306, 121.47399999999999}, {31.2308, 121.4738}, {31.2307, 121.4739}}
	if err := ValidatePolygon("c", Polygon{thin}); err != nil {
		t.Errorf("a thin triangle: %v", err)
	}
	if Orient(thin[0], thin[1], thin[2]) == 0 {
		t.Error("the thin triangle's vertices are collinear as float64s: the test tests nothing")
	}
	for _, u := range []float64{1, 1e-4, 1e-100, 1e-200, 1e-300, 5e-324 * 4} {
		if err := ValidatePolygon("c", Polygon{comb(10, 0, 0, u)}); err != nil {
			t.Errorf("a comb of unit %g: %v", u, err)
		}
		bad := comb(10, 0, 0, u)
		bad[6] = Point{Lat: 5 * u, Lng: 18 * u} // the next tooth's corner on the last tooth's side
		if err := ValidatePolygon("c", Polygon{bad}); err == nil {
			t.Errorf("a comb of unit %g with touching teeth is accepted", u)
		}
	}
}

// BenchmarkValidatePolygon measures validation of a valid polygon of n
// vertices: a comb (long runs of collinear vertices, the worst case of
// the validation it replaced) and a random one (a star of random radii at
// random angles, about 0.01° across).
func BenchmarkValidatePolygon(b *testing.B) {
	for _, n := range []int{100, 1000, 2000} {
		shapes := map[string]Polygon{
			"comb":   {comb(n/4, 121.4737, 31.2304, 1e-4)},
			"random": {star(rand.New(rand.NewPCG(1, uint64(n))), n, 121.4737, 31.2304, 0.001, 0.01)},
		}
		for _, kind := range []string{"comb", "random"} {
			pg := shapes[kind]
			if err := ValidatePolygon("c", pg); err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("%s/n=%d", kind, n), func(b *testing.B) {
				for b.Loop() {
					_ = ValidatePolygon("c", pg)
				}
			})
		}
	}
}
