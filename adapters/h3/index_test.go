package h3

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/geofence"
)

// seeds returns how many random worlds a scenario is checked on.
func seeds() int {
	switch {
	case testing.Short():
		return 3
	case raceEnabled:
		return 4
	}
	return 12
}

// iterations scales a test's random cases: all of them normally, a
// tenth with -short or under the race detector.
func iterations(n int) int {
	if testing.Short() || raceEnabled {
		return max(n/10, 1)
	}
	return n
}

// polar returns the point at distance d metres from (lat, lng) on bearing
// theta (radians): offsets that work at the poles and across the
// antimeridian.
func polar(lat, lng, d, theta float64) geo.Point { return destination(lat, lng, d/earthR, theta) }

func aroundPolar(rng *rand.Rand, c geo.Point, spread float64, n int) []geo.Point {
	out := make([]geo.Point, n)
	for i := range out {
		out[i] = polar(c.Lat, c.Lng, spread*math.Exp(-4*rng.Float64()), rng.Float64()*2*math.Pi)
	}
	return out
}

func TestLocateMatchesBruteForce(t *testing.T) {
	t.Parallel()
	scenarios := []struct {
		name  string
		cfg   Config
		build func(t *testing.T, rng *rand.Rand, tw *twin) []geo.Point
	}{
		{"mixed", Config{}, buildMixed},
		{"dense stations", Config{}, buildDense},
		{"antimeridian", Config{}, buildAntimeridian},
		{"poles", Config{}, buildPoles},
		{"huge shapes", Config{}, buildHuge},
		{"tiny shapes", Config{}, buildTiny},
		{"resolution 7", Config{Resolution: 7}, buildMixed},
		{"resolution 11", Config{Resolution: 11, CoarseCells: 16}, buildSmall},
		{"coarse cells 1", Config{CoarseCells: 1}, buildMixed},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			for seed := range seeds() {
				rng := rand.New(rand.NewPCG(uint64(seed), 42))
				tw := newTwin(t, sc.cfg)
				points := sc.build(t, rng, tw)
				for k, s := range tw.shapes {
					points = append(points, boundaryPoints(rng, s, 3)...)
					_ = k
				}
				points = append(points, cellPoints(rng, tw.ix, 60)...)
				rng.Shuffle(len(points)/2, func(i, j int) { points[i], points[j] = points[j], points[i] })
				tw.check(t, points)
				if t.Failed() {
					t.Fatalf("seed %d", seed)
				}
			}
		})
	}
}

func buildMixed(t *testing.T, rng *rand.Rand, tw *twin) []geo.Point {
	base := geo.Point{Lat: -60 + 120*rng.Float64(), Lng: -170 + 340*rng.Float64()}
	for k := range 25 {
		tw.add(t, geofence.Key(k*3-20), randomShape(rng, base))
	}
	return slices.Concat(around(rng, base, 60000, 300), tracks(rng, base, 10000, 500))
}

// buildSmall is buildMixed with shapes of at most about 2 km, for fine
// resolutions.
func buildSmall(t *testing.T, rng *rand.Rand, tw *twin) []geo.Point {
	base := geo.Point{Lat: -60 + 120*rng.Float64(), Lng: -170 + 340*rng.Float64()}
	for k := range 20 {
		c := offset(base, rng.NormFloat64()*1000, rng.NormFloat64()*1000)
		size := logUniform(rng, 10, 1500)
		var s geofence.Shape
		switch rng.IntN(3) {
		case 0:
			s = circleAt(c, size)
		case 1:
			s = polygonShape(star(rng, c, 4+rng.IntN(20), size*0.3, size), star(rng, c, 4, size*0.05, size*0.2))
		default:
			s = dyadicPolygon(rng, c, size)
		}
		tw.add(t, geofence.Key(k), s)
	}
	return slices.Concat(around(rng, base, 3000, 300), tracks(rng, base, 2000, 400))
}

// buildDense packs 300 stations of the benchmark's kinds into a few
// square kilometres.
func buildDense(t *testing.T, rng *rand.Rand, tw *twin) []geo.Point {
	base := geo.Point{Lat: 31.2 + rng.Float64(), Lng: 120.5 + rng.Float64()}
	for k := range 300 {
		tw.add(t, geofence.Key(k), randomStation(rng, offset(base, rng.NormFloat64()*1500, rng.NormFloat64()*1500)))
	}
	return slices.Concat(around(rng, base, 5000, 300), tracks(rng, base, 2000, 500))
}

