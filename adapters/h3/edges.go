package h3

import (
	"math"

	"github.com/tmsfleet/tms/domain/geo"
)

// edgeSet answers, while a polygon shape is being added, which of its
// member polygons have an edge that may meet a rectangle, and whether a
// point away from the edges is inside a member. Small shapes scan every
// edge; shapes with many edges bucket them on a uniform longitude/latitude
// grid over their bounding box, so that classifying a cell costs about the
// number of edges near it, or in its grid row, instead of all of them.
type edgeSet struct {
	edges []edge
	meets []bool

	// The grid, when there is one.
	box          rect
	nx, ny       int
	cellW, cellH float64
	buckets      [][]int32
	stamp        []uint32
	cur          uint32
	parity       []bool // per ring, for contains
}

type edge struct {
	a, b         geo.Point
	member, ring int32
}

// gridAbove is the number of edges above which an edgeSet builds a grid.
const gridAbove = 48

func newEdgeSet(mp geo.MultiPolygon, all rect) *edgeSet {
	es := &edgeSet{meets: make([]bool, len(mp))}
	for i, pg := range mp {
		for r, ring := range pg {
			for j := 0; j+1 < len(ring); j++ {
				es.edges = append(es.edges, edge{ring[j], ring[j+1], int32(i), int32(r)})
			}
		}
	}
	if len(es.edges) <= gridAbove {
		return es
	}
	g := int(math.Ceil(math.Sqrt(float64(len(es.edges)) / 2)))
	g = min(max(g, 2), 128)
	es.box = all
	es.nx, es.ny = g, g
	es.cellW = (all.maxLng - all.minLng) / float64(g)
	es.cellH = (all.maxLat - all.minLat) / float64(g)
	es.buckets = make([][]int32, g*g)
	es.stamp = make([]uint32, len(es.edges))
	for id, e := range es.edges {
		x0, x1 := es.col(math.Min(e.a.Lng, e.b.Lng)), es.col(math.Max(e.a.Lng, e.b.Lng))
		y0, y1 := es.row(math.Min(e.a.Lat, e.b.Lat)), es.row(math.Max(e.a.Lat, e.b.Lat))
		for y := y0; y <= y1; y++ {
			for x := x0; x <= x1; x++ {
				es.buckets[y*g+x] = append(es.buckets[y*g+x], int32(id))
			}
		}
	}
	return es
}

// col and row return the grid column and row of a longitude and latitude,
// clamped to the grid: an edge or rectangle beyond the box is filed at its
// border, which only adds candidates.
func (es *edgeSet) col(lng float64) int {
	if es.cellW <= 0 {
		return 0
	}
	return min(max(int(math.Floor((lng-es.box.minLng)/es.cellW)), 0), es.nx-1)
}

func (es *edgeSet) row(lat float64) int {
	if es.cellH <= 0 {
		return 0
	}
	return min(max(int(math.Floor((lat-es.box.minLat)/es.cellH)), 0), es.ny-1)
}

// membersMeeting returns, for each member polygon, whether one of its edges
// may meet r. The slice is reused by the next call.
func (es *edgeSet) membersMeeting(r rect) []bool {
	clear(es.meets)
	if es.buckets == nil {
		for _, e := range es.edges {
			if !es.meets[e.member] && segMayMeet(e.a, e.b, r) {
				es.meets[e.member] = true
			}
		}
		return es.meets
	}
	if !r.overlaps(es.box) {
		return es.meets
	}
	es.cur++
	if es.cur == 0 { // wrapped: forget every stamp
		clear(es.stamp)
		es.cur = 1
	}
	x0, x1 := es.col(r.minLng), es.col(r.maxLng)
	y0, y1 := es.row(r.minLat), es.row(r.maxLat)
	for y := y0; y <= y1; y++ {
		for x := x0; x <= x1; x++ {
			for _, id := range es.buckets[y*es.nx+x] {
				if es.stamp[id] == es.cur {
					continue
				}
				es.stamp[id] = es.cur
				e := &es.edges[id]
				if !es.meets[e.member] && segMayMeet(e.a, e.b, r) {
					es.meets[e.member] = true
				}
			}
		}
	}
	return es.meets
}

// contains reports whether member m of the polygons contains p, for a p
// that is on no edge (a corner of a rectangle no edge meets). Without a
// grid it is Polygon.Contains; with one, it counts only the edges of the
// grid row of p east of it: an edge crossing the ray eastwards from p has
// a point there. Away from the edges, inside or outside is a topological
// fact that any correct crossing count agrees on; this one uses geo's
// half-open rule (geo.Straddles, geo.PassesEast) and exact orientations.
func (es *edgeSet) contains(m int, pg geo.Polygon, p geo.Point) bool {
	if es.buckets == nil || len(pg) == 0 {
		return pg.Contains(p)
	}
	if p.Lat < es.box.minLat || p.Lat > es.box.maxLat || p.Lng > es.box.maxLng {
		return false // no edge straddles p's latitude east of it
	}
	es.cur++
	if es.cur == 0 {
		clear(es.stamp)
		es.cur = 1
	}
	if cap(es.parity) < len(pg) {
		es.parity = make([]bool, len(pg))
	}
	parity := es.parity[:len(pg)]
	clear(parity)
	y := es.row(p.Lat)
	for x := es.col(p.Lng); x < es.nx; x++ {
		for _, id := range es.buckets[y*es.nx+x] {
			if es.stamp[id] == es.cur {
				continue
			}
			es.stamp[id] = es.cur
			e := &es.edges[id]
			if int(e.member) != m || !geo.Straddles(e.a, e.b, p) {
				continue
			}
			if geo.PassesEast(e.a, e.b, geo.Orient(e.a, e.b, p)) {
				parity[e.ring] = !parity[e.ring]
			}
		}
	}
	if !parity[0] {
		return false
	}
	for _, inHole := range parity[1:] {
		if inHole {
			return false
		}
	}
	return true
}
