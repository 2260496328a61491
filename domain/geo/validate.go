package geo

import (
	"fmt"
	"math"
)

// MaxVertices bounds the points of one polygon (all rings). Validation
// compares every pair of edges: at this bound it takes about 0.15 s on a
// slow core, which keeps a station definition from being a way to burn
// the API's CPU. Real sites need tens to hundreds of points.
const MaxVertices = 2000

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
// antimeridian must be split), no two edges of any rings crossing or
// touching except consecutive edges at their shared vertex, and every
// hole inside the outer ring. field names the polygon's coordinates.
func ValidatePolygon(field string, pg Polygon) *ShapeError {
	if len(pg) == 0 {
		return shapeErr(field, "a polygon needs an outer ring")
	}
	n := 0
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
		if area2(ring) == 0 {
			return shapeErr(rf, "the ring encloses no area")
		}
		n += len(ring)
	}
	if n > MaxVertices {
		return shapeErr(field, "the polygon has %d positions, at most %d are allowed", n, MaxVertices)
	}
	if err := checkCrossings(field, pg); err != nil {
		return err
	}
	for i, hole := range pg[1:] {
		if pg[0].locate(hole[0]) != inside {
			return shapeErr(fmt.Sprintf("%s[%d]", field, i+1), "the hole is not inside the outer ring")
		}
	}
	return nil
}

// ValidateMultiPolygon checks each polygon, and that no two polygons'
// outer rings overlap (GeoJSON requires disjoint members).
func ValidateMultiPolygon(field string, mp MultiPolygon) *ShapeError {
	if len(mp) == 0 {
		return shapeErr(field, "a MultiPolygon needs at least one polygon")
	}
	n := 0
	for i, pg := range mp {
		if err := ValidatePolygon(fmt.Sprintf("%s[%d]", field, i), pg); err != nil {
			return err
		}
		for _, r := range pg {
			n += len(r)
		}
	}
	if n > MaxVertices {
		return shapeErr(field, "the MultiPolygon has %d positions, at most %d are allowed", n, MaxVertices)
	}
	for i := range mp {
		for j := i + 1; j < len(mp); j++ {
			if ringsMeet(mp[i][0], mp[j][0]) || mp[i][0].locate(mp[j][0][0]) != outside || mp[j][0].locate(mp[i][0][0]) != outside {
				return shapeErr(fmt.Sprintf("%s[%d]", field, j), "polygon %d overlaps or touches polygon %d", j, i)
			}
		}
	}
	return nil
}

// area2 is twice the signed area of a ring in the lng/lat plane.
func area2(r Ring) float64 {
	s := 0.0
	for i := 0; i+1 < len(r); i++ {
		s += r[i].Lng*r[i+1].Lat - r[i+1].Lng*r[i].Lat
	}
	return s
}

type edge struct {
	ring, index int
	a, b        Point
}

// checkCrossings finds two edges of pg that meet where they should not.
func checkCrossings(field string, pg Polygon) *ShapeError {
	var edges []edge
	for ri, ring := range pg {
		for i := 0; i+1 < len(ring); i++ {
			edges = append(edges, edge{ri, i, ring[i], ring[i+1]})
		}
	}
	for i := range edges {
		for j := i + 1; j < len(edges); j++ {
			e, f := edges[i], edges[j]
			if e.ring == f.ring && adjacent(e.index, f.index, len(pg[e.ring])-1) {
				// Consecutive edges share a vertex; they may not fold back
				// onto each other.
				if overlapCollinear(e.a, e.b, f.a, f.b) {
					return shapeErr(fmt.Sprintf("%s[%d][%d]", field, f.ring, f.index), "the ring doubles back on itself")
				}
				continue
			}
			if segmentsMeet(e.a, e.b, f.a, f.b) {
				return shapeErr(fmt.Sprintf("%s[%d][%d]", field, f.ring, f.index),
					"edge %d of ring %d meets edge %d of ring %d: rings must not cross or touch", f.index, f.ring, e.index, e.ring)
			}
		}
	}
	return nil
}

func adjacent(i, j, edges int) bool {
	return j == i+1 || (i == 0 && j == edges-1)
}

// segmentsMeet reports whether closed segments a-b and c-d share a point.
func segmentsMeet(a, b, c, d Point) bool {
	o1, o2 := orient(a, b, c), orient(a, b, d)
	o3, o4 := orient(c, d, a), orient(c, d, b)
	if o1*o2 < 0 && o3*o4 < 0 {
		return true
	}
	return (o1 == 0 && onSegment(a, b, c)) || (o2 == 0 && onSegment(a, b, d)) ||
		(o3 == 0 && onSegment(c, d, a)) || (o4 == 0 && onSegment(c, d, b))
}

// overlapCollinear reports whether consecutive edges a-b and c-d (sharing
// one vertex) overlap along more than that vertex.
func overlapCollinear(a, b, c, d Point) bool {
	if orient(a, b, c) != 0 || orient(a, b, d) != 0 {
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

func ringsMeet(r, s Ring) bool {
	for i := 0; i+1 < len(r); i++ {
		for j := 0; j+1 < len(s); j++ {
			if segmentsMeet(r[i], r[i+1], s[j], s[j+1]) {
				return true
			}
		}
	}
	return false
}