func buildAntimeridian(t *testing.T, rng *rand.Rand, tw *twin) []geo.Point {
	lat := -70 + 140*rng.Float64()
	var points []geo.Point
	lngs := []float64{179.99, -179.99, 180, -180, 179.9999, -179.99999}
	k := geofence.Key(0)
	for _, lng := range lngs {
		c := geo.Point{Lat: lat + rng.NormFloat64()*0.05, Lng: lng}
		tw.add(t, k, circleAt(c, logUniform(rng, 10, 50000)))
		k++
		points = append(points, c, geo.Point{Lat: c.Lat, Lng: -c.Lng})
	}
	// Polygons touching the antimeridian from either side, and one split
	// across it into a MultiPolygon.
	for _, side := range []float64{1, -1} {
		w := logUniform(rng, 0.0005, 0.5)
		la := lat + rng.NormFloat64()*0.05
		e := 180 * side
		in := e - side*w
		tw.add(t, k, polygonShape(geo.Ring{{Lat: la, Lng: in}, {Lat: la, Lng: e}, {Lat: la + w, Lng: e}, {Lat: la + w/2, Lng: in}, {Lat: la, Lng: in}}))
		k++
		points = append(points, geo.Point{Lat: la + w/4, Lng: e}, geo.Point{Lat: la + w/4, Lng: -e})
	}
	w := logUniform(rng, 0.001, 0.3)
	la := lat + rng.NormFloat64()*0.05
	tw.add(t, k, geofence.Shape{Polygons: geo.MultiPolygon{
		{geo.Ring{{Lat: la, Lng: 180 - w}, {Lat: la, Lng: 180}, {Lat: la + w, Lng: 180}, {Lat: la + w, Lng: 180 - w}, {Lat: la, Lng: 180 - w}}},
		{geo.Ring{{Lat: la, Lng: -180}, {Lat: la, Lng: -180 + w}, {Lat: la + w, Lng: -180 + w}, {Lat: la + w, Lng: -180}, {Lat: la, Lng: -180}}},
	}})
	k++
	for range 6 {
		tw.add(t, k, indexable(rng, geo.Point{Lat: lat, Lng: 179.95}))
		k++
	}
	for i := range 400 {
		p := polar(lat, 180, 60000*math.Exp(-4*rng.Float64()), rng.Float64()*2*math.Pi)
		if i%5 == 0 {
			p.Lng = math.Copysign(180, p.Lng) // exactly on the antimeridian, both ways
		}
		points = append(points, p)
	}
	return points
}

func buildPoles(t *testing.T, rng *rand.Rand, tw *twin) []geo.Point {
	var points []geo.Point
	k := geofence.Key(0)
	for _, lat := range []float64{90, 89.999, -90, -89.999, 89.99999} {
		for range 2 {
			c := geo.Point{Lat: lat, Lng: -180 + 360*rng.Float64()}
			tw.add(t, k, circleAt(c, logUniform(rng, 10, 50000)))
			k++
			points = append(points, aroundPolar(rng, c, 60000, 80)...)
		}
		points = append(points, geo.Point{Lat: math.Copysign(90, lat), Lng: -180 + 360*rng.Float64()},
			geo.Point{Lat: math.Copysign(90, lat), Lng: 180}, geo.Point{Lat: math.Copysign(90, lat), Lng: 0})
	}
	// Polygons at the poles: a band of all longitudes up to the pole, and
	// sectors.
	for _, s := range []float64{1, -1} {
		b := 90 - logUniform(rng, 0.0005, 0.3)
		tw.add(t, k, polygonShape(geo.Ring{{Lat: s * b, Lng: -180}, {Lat: s * b, Lng: 0}, {Lat: s * b, Lng: 180}, {Lat: s * 90, Lng: 180}, {Lat: s * 90, Lng: 0}, {Lat: s * 90, Lng: -180}, {Lat: s * b, Lng: -180}}))
		k++
		l0 := -180 + 300*rng.Float64()
		tw.add(t, k, polygonShape(geo.Ring{{Lat: s * b, Lng: l0}, {Lat: s * b, Lng: l0 + 50}, {Lat: s * 90, Lng: l0 + 50}, {Lat: s * 90, Lng: l0}, {Lat: s * b, Lng: l0}}))
		k++
		points = append(points, geo.Point{Lat: s * 90, Lng: l0 + 25}, geo.Point{Lat: s * 90, Lng: l0 + 60}, geo.Point{Lat: s * b, Lng: l0 + 10})
	}
	return points
}

