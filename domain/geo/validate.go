package geo

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// ShapeError says what is wrong with a shape and where, as a JSON-path
// like field ("geometry.coordinates[0][3]").
type ShapeError struct {
	Field  string
	Detail string
}

func (e *ShapeError) Error() string { return e.Field + ": " + e.Detail }

func shapeErr(field, format string, args ...any) *ShapeError {
	return &ShapeError{Field: field, Detail: fmt.Sprintf(format, args...)}
}

// ValidatePoint checks one position; field names it.
func ValidatePoint(field string, p Point) *ShapeError {
	switch {
	case math.IsNaN(p.Lat) || math.IsNaN(p.Lng) || math.IsInf(p.Lat, 0) || math.IsInf(p.Lng, 0):
		return shapeErr(field, "coordinates must be finite numbers")
	case p.Lat < -90 || p.Lat > 90:
		return shapeErr(field, "latitude %v is outside [-90, 90]", p.Lat)
	case p.Lng < -180 || p.Lng > 180:
		return shapeErr(field, "longitude %v is outside [-180, 180]", p.Lng)
	}
	return nil
}

// ValidatePolygon checks that pg is a valid GeoJSON polygon tms can test
// exactly: every ring closed with at least four positions, coordinates in
// range, no edge spanning more than 180° of longitude (a shape across the
// antimeridian must be split), no two consecutive positions equal, not all
// positions of a ring on one line, no two edges of any rings crossing or
// touching except consecutive edges at their shared vertex (which must not
// double back), and every hole inside the outer ring. field names the
// polygon's coordinates.
//
// It takes O(n log n) time for n positions (a sweep over the edges, see
// validator.sweep), and every decision in it is exact (see Orient).
func ValidatePolygon(field string, pg Polygon) *ShapeError {
	if len(pg) == 0 {
		return shapeErr(field, "a polygon needs an outer ring")
	}
	return validateShape(field, MultiPolygon{pg}, false)
}

// ValidateMultiPolygon checks each polygon as ValidatePolygon does, and
// that the members are disjoint, as GeoJSON requires: no edge of one meets
// an edge of another, and no member's outer ring lies inside another's.
func ValidateMultiPolygon(field string, mp MultiPolygon) *ShapeError {
	if len(mp) == 0 {
		return shapeErr(field, "a MultiPolygon needs at least one polygon")
	}
	for i, pg := range mp {
		if len(pg) == 0 {
			return shapeErr(fmt.Sprintf("%s[%d]", field, i), "a polygon needs an outer ring")
		}
	}
	return validateShape(field, mp, true)
}

// CheckStoredPolygon checks what every computation on a polygon needs,
// in linear time and without comparing edges: an outer ring, every ring
// closed with at least four positions, coordinates finite and in range,
// no edge spanning more than 180° of longitude. It is how a polygon that
// was validated when it was accepted (ValidatePolygon) is checked when it
// is read back, where a forged one could at worst be judged by its own
// crossing rule, never crash or loop: a self-crossing ring still has an
// inside (the crossing parity), and every algorithm on it stays bounded.
func CheckStoredPolygon(field string, pg Polygon) *ShapeError {
	if len(pg) == 0 {
		return shapeErr(field, "a polygon needs an outer ring")
	}
	v := &validator{field: field, mp: MultiPolygon{pg}, structureOnly: true}
	return v.checkRings()
}

// CheckStoredMultiPolygon is CheckStoredPolygon for each member.
func CheckStoredMultiPolygon(field string, mp MultiPolygon) *ShapeError {
	if len(mp) == 0 {
		return shapeErr(field, "a MultiPolygon needs at least one polygon")
	}
	for i, pg := range mp {
		if len(pg) == 0 {
			return shapeErr(fmt.Sprintf("%s[%d]", field, i), "a polygon needs an outer ring")
		}
	}
	v := &validator{field: field, multi: true, mp: mp, structureOnly: true}
	return v.checkRings()
}

