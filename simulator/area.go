package simulator

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"strings"
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
	// StationRadiusM is the radius of the circle around each site that
	// tms gets as its station (see StationID), 10 m to 5 km; 0 takes
	// DefaultStationRadiusM. Vehicles park within 40 % of it (at most
	// 60 m) from the site's centre, so that a stay is well inside the
	// station and a departure clearly outside it.
	StationRadiusM float64
}

// DefaultStationRadiusM is the radius of a site's station when the area
// does not say: a depot or a port gate with its yard.
const DefaultStationRadiusM = 200

// Bounds of Area.StationRadiusM: tms's smallest circle, and a size beyond
// which a "site" is a district.
const (
	minStationRadiusM = 10
	maxStationRadiusM = 5000
)

// maxAreaRadiusKm keeps the flat projection honest.
const maxAreaRadiusKm = 300

// stationIDPrefix starts every station id the simulator defines, so that
// its stations are told apart from an operator's at a glance.
const stationIDPrefix = "sim."

// maxStationIDLen is tms's limit on a station id.
const maxStationIDLen = 64

// StationRadius is the radius of the sites' stations, in metres.
func (a Area) StationRadius() float64 {
	if a.StationRadiusM == 0 {
		return DefaultStationRadiusM
	}
	return a.StationRadiusM
}

// StationID is the id of the station tms gets for site i: stable across
// runs (it depends only on the area's and the site's names), so that
// defining the stations again finds the ones defined before, e.g.
// sim.shanghai.waigaoqiao-port. A name without ASCII letters or digits
// stands as "area", or as the site's number.
func (a Area) StationID(i int) string {
	return stationIDPrefix + cmp.Or(slug(a.Name), "area") + "." + cmp.Or(slug(a.Sites[i].Name), fmt.Sprintf("site-%d", i))
}

// slug is s in lower-case ASCII letters and digits, other runs of
// characters made one "-": what a station id may hold.
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
			continue
		}
		dash = true
	}
	return b.String()
}

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
	if r := a.StationRadius(); !(r >= minStationRadiusM && r <= maxStationRadiusM) {
		return fmt.Errorf("simulator: area %q: station radius %v m is outside [%d, %d]", a.Name, r, minStationRadiusM, maxStationRadiusM)
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

// ValidateStations reports sites whose stations tms could not take or
// tell apart: a station id (StationID) longer than tms allows, or the
// same as another site's. Only a run that defines stations (or creates
// jobs at them) needs it.
func (a Area) ValidateStations() error {
	var errs []error
	seen := map[string]string{}
	for i, s := range a.Sites {
		id := a.StationID(i)
		if len(id) > maxStationIDLen {
			errs = append(errs, fmt.Errorf("simulator: site %q: station id %s is longer than %d characters; shorten the name", s.Name, id, maxStationIDLen))
		}
		if other, dup := seen[id]; dup {
			errs = append(errs, fmt.Errorf("simulator: sites %q and %q of %q have one station id, %s; rename one", other, s.Name, a.Name, id))
		}
		seen[id] = s.Name
	}
	return errors.Join(errs...)
}

// Areas are the built-in areas by the names `tms simulate --area` takes.
func Areas() map[string]func() Area {
	return map[string]func() Area{"shanghai": Shanghai, "yard": Yard}
}

// Shanghai is the default area: 32 sites within 40 km of People's Square,
// placed at real ports, industrial zones, logistics parks and filling
// stations (coordinates approximate, WGS84), with stations of 200 m.
func Shanghai() Area {
	return Area{
		Name:           "Shanghai",
		Lat:            31.2304,
		Lng:            121.4737,
		RadiusKm:       40,
		StationRadiusM: DefaultStationRadiusM,
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

// Yard is a small made-up logistics yard in Lingang, Shanghai: seven
// sites 130 m apart on a ring of 150 m around its centre (two loading
// docks, four unloading docks, a fuel island), with stations of 25 m.
// Legs take seconds instead of tens of minutes: with a short dwell
// (WithDwell), a job runs its course in a minute or two, for quick demos
// and end-to-end tests in real time. On a ring, the straight leg between
// two sites passes no third site's station.
func Yard() Area {
	return Area{
		Name:           "Lingang yard",
		Lat:            30.9,
		Lng:            121.9,
		RadiusKm:       0.25,
		StationRadiusM: 25,
		Sites: []Site{
			{"Warehouse A dock", SiteLoading, 30.901349, 121.900000},
			{"Cross-dock east", SiteUnloading, 30.900841, 121.901229},
			{"Parcel hub", SiteUnloading, 30.899700, 121.901533},
			{"Container stack", SiteLoading, 30.898785, 121.900682},
			{"Retail DC", SiteUnloading, 30.898785, 121.899318},
			{"Fuel island", SiteOil, 30.899700, 121.898467},
			{"Cold store", SiteUnloading, 30.900841, 121.898771},
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
