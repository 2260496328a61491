package geofence

import (
	"math"

	"github.com/tmsfleet/tms/domain/geo"
)

// fence is what the crossing search needs of a circle, computed once per
// version: its centre, the metres per degree of longitude there (a cosine
// that would otherwise be computed for every candidate of every fix), and
// its radius.
type fence struct {
	lat, lng float64
	kx       float64
	r        float64
}

// newFence returns the fence of a circle, nil for polygons.
func newFence(s Shape) *fence {
	c := s.Circle
	if c == nil {
		return nil
	}
	return &fence{lat: c.Center.Lat, lng: c.Center.Lng, kx: geo.MetresPerDegreeLat * math.Cos(c.Center.Lat*math.Pi/180), r: c.RadiusM}
}

// farFromSegment reports, cheaply, that the segment a→b certainly stays
// outside the circle: most candidate circles are nowhere near a vehicle's
// last few metres. It measures in a flat frame at the centre, with the
// metres per degree of longitude of the centre's latitude φc. Along a
// path within Δφ of φc, the true east-west scale differs from the
// frame's by at most tan φc·Δφ (plus Δφ²/2), and the geodesic from the
// straight frame line by a second-order term: below 70° of latitude, that
// is within 0.25% for everything within 5 km of the centre (tan 70°·5 km/R
// = 0.22%) and within 1% within 20 km. Elsewhere it says nothing and the
// full search runs.
func (fc *fence) farFromSegment(a, b geo.Point) bool {
	const near, span = 5_000.0, 20_000.0
	if math.Abs(fc.lat) > 70 || fc.r > span {
		return false
	}
	const ky = geo.MetresPerDegreeLat
	ax, ay := (a.Lng-fc.lng)*fc.kx, (a.Lat-fc.lat)*ky
	bx, by := (b.Lng-fc.lng)*fc.kx, (b.Lat-fc.lat)*ky
	a2, b2 := ax*ax+ay*ay, bx*bx+by*by
	switch {
	case a2 <= near*near && b2 <= near*near && fc.r <= near:
		return geo.SegmentDistance(ax, ay, bx, by) > fc.r*1.005+1
	case a2 <= span*span && b2 <= span*span:
		return geo.SegmentDistance(ax, ay, bx, by) > fc.r*1.02+1
	}
	return false
}