// buildHuge adds shapes whose interiors are listed at coarse resolutions,
// and tracks through them.
func buildHuge(t *testing.T, rng *rand.Rand, tw *twin) []geo.Point {
	base := geo.Point{Lat: -60 + 120*rng.Float64(), Lng: -170 + 340*rng.Float64()}
	var points []geo.Point
	for k := range 5 {
		c := offset(base, rng.NormFloat64()*20000, rng.NormFloat64()*20000)
		size := logUniform(rng, 5000, 50000)
		var s geofence.Shape
		switch k % 3 {
		case 0:
			s = circleAt(c, size)
		case 1:
			s = polygonShape(star(rng, c, 5+rng.IntN(40), size*0.5, size), star(rng, c, 6, size*0.1, size*0.3))
		default:
			s = polygonShape(star(rng, c, 2000, size*0.8, size))
		}
		tw.add(t, geofence.Key(k), s)
		points = append(points, tracks(rng, c, size, 200)...)
	}
	for k := 5; k < 15; k++ {
		tw.add(t, geofence.Key(k), randomShape(rng, base))
	}
	return append(points, around(rng, base, 80000, 200)...)
}

// buildTiny adds circles of zero and sub-metre radius and polygons of a
// few millimetres, with points at and around them.
func buildTiny(t *testing.T, rng *rand.Rand, tw *twin) []geo.Point {
	base := geo.Point{Lat: -80 + 160*rng.Float64(), Lng: -180 + 360*rng.Float64()}
	var points []geo.Point
	k := geofence.Key(0)
	for _, r := range []float64{0, 1e-9, 1e-3, 0.5, 3} {
		c := offset(base, rng.NormFloat64()*100, rng.NormFloat64()*100)
		c = clampPoint(c)
		tw.add(t, k, circleAt(c, r))
		k++
		points = append(points, c, nudge(rng, c), nudge(rng, c))
		points = append(points, around(rng, c, 5, 20)...)
	}
	for range 3 {
		c := clampPoint(offset(base, rng.NormFloat64()*100, rng.NormFloat64()*100))
		w := 1e-7
		tw.add(t, k, polygonShape(geo.Ring{c, {Lat: c.Lat, Lng: c.Lng + w}, {Lat: c.Lat + w, Lng: c.Lng + w}, c}))
		k++
		points = append(points, c, geo.Point{Lat: c.Lat + w/2, Lng: c.Lng + w/2}, geo.Point{Lat: c.Lat + w/4, Lng: c.Lng + w/2})
		points = append(points, around(rng, c, 1, 20)...)
	}
	return points
}

// TestRemoveAndReAdd removes half the shapes, checks, adds them back
// under the same keys with new ones, checks again, with cursors made
// before each change.
func TestRemoveAndReAdd(t *testing.T) {
	t.Parallel()
	for seed := range seeds() {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		tw := newTwin(t, Config{})
		base := geo.Point{Lat: 31 + rng.Float64(), Lng: 121 + rng.Float64()}
		var keys []geofence.Key
		for k := range 40 {
			key := geofence.Key(k * 7)
			tw.add(t, key, randomShape(rng, base))
			keys = append(keys, key)
		}
		points := slices.Concat(around(rng, base, 40000, 300), tracks(rng, base, 8000, 400), cellPoints(rng, tw.ix, 30))
		old := []geofence.Cursor{tw.ix.NewCursor(), tw.ix.NewCursor()}
		tw.check(t, points, old...)

		removed := map[geofence.Key]geofence.Shape{}
		for _, k := range keys {
			if rng.IntN(2) == 0 {
				removed[k] = tw.shapes[k]
				tw.remove(k)
			}
		}
		tw.ix.Remove(12345) // absent: nothing happens
		if tw.ix.Len() != len(tw.shapes) {
			t.Fatalf("Len = %d after removals, want %d", tw.ix.Len(), len(tw.shapes))
		}
		tw.check(t, points, old...)

		for k, s := range removed {
			tw.add(t, k, s)
		}
		for k := range 10 {
			tw.add(t, geofence.Key(1000+k), randomShape(rng, base))
		}
		tw.check(t, points, old...)

		for k := range tw.shapes {
			tw.remove(k)
		}
		if tw.ix.Len() != 0 || len(tw.ix.cells) != 0 || len(tw.ix.near.buckets) != 0 || len(tw.ix.near.global) != 0 {
			t.Fatalf("an emptied index keeps %d shapes, %d cells, %d buckets", tw.ix.Len(), len(tw.ix.cells), len(tw.ix.near.buckets))
		}
		tw.check(t, points, old...)
		if t.Failed() {
			t.Fatalf("seed %d", seed)
		}
	}
}

