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
// last few metres. It measures in a flat frame at the centre, which is
// within 1% of the haversine distance while everything is within 20 km
// and 70° of latitude; elsewhere it says nothing and the full search runs.
func (fc *fence) farFromSegment(a, b geo.Point) bool {
	const span = 20_000.0
	if math.Abs(fc.lat) > 70 || fc.r > span {
		return false
	}
	const ky = geo.MetresPerDegreeLat
	ax, ay := (a.Lng-fc.lng)*fc.kx, (a.Lat-fc.lat)*ky
	bx, by := (b.Lng-fc.lng)*fc.kx, (b.Lat-fc.lat)*ky
	if ax*ax+ay*ay > span*span || bx*bx+by*by > span*span {
		return false
	}
	return geo.SegmentDistance(ax, ay, bx, by) > fc.r*1.02+1
}