// validateShape validates the polygons of mp (one, unless multi, which
// only changes how fields are named): the cheap checks of each ring, then
// one sweep over all edges.
func validateShape(field string, mp MultiPolygon, multi bool) *ShapeError {
	v := &validator{field: field, multi: multi, mp: mp}
	if err := v.checkRings(); err != nil {
		return err
	}
	return v.sweep()
}

func (v *validator) checkRings() *ShapeError {
	for p, pg := range v.mp {
		for r, ring := range pg {
			if err := v.checkRing(p, r, ring); err != nil {
				return err
			}
		}
	}
	return nil
}

// validator holds the rings and edges of one shape being validated.
type validator struct {
	field string
	multi bool
	mp    MultiPolygon
	// structureOnly stops checkRing after the checks every ring must
	// pass, stored or not (see CheckStoredPolygon).
	structureOnly bool

	rings []ringInfo
	edges []sweepEdge
}

// ringInfo is one ring of the shape, as the sweep knows it.
type ringInfo struct {
	poly, ring int // where it is in the MultiPolygon
	pts        Ring
	// low is the index of the ring's lowest vertex in (Lng, Lat) order,
	// where the sweep first meets the ring, and ccw whether the ring runs
	// counter-clockwise (its interior left of every edge).
	low int
	ccw bool
	// parent is the innermost ring whose interior contains this ring (-1:
	// none), outer the innermost outer ring (ring 0 of a polygon) among
	// the ring's ancestors.
	parent, outer int32
	placed        bool
}

// sweepEdge is an edge of a ring, from pts[idx] to pts[idx+1], with its
// endpoints in sweep order: l before r in (Lng, Lat) order. forward says
// whether the ring runs from l to r.
type sweepEdge struct {
	l, r    Point
	ring    int32
	idx     int32
	forward bool
}

// ringField names ring ri: field[r], or field[p][r] for a MultiPolygon.
func (v *validator) ringField(ri int32) string {
	rg := &v.rings[ri]
	if v.multi {
		return fmt.Sprintf("%s[%d][%d]", v.field, rg.poly, rg.ring)
	}
	return fmt.Sprintf("%s[%d]", v.field, rg.ring)
}

func (v *validator) polyField(p int) string {
	if v.multi {
		return fmt.Sprintf("%s[%d]", v.field, p)
	}
	return v.field
}

// less orders points as the sweep meets them: by longitude, then latitude.
// Coordinates are finite here (checked first).
func less(a, b Point) int {
	switch {
	case a.Lng < b.Lng:
		return -1
	case a.Lng > b.Lng:
		return 1
	case a.Lat < b.Lat:
		return -1
	case a.Lat > b.Lat:
		return 1
	}
	return 0
}

// checkRing makes the checks of one ring that need no other ring, in
// linear time, and records the ring and its edges.
func (v *validator) checkRing(p, r int, ring Ring) *ShapeError {
	var rf string
	if v.multi {
		rf = fmt.Sprintf("%s[%d][%d]", v.field, p, r)
	} else {
		rf = fmt.Sprintf("%s[%d]", v.field, r)
	}
	if len(ring) < 4 {
		return shapeErr(rf, "a ring needs at least 4 positions (3 corners and the first repeated), got %d", len(ring))
	}
	if ring[0] != ring[len(ring)-1] {
		return shapeErr(rf, "the ring is not closed: its last position must equal its first")
	}
	for j, pt := range ring {
		if !pt.Valid() { // fields are named only for errors: Sprintf per position costs more than the sweep
			return ValidatePoint(fmt.Sprintf("%s[%d]", rf, j), pt)
		}
	}
	for j := 0; j+1 < len(ring); j++ {
		if math.Abs(ring[j+1].Lng-ring[j].Lng) > 180 {
			return shapeErr(fmt.Sprintf("%s[%d]", rf, j+1),
				"an edge spans more than 180° of longitude; split a shape that crosses the antimeridian into a MultiPolygon")
		}
	}
	if v.structureOnly {
		return nil
	}
	// A ring that encloses no area has all its positions on one line.
	k := slices.IndexFunc(ring, func(q Point) bool { return q != ring[0] })
	if k < 0 || !slices.ContainsFunc(ring[k+1:], func(q Point) bool { return Orient(ring[0], ring[k], q) != 0 }) {
		return shapeErr(rf, "the ring encloses no area")
	}
	for j := 0; j+1 < len(ring); j++ {
		if ring[j] == ring[j+1] {
			return shapeErr(fmt.Sprintf("%s[%d]", rf, j+1), "repeats the position before it: consecutive positions must differ")
		}
	}
	m := len(ring) - 1 // vertices; ring[m] is ring[0]
	ri := int32(len(v.rings))
	low := 0
	for j := 1; j < m; j++ {
		if less(ring[j], ring[low]) < 0 {
			low = j
		}
	}
	prev, next := ring[(low+m-1)%m], ring[low+1]
	v.rings = append(v.rings, ringInfo{
		poly: p, ring: r, pts: ring, low: low, ccw: Orient(prev, ring[low], next) > 0, parent: -1, outer: -1,
	})
	for j := range m {
		e := sweepEdge{l: ring[j], r: ring[j+1], ring: ri, idx: int32(j), forward: true}
		if less(e.r, e.l) < 0 {
			e.l, e.r, e.forward = e.r, e.l, false
		}
		v.edges = append(v.edges, e)
	}
	return nil
}

