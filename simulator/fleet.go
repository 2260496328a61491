package simulator

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Fix is one vehicle's position at one moment, as a device would report it.
type Fix struct {
	// Plate identifies the vehicle (G7's plateNum).
	Plate string
	// Time is when the fix was taken.
	Time time.Time
	// Lat and Lng are WGS84 degrees.
	Lat, Lng float64
	// SpeedKmh is the ground speed; 0 while the vehicle stands.
	SpeedKmh float64
	// Course is the heading in degrees clockwise from north, in [0, 360).
	Course float64
}

// MaxVehicles bounds a fleet; beyond it the model's memory and the plate
// space of a few provinces start to matter more than realism.
const MaxVehicles = 1_000_000

// Vehicle behaviour. Speeds are in m/s on the plane, km/h in fixes.
const (
	parkedShare     = 0.10 // vehicles that never move
	dwellingAtStart = 0.35 // of the others, those that begin at a site
	minCruiseKmh    = 30
	maxCruiseKmh    = 80
	// maxStep bounds one integration step, so that a long interval
	// (accelerated history at one fix a minute) still brakes smoothly.
	maxStep = time.Second
	// spotRadiusM: each visit parks at its own spot near the site's
	// centre, as trucks do, well inside the site's station: within
	// spotShare of its radius, and at most spotRadiusM.
	spotRadiusM = 60
	spotShare   = 0.4
	// areaMargin keeps paths a little inside the area's edge, so that
	// rounding in the projection never takes a fix outside it.
	areaMargin = 0.995
	// oilStopChance: after unloading, how often a vehicle refuels.
	oilStopChance = 0.2
)

// Fleet is a set of vehicles driving between the sites of an Area. It is
// deterministic: vehicle i's plate and behaviour depend only on the seed,
// i, its jobs (WithJobs) and the times it is stepped to. A Fleet is not
// safe for concurrent use.
type Fleet struct {
	area     Area
	proj     projection
	sites    []point
	byKind   map[SiteKind][]int
	vehicles []vehicle
	jobs     []Job
	last     time.Time
	// spotR is how far from a site's centre vehicles park, at most.
	spotR float64
	// dwell, when > 0, is the typical stay (WithDwell).
	dwell time.Duration
	// legs is the journal of legs, when recording (RecordLegs).
	legs      []Leg
	recording bool
}

// Leg is one drive of a vehicle from one site to the next, as the fleet
// planned and drove it: what a trips read model should find, to compare
// against.
type Leg struct {
	Plate string
	// From and To are the sites' names.
	From, To string
	// Departed is when the vehicle set off from its spot at From, Arrived
	// when it stood at its spot at To (zero while it drives), each to the
	// integration step (a second at most).
	Departed, Arrived time.Time
	// Path is the polyline driven, WGS84 [lat, lng] vertices from spot
	// to spot.
	Path [][2]float64
	// LengthM is the path's length on the fleet's plane.
	LengthM float64
}

// RecordLegs starts the journal of legs: every leg set off from now on is
// recorded, with its departure and arrival. Legs are never forgotten, so
// it is for tests and short runs.
func (f *Fleet) RecordLegs() { f.recording = true }

// Legs returns the legs recorded so far, in the order they set off.
func (f *Fleet) Legs() []Leg { return slices.Clone(f.legs) }

// vehicle is one truck's state on the plane.
type vehicle struct {
	plate string
	rnd   *rand.Rand
	// parked vehicles never leave their spot.
	parked bool
	// site is where the vehicle stands, or the destination while driving.
	site    int
	driving bool
	// dwell is the time left at the site, in seconds.
	dwell float64
	// The current leg: a polyline, its cumulative lengths, the distance
	// covered and the segment the vehicle is on.
	path      []point
	cum       []float64
	travelled float64
	seg       int
	// legCruise is the leg's typical speed; cruise the current segment's.
	legCruise, cruise float64
	speed             float64
	accel, decel      float64
	pos               point
	course            float64
	// jobs are the vehicle's jobs not yet done, the current one first;
	// while onJob it drives to (or stays at) visit stop of jobs[0].
	jobs  []*plannedJob
	onJob bool
	stop  int
	// leg is the index of its leg in the journal; -1 for none.
	leg int
}

