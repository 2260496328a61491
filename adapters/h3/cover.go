package h3

import (
	"fmt"
	"math"

	h3 "github.com/uber/h3-go/v4"

	"github.com/tmsfleet/tms/domain/geo"
)

// cellGeo is what the index keeps of a cell's shape: its centre (H3's, in
// degrees) and the radius, in radians, of a disc around it that contains
// the whole cell: the largest distance from the centre to a vertex of
// CellToBoundary, widened by capSlackAbs and capSlackRel. The cell's edges
// are great-circle arcs between those vertices (H3 cells are hexagons in a
// gnomonic projection, which maps straight lines to great circles; where
// an edge crosses an icosahedron face, CellToBoundary adds the vertex), and
// the distance from a point to the points of a short arc is largest at one
// of its ends, so the disc contains the cell. Everything the index says
// about a cell it says about that disc, its "cap".
type cellGeo struct {
	lat, lng float64
	r        float32
}

// covCell is one cell a shape is listed in.
type covCell struct {
	cell     uint64
	interior bool
	geo      cellGeo
}

// builder computes which cells list a shape, and how. The rules, and why
// they are enough (see also the package documentation):
//
//   - A cell is classified by its cap: in (the cap is certainly inside the
//     shape), out (certainly disjoint), or bound (anything else).
//   - Base resolution b: every cell whose cap meets the shape's edges (its
//     circle, or its polygons' rings) is bound, and listed as such. They
//     are found by a breadth-first search over H3 neighbours from seeds on
//     the edges, expanding bound cells: the cells whose hexagon meets a
//     connected curve are connected (three hexagons meet at every vertex),
//     and a cap that meets the curve outside its own hexagon meets it in a
//     neighbour's, so every cell whose cap meets the curve is a neighbour of
//     a cell the search expands.
//   - The coarsest resolution L (chosen from the shape's size): the same
//     search, expanding in cells too, finds every cell whose cap meets the
//     shape; its in cells are listed as interior.
//   - Between L and b, the same bound search runs at every resolution, and
//     the children of every bound cell are classified: in children are
//     listed as interior, bound children are searched further down.
//
// So every base cell whose cap meets the shape is either listed bound, or
// has itself or an ancestor (by H3 index digits) listed interior: follow
// its ancestors up from b while their caps meet the shape; the coarsest one
// either is at L (found by the search at L) or has a parent whose cap is
// disjoint from the shape, in which case its own cap, which overlaps its
// parent's (a child's centre lies inside its parent), straddles the
// shape's edge, so it is bound and was found by the search at its
// resolution; from there down, the chain is classified child by child
// until a cell is in (listed) or b is reached (listed bound or in).
type builder struct {
	ix    *Index
	sh    *shapeRec
	edges *edgeSet
	n     int
	// guard stops a cover that classifies more cells than this: twice the
	// shape's bound (see coverBound), which it never reaches unless the
	// bound is wrong.
	guard int
	// lastN is n of the last cover, for tests.
	lastN int

	// Maps reused from one Add to the next (fewer allocations, less heap
	// fragmentation), cleared after each.
	geo      map[uint64]cellGeo
	cls      map[uint64]class
	visited  map[uint64]class
	rings    [maxRes + 1]map[uint64]struct{}
	interior map[uint64]struct{}
	queue    []uint64
}

func newBuilder(ix *Index) *builder {
	b := &builder{ix: ix}
	b.reset()
	return b
}

