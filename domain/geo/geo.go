package geo

import "math"

// EarthRadiusM is the radius of the sphere distances are measured on
// (the IUGG mean Earth radius).
const EarthRadiusM = 6371008.8

// Point is a WGS84 position in degrees.
type Point struct {
	Lat, Lng float64
}

func (p Point) finite() bool {
	return !math.IsNaN(p.Lat) && !math.IsNaN(p.Lng) && !math.IsInf(p.Lat, 0) && !math.IsInf(p.Lng, 0)
}

// Valid reports whether p's coordinates are finite and in range.
func (p Point) Valid() bool {
	return !math.IsNaN(p.Lat) && !math.IsNaN(p.Lng) &&
		p.Lat >= -90 && p.Lat <= 90 && p.Lng >= -180 && p.Lng <= 180
}

const radians = math.Pi / 180

// Haversine returns the distance in metres between a and b on a sphere
// of radius EarthRadiusM. It is the distance of the contract: every
// inside-a-circle decision is Haversine(centre, p) <= radius. It is
// EarthRadiusM·CentralAngle(a, b), to the last bit (doubling is exact, so
// 2R·asin and R·(2·asin) round alike).
func Haversine(a, b Point) float64 { return EarthRadiusM * CentralAngle(a, b) }

// CentralAngle returns the angle in radians between a and b seen from the
// centre of the sphere, by the haversine formula: the distance on the
// unit sphere, for code that measures in radians (the H3 index).
func CentralAngle(a, b Point) float64 {
	dLat := (b.Lat - a.Lat) * radians
	dLng := (b.Lng - a.Lng) * radians
	s1 := math.Sin(dLat / 2)
	s2 := math.Sin(dLng / 2)
	h := s1*s1 + math.Cos(a.Lat*radians)*math.Cos(b.Lat*radians)*s2*s2
	if h > 1 {
		h = 1 // rounding near antipodes
	}
	return 2 * math.Asin(math.Sqrt(h))
}

// MetresPerDegreeLat is the length of one degree of latitude on the
// sphere.
const MetresPerDegreeLat = EarthRadiusM * radians

// Rect is a longitude/latitude rectangle, edges included. MinLng may
// exceed MaxLng for a rectangle across the antimeridian.
type Rect struct {
	MinLat, MinLng, MaxLat, MaxLng float64
}

// Contains reports whether p lies in r.
func (r Rect) Contains(p Point) bool {
	if p.Lat < r.MinLat || p.Lat > r.MaxLat {
		return false
	}
	if r.MinLng <= r.MaxLng {
		return p.Lng >= r.MinLng && p.Lng <= r.MaxLng
	}
	return p.Lng >= r.MinLng || p.Lng <= r.MaxLng
}
