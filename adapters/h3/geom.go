package h3

import (
	"math"

	"github.com/tmsfleet/tms/domain/geo"
)

// radians converts degrees to radians. It is the same constant expression
// as package geo's, so that math.Cos(lat*radians) here gives the very
// float64 the contract's Haversine computes.
const radians = math.Pi / 180

// earthR is the radius of the contract's sphere, in metres.
const earthR = geo.EarthRadiusM

// Slack and margins. Every geometric decision that the index takes for
// itself (is this cap inside that circle, does this rectangle meet that
// edge) is made with a margin many orders of magnitude larger than the
// floating-point error of the computation, in the conservative direction,
// so that no decision depends on rounding. The cost of a generous margin is
// only that a few more cells are "boundary" cells whose fixes get the exact
// test.
const (
	// capSlackAbs and capSlackRel widen a cell's circumradius (radians):
	// they absorb the rounding of the H3 library's own vertex and
	// point-to-cell computations (about 1e-15 rad) by a factor of a million.
	capSlackAbs = 1e-9 // about 6.4 mm
	capSlackRel = 1e-6
	// classMarginAbs and classMarginRel separate "certainly inside" and
	// "certainly outside" from "boundary" when a cap is compared with a
	// circle (radians).
	classMarginAbs = 1e-9
	classMarginRel = 1e-9
	// rectMarginDeg widens the longitude/latitude rectangles that bound a
	// cap, in degrees (about 0.1 mm), on top of a relative 1e-9.
	rectMarginDeg = 1e-9
)

// havRad returns the great-circle distance in radians between two
// positions in degrees: the contract's haversine on the unit sphere
// (geo.CentralAngle), for the index's coordinates, which it keeps apart.
func havRad(lat1, lng1, lat2, lng2 float64) float64 {
	return geo.CentralAngle(geo.Point{Lat: lat1, Lng: lng1}, geo.Point{Lat: lat2, Lng: lng2})
}

// hUpper returns an upper bound of the haversine h = sin²(d/2) of the true
// distance d between (lat0, lng0), whose latitude's cosine is cos0, and p,
// without any trigonometry. It uses sin²x ≤ x² and, for the cosine of p's
// latitude, cos φp ≤ cos φ0 + |Δφ|, so that
//
//	h ≤ (Δφ/2)² + (cos φ0 + |Δφ|/2)²·(Δλ/2)²
//
// with Δλ reduced to [-π, π]. It is tight (relative error about
// tan φ·Δφ) for the short distances it is used for: whether a fix is still
// in the disc its cursor remembers. The bound holds up to the rounding of
// the coordinate differences: relative 1e-16, and, when Δλ is reduced
// across the antimeridian, an absolute 1e-15 rad (6 nm). Callers compare
// it with a threshold a relative 1e-9 below their disc's, and every disc
// is at least 6 mm (capSlackAbs) inside what it stands for.
func hUpper(lat0, lng0, cos0 float64, p geo.Point) float64 {
	dphi := (p.Lat - lat0) * radians
	dl := p.Lng - lng0
	if dl > 180 {
		dl -= 360
	} else if dl < -180 {
		dl += 360
	}
	dl *= radians
	k := cos0 + math.Abs(dphi)/2
	return (dphi*dphi + k*k*dl*dl) / 4
}

// hOf returns sin²(d/2) for an angle d in radians, d in [0, π].
func hOf(d float64) float64 {
	s := math.Sin(d / 2)
	return s * s
}

// sin2half returns sin²(x/2) for |x| ≤ 0.1 from the series
// y - y²/3 + 2y³/45 with y = x²/4. The series alternates with decreasing
// terms, so the truncation error is below the next term, y⁴/315: a relative
// error under 5e-11 for |x| ≤ 0.1.
func sin2half(x float64) float64 {
	y := x * x / 4
	return y * (1 - y*(1.0/3-y*(2.0/45)))
}

// rect is a closed longitude/latitude rectangle that does not cross the
// antimeridian (MinLng ≤ MaxLng).
type rect struct {
	minLat, minLng, maxLat, maxLng float64
}

func (r rect) overlaps(s rect) bool {
	return r.minLat <= s.maxLat && s.minLat <= r.maxLat && r.minLng <= s.maxLng && s.minLng <= r.maxLng
}

func (r rect) contains(p geo.Point) bool {
	return p.Lat >= r.minLat && p.Lat <= r.maxLat && p.Lng >= r.minLng && p.Lng <= r.maxLng
}