// TestChurn adds and removes stations many times (as a catalogue that
// changes all day would), so that the arena is compacted and slots are
// reused, and checks as it goes.
func TestChurn(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 3))
	tw := newTwin(t, Config{})
	base := geo.Point{Lat: 22.5, Lng: 114}
	points := slices.Concat(around(rng, base, 6000, 200), tracks(rng, base, 3000, 300))
	cursors := []geofence.Cursor{tw.ix.NewCursor(), tw.ix.NewCursor()}
	next := geofence.Key(0)
	rounds := max(iterations(40), 16) // enough to compact the arena
	for round := range rounds {
		for range 30 {
			if len(tw.shapes) > 60 || (len(tw.shapes) > 0 && rng.IntN(3) == 0) {
				for k := range tw.shapes {
					tw.remove(k)
					break
				}
				continue
			}
			tw.add(t, next, randomStation(rng, offset(base, rng.NormFloat64()*1500, rng.NormFloat64()*1500)))
			next++
		}
		tw.check(t, points[:iterations(100+rng.IntN(len(points)-100))], cursors...)
		if t.Failed() {
			t.Fatalf("round %d", round)
		}
	}
	if tw.ix.compactions == 0 {
		t.Error("the arena was never compacted")
	}
	if len(tw.ix.slots) > 80 {
		t.Errorf("%d slots for at most 61 shapes: slots are not reused", len(tw.ix.slots))
	}
}

func TestAddErrors(t *testing.T) {
	t.Parallel()
	ix, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	ok := circleAt(geo.Point{Lat: 1, Lng: 2}, 100)
	if err := ix.Add(1, ok); err != nil {
		t.Fatal(err)
	}
	if err := ix.Add(1, ok); err == nil {
		t.Error("a key added twice was accepted")
	}
	open := geo.Ring{{Lat: 0, Lng: 0}, {Lat: 0, Lng: 1}, {Lat: 1, Lng: 1}}
	bad := map[string]geofence.Shape{
		"nothing":                 {},
		"both":                    {Circle: ok.Circle, Polygons: geo.MultiPolygon{{square(0, 0, 1, 1)}}},
		"NaN centre":              circleAt(geo.Point{Lat: math.NaN(), Lng: 0}, 10),
		"latitude 91":             circleAt(geo.Point{Lat: 91, Lng: 0}, 10),
		"longitude 180.5":         circleAt(geo.Point{Lat: 0, Lng: 180.5}, 10),
		"negative radius":         circleAt(geo.Point{}, -1),
		"NaN radius":              circleAt(geo.Point{}, math.NaN()),
		"infinite radius":         circleAt(geo.Point{}, math.Inf(1)),
		"open ring":               polygonShape(open),
		"vertex out of range":     polygonShape(geo.Ring{{Lat: 0, Lng: 0}, {Lat: 0, Lng: 181}, {Lat: 1, Lng: 1}, {Lat: 0, Lng: 0}}),
		"NaN vertex":              polygonShape(geo.Ring{{Lat: 0, Lng: 0}, {Lat: math.NaN(), Lng: 1}, {Lat: 1, Lng: 1}, {Lat: 0, Lng: 0}}),
		"across the antimeridian": polygonShape(geo.Ring{{Lat: 0, Lng: 179}, {Lat: 0, Lng: -179}, {Lat: 1, Lng: -179}, {Lat: 1, Lng: 179}, {Lat: 0, Lng: 179}}),
	}
	for name, s := range bad {
		err := ix.Add(2, s)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if !errors.Is(err, ErrShape) {
			t.Errorf("%s: %v does not wrap ErrShape", name, err)
		}
	}
	if ix.Len() != 1 || len(ix.byKey) != 1 {
		t.Errorf("failed Adds changed the index: Len %d", ix.Len())
	}
}

func square(minLng, minLat, maxLng, maxLat float64) geo.Ring {
	return geo.Ring{{Lat: minLat, Lng: minLng}, {Lat: minLat, Lng: maxLng}, {Lat: maxLat, Lng: maxLng}, {Lat: maxLat, Lng: minLng}, {Lat: minLat, Lng: minLng}}
}