// NewFleet builds a fleet of n vehicles in area from seed, tuned by opts
// (WithDwell, WithJobs). The same arguments always give the same fleet.
func NewFleet(seed uint64, n int, area Area, opts ...FleetOption) (*Fleet, error) {
	var o fleetOptions
	for _, opt := range opts {
		opt(&o)
	}
	if n < 1 || n > MaxVehicles {
		return nil, fmt.Errorf("simulator: %d vehicles: a fleet has 1 to %d", n, MaxVehicles)
	}
	if o.jobs < 0 || o.jobs > MaxJobs {
		return nil, fmt.Errorf("simulator: %d jobs: 0 to %d", o.jobs, MaxJobs)
	}
	if o.dwell < 0 {
		return nil, fmt.Errorf("simulator: dwell %s: not negative", o.dwell)
	}
	if err := area.Validate(); err != nil {
		return nil, err
	}
	f := &Fleet{
		area:     area,
		proj:     newProjection(area),
		sites:    make([]point, len(area.Sites)),
		byKind:   map[SiteKind][]int{},
		vehicles: make([]vehicle, n),
		spotR:    math.Min(spotRadiusM, spotShare*area.StationRadius()),
		dwell:    o.dwell,
	}
	for i, s := range area.Sites {
		f.sites[i] = f.proj.toXY(s.Lat, s.Lng)
		f.byKind[s.Kind] = append(f.byKind[s.Kind], i)
	}
	plates := make(map[string]struct{}, n)
	for i := range f.vehicles {
		v := &f.vehicles[i]
		// One stream per vehicle: vehicle i is the same in a fleet of 10
		// and of 10,000, which makes runs of different sizes comparable.
		v.rnd = rand.New(rand.NewPCG(seed, uint64(i)))
		for {
			v.plate = newPlate(v.rnd)
			if _, dup := plates[v.plate]; !dup {
				break
			}
		}
		plates[v.plate] = struct{}{}
		v.leg = -1
		f.place(v)
	}
	if err := f.planJobs(seed, o.jobs); err != nil {
		return nil, err
	}
	return f, nil
}

// Len is the number of vehicles.
func (f *Fleet) Len() int { return len(f.vehicles) }

// Plates lists the vehicles' plates, in the order of Step's fixes.
func (f *Fleet) Plates() []string {
	out := make([]string, len(f.vehicles))
	for i := range f.vehicles {
		out[i] = f.vehicles[i].plate
	}
	return out
}

// Area is the area the fleet operates in.
func (f *Fleet) Area() Area { return f.area }

// Step moves every vehicle on to now and returns one fix per vehicle, in
// the order of Plates, all timed now. The first call only reports where
// the vehicles start. A time not after the previous one moves nothing: the
// vehicles report where they are.
func (f *Fleet) Step(now time.Time) []Fix {
	prev := f.last
	var dt float64
	if !f.last.IsZero() && now.After(f.last) {
		dt = now.Sub(f.last).Seconds()
	}
	if f.last.IsZero() || now.After(f.last) {
		f.last = now
	}
	fixes := make([]Fix, len(f.vehicles))
	for i := range f.vehicles {
		v := &f.vehicles[i]
		f.advance(v, dt, prev)
		lat, lng := f.proj.toLatLng(v.pos)
		fixes[i] = Fix{Plate: v.plate, Time: now, Lat: lat, Lng: lng, SpeedKmh: v.reportedSpeed(), Course: v.course}
	}
	return fixes
}

// place gives a new vehicle its starting state: parked for good, dwelling
// at a site, or somewhere along a leg, so that a demo is lively from its
// first fix.
func (f *Fleet) place(v *vehicle) {
	v.accel = 0.5 + 0.5*v.rnd.Float64() // m/s², a loaded truck
	v.decel = 0.8 + 0.7*v.rnd.Float64()
	v.site = v.rnd.IntN(len(f.sites))
	v.pos = f.spot(v, v.site)
	v.course = float64(v.rnd.IntN(360))
	switch r := v.rnd.Float64(); {
	case r < parkedShare:
		v.parked = true
	case r < parkedShare+(1-parkedShare)*dwellingAtStart:
		v.dwell = v.rnd.Float64() * f.dwellFor(v)
	default:
		f.depart(v)
		v.travelled = v.rnd.Float64() * 0.9 * v.cum[len(v.cum)-1]
		f.moveAlong(v)
		remain := v.cum[len(v.cum)-1] - v.travelled
		v.speed = math.Min(v.cruise, math.Sqrt(2*v.decel*remain))
	}
}

// advance moves v on by dt seconds from the time from, in steps of at
// most maxStep.
func (f *Fleet) advance(v *vehicle, dt float64, from time.Time) {
	if v.parked {
		return
	}
	elapsed := 0.0
	for dt > 0 {
		h := math.Min(dt, maxStep.Seconds())
		dt -= h
		if !v.driving {
			v.dwell -= h
			if v.dwell > 0 {
				elapsed += h
				continue
			}
			// The dwell ended within this step: drive for the rest of it.
			dt += -v.dwell
			elapsed += h + v.dwell
			origin := v.site
			f.depart(v)
			f.logDeparture(v, origin, from, elapsed)
			continue
		}
		f.drive(v, h)
		elapsed += h
		if !v.driving {
			f.logArrival(v, from, elapsed)
		}
	}
}