// fullLng is a latitude band over all longitudes.
func fullLng(minLat, maxLat float64) rect {
	return rect{minLat: math.Max(minLat, -90), minLng: -180, maxLat: math.Min(maxLat, 90), maxLng: 180}
}

// capRects returns one or two rectangles (two when the cap crosses the
// antimeridian) that contain every position, with longitude in
// [-180, 180], whose true distance from (lat, lng) is at most r radians.
// The latitude extent of a cap is exactly lat ± r; its longitude extent,
// when the cap does not reach a pole, is exactly ± asin(sin r / cos lat).
// Both are widened by a relative 1e-9 and rectMarginDeg, and a cap that
// reaches a pole, or comes close to, gets the full longitude range.
func capRects(lat, lng, r float64) (rs [2]rect, n int) {
	dLat := r/radians*(1+1e-9) + rectMarginDeg
	lo, hi := lat-dLat, lat+dLat
	if lo <= -90 || hi >= 90 || r >= math.Pi/2 {
		rs[0] = fullLng(lo, hi)
		return rs, 1
	}
	s := math.Sin(r) / math.Cos(lat*radians)
	if !(s < 0.999) {
		rs[0] = fullLng(lo, hi)
		return rs, 1
	}
	dLng := math.Asin(s)/radians*(1+1e-9) + rectMarginDeg
	wlo, whi := lng-dLng, lng+dLng
	switch {
	case whi-wlo >= 360:
		rs[0] = fullLng(lo, hi)
		return rs, 1
	case wlo < -180:
		rs[0] = rect{lo, wlo + 360, hi, 180}
		rs[1] = rect{lo, -180, hi, whi}
		return rs, 2
	case whi > 180:
		rs[0] = rect{lo, wlo, hi, 180}
		rs[1] = rect{lo, -180, hi, whi - 360}
		return rs, 2
	}
	rs[0] = rect{lo, wlo, hi, whi}
	return rs, 1
}

// epsilon is half the distance between 1 and the next float64.
const epsilon = 1.1102230246251565e-16

// segMayMeet reports whether the closed segment a-b may meet the closed
// rectangle r, in the longitude/latitude plane. A false answer is certain;
// a true one may be wrong when the segment passes within rounding distance
// of the rectangle, which only makes a cell a boundary cell. It is the
// separating-axis test: the two are disjoint iff their bounding boxes are
// disjoint (exact comparisons) or all four corners of r lie strictly on one
// side of the line a-b (each side decided only when it is larger than a
// bound on its rounding error, as in Shewchuk's orient2d filter, widened).
func segMayMeet(a, b geo.Point, r rect) bool {
	if math.Max(a.Lng, b.Lng) < r.minLng || math.Min(a.Lng, b.Lng) > r.maxLng ||
		math.Max(a.Lat, b.Lat) < r.minLat || math.Min(a.Lat, b.Lat) > r.maxLat {
		return false
	}
	dx, dy := b.Lng-a.Lng, b.Lat-a.Lat
	pos, neg := false, false
	for i := range 4 {
		x, y := r.minLng, r.minLat
		if i&1 != 0 {
			x = r.maxLng
		}
		if i&2 != 0 {
			y = r.maxLat
		}
		l := dx * (y - a.Lat)
		rr := dy * (x - a.Lng)
		det := l - rr
		bound := 16 * epsilon * (math.Abs(l) + math.Abs(rr))
		switch {
		case det > bound:
			pos = true
		case det < -bound:
			neg = true
		default:
			return true // a corner within rounding of the line
		}
		if pos && neg {
			return true
		}
	}
	return false
}

// destination returns the point at distance d radians from (lat, lng)
// along the initial bearing theta (radians), longitude normalised to
// [-180, 180].
func destination(lat, lng, d, theta float64) geo.Point {
	phi1, l1 := lat*radians, lng*radians
	sinPhi2 := math.Sin(phi1)*math.Cos(d) + math.Cos(phi1)*math.Sin(d)*math.Cos(theta)
	sinPhi2 = math.Max(-1, math.Min(1, sinPhi2))
	phi2 := math.Asin(sinPhi2)
	l2 := l1 + math.Atan2(math.Sin(theta)*math.Sin(d)*math.Cos(phi1), math.Cos(d)-math.Sin(phi1)*sinPhi2)
	out := geo.Point{Lat: phi2 / radians, Lng: math.Remainder(l2/radians, 360)}
	out.Lat = math.Max(-90, math.Min(90, out.Lat))
	if out.Lng < -180 {
		out.Lng = -180
	} else if out.Lng > 180 {
		out.Lng = 180
	}
	return out
}
