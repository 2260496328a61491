package geo

// The validation as it was before the sweep: every pair of edges compared.
// It is slow (quadratic) and obviously right, which makes it the oracle
// the sweep is tested against. Its orientations are Orient's, which
// TestOrientIsExact compares with rational arithmetic on its own: the two
// were the same exact function before, and rational arithmetic everywhere
// would make the comparison too slow to run often.

import (
	"fmt"
	"math"
	"math/big"
)

// oracleValidatePolygon is ValidatePolygon as it was: every ring closed
// with at least four positions, coordinates in range, no edge spanning
// more than 180° of longitude, some area, no two edges of any rings
// crossing or touching except consecutive edges at their shared vertex
// (which must not double back), and every hole's first position inside
// the outer ring.
func oracleValidatePolygon(field string, pg Polygon) *ShapeError {
	if len(pg) == 0 {
		return shapeErr(field, "a polygon needs an outer ring")
	}
	for i, ring := range pg {
		rf := fmt.Sprintf("%s[%d]", field, i)
		if len(ring) < 4 {
			return shapeErr(rf, "a ring needs at least 4 positions (3 corners and the first repeated), got %d", len(ring))
		}
		if ring[0] != ring[len(ring)-1] {
			return shapeErr(rf, "the ring is not closed: its last position must equal its first")
		}
		for j, p := range ring {
			if err := ValidatePoint(fmt.Sprintf("%s[%d]", rf, j), p); err != nil {
				return err
			}
		}
		for j := 0; j+1 < len(ring); j++ {
			if math.Abs(ring[j+1].Lng-ring[j].Lng) > 180 {
				return shapeErr(fmt.Sprintf("%s[%d]", rf, j+1),
					"an edge spans more than 180° of longitude; split a shape that crosses the antimeridian into a MultiPolygon")
			}
		}
		if oracleNoArea(ring) {
			return shapeErr(rf, "the ring encloses no area")
		}
	}
	if err := oracleCrossings(field, pg); err != nil {
		return err
	}
	for i, hole := range pg[1:] {
		if oracleLocate(pg[0], hole[0]) != inside {
			return shapeErr(fmt.Sprintf("%s[%d]", field, i+1), "the hole is not inside the outer ring")
		}
	}
	return nil
}

// oracleValidateMultiPolygon is ValidateMultiPolygon as it was: each
// polygon valid, and no two outer rings meeting or one containing the
// other's first position.
func oracleValidateMultiPolygon(field string, mp MultiPolygon) *ShapeError {
	if len(mp) == 0 {
		return shapeErr(field, "a MultiPolygon needs at least one polygon")
	}
	for i, pg := range mp {
		if err := oracleValidatePolygon(fmt.Sprintf("%s[%d]", field, i), pg); err != nil {
			return err
		}
	}
	for i := range mp {
		for j := i + 1; j < len(mp); j++ {
			if oracleRingsMeet(mp[i][0], mp[j][0]) || oracleLocate(mp[i][0], mp[j][0][0]) != outside || oracleLocate(mp[j][0], mp[i][0][0]) != outside {
				return shapeErr(fmt.Sprintf("%s[%d]", field, j), "polygon %d overlaps or touches polygon %d", j, i)
			}
		}
	}
	return nil
}

// oracleNoArea reports whether a ring's signed area is exactly zero. The
// old validation computed it in floating point (area2 == 0), which
// rejected thin valid triangles whose area rounded to zero: the one
// decision of the old code that depended on rounding, made exact here so
// that the oracle states the rules, not their rounding.
func oracleNoArea(r Ring) bool {
	s := new(big.Rat)
	rat := func(f float64) *big.Rat { return new(big.Rat).SetFloat64(f) }
	for i := 0; i+1 < len(r); i++ {
		s.Add(s, new(big.Rat).Mul(rat(r[i].Lng), rat(r[i+1].Lat)))
		s.Sub(s, new(big.Rat).Mul(rat(r[i+1].Lng), rat(r[i].Lat)))
	}
	return s.Sign() == 0
}

type oracleEdge struct {
	ring, index int
	a, b        Point
}