// logDeparture records a leg that v set off on at elapsed seconds after
// from, when recording.
func (f *Fleet) logDeparture(v *vehicle, origin int, from time.Time, elapsed float64) {
	if !f.recording || from.IsZero() {
		v.leg = -1
		return
	}
	path := make([][2]float64, len(v.path))
	for i, p := range v.path {
		lat, lng := f.proj.toLatLng(p)
		path[i] = [2]float64{lat, lng}
	}
	v.leg = len(f.legs)
	f.legs = append(f.legs, Leg{
		Plate: v.plate, From: f.area.Sites[origin].Name, To: f.area.Sites[v.site].Name,
		Departed: from.Add(time.Duration(elapsed * float64(time.Second))), Path: path, LengthM: v.cum[len(v.cum)-1],
	})
}

// logArrival records when v arrived, if its leg is recorded.
func (f *Fleet) logArrival(v *vehicle, from time.Time, elapsed float64) {
	if f.recording && v.leg >= 0 && v.leg < len(f.legs) {
		f.legs[v.leg].Arrived = from.Add(time.Duration(elapsed * float64(time.Second)))
	}
}

// drive changes speed towards the segment's cruise speed at the vehicle's
// acceleration or deceleration until it reaches its braking point, then
// brakes at a constant rate to stop exactly at the end of the leg: speeds
// ramp down into a stop instead of jumping from cruise to 0.
func (f *Fleet) drive(v *vehicle, h float64) {
	remain := v.cum[len(v.cum)-1] - v.travelled
	if remain <= 0 {
		f.arrive(v)
		return
	}
	if v.speed*v.speed >= 2*v.decel*remain {
		// On (or, by up to one step, past) the braking curve: the constant
		// deceleration that stops at the end is b = v²/2r, about decel.
		b := v.speed * v.speed / (2 * remain)
		next := v.speed - b*h
		if next <= 0 {
			f.arrive(v)
			return
		}
		v.speed = next
		v.travelled = v.cum[len(v.cum)-1] - next*next/(2*b)
		f.moveAlong(v)
		return
	}
	next := math.Min(v.cruise, v.speed+v.accel*h)
	next = math.Max(next, v.speed-v.decel*h)
	d := (v.speed + next) / 2 * h
	v.speed = next
	if d >= remain {
		f.arrive(v)
		return
	}
	v.travelled += d
	f.moveAlong(v)
}

// moveAlong puts v at its travelled distance on the path, and picks a new
// cruise speed on each new segment, as traffic and roads change.
func (f *Fleet) moveAlong(v *vehicle) {
	for v.seg < len(v.path)-2 && v.travelled > v.cum[v.seg+1] {
		v.seg++
		v.cruise = clamp(v.legCruise*(1+0.08*v.rnd.NormFloat64()), minCruiseKmh/3.6, maxCruiseKmh/3.6)
	}
	a, b := v.path[v.seg], v.path[v.seg+1]
	segLen := v.cum[v.seg+1] - v.cum[v.seg]
	t := 0.0
	if segLen > 0 {
		t = (v.travelled - v.cum[v.seg]) / segLen
	}
	v.pos = point{a.x + t*(b.x-a.x), a.y + t*(b.y-a.y)}
	if segLen > 0 {
		v.course = bearing(a, b)
	}
}

// arrive stops v at its destination's spot and starts its dwell: as long
// as its job's visit takes, or as the site's kind takes.
func (f *Fleet) arrive(v *vehicle) {
	v.pos = v.path[len(v.path)-1]
	v.speed = 0
	v.driving = false
	if v.onJob {
		v.dwell = f.visitDwell(v)
		return
	}
	v.dwell = f.dwellFor(v)
}

// depart ends v's stay: on a job, for the job's next visit, or the next
// job's first once this one's last is done; otherwise, or after its last
// job, for the next site of its work cycle.
func (f *Fleet) depart(v *vehicle) {
	if v.onJob {
		v.stop++
		if v.stop == len(v.jobs[0].visits) {
			v.jobs = v.jobs[1:]
			v.onJob, v.stop = len(v.jobs) > 0, 0
		}
	}
	if v.onJob {
		f.legTo(v, v.jobs[0].visits[v.stop].site, false)
		return
	}
	f.legTo(v, f.nextSite(v), false)
}

