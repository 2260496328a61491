package h3

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	h3 "github.com/uber/h3-go/v4"

	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/geofence"
)

// TestCellStats checks the facts about H3 cells that coverBound rests on:
// no cell is smaller than minArea, no cap larger than maxCap. Every cell
// of resolutions 0-3 is checked, and at each finer resolution random
// cells and the neighbourhoods of the pentagons (where the grid is most
// distorted).
func TestCellStats(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	st := cellTable()
	for l := 0; l <= maxRes; l++ {
		var cells []h3.Cell
		if l <= 3 {
			for _, c := range h3.Res0Cells() {
				cells = append(cells, c.Children(l)...)
			}
		} else {
			for range 3000 {
				ll := h3.LatLng{Lat: math.Asin(2*rng.Float64()-1) / radians, Lng: rng.Float64()*360 - 180}
				cells = append(cells, h3.LatLngToCell(ll, l))
			}
			for _, p := range h3.Pentagons(l) {
				cells = append(cells, p.GridDisk(2)...)
			}
		}
		for _, c := range cells {
			if a := h3.CellAreaRads2(c); a < st[l].minArea {
				t.Fatalf("cell %v at resolution %d has area %g < minArea %g", c, l, a, st[l].minArea)
			}
			if g := computeGeo(uint64(c)); float64(g.r) > st[l].maxCap {
				t.Fatalf("cell %v at resolution %d has a cap of %g > maxCap %g", c, l, g.r, st[l].maxCap)
			}
		}
	}
}

// boundShapes are shapes of every size and kind for the cover bound's
// tests: circles and polygons from metres to hundreds of kilometres, at
// the poles, across the antimeridian (a circle; polygons come split), on
// the equator, with holes, many members, and long thin ones.
func boundShapes(rng *rand.Rand) map[string]geofence.Shape {
	shapes := map[string]geofence.Shape{}
	centres := []geo.Point{
		{Lat: 31.2304, Lng: 121.4737}, {Lat: 0.001, Lng: 0}, {Lat: 89.99, Lng: 10}, {Lat: -89.5, Lng: -60},
		{Lat: 60, Lng: 179.999}, {Lat: -33.9, Lng: 18.4}, {Lat: 78, Lng: 15},
	}
	for i, c := range centres {
		for _, r := range []float64{10, 300, 5000, 50000, 400000} {
			shapes[fmt.Sprintf("circle %d m at %v", int(r), c)] = circleAt(c, r)
		}
		if math.Abs(c.Lat) > 89 || math.Abs(c.Lng) > 179 {
			continue
		}
		for _, deg := range []float64{1e-4, 0.01, 0.3, 3} {
			shapes[fmt.Sprintf("star %v° at %v", deg, c)] = polygonShape(starRing(rng, 5+rng.IntN(200), c, deg))
			shapes[fmt.Sprintf("comb %v° at %v", deg, c)] = polygonShape(combRing(50, c, deg/100))
			thin := geo.Ring{{Lat: c.Lat, Lng: c.Lng}, {Lat: c.Lat, Lng: c.Lng + deg}, {Lat: c.Lat + deg/1000, Lng: c.Lng + deg}, {Lat: c.Lat, Lng: c.Lng}}
			shapes[fmt.Sprintf("sliver %v° at %v", deg, c)] = polygonShape(thin)
		}
		outer := starRing(rng, 40, c, 0.5)
		shapes[fmt.Sprintf("with a hole %d", i)] = geofence.Shape{Polygons: geo.MultiPolygon{{outer, starRing(rng, 20, c, 0.1)}}}
		var members geo.MultiPolygon
		for k := range 20 {
			at := geo.Point{Lat: c.Lat + float64(k%5)*0.2, Lng: c.Lng + float64(k/5)*0.2}
			members = append(members, geo.Polygon{starRing(rng, 8, at, 0.05)})
		}
		shapes[fmt.Sprintf("20 members %d", i)] = geofence.Shape{Polygons: members}
	}
	shapes["polar cap"] = polygonShape(band(85, 90))
	shapes["equatorial band"] = polygonShape(geo.Ring{{Lat: -0.5, Lng: -30}, {Lat: -0.5, Lng: 30}, {Lat: 0.5, Lng: 30}, {Lat: 0.5, Lng: -30}, {Lat: -0.5, Lng: -30}})
	return shapes
}