// conflict is two edges (or an edge and a vertex) that meet where they
// must not.
type conflict struct {
	kind int
	e, f int32 // edges; for repeatedVertex, vertices (see vertexConflict)
}

const (
	edgesMeet = iota + 1
	doublesBack
)

// edgeConflict describes edges e and f meeting (kind edgesMeet) or
// folding back onto each other (doublesBack), at the field of the later
// one.
func (v *validator) edgeConflict(kind int, e, f int32) *ShapeError {
	a, b := &v.edges[e], &v.edges[f]
	if a.ring > b.ring || (a.ring == b.ring && a.idx > b.idx) {
		a, b = b, a
	}
	ra, rb := &v.rings[a.ring], &v.rings[b.ring]
	if ra.poly != rb.poly {
		return shapeErr(v.polyField(rb.poly), "polygon %d overlaps or touches polygon %d", rb.poly, ra.poly)
	}
	bf := fmt.Sprintf("%s[%d]", v.ringField(b.ring), b.idx)
	// Consecutive edges meet beyond their shared vertex only by folding
	// back along each other.
	if m := int32(len(ra.pts) - 1); kind == doublesBack || (a.ring == b.ring && (b.idx == a.idx+1 || (a.idx == 0 && b.idx == m-1))) {
		return shapeErr(bf, "the ring doubles back on itself")
	}
	return shapeErr(bf, "edge %d of ring %d meets edge %d of ring %d: rings must not cross or touch", b.idx, rb.ring, a.idx, ra.ring)
}

// vertex is one occurrence of a ring's vertex.
type vertex struct {
	ring, idx int32
}

// repeatedVertex reports a position that is a vertex of two rings, or
// twice a vertex of one ring (not as its closing position): their edges
// touch there. evs are the sweep's events, sorted: every vertex is the
// endpoint of exactly its two edges, so a point with more than two events
// is a repeated vertex. With none, two edges that share an endpoint are
// the two edges of one vertex: consecutive edges of one ring.
func (v *validator) repeatedVertex(evs []event) *ShapeError {
	for i := 0; i < len(evs); {
		j := i + 1
		for j < len(evs) && evs[j].at == evs[i].at {
			j++
		}
		if j-i > 2 {
			var vs []vertex
			for _, ev := range evs[i:j] {
				e := &v.edges[ev.edge]
				idx := e.idx
				if v.rings[e.ring].pts[idx] != ev.at {
					idx = (idx + 1) % int32(len(v.rings[e.ring].pts)-1)
				}
				vs = append(vs, vertex{e.ring, idx})
			}
			slices.SortFunc(vs, func(x, y vertex) int {
				if c := cmp.Compare(x.ring, y.ring); c != 0 {
					return c
				}
				return cmp.Compare(x.idx, y.idx)
			})
			vs = slices.Compact(vs)
			a, b := vs[0], vs[1] // b is later: in a later ring, or later in the same one
			ra, rb := &v.rings[a.ring], &v.rings[b.ring]
			if ra.poly != rb.poly {
				return shapeErr(v.polyField(rb.poly), "polygon %d overlaps or touches polygon %d", rb.poly, ra.poly)
			}
			return shapeErr(fmt.Sprintf("%s[%d]", v.ringField(b.ring), b.idx),
				"position %d of ring %d is position %d of ring %d again: rings must not cross or touch", b.idx, rb.ring, a.idx, ra.ring)
		}
		i = j
	}
	return nil
}

