package geofence

import (
	"errors"
	"math"

	"github.com/tmsfleet/tms/domain/geo"
)

// Shape is a station's area in WGS84: a circle, or polygons (holes
// allowed). Exactly one of Circle and Polygons is set.
type Shape struct {
	Circle   *geo.Circle
	Polygons geo.MultiPolygon
}

// Contains is the membership contract (see package geo): haversine
// distance for circles, exact lng/lat geometry for polygons, edges
// inside.
func (s Shape) Contains(p geo.Point) bool {
	if s.Circle != nil {
		return s.Circle.Contains(p)
	}
	return s.Polygons.Contains(p)
}

// OutsideBy reports whether p is outside the shape by more than margin
// metres: beyond radius + margin for a circle; outside the polygons and
// farther than margin from their boundary for polygons. It is the exit
// test of hysteresis.
func (s Shape) OutsideBy(p geo.Point, margin float64) bool {
	if s.Circle != nil {
		return geo.Haversine(s.Circle.Center, p) > s.Circle.RadiusM+margin
	}
	if s.Polygons.Contains(p) {
		return false
	}
	return margin <= 0 || s.Polygons.BoundaryDistance(p) > margin
}

// Bounds returns a lng/lat rectangle that contains the shape. For a
// circle around a pole, or across the antimeridian, it widens to all
// longitudes (MinLng -180, MaxLng 180).
func (s Shape) Bounds() geo.Rect {
	if s.Circle == nil {
		return s.Polygons.Bounds()
	}
	c := s.Circle
	// Widened a little for rounding, so that the last float the haversine
	// test puts inside is inside the rectangle too.
	dLat := c.RadiusM/geo.MetresPerDegreeLat*(1+1e-9) + 1e-9
	r := geo.Rect{MinLat: c.Center.Lat - dLat, MaxLat: c.Center.Lat + dLat}
	if r.MaxLat >= 90 || r.MinLat <= -90 {
		r.MinLat, r.MaxLat = math.Max(r.MinLat, -90), math.Min(r.MaxLat, 90)
		r.MinLng, r.MaxLng = -180, 180
		return r
	}
	// The widest longitude span of the circle is at the latitude nearest
	// a pole; dividing by the cosine there over-covers, never under.
	cos := math.Cos(math.Max(math.Abs(r.MinLat), math.Abs(r.MaxLat)) * math.Pi / 180)
	dLng := dLat / cos
	if dLng >= 180 {
		r.MinLng, r.MaxLng = -180, 180
		return r
	}
	r.MinLng, r.MaxLng = c.Center.Lng-dLng, c.Center.Lng+dLng
	if r.MinLng < -180 {
		r.MinLng += 360
	}
	if r.MaxLng > 180 {
		r.MaxLng -= 360
	}
	return r
}

// Validate checks that exactly one of the shapes is set.
func (s Shape) Validate() error {
	if (s.Circle == nil) == (len(s.Polygons) == 0) {
		return errors.New("geofence: a shape is a circle or polygons, exactly one of them")
	}
	return nil
}

// Key identifies a shape in an Index. Keys are small integers chosen by
// the caller.
type Key int32

// Index answers which shapes contain a point. Implementations are not
// safe for concurrent use: one goroutine adds, removes and locates.
type Index interface {
	// Add indexes shape s under key; a key is added once.
	Add(key Key, s Shape) error
	// Remove forgets key.
	Remove(key Key)
	// NewCursor returns a cursor for one moving object. A cursor may keep
	// what it learnt about the last point (the cell it fell in) to answer
	// the next nearby point faster; it is valid until the index changes
	// and is never persisted.
	NewCursor() Cursor
	// Len is the number of shapes indexed.
	Len() int
}

// Cursor locates the points of one moving object.
type Cursor interface {
	// Locate appends to dst the keys of the shapes containing p, by the
	// exact contract (Shape.Contains), in ascending key order, and
	// returns dst.
	Locate(p geo.Point, dst []Key) []Key
	// Near appends to dst, in ascending key order, the keys of every
	// shape that has any point within distance metres of p (it may add
	// others). It finds the candidates for exit margins and for crossings
	// between sparse fixes.
	Near(p geo.Point, distance float64, dst []Key) []Key
}