// reset clears the maps for the next shape, and drops those a large shape
// made large, so that the Index does not keep their memory.
func (b *builder) reset() {
	b.lastN = b.n
	b.sh, b.edges, b.n = nil, nil, 0
	big := func(n int) bool { return n > 1<<14 }
	if b.geo == nil || big(len(b.geo)) {
		b.geo = map[uint64]cellGeo{}
	} else {
		clear(b.geo)
	}
	if b.cls == nil || big(len(b.cls)) {
		b.cls = map[uint64]class{}
	} else {
		clear(b.cls)
	}
	if b.visited == nil || big(len(b.visited)) {
		b.visited = map[uint64]class{}
	} else {
		clear(b.visited)
	}
	if b.interior == nil || big(len(b.interior)) {
		b.interior = map[uint64]struct{}{}
	} else {
		clear(b.interior)
	}
	for l, r := range b.rings {
		if r == nil || big(len(r)) {
			b.rings[l] = map[uint64]struct{}{}
		} else {
			clear(r)
		}
	}
	if cap(b.queue) > 1<<14 {
		b.queue = nil
	}
}

// cover lists the cells of a shape, or refuses it (ErrTooLarge) when its
// bound exceeds Config.MaxCoverCells, before any work.
func (ix *Index) cover(sh *shapeRec) ([]covCell, error) {
	est := coverBound(ix.cfg, sh)
	if est > float64(ix.cfg.MaxCoverCells) {
		return nil, tooLarge(ix.cfg, est)
	}
	b := ix.bld
	defer b.reset()
	b.sh = sh
	b.guard = 2*int(est) + 1024
	if !sh.circle {
		b.edges = newEdgeSet(sh.shape.Polygons, sh.all)
	}
	res := ix.cfg.Resolution
	coarsest := coarsestRes(ix.cfg, sh)
	points := b.seedPoints()

	rings := &b.rings
	interior := b.interior
	for l := coarsest; l <= res; l++ {
		if err := b.search(l, l == coarsest, points); err != nil {
			return nil, err
		}
	}
	for l := coarsest; l < res; l++ {
		for c := range rings[l] {
			for _, child := range h3.Cell(c).Children(l + 1) {
				ch := uint64(child)
				switch b.classify(ch) {
				case in:
					interior[ch] = struct{}{}
				case bound:
					rings[l+1][ch] = struct{}{}
				}
			}
			if b.n > b.guard {
				return nil, b.runaway()
			}
		}
	}
	out := make([]covCell, 0, len(rings[res])+len(interior))
	for c := range rings[res] {
		out = append(out, covCell{cell: c, geo: b.geometry(c)})
	}
	for c := range interior {
		out = append(out, covCell{cell: c, interior: true, geo: b.geometry(c)})
	}
	return out, nil
}

// runaway is the error of a cover stopped by its guard: a bug in
// coverBound, which tests look for; the shape is refused rather than let
// grow without bound.
func (b *builder) runaway() error {
	return fmt.Errorf("%w: the shape needs more than %d cells at resolution %d, more than its bound allows (a bug)", ErrShape, b.guard, b.ix.cfg.Resolution)
}

// coarsestRes returns the resolution at which a shape's interior is
// searched: the finest one, not finer than the base resolution, where the
// disc bounding the shape covers at most CoarseCells average cells.
func coarsestRes(cfg Config, sh *shapeRec) int {
	ext := extent(sh)
	st := cellTable()
	for l := cfg.Resolution; l > 0; l-- {
		area := st[l].avgArea
		circum := math.Sqrt(area * 2 / (3 * math.Sqrt(3)))
		if math.Pi*(ext+circum)*(ext+circum)/area <= float64(cfg.CoarseCells) {
			return l
		}
	}
	return 0
}

// extent returns the radius, in radians, of a disc about as large as the
// shape (an estimate: it only chooses resolutions).
func extent(sh *shapeRec) float64 {
	if sh.circle {
		return sh.rr
	}
	a := sh.all
	dLat := (a.maxLat - a.minLat) / 2 * radians
	cos := math.Max(math.Cos(a.minLat*radians), math.Cos(a.maxLat*radians))
	if a.minLat <= 0 && a.maxLat >= 0 {
		cos = 1
	}
	dLng := (a.maxLng - a.minLng) / 2 * radians * cos
	return math.Hypot(dLat, dLng)
}