// event is an edge entering (at its left endpoint) or leaving (at its
// right endpoint) the sweep.
type event struct {
	at     Point
	remove bool
	edge   int32
}

// sweep finds any two edges that meet where they must not, and places
// every ring in the nesting of the others, with a Shamos-Hoey sweep over
// the edges in (Lng, Lat) order (lexicographic order makes a vertical
// edge an ordinary one of a slightly tilted sweep line). The active edges
// are kept in a balanced tree in their order along the sweep line; two
// edges that meet are, at the leftmost point where any two meet, neighbours
// in that order, so checking each pair of edges when they become
// neighbours finds a meeting if there is one: O(n log n) in all.
//
// A ring's nesting is read where the sweep first reaches it, at its lowest
// vertex: the nearest active edge below that vertex either has its ring's
// interior above it (that ring is the parent) or not (the parent is that
// ring's parent). With no edges meeting, that decides whether each hole
// is inside its outer ring and no outer ring is inside another.
func (v *validator) sweep() *ShapeError {
	evs := make([]event, 0, 2*len(v.edges))
	for i, e := range v.edges {
		evs = append(evs, event{e.l, false, int32(i)}, event{e.r, true, int32(i)})
	}
	slices.SortFunc(evs, func(x, y event) int {
		if c := less(x.at, y.at); c != 0 {
			return c
		}
		if x.remove != y.remove {
			if x.remove {
				return -1 // edges ending here leave before others start
			}
			return 1
		}
		return cmp.Compare(x.edge, y.edge)
	})
	if err := v.repeatedVertex(evs); err != nil {
		return err
	}
	t := newTree(len(v.edges))
	var nesting *ShapeError // reported only if no edges meet
	for _, ev := range evs {
		e := &v.edges[ev.edge]
		if ev.remove {
			pred, succ := t.prev(ev.edge), t.next(ev.edge)
			t.remove(ev.edge)
			if pred >= 0 && succ >= 0 {
				if c := v.check(pred, succ); c != nil {
					return v.edgeConflict(c.kind, c.e, c.f)
				}
			}
			continue
		}
		// The first insertion at a ring's lowest vertex places the ring.
		if rg := &v.rings[e.ring]; !rg.placed && rg.pts[rg.low] == ev.at {
			rg.placed = true
			if c := v.place(t, e.ring, ev.edge); c != nil {
				return v.edgeConflict(c.kind, c.e, c.f)
			}
			if nesting == nil {
				nesting = v.nestingError(e.ring)
			}
		}
		if c := t.insert(ev.edge, v.compare); c != nil {
			return v.edgeConflict(c.kind, c.e, c.f)
		}
		for _, n := range [...]int32{t.prev(ev.edge), t.next(ev.edge)} {
			if n >= 0 {
				if c := v.check(ev.edge, n); c != nil {
					return v.edgeConflict(c.kind, c.e, c.f)
				}
			}
		}
	}
	return nesting
}

// compare orders edge s, being inserted at its left endpoint, against
// edge t of the tree, along the sweep line through that endpoint: +1 when
// s is above t. The endpoint lies on t only where they meet: at t's left
// endpoint too (the two edges of one vertex, ordered by where they go) or
// inside t, which is a conflict.
func (v *validator) compare(s, t int32) (int, *conflict) {
	es, et := &v.edges[s], &v.edges[t]
	if es.l != et.l {
		if o := Orient(et.l, et.r, es.l); o != 0 {
			return o, nil
		}
		return 0, &conflict{edgesMeet, s, t}
	}
	if o := Orient(et.l, et.r, es.r); o != 0 {
		return o, nil
	}
	return 0, &conflict{doublesBack, s, t}
}

