package geo

import "math"

// Ring is a closed sequence of points: the last equals the first, as in
// GeoJSON.
type Ring []Point

// Polygon is an outer ring followed by zero or more holes.
type Polygon []Ring

// MultiPolygon is a union of polygons.
type MultiPolygon []Polygon

// position of a point relative to a ring.
type position int

const (
	outside position = iota
	onBoundary
	inside
)

// locate tells where p lies relative to r, exactly: by the crossing rule
// with exact orientations, and on the boundary when p is on an edge.
func (r Ring) locate(p Point) position {
	in := false
	for i := 0; i+1 < len(r); i++ {
		a, b := r[i], r[i+1]
		if onSegment(a, b, p) {
			return onBoundary
		}
		if Straddles(a, b, p) && PassesEast(a, b, Orient(a, b, p)) {
			in = !in
		}
	}
	if in {
		return inside
	}
	return outside
}

// Straddles reports whether edge a-b straddles the horizontal line
// through p by the half-open rule of the crossing count: one end strictly
// above p's latitude, the other not. A vertex on the line is thus counted
// with one of its two edges, never both or neither.
func Straddles(a, b, p Point) bool { return (a.Lat > p.Lat) != (b.Lat > p.Lat) }

// PassesEast reports whether an edge a-b that Straddles p passes east of
// p, given o = Orient(a, b, p): an edge running north passes east of the
// points on its left, one running south of those on its right. Counted
// over a ring's edges, an odd number means p is inside (Polygon.Contains);
// every index that counts crossings itself counts with Straddles and
// PassesEast, so that it agrees with the contract. The orientation is a
// parameter so that a caller who needs it anyway (a point on the edge is
// on the boundary) computes it once.
func PassesEast(a, b Point, o int) bool { return (b.Lat > a.Lat && o > 0) || (b.Lat < a.Lat && o < 0) }

// Contains reports whether p is inside the polygon: inside or on its outer
// ring, and not strictly inside any hole (a point on a hole's edge is on
// the polygon's boundary, so it counts as inside).
func (pg Polygon) Contains(p Point) bool {
	// A point that is not a position (NaN, infinite) is in no polygon;
	// exact arithmetic cannot take it.
	if len(pg) == 0 || !p.finite() || pg[0].locate(p) == outside {
		return false
	}
	for _, hole := range pg[1:] {
		if hole.locate(p) == inside {
			return false
		}
	}
	return true
}

// Contains reports whether one of the polygons contains p.
func (mp MultiPolygon) Contains(p Point) bool {
	for _, pg := range mp {
		if pg.Contains(p) {
			return true
		}
	}
	return false
}

// Bounds returns the rectangle spanned by the polygons' outer rings.
func (mp MultiPolygon) Bounds() Rect {
	r := Rect{MinLat: math.Inf(1), MinLng: math.Inf(1), MaxLat: math.Inf(-1), MaxLng: math.Inf(-1)}
	for _, pg := range mp {
		if len(pg) == 0 {
			continue
		}
		for _, p := range pg[0] {
			r.MinLat, r.MaxLat = math.Min(r.MinLat, p.Lat), math.Max(r.MaxLat, p.Lat)
			r.MinLng, r.MaxLng = math.Min(r.MinLng, p.Lng), math.Max(r.MaxLng, p.Lng)
		}
	}
	return r
}

// BoundaryDistance returns the distance in metres from p to the nearest
// edge of any ring of mp, measured in the local equirectangular frame
// centred on p (see the package documentation).
func (mp MultiPolygon) BoundaryDistance(p Point) float64 {
	kx := math.Cos(p.Lat*radians) * MetresPerDegreeLat
	best := math.Inf(1)
	for _, pg := range mp {
		for _, ring := range pg {
			for i := 0; i+1 < len(ring); i++ {
				d := SegmentDistance(
					(ring[i].Lng-p.Lng)*kx, (ring[i].Lat-p.Lat)*MetresPerDegreeLat,
					(ring[i+1].Lng-p.Lng)*kx, (ring[i+1].Lat-p.Lat)*MetresPerDegreeLat)
				best = math.Min(best, d)
			}
		}
	}
	return best
}

// SegmentDistance is the Euclidean distance from the origin to the
// segment (ax, ay)-(bx, by) in a plane: in this package, the local
// equirectangular frame of BoundaryDistance; in domain/geofence, the flat
// frame of a circle's quick rejection.
func SegmentDistance(ax, ay, bx, by float64) float64 {
	dx, dy := bx-ax, by-ay
	l2 := dx*dx + dy*dy
	t := 0.0
	if l2 > 0 {
		t = math.Max(0, math.Min(1, -(ax*dx+ay*dy)/l2))
	}
	return math.Hypot(ax+t*dx, ay+t*dy)
}
