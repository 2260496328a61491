package h3

import (
	"math"
	"math/rand/v2"
	"testing"

	h3 "github.com/uber/h3-go/v4"

	"github.com/tmsfleet/tms/domain/geo"
)

// randomPoint is uniform on the sphere, with now and then a pole, the
// antimeridian or a vertex of a pentagon's neighbourhood.
func randomPoint(rng *rand.Rand) geo.Point {
	switch rng.IntN(20) {
	case 0:
		return geo.Point{Lat: math.Copysign(90, rng.Float64()-0.5), Lng: -180 + 360*rng.Float64()}
	case 1:
		return geo.Point{Lat: -90 + 180*rng.Float64(), Lng: math.Copysign(180, rng.Float64()-0.5)}
	case 2:
		pents := h3.Pentagons(rng.IntN(16))
		ll := pents[rng.IntN(len(pents))].LatLng()
		return clampPoint(offset(geo.Point{Lat: ll.Lat, Lng: ll.Lng}, rng.NormFloat64()*100, rng.NormFloat64()*100))
	}
	return geo.Point{Lat: math.Asin(2*rng.Float64()-1) / radians, Lng: -180 + 360*rng.Float64()}
}

func TestCellParentMatchesH3(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 1))
	n := iterations(3000)
	check := func(c h3.Cell) {
		t.Helper()
		for r := 0; r <= c.Resolution(); r++ {
			if got, want := cellParent(uint64(c), r), uint64(c.Parent(r)); got != want {
				t.Fatalf("cellParent(%v, %d) = %x, h3 says %x", c, r, got, want)
			}
			if got := cellRes(cellParent(uint64(c), r)); got != r {
				t.Fatalf("cellRes(parent at %d of %v) = %d", r, c, got)
			}
		}
	}
	for range n {
		p := randomPoint(rng)
		check(h3.LatLngToCell(h3.LatLng{Lat: p.Lat, Lng: p.Lng}, rng.IntN(16)))
	}
	for r := range 16 {
		for _, c := range h3.Pentagons(r) {
			check(c)
		}
	}
	for _, c := range h3.Res0Cells() {
		check(c)
	}
}

// TestH3Properties checks, on random cells of every resolution, what the
// index relies on H3 for (see cover.go and the package documentation):
//   - a point H3 puts in a cell is in the cell's cap (cellGeo), including
//     the cell's own vertices, points between them and points a float
//     beside them;
//   - a child's centre is inside its parent's cap, so that the caps of a
//     parent and its child overlap;
//   - the cells around each vertex of a cell are its neighbours.
func TestH3Properties(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(2, 2))
	n := iterations(1500)
	inCap := func(g cellGeo, p geo.Point) bool {
		return havRad(g.lat, g.lng, p.Lat, p.Lng) <= float64(g.r)
	}
	for i := range n {
		res := i % 16
		p := randomPoint(rng)
		c := h3.LatLngToCell(h3.LatLng{Lat: p.Lat, Lng: p.Lng}, res)
		g := computeGeo(uint64(c))
		if !inCap(g, p) {
			t.Fatalf("%v is in cell %v but not in its cap %+v", p, c, g)
		}
		neighbours := map[h3.Cell]bool{}
		for _, nb := range c.GridDisk(1) {
			neighbours[nb] = true
		}
		b := c.Boundary()
		for j, v := range b {
			w := b[(j+1)%len(b)]
			pts := []geo.Point{{Lat: v.Lat, Lng: v.Lng}, {Lat: (v.Lat + w.Lat) / 2, Lng: (v.Lng + w.Lng) / 2}}
			for range 4 {
				pts = append(pts, nudge(rng, pts[0]), nudge(rng, pts[1]))
			}
			// Points within a few centimetres of the vertex, all around it.
			for k := range 12 {
				pts = append(pts, polar(v.Lat, v.Lng, 0.02*float64(1+k%3)*math.Pow(0.7, float64(res)), float64(k)*math.Pi/6))
			}
			for _, q := range pts {
				if math.Abs(v.Lng-w.Lng) > 180 && q == pts[1] {
					continue
				}
				d := h3.LatLngToCell(h3.LatLng{Lat: q.Lat, Lng: q.Lng}, res)
				if !inCap(computeGeo(uint64(d)), q) {
					t.Fatalf("%v is in cell %v but not in its cap", q, d)
				}
				if d != c && !neighbours[d] && havRad(q.Lat, q.Lng, v.Lat, v.Lng) < 1e-9 {
					t.Fatalf("cell %v, at a vertex of cell %v, is not its neighbour", d, c)
				}
			}
		}
		if res > 0 {
			parent := c.Parent(res - 1)
			pg := computeGeo(uint64(parent))
			for _, child := range parent.Children(res) {
				ll := child.LatLng()
				if !inCap(pg, geo.Point{Lat: ll.Lat, Lng: ll.Lng}) {
					t.Fatalf("the centre of %v is outside the cap of its parent %v", child, parent)
				}
			}
		}
	}
}