// check reports whether edges e and f, neighbours in the sweep, meet where
// they must not: anywhere, unless they share an endpoint (then they are
// the two edges of that vertex), in which case they must not overlap
// beyond it.
func (v *validator) check(e, f int32) *conflict {
	a, b := &v.edges[e], &v.edges[f]
	var shared, oa, ob Point
	switch {
	case a.l == b.l:
		shared, oa, ob = a.l, a.r, b.r
	case a.l == b.r:
		shared, oa, ob = a.l, a.r, b.l
	case a.r == b.l:
		shared, oa, ob = a.r, a.l, b.r
	case a.r == b.r:
		shared, oa, ob = a.r, a.l, b.l
	default:
		if segmentsMeet(a.l, a.r, b.l, b.r) {
			return &conflict{edgesMeet, e, f}
		}
		return nil
	}
	if Orient(shared, oa, ob) == 0 && sameSide(shared, oa, ob) {
		return &conflict{doublesBack, e, f}
	}
	return nil
}

// sameSide reports whether a and b, on one line through s and distinct
// from it, lie on the same side of s. Signs of coordinate differences are
// exact, so this is.
func sameSide(s, a, b Point) bool {
	return cmp.Compare(a.Lng, s.Lng)*cmp.Compare(b.Lng, s.Lng)+cmp.Compare(a.Lat, s.Lat)*cmp.Compare(b.Lat, s.Lat) > 0
}

// place sets the parent and outer ancestor of ring ri, whose lowest
// vertex the sweep has reached (edge e starts there), from the nearest
// active edge below that vertex.
func (v *validator) place(t *tree, ri, e int32) *conflict {
	rg := &v.rings[ri]
	p := rg.pts[rg.low]
	below := int32(-1)
	for n := t.root; n >= 0; {
		et := &v.edges[n]
		switch o := Orient(et.l, et.r, p); {
		case o == 0:
			return &conflict{edgesMeet, e, n} // the vertex is on another edge
		case o > 0:
			below, n = n, t.nodes[n].right
		default:
			n = t.nodes[n].left
		}
	}
	if below < 0 {
		return nil
	}
	eb := &v.edges[below]
	br := &v.rings[eb.ring]
	// The region just above eb is inside eb's ring iff the ring's interior
	// is left of eb as the ring runs, and the ring runs left to right.
	if br.ccw == eb.forward {
		rg.parent = eb.ring
	} else {
		rg.parent = br.parent
	}
	if rg.parent >= 0 {
		if par := &v.rings[rg.parent]; par.ring == 0 {
			rg.outer = rg.parent
		} else {
			rg.outer = par.outer
		}
	}
	return nil
}

// nestingError says what is wrong with where ring ri lies: a hole must be
// inside its own polygon's outer ring, and an outer ring inside no other.
func (v *validator) nestingError(ri int32) *ShapeError {
	rg := &v.rings[ri]
	if rg.ring == 0 {
		if rg.outer < 0 {
			return nil
		}
		other := v.rings[rg.outer].poly
		return shapeErr(v.polyField(max(rg.poly, other)), "polygon %d overlaps or touches polygon %d", max(rg.poly, other), min(rg.poly, other))
	}
	if rg.outer >= 0 && v.rings[rg.outer].poly == rg.poly {
		return nil
	}
	return shapeErr(v.ringField(ri), "the hole is not inside the outer ring")
}

// segmentsMeet reports whether closed segments a-b and c-d share a point.
func segmentsMeet(a, b, c, d Point) bool {
	o1, o2 := Orient(a, b, c), Orient(a, b, d)
	o3, o4 := Orient(c, d, a), Orient(c, d, b)
	if o1*o2 < 0 && o3*o4 < 0 {
		return true
	}
	return (o1 == 0 && onSegment(a, b, c)) || (o2 == 0 && onSegment(a, b, d)) ||
		(o3 == 0 && onSegment(c, d, a)) || (o4 == 0 && onSegment(c, d, b))
}