// oracleCrossings finds two edges of pg that meet where they should not.
func oracleCrossings(field string, pg Polygon) *ShapeError {
	var edges []oracleEdge
	for ri, ring := range pg {
		for i := 0; i+1 < len(ring); i++ {
			edges = append(edges, oracleEdge{ri, i, ring[i], ring[i+1]})
		}
	}
	for i := range edges {
		for j := i + 1; j < len(edges); j++ {
			e, f := edges[i], edges[j]
			if e.ring == f.ring && oracleAdjacent(e.index, f.index, len(pg[e.ring])-1) {
				// Consecutive edges share a vertex; they may not fold back
				// onto each other.
				if oracleOverlapCollinear(e.a, e.b, f.a, f.b) {
					return shapeErr(fmt.Sprintf("%s[%d][%d]", field, f.ring, f.index), "the ring doubles back on itself")
				}
				continue
			}
			if oracleSegmentsMeet(e.a, e.b, f.a, f.b) {
				return shapeErr(fmt.Sprintf("%s[%d][%d]", field, f.ring, f.index),
					"edge %d of ring %d meets edge %d of ring %d: rings must not cross or touch", f.index, f.ring, e.index, e.ring)
			}
		}
	}
	return nil
}

func oracleAdjacent(i, j, edges int) bool {
	return j == i+1 || (i == 0 && j == edges-1)
}

// oracleSegmentsMeet reports whether closed segments a-b and c-d share a point.
func oracleSegmentsMeet(a, b, c, d Point) bool {
	o1, o2 := Orient(a, b, c), Orient(a, b, d)
	o3, o4 := Orient(c, d, a), Orient(c, d, b)
	if o1*o2 < 0 && o3*o4 < 0 {
		return true
	}
	return (o1 == 0 && oracleOnSegment(a, b, c)) || (o2 == 0 && oracleOnSegment(a, b, d)) ||
		(o3 == 0 && oracleOnSegment(c, d, a)) || (o4 == 0 && oracleOnSegment(c, d, b))
}

// oracleOverlapCollinear reports whether consecutive edges a-b and c-d (sharing
// one vertex) overlap along more than that vertex.
func oracleOverlapCollinear(a, b, c, d Point) bool {
	if Orient(a, b, c) != 0 || Orient(a, b, d) != 0 {
		return false
	}
	shared, other1, other2 := b, a, d
	switch {
	case b == c:
	case a == d:
		shared, other1, other2 = a, b, c
	case a == c:
		shared, other1, other2 = a, b, d
	case b == d:
		shared, other1, other2 = b, a, c
	}
	// Collinear through the shared vertex: they overlap when both others
	// lie on the same side of it.
	dx1, dy1 := other1.Lng-shared.Lng, other1.Lat-shared.Lat
	dx2, dy2 := other2.Lng-shared.Lng, other2.Lat-shared.Lat
	return dx1*dx2+dy1*dy2 > 0
}

func oracleRingsMeet(r, s Ring) bool {
	for i := 0; i+1 < len(r); i++ {
		for j := 0; j+1 < len(s); j++ {
			if oracleSegmentsMeet(r[i], r[i+1], s[j], s[j+1]) {
				return true
			}
		}
	}
	return false
}

func oracleOnSegment(a, b, p Point) bool {
	if p.Lng < math.Min(a.Lng, b.Lng) || p.Lng > math.Max(a.Lng, b.Lng) ||
		p.Lat < math.Min(a.Lat, b.Lat) || p.Lat > math.Max(a.Lat, b.Lat) {
		return false
	}
	return Orient(a, b, p) == 0
}

// oracleLocate is Ring.locate as it was.
func oracleLocate(r Ring, p Point) position {
	in := false
	for i := 0; i+1 < len(r); i++ {
		a, b := r[i], r[i+1]
		if oracleOnSegment(a, b, p) {
			return onBoundary
		}
		if (a.Lat > p.Lat) != (b.Lat > p.Lat) {
			o := Orient(a, b, p)
			if (b.Lat > a.Lat && o > 0) || (b.Lat < a.Lat && o < 0) {
				in = !in
			}
		}
	}
	if in {
		return inside
	}
	return outside
}