// legTo lays out v's leg from where it is to a spot at site, setting off
// from a stop, or, with keepSpeed, turning towards it at the speed it
// drives.
func (f *Fleet) legTo(v *vehicle, site int, keepSpeed bool) {
	from := v.pos
	v.site = site
	to := f.spot(v, v.site)
	v.path = f.route(v, from, to)
	v.cum = v.cum[:0]
	sum := 0.0
	for i, p := range v.path {
		if i > 0 {
			sum += point{p.x - v.path[i-1].x, p.y - v.path[i-1].y}.norm()
		}
		v.cum = append(v.cum, sum)
	}
	v.travelled, v.seg = 0, 0
	if !keepSpeed {
		v.speed = 0
	}
	v.driving = true
	v.legCruise = (minCruiseKmh + (maxCruiseKmh-minCruiseKmh)*v.rnd.Float64()) / 3.6
	v.cruise = v.legCruise
	if v.path[1] != v.path[0] {
		v.course = bearing(v.path[0], v.path[1])
	}
}

// nextSite follows the work cycle: loading, then unloading, then now and
// then an oil station, then loading again.
func (f *Fleet) nextSite(v *vehicle) int {
	want := SiteLoading
	switch f.area.Sites[v.site].Kind {
	case SiteLoading:
		want = SiteUnloading
	case SiteUnloading:
		if v.rnd.Float64() < oilStopChance && len(f.byKind[SiteOil]) > 0 {
			want = SiteOil
		}
	}
	candidates := f.byKind[want]
	if len(candidates) == 0 || (len(candidates) == 1 && candidates[0] == v.site) {
		// An area without sites of that kind: go anywhere else.
		s := v.rnd.IntN(len(f.sites) - 1)
		if s >= v.site {
			s++
		}
		return s
	}
	for {
		if s := candidates[v.rnd.IntN(len(candidates))]; s != v.site {
			return s
		}
	}
}

// route lays a leg from a to b: a straight line bent at a few waypoints
// (one per ~6 km, up to five), each pushed sideways by a few percent of
// the leg's length, so tracks look like roads rather than rulers.
func (f *Fleet) route(v *vehicle, a, b point) []point {
	dx, dy := b.x-a.x, b.y-a.y
	length := math.Hypot(dx, dy)
	n := int(clamp(math.Floor(length/6000), 1, 5))
	if length < 500 {
		n = 0
	}
	path := append(v.path[:0], a)
	for i := 1; i <= n; i++ {
		t := float64(i) / float64(n+1)
		side := clamp(0.04*v.rnd.NormFloat64(), -0.1, 0.1) * length
		// (-dy, dx)/length is the unit normal to the leg.
		p := point{a.x + t*dx - side*dy/length, a.y + t*dy + side*dx/length}
		path = append(path, f.inside(p))
	}
	return append(path, b)
}

// spot is where v parks on this visit to site s.
func (f *Fleet) spot(v *vehicle, s int) point {
	r := f.spotR * math.Sqrt(v.rnd.Float64())
	a := 2 * math.Pi * v.rnd.Float64()
	c := f.sites[s]
	return f.inside(point{c.x + r*math.Cos(a), c.y + r*math.Sin(a)})
}

// inside pulls p back inside the area. The area is a disc, so a path
// whose points are all inside stays inside.
func (f *Fleet) inside(p point) point {
	limit := f.area.RadiusKm * 1000 * areaMargin
	if d := p.norm(); d > limit {
		return point{p.x * limit / d, p.y * limit / d}
	}
	return p
}

// dwellFor draws how long v stays at its current site, in seconds.
func (f *Fleet) dwellFor(v *vehicle) float64 {
	return f.stay(v, string(f.area.Sites[v.site].Kind))
}

// stay draws a stay of v for kind (a site's or a stop's), in seconds:
// the fleet's dwell x [0.5, 1.5) when it has one (WithDwell), else the
// minutes the kind takes.
func (f *Fleet) stay(v *vehicle, kind string) float64 {
	if f.dwell > 0 {
		return f.dwell.Seconds() * (0.5 + v.rnd.Float64())
	}
	lo, hi := 5.0, 20.0 // minutes
	switch kind {
	case string(SiteLoading):
		lo, hi = 15, 40
	case string(SiteUnloading):
		lo, hi = 10, 30
	case string(SiteOil):
		lo, hi = 3, 8
	case string(StopQuality):
		lo, hi = 5, 15
	}
	return 60 * (lo + (hi-lo)*v.rnd.Float64())
}

// reportedSpeed is the speed a device would show: the model's, with the
// small wobble of a real speedometer while moving, and exactly 0 standing.
func (v *vehicle) reportedSpeed() float64 {
	kmh := v.speed * 3.6
	if !v.driving || kmh < 10 {
		return kmh
	}
	return math.Max(0, kmh+0.5*v.rnd.NormFloat64())
}

// bearing is the heading from a to b, degrees clockwise from north.
func bearing(a, b point) float64 {
	deg := math.Atan2(b.x-a.x, b.y-a.y) * 180 / math.Pi
	if deg < 0 {
		deg += 360
	}
	if deg >= 360 {
		deg = 0
	}
	return deg
}

func clamp(x, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, x)) }
