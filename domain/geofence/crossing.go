package geofence

import (
	"math"
	"slices"

	"github.com/tmsfleet/tms/domain/geo"
)

// Between two fixes a vehicle is taken to move in a straight line in
// longitude/latitude at constant speed, as GeoJSON draws a line. When
// that segment passes through a station neither fix is in, the vehicle
// passed through it: the crossing's entry and exit are estimated along
// the segment.

// Lerp is the point a fraction s of the way from a to b along the
// straight lng/lat segment: where an interpolated transition is placed.
func Lerp(a, b geo.Point, s float64) geo.Point { return lerp(a, b, s) }

// SegmentCrossing returns the fractions of the way from a to b at which
// the straight lng/lat segment first enters and last leaves shape s, when
// it meets it; both ends are outside s. It is the estimate behind
// interpolated transitions.
func SegmentCrossing(s Shape, a, b geo.Point) (in, out float64, ok bool) { return crossing(s, a, b) }

// lerp is the point a fraction s of the way from a to b.
func lerp(a, b geo.Point, s float64) geo.Point {
	return geo.Point{Lat: a.Lat + s*(b.Lat-a.Lat), Lng: a.Lng + s*(b.Lng-a.Lng)}
}

// crossesAntimeridian reports whether the segment would have to wrap:
// no crossing is inferred across ±180°, where the straight lng/lat line
// would go the long way round.
func crossesAntimeridian(a, b geo.Point) bool { return math.Abs(b.Lng-a.Lng) > 180 }

// crossing returns the fractions of the way from a to b at which the
// segment first enters and last leaves shape, when it meets it. Both ends
// are outside the shape.
func crossing(s Shape, a, b geo.Point) (in, out float64, ok bool) {
	if s.Circle != nil {
		return circleCrossing(*s.Circle, a, b)
	}
	return polygonCrossing(s.Polygons, a, b)
}

// circleCrossing finds the segment's closest approach to the centre and,
// if it is within the radius, the two points where the distance equals
// the radius, by bisection. Sixteen samples first keep a long segment's
// closest approach from being missed.
func circleCrossing(c geo.Circle, a, b geo.Point) (float64, float64, bool) {
	if newFence(Shape{Circle: &c}).farFromSegment(a, b) {
		return 0, 0, false
	}
	dist := func(s float64) float64 { return geo.Haversine(c.Center, lerp(a, b, s)) }
	const samples = 16
	best, bestD := 0.0, math.Inf(1)
	for i := 0; i <= samples; i++ {
		s := float64(i) / samples
		if d := dist(s); d < bestD {
			best, bestD = s, d
		}
	}
	// Golden-section search for the minimum: each step keeps one of its
	// two inner points, so costs one distance.
	const invPhi = 0.6180339887498949
	lo, hi := math.Max(0, best-1.0/samples), math.Min(1, best+1.0/samples)
	m1, m2 := hi-(hi-lo)*invPhi, lo+(hi-lo)*invPhi
	d1, d2 := dist(m1), dist(m2)
	for range 48 {
		if d1 < d2 {
			hi, m2, d2 = m2, m1, d1
			m1 = hi - (hi-lo)*invPhi
			d1 = dist(m1)
		} else {
			lo, m1, d1 = m1, m2, d2
			m2 = lo + (hi-lo)*invPhi
			d2 = dist(m2)
		}
	}
	mid := (lo + hi) / 2
	if dist(mid) > c.RadiusM {
		return 0, 0, false
	}
	// Entry: the last outside point before mid; exit: the first after.
	in := bisect(0, mid, func(s float64) bool { return dist(s) <= c.RadiusM })
	out := bisect(1, mid, func(s float64) bool { return dist(s) <= c.RadiusM })
	return in, out, true
}

// mayCross is a cheap first test for crossing: false when the segment
// certainly stays outside the version's shape (a circle it never comes
// near, a polygon whose bounds it misses).
func mayCross(v *Version, a, b geo.Point) bool {
	if v.fence != nil {
		return !v.fence.farFromSegment(a, b)
	}
	r := v.bounds
	return math.Max(a.Lat, b.Lat) >= r.MinLat && math.Min(a.Lat, b.Lat) <= r.MaxLat &&
		math.Max(a.Lng, b.Lng) >= r.MinLng && math.Min(a.Lng, b.Lng) <= r.MaxLng
}

// bisect narrows [outside, inside] (inside may be the smaller end) to
// the boundary of the inside predicate and returns the inside end.
func bisect(outside, inside float64, isInside func(float64) bool) float64 {
	for range 48 { // 2⁻⁴⁸ of the segment: well under a millisecond and a millimetre
		m := (outside + inside) / 2
		if isInside(m) {
			inside = m
		} else {
			outside = m
		}
	}
	return inside
}

// polygonCrossing intersects the segment with every ring edge and takes
// the first and last intersection. With both ends outside, the segment is
// inside the polygon between them.
func polygonCrossing(mp geo.MultiPolygon, a, b geo.Point) (float64, float64, bool) {
	var ts []float64
	for _, pg := range mp {
		for _, ring := range pg {
			for i := 0; i+1 < len(ring); i++ {
				if s, ok := segmentParam(a, b, ring[i], ring[i+1]); ok {
					ts = append(ts, s)
				}
			}
		}
	}
	if len(ts) == 0 {
		return 0, 0, false
	}
	return slices.Min(ts), slices.Max(ts), true
}

// segmentParam returns the fraction along a→b where it meets segment c-d.
func segmentParam(a, b, c, d geo.Point) (float64, bool) {
	rx, ry := b.Lng-a.Lng, b.Lat-a.Lat
	sx, sy := d.Lng-c.Lng, d.Lat-c.Lat
	den := rx*sy - ry*sx
	qx, qy := c.Lng-a.Lng, c.Lat-a.Lat
	if den == 0 {
		// Parallel. Collinear overlap: take the overlap's nearer end.
		if qx*ry-qy*rx != 0 {
			return 0, false
		}
		rr := rx*rx + ry*ry
		if rr == 0 {
			return 0, false
		}
		t0 := (qx*rx + qy*ry) / rr
		t1 := t0 + (sx*rx+sy*ry)/rr
		lo, hi := math.Min(t0, t1), math.Max(t0, t1)
		if hi < 0 || lo > 1 {
			return 0, false
		}
		return math.Max(0, lo), true
	}
	t := (qx*sy - qy*sx) / den
	u := (qx*ry - qy*rx) / den
	if t < 0 || t > 1 || u < 0 || u > 1 {
		return 0, false
	}
	return t, true
}
