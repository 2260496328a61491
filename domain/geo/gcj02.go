package geo

import "math"

// GCJ-02 is the obfuscated datum Chinese map providers publish
// coordinates in. Inside China it shifts WGS84 positions by up to several
// hundred metres; outside China it is WGS84. The forward transform below
// is the widely published one (on the Krasovsky ellipsoid); the inverse is
// found by fixed-point iteration, to well under a millimetre.

const (
	krasovskyA  = 6378245.0
	krasovskyEE = 0.00669342162296594323
)

// inChina reports whether GCJ-02 applies at p (the rectangle every
// implementation of the datum uses).
func inChina(p Point) bool {
	return p.Lng >= 72.004 && p.Lng <= 137.8347 && p.Lat >= 0.8293 && p.Lat <= 55.8271
}

// WGS84ToGCJ02 converts a WGS84 position to GCJ-02.
func WGS84ToGCJ02(p Point) Point {
	if !inChina(p) {
		return p
	}
	dLat := transformLat(p.Lng-105, p.Lat-35)
	dLng := transformLng(p.Lng-105, p.Lat-35)
	rad := p.Lat * radians
	magic := 1 - krasovskyEE*math.Sin(rad)*math.Sin(rad)
	sqrtMagic := math.Sqrt(magic)
	dLat = (dLat * 180) / ((krasovskyA * (1 - krasovskyEE)) / (magic * sqrtMagic) * math.Pi)
	dLng = (dLng * 180) / (krasovskyA / sqrtMagic * math.Cos(rad) * math.Pi)
	return Point{Lat: p.Lat + dLat, Lng: p.Lng + dLng}
}

// GCJ02ToWGS84 converts a GCJ-02 position to WGS84: the WGS84 position
// whose GCJ-02 image is p.
func GCJ02ToWGS84(p Point) Point {
	if !inChina(p) {
		return p
	}
	w := p
	for range 30 {
		g := WGS84ToGCJ02(w)
		dLat, dLng := g.Lat-p.Lat, g.Lng-p.Lng
		w = Point{Lat: w.Lat - dLat, Lng: w.Lng - dLng}
		if math.Abs(dLat) < 1e-12 && math.Abs(dLng) < 1e-12 {
			break
		}
	}
	return w
}

func transformLat(x, y float64) float64 {
	r := -100 + 2*x + 3*y + 0.2*y*y + 0.1*x*y + 0.2*math.Sqrt(math.Abs(x))
	r += (20*math.Sin(6*x*math.Pi) + 20*math.Sin(2*x*math.Pi)) * 2 / 3
	r += (20*math.Sin(y*math.Pi) + 40*math.Sin(y/3*math.Pi)) * 2 / 3
	r += (160*math.Sin(y/12*math.Pi) + 320*math.Sin(y*math.Pi/30)) * 2 / 3
	return r
}

func transformLng(x, y float64) float64 {
	r := 300 + x + 2*y + 0.1*x*x + 0.1*x*y + 0.1*math.Sqrt(math.Abs(x))
	r += (20*math.Sin(6*x*math.Pi) + 20*math.Sin(2*x*math.Pi)) * 2 / 3
	r += (20*math.Sin(x*math.Pi) + 40*math.Sin(x/3*math.Pi)) * 2 / 3
	r += (150*math.Sin(x/12*math.Pi) + 300*math.Sin(x/30*math.Pi)) * 2 / 3
	return r
}
