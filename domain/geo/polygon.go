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
		// Half-open rule on latitude: an edge counts when it straddles the
		// horizontal line through p, so a vertex on that line counts once.
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
				d := segmentDistance(
					(ring[i].Lng-p.Lng)*kx, (ring[i].Lat-p.Lat)*MetresPerDegreeLat,
					(ring[i+1].Lng-p.Lng)*kx, (ring[i+1].Lat-p.Lat)*MetresPerDegreeLat)
				best = math.Min(best, d)
			}
		}
	}
	return best
}

// segmentDistance is the Euclidean distance from the origin to the
// segment (ax, ay)-(bx, by).
func segmentDistance(ax, ay, bx, by float64) float64 {
	dx, dy := bx-ax, by-ay
	l2 := dx*dx + dy*dy
	t := 0.0
	if l2 > 0 {
		t = math.Max(0, math.Min(1, -(ax*dx+ay*dy)/l2))
	}
	return math.Hypot(ax+t*dx, ay+t*dy)
}
