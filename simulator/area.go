package simulator

import (
	"errors"
	"fmt"
	"math"
)

// SiteKind says what a site is for; it decides where a vehicle goes next
// and how long it stays. The names match tms's station types.
type SiteKind string

// Kinds of site the fleet knows how to cycle through. Other kinds may
// appear in an Area: vehicles visit them like oil stations, briefly.
const (
	SiteLoading   SiteKind = "loading"
	SiteUnloading SiteKind = "unloading"
	SiteOil       SiteKind = "oil"
)

// Site is a named place vehicles drive to and dwell at.
type Site struct {
	Name string
	Kind SiteKind
	// Lat and Lng are WGS84 degrees, as G7 reports positions.
	Lat, Lng float64
}

// Area is where a fleet operates: a circle around a centre, and the sites
// within it. Every fix of the fleet stays inside the circle.
type Area struct {
	Name string
	// Lat and Lng are the centre, WGS84 degrees.
	Lat, Lng float64
	// RadiusKm bounds the area. Distances are computed on a flat
	// projection around the centre, which is accurate to well under a
	// percent within a few hundred kilometres.
	RadiusKm float64
	// Sites are the places vehicles drive between; at least two.
	Sites []Site
}

// maxAreaRadiusKm keeps the flat projection honest.
const maxAreaRadiusKm = 300

// Validate reports an area a fleet cannot operate in.
func (a Area) Validate() error {
	if !(a.Lat >= -80 && a.Lat <= 80) || !(a.Lng >= -180 && a.Lng <= 180) {
		return fmt.Errorf("simulator: area %q: centre (%v, %v) is not a usable WGS84 point", a.Name, a.Lat, a.Lng)
	}
	if !(a.RadiusKm > 0 && a.RadiusKm <= maxAreaRadiusKm) {
		return fmt.Errorf("simulator: area %q: radius %v km is outside (0, %d]", a.Name, a.RadiusKm, maxAreaRadiusKm)
	}
	if len(a.Sites) < 2 {
		return errors.New("simulator: an area needs at least two sites to drive between")
	}
	proj := newProjection(a)
	for _, s := range a.Sites {
		if math.IsNaN(s.Lat) || math.IsNaN(s.Lng) {
			return fmt.Errorf("simulator: site %q has no coordinates", s.Name)
		}
		if d := proj.toXY(s.Lat, s.Lng).norm(); d > a.RadiusKm*1000 {
			return fmt.Errorf("simulator: site %q is %.1f km from the centre of %q, outside its %v km", s.Name, d/1000, a.Name, a.RadiusKm)
		}
	}
	return nil
}

// Shanghai is the default area: 32 sites within 40 km of People's Square,
// placed at real ports, industrial zones, logistics parks and filling
// stations (coordinates approximate, WGS84).
func Shanghai() Area {
	return Area{
		Name:     "Shanghai",
		Lat:      31.2304,
		Lng:      121.4737,
		RadiusKm: 40,
		Sites: []Site{
			{"Waigaoqiao port", SiteLoading, 31.3560, 121.5920},
			{"Wusong port", SiteLoading, 31.3900, 121.5000},
			{"Baoshan steelworks", SiteLoading, 31.4070, 121.4420},
			{"Jinqiao export zone", SiteLoading, 31.2600, 121.6000},
			{"Zhangjiang hi-tech park", SiteLoading, 31.2050, 121.5900},
			{"Anting auto city", SiteLoading, 31.2950, 121.1650},
			{"Minhang development zone", SiteLoading, 31.0180, 121.3920},
			{"Songjiang industrial zone", SiteLoading, 31.0300, 121.2270},
			{"Jiading industrial zone", SiteLoading, 31.3830, 121.2500},
			{"Caohejing tech park", SiteLoading, 31.1700, 121.3970},
			{"Jiangqiao wholesale market", SiteUnloading, 31.2450, 121.3200},
			{"Qingpu logistics park", SiteUnloading, 31.1500, 121.1200},
			{"Pudong airport cargo", SiteUnloading, 31.1500, 121.8000},
			{"Hongqiao logistics centre", SiteUnloading, 31.1950, 121.3300},
			{"Xinzhuang distribution centre", SiteUnloading, 31.1100, 121.3850},
			{"Zhoupu warehouse", SiteUnloading, 31.1180, 121.5700},
			{"Kangqiao industrial park", SiteUnloading, 31.1450, 121.5800},
			{"Chuansha distribution centre", SiteUnloading, 31.1900, 121.7000},
			{"Gaoqiao warehouse", SiteUnloading, 31.3500, 121.5700},
			{"Nanxiang market", SiteUnloading, 31.2980, 121.3200},
			{"Taopu industrial park", SiteUnloading, 31.2830, 121.3600},
			{"Xinqiao building materials market", SiteUnloading, 31.0600, 121.3200},
			{"Nanqiao distribution centre", SiteUnloading, 30.9200, 121.4700},
			{"Luojing port", SiteUnloading, 31.4700, 121.3700},
			{"Malu logistics park", SiteUnloading, 31.3400, 121.2600},
			{"Yangpu riverside depot", SiteUnloading, 31.2700, 121.5400},
			{"Sinopec Hutai Road", SiteOil, 31.3000, 121.4400},
			{"Sinopec Zhongchun Road", SiteOil, 31.1300, 121.3700},
			{"PetroChina Wuzhou Avenue", SiteOil, 31.2900, 121.6000},
			{"Sinopec Jiasong North Road", SiteOil, 31.3300, 121.2300},
			{"PetroChina Huqingping Highway", SiteOil, 31.1200, 121.2400},
			{"Sinopec Shenjiang Road", SiteOil, 31.1700, 121.6200},
		},
	}
}

// earthRadiusM is the mean Earth radius, for the flat projection.
const earthRadiusM = 6_371_000

// point is a place in metres east (x) and north (y) of an area's centre.
type point struct{ x, y float64 }

func (p point) norm() float64 { return math.Hypot(p.x, p.y) }

// projection maps WGS84 degrees to a plane around the area's centre
// (equirectangular). Vehicles move on the plane, where distances and
// headings are simple, and report in degrees.
type projection struct {
	lat0, lng0             float64
	mPerDegLat, mPerDegLng float64
}

func newProjection(a Area) projection {
	mPerDeg := earthRadiusM * math.Pi / 180
	return projection{lat0: a.Lat, lng0: a.Lng, mPerDegLat: mPerDeg, mPerDegLng: mPerDeg * math.Cos(a.Lat*math.Pi/180)}
}

func (p projection) toXY(lat, lng float64) point {
	return point{x: (lng - p.lng0) * p.mPerDegLng, y: (lat - p.lat0) * p.mPerDegLat}
}

func (p projection) toLatLng(pt point) (lat, lng float64) {
	return p.lat0 + pt.y/p.mPerDegLat, p.lng0 + pt.x/p.mPerDegLng
}