// TestInvalidPoints checks that an invalid point is in no shape, and Near
// returns every key for it (a superset); so it does for a distance that is
// NaN or infinite.
func TestInvalidPoints(t *testing.T) {
	t.Parallel()
	ix, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	all := []geofence.Key{-5, 3, 9}
	for i, k := range all {
		if err := ix.Add(k, circleAt(geo.Point{Lat: 10, Lng: float64(i)}, 3e5)); err != nil {
			t.Fatal(err)
		}
	}
	c := ix.NewCursor()
	for _, p := range []geo.Point{{Lat: math.NaN(), Lng: 0}, {Lat: 0, Lng: math.NaN()}, {Lat: 90.5, Lng: 0}, {Lat: 0, Lng: -181}, {Lat: math.Inf(1), Lng: 0}} {
		if got := c.Locate(p, nil); len(got) != 0 {
			t.Errorf("Locate(%v) = %v, want nothing", p, got)
		}
		if got := c.Near(p, 10, nil); !slices.Equal(got, all) {
			t.Errorf("Near(%v) = %v, want %v", p, got, all)
		}
	}
	for _, d := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if got := c.Near(geo.Point{Lat: 10, Lng: 1}, d, nil); !slices.Equal(got, all) {
			t.Errorf("Near(distance %v) = %v, want %v", d, got, all)
		}
	}
	if got := c.Locate(geo.Point{Lat: 10, Lng: 1}, []geofence.Key{77}); !slices.Equal(got, append([]geofence.Key{77}, all...)) {
		t.Errorf("Locate does not append to dst: %v", got)
	}
}

// TestConcurrentCursors locates from several goroutines at once, each with
// its own cursors (run with -race): allowed while nothing adds or removes.
func TestConcurrentCursors(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 5))
	tw := newTwin(t, Config{})
	base := geo.Point{Lat: 31.3, Lng: 120.6}
	for k := range 200 {
		tw.add(t, geofence.Key(k), randomStation(rng, offset(base, rng.NormFloat64()*1500, rng.NormFloat64()*1500)))
	}
	points := tracks(rng, base, 2000, 2000)
	want := make([][]geofence.Key, len(points))
	ref := tw.bf.NewCursor()
	for i, p := range points {
		want[i] = ref.Locate(p, nil)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			cs := []geofence.Cursor{tw.ix.NewCursor(), tw.ix.NewCursor()}
			for i, p := range points {
				c := cs[(i/50+g)%2]
				if got := c.Locate(p, nil); !slices.Equal(got, want[i]) {
					t.Errorf("goroutine %d, point %d: %v, want %v", g, i, got, want[i])
					return
				}
				c.Near(p, 100, nil)
			}
		})
	}
	wg.Wait()
}

// TestCursorReusesItsCell checks that a vehicle's fixes mostly skip H3.
func TestCursorReusesItsCell(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(8, 8))
	tw := newTwin(t, Config{})
	base := geo.Point{Lat: 31.3, Lng: 120.6}
	for k := range 50 {
		tw.add(t, geofence.Key(k), randomStation(rng, offset(base, rng.NormFloat64()*1500, rng.NormFloat64()*1500)))
	}
	c := tw.ix.NewCursor().(*Cursor)
	p := base
	for range 1000 {
		p = offset(p, 10, 3) // 10.4 m a fix
		c.Locate(p, nil)
	}
	// 10.4 km through cells about 350 m across: about 35 cells, a lookup
	// or two each (an unlisted cell's disc grows on the second).
	if c.refreshes > 100 {
		t.Errorf("%d H3 lookups for 1000 fixes", c.refreshes)
	}
	parked := tw.ix.NewCursor().(*Cursor)
	for range 1000 {
		parked.Locate(offset(base, rng.NormFloat64()*3, rng.NormFloat64()*3), nil)
	}
	if parked.refreshes > 3 {
		t.Errorf("%d H3 lookups for 1000 fixes of a parked vehicle", parked.refreshes)
	}
}

// TestBruteLocate checks the answer Locate falls back to when H3 gives
// no usable cell (which no test has made happen).
func TestBruteLocate(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(9, 1))
	tw := newTwin(t, Config{})
	base := geo.Point{Lat: 45, Lng: 7}
	for k := range 30 {
		tw.add(t, geofence.Key(30-k), randomShape(rng, base))
	}
	ref := tw.bf.NewCursor()
	for _, p := range around(rng, base, 30000, 500) {
		got := tw.ix.bruteLocate(p, []geofence.Key{-1})
		want := ref.Locate(p, []geofence.Key{-1})
		if !slices.Equal(got, want) {
			t.Fatalf("bruteLocate(%v) = %v, brute force %v", p, got, want)
		}
	}
}