// band is a ring around all longitudes between two latitudes (in edges of
// 90°, which geo accepts).
func band(lat0, lat1 float64) geo.Ring {
	var r geo.Ring
	for lng := -180.0; lng <= 180; lng += 90 {
		r = append(r, geo.Point{Lat: lat0, Lng: lng})
	}
	for lng := 180.0; lng >= -180; lng -= 90 {
		r = append(r, geo.Point{Lat: lat1, Lng: lng})
	}
	return append(r, r[0])
}

func starRing(rng *rand.Rand, n int, c geo.Point, deg float64) geo.Ring {
	var r geo.Ring
	for i := range n {
		a := 2 * math.Pi * float64(i) / float64(n)
		d := deg * (0.3 + 0.7*rng.Float64())
		r = append(r, geo.Point{Lat: c.Lat + d*math.Sin(a), Lng: c.Lng + d*math.Cos(a)})
	}
	return append(r, r[0])
}

func combRing(teeth int, c geo.Point, u float64) geo.Ring {
	at := func(x, y int) geo.Point { return geo.Point{Lat: c.Lat + float64(y)*u, Lng: c.Lng + float64(x)*u} }
	r := geo.Ring{at(0, 0), at(2*teeth-1, 0)}
	for i := teeth - 1; i >= 0; i-- {
		r = append(r, at(2*i+1, 10), at(2*i, 10))
		if i > 0 {
			r = append(r, at(2*i, 1), at(2*i-1, 1))
		}
	}
	return append(r, r[0])
}

// TestCoverBound checks that coverBound is at least the number of cells
// the cover really classifies, for shapes of every kind at several
// resolutions: a shape Indexable accepts is never refused by Add.
func TestCoverBound(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 8))
	shapes := boundShapes(rng)
	worst, loosest := math.Inf(1), 0.0
	for _, res := range []int{5, 8, 11} {
		cfg := Config{Resolution: res, MaxCoverCells: 1 << 30}
		ix, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		cfg.setDefaults()
		key := geofence.Key(0)
		for name, s := range shapes {
			sh, err := newShapeRec(0, s)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			b := coverBound(cfg, sh)
			if b > 60000 {
				continue // too slow to count here; its bound is checked at coarser resolutions
			}
			if err := ix.Add(key, s); err != nil {
				t.Fatalf("%s at resolution %d: %v", name, res, err)
			}
			ix.Remove(key)
			key++
			n := float64(ix.bld.lastN)
			if n > b {
				t.Errorf("%s at resolution %d: the cover classified %.0f cells, its bound is %.0f", name, res, n, b)
			}
			worst = math.Min(worst, b/n)
			if n > 1000 {
				loosest = math.Max(loosest, b/n)
			}
		}
	}
	t.Logf("bound/count: at least %.2f; at most %.1f for covers of over 1,000 cells", worst, loosest)
}

// TestIndexableAgreesWithAdd: Indexable refuses exactly what Add refuses,
// and says why; a shape too large is refused at once.
func TestIndexableAgreesWithAdd(t *testing.T) {
	t.Parallel()
	cfg := Config{MaxCoverCells: 20000}
	ix, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	shapes := boundShapes(rand.New(rand.NewPCG(2, 3)))
	shapes["the world, nearly"] = polygonShape(band(-80, 80))
	shapes["open ring"] = polygonShape(geo.Ring{{Lat: 0, Lng: 0}, {Lat: 0, Lng: 1}, {Lat: 1, Lng: 1}})
	refused := 0
	key := geofence.Key(0)
	for name, s := range shapes {
		want := cfg.Indexable(s)
		got := ix.Add(key, s)
		if (got == nil) != (want == nil) {
			t.Errorf("%s: Indexable says %v, Add %v", name, want, got)
		}
		if got == nil {
			ix.Remove(key)
		} else {
			refused++
			if !errors.Is(want, ErrShape) {
				t.Errorf("%s: %v does not wrap ErrShape", name, want)
			}
		}
		key++
	}
	if err := cfg.Indexable(shapes["the world, nearly"]); !errors.Is(err, ErrTooLarge) {
		t.Errorf("the world is indexable: %v", err)
	}
	if refused < 3 || refused == len(shapes) {
		t.Errorf("%d of %d shapes refused: the test does not test", refused, len(shapes))
	}
	if err := (Config{MaxCoverCells: 10}).Indexable(shapes["open ring"]); err == nil {
		t.Error("an invalid config is accepted")
	}
}