// seedPoints returns points on the shape's edges: for a circle, its centre
// and four points on its rim; for polygons, the first vertex of every ring.
func (b *builder) seedPoints() []geo.Point {
	sh := b.sh
	if sh.circle {
		pts := []geo.Point{{Lat: sh.ct.clat, Lng: sh.ct.clng}}
		for i := range 4 {
			pts = append(pts, destination(sh.ct.clat, sh.ct.clng, sh.rr, float64(i)*math.Pi/2))
		}
		return pts
	}
	var pts []geo.Point
	for _, pg := range sh.shape.Polygons {
		for _, ring := range pg {
			if len(ring) > 0 {
				pts = append(pts, ring[0])
			}
		}
	}
	return pts
}

// search is the breadth-first search at resolution l from the cells of the
// seed points (and their neighbours). It expands bound cells, and in cells
// too when unified is set; it adds the bound cells to b.rings[l], and the
// in cells to b.interior when unified.
func (b *builder) search(l int, unified bool, points []geo.Point) error {
	visited := b.visited
	clear(visited)
	queue := b.queue[:0]
	defer func() { b.queue = queue[:0] }()
	visit := func(c uint64) {
		if c == 0 {
			return
		}
		if _, ok := visited[c]; ok {
			return
		}
		cl := b.classify(c)
		visited[c] = cl
		if cl == bound || (unified && cl == in) {
			queue = append(queue, c)
		}
	}
	for _, p := range points {
		c := h3.LatLngToCell(h3.LatLng{Lat: p.Lat, Lng: p.Lng}, l)
		visit(uint64(c))
		for _, n := range h3.GridDisk(c, 1) {
			visit(uint64(n))
		}
	}
	for len(queue) > 0 {
		c := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		for _, n := range h3.GridDisk(h3.Cell(c), 1) {
			visit(uint64(n))
		}
		if b.n > b.guard {
			return b.runaway()
		}
	}
	for c, cl := range visited {
		switch cl {
		case bound:
			b.rings[l][c] = struct{}{}
		case in:
			if unified {
				b.interior[c] = struct{}{}
			}
		}
	}
	return nil
}

// classify returns the class of cell c for the shape being added.
func (b *builder) classify(c uint64) class {
	if cl, ok := b.cls[c]; ok {
		return cl
	}
	b.n++
	g := b.geometry(c)
	r := float64(g.r)
	var cl class
	if b.sh.circle {
		cl = b.sh.classifyCircle(g.lat, g.lng, r)
	} else {
		cl = b.sh.classifyPolygons(g.lat, g.lng, r, b.edges)
	}
	b.cls[c] = cl
	return cl
}

// geometry returns the cap of cell c: from the index when c is listed
// already, from the caches, or from H3.
func (b *builder) geometry(c uint64) cellGeo {
	ix := b.ix
	if e, ok := ix.cells[c]; ok {
		return cellGeo{e.lat, e.lng, e.r}
	}
	if g, ok := b.geo[c]; ok {
		return g
	}
	if g, ok := ix.geoCache[c]; ok {
		return g
	}
	g := computeGeo(c)
	b.geo[c] = g
	if ix.cfg.GeometryCache > 0 {
		if len(ix.geoCache) >= ix.cfg.GeometryCache {
			clear(ix.geoCache)
		}
		ix.geoCache[c] = g
	}
	return g
}

// computeGeo asks H3 for the centre and boundary of cell c.
func computeGeo(c uint64) cellGeo {
	ll := h3.Cell(c).LatLng()
	r := 0.0
	for _, v := range h3.Cell(c).Boundary() {
		r = math.Max(r, havRad(ll.Lat, ll.Lng, v.Lat, v.Lng))
	}
	r = r*(1+capSlackRel) + capSlackAbs
	r32 := float32(r)
	if float64(r32) < r {
		r32 = math.Nextafter32(r32, float32(math.Inf(1)))
	}
	return cellGeo{lat: ll.Lat, lng: ll.Lng, r: r32}
}
