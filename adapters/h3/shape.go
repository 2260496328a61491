package h3

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/geofence"
)

// ErrShape is returned (wrapped) by Add for a shape it does not index:
// neither or both of circle and polygons set, a circle whose centre is not
// a valid position or whose radius is not a finite number of metres ≥ 0, a
// polygon ring that is not closed, has a position out of range or an edge
// spanning more than 180° of longitude (which geo.ValidatePolygon rejects
// too: taken literally, such an edge goes the long way round the globe),
// or a shape whose cover could need more than Config.MaxCoverCells cells
// (then it wraps ErrTooLarge too).
// Polygons need not be otherwise valid: self-intersecting rings, holes
// outside their outer ring and overlapping members are indexed exactly as
// Shape.Contains reads them.
var ErrShape = errors.New("h3: shape cannot be indexed")

// class is what the index knows about a cap (a cell's disc) and a shape.
type class uint8

const (
	out   class = iota // the cap is certainly disjoint from the shape
	bound              // the cap may meet the shape's boundary
	in                 // the cap is certainly inside the shape
)

// shapeRec is one indexed shape with what the hot path needs.
type shapeRec struct {
	key   geofence.Key
	shape geofence.Shape

	circle bool
	// The circle's exact test (see circleTest) and its radius in radians.
	ct circleTest
	rr float64

	// Polygons: the bounding box of each member's outer ring (a point
	// outside it is outside the member, exactly), and of all rings of all
	// members (for Near).
	outer []rect
	all   rect

	cells      []byte // the cells the shape is listed in, for Remove: see packCells
	nearGlobal bool   // too large for Near's buckets
}

// newShapeRec validates s and precomputes what the index needs.
func newShapeRec(key geofence.Key, s geofence.Shape) (*shapeRec, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrShape, err)
	}
	sh := &shapeRec{key: key, shape: s}
	if c := s.Circle; c != nil {
		if err := geo.ValidatePoint("center", c.Center); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrShape, err)
		}
		if math.IsNaN(c.RadiusM) || math.IsInf(c.RadiusM, 0) || c.RadiusM < 0 {
			return nil, fmt.Errorf("%w: radius %v m is not a finite number ≥ 0", ErrShape, c.RadiusM)
		}
		sh.circle = true
		sh.ct = newCircleTest(*c)
		sh.rr = c.RadiusM / earthR
		return sh, nil
	}
	sh.all = rect{minLat: math.Inf(1), minLng: math.Inf(1), maxLat: math.Inf(-1), maxLng: math.Inf(-1)}
	sh.outer = make([]rect, len(s.Polygons))
	for i, pg := range s.Polygons {
		sh.outer[i] = rect{minLat: math.Inf(1), minLng: math.Inf(1), maxLat: math.Inf(-1), maxLng: math.Inf(-1)}
		for j, ring := range pg {
			if len(ring) > 0 && ring[0] != ring[len(ring)-1] {
				return nil, fmt.Errorf("%w: polygon %d ring %d is not closed", ErrShape, i, j)
			}
			for k, p := range ring {
				if err := geo.ValidatePoint(fmt.Sprintf("coordinates[%d][%d][%d]", i, j, k), p); err != nil {
					return nil, fmt.Errorf("%w: %w", ErrShape, err)
				}
				if k > 0 && math.Abs(p.Lng-ring[k-1].Lng) > 180 {
					return nil, fmt.Errorf("%w: polygon %d ring %d edge %d spans more than 180° of longitude; split a shape across the antimeridian into a MultiPolygon", ErrShape, i, j, k)
				}
				if j == 0 {
					sh.outer[i] = grow(sh.outer[i], p)
				}
				sh.all = grow(sh.all, p)
			}
		}
	}
	return sh, nil
}

func grow(r rect, p geo.Point) rect {
	return rect{
		minLat: math.Min(r.minLat, p.Lat), minLng: math.Min(r.minLng, p.Lng),
		maxLat: math.Max(r.maxLat, p.Lat), maxLng: math.Max(r.maxLng, p.Lng),
	}
}

// contains is Shape.Contains, faster. cosp caches cos(p.Lat·radians)
// across the shapes tested for one fix (NaN until computed).
func (sh *shapeRec) contains(p geo.Point, cosp *float64) bool {
	if sh.circle {
		switch sh.ct.decide(p, cosp) {
		case 1:
			return true
		case -1:
			return false
		}
		return sh.shape.Circle.Contains(p)
	}
	for i, pg := range sh.shape.Polygons {
		if sh.outer[i].contains(p) && pg.Contains(p) {
			return true
		}
	}
	return false
}

// classifyCircle compares the cap (lat, lng, r) with the circle.
func (sh *shapeRec) classifyCircle(lat, lng, r float64) class {
	d := havRad(lat, lng, sh.ct.clat, sh.ct.clng)
	m := classMarginAbs + classMarginRel*(sh.rr+r)
	switch {
	case d+r+m <= sh.rr:
		return in
	case d-r-m > sh.rr:
		return out
	}
	return bound
}

// classifyPolygons compares the cap (lat, lng, r) with the polygons, in the
// longitude/latitude plane where their edges are straight: the cap lies in
// one or two rectangles (capRects); a rectangle that no edge of any ring
// meets is entirely inside or entirely outside each polygon (the crossing
// parity of a closed ring changes only across its edges), which one
// exact point-in-polygon test of a corner decides.
func (sh *shapeRec) classifyPolygons(lat, lng, r float64, edges *edgeSet) class {
	rs, n := capRects(lat, lng, r)
	result := class(0)
	for i := range n {
		c := sh.classifyRect(rs[i], edges)
		if i == 0 {
			result = c
		} else if c != result {
			return bound
		}
	}
	return result
}

func (sh *shapeRec) classifyRect(r rect, edges *edgeSet) class {
	meets := edges.membersMeeting(r)
	corner := geo.Point{Lat: r.minLat, Lng: r.minLng}
	anyBound := false
	for i, pg := range sh.shape.Polygons {
		// An edge of any ring makes the cell bound, even a hole's edge
		// lying outside the outer ring (an invalid polygon): Near's
		// answer from a cursor's cell relies on every edge being listed,
		// as Shape.OutsideBy measures the distance to all of them.
		if meets[i] {
			anyBound = true
			continue
		}
		if !sh.outer[i].overlaps(r) {
			continue // the rectangle is outside the outer ring's box
		}
		if edges.contains(i, pg, corner) {
			return in
		}
	}
	if anyBound {
		return bound
	}
	return out
}

// packCells encodes a shape's cells for Remove: sorted, as varint
// differences (the cells of one shape are close in H3's numbering, so
// about 3 bytes each instead of 8).
func packCells(cells []uint64) []byte {
	slices.Sort(cells)
	var out []byte
	prev := uint64(0)
	for _, c := range cells {
		out = binary.AppendUvarint(out, c-prev)
		prev = c
	}
	return slices.Clip(out)
}

// unpackCells calls f with each cell packCells encoded.
func unpackCells(b []byte, f func(uint64)) {
	c := uint64(0)
	for len(b) > 0 {
		d, n := binary.Uvarint(b)
		b = b[n:]
		c += d
		f(c)
	}
}
